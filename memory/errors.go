package memory

import (
	"errors"
	"io"
	"syscall"
)

// ErrGone means the address space is no more: the process exited or
// replaced its image with exec. Reads and writes through an fd of
// /proc/PID/mem return 0 bytes then, and opens through a pinned process
// fail with ESRCH.
var ErrGone = errors.New("the process exited")

// ErrAddressRange is returned for addresses that /proc/PID/mem cannot reach:
// pread and pwrite take a signed offset, so nothing at or above 2^63 (where
// x86-64 keeps [vsyscall]) can be addressed.
var ErrAddressRange = errors.New("address beyond the reach of /proc/PID/mem")

// ErrCaptured is returned for a write to captured memory: a core file is a
// record, not a process.
var ErrCaptured = errors.New("captured memory cannot be written")

// ErrOutOfRange is returned for a write outside the range a Writer may
// write.
var ErrOutOfRange = errors.New("outside the range being written")

// Class is what went wrong, as much as a caller needs to know to answer.
type Class int

const (
	OK           Class = iota
	Other              // anything else: a bug or the unexpected, worth a log line
	Gone               // the process or its address space no longer exists
	NotPermitted       // the caller may not (EACCES, EPERM)
	Unreadable         // a page the kernel will not read or write (EIO)
	OutOfRange         // an address beyond what may be addressed
	Exhausted          // out of file descriptors or memory: says nothing of the process
	ReadOnly           // captured memory, which nothing writes
)

// Classify puts an error in its class. Opens and reads through a pinned
// process report a process that is gone as ESRCH (ENOENT for a file of a
// process that is being torn down); reads of a dead address space as
// io.EOF.
func Classify(err error) Class {
	switch {
	case err == nil:
		return OK
	case errors.Is(err, ErrGone), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ESRCH), errors.Is(err, syscall.ENOENT):
		return Gone
	case errors.Is(err, ErrCaptured):
		return ReadOnly
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE), errors.Is(err, syscall.ENOMEM):
		return Exhausted
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return NotPermitted
	case errors.Is(err, ErrAddressRange), errors.Is(err, ErrOutOfRange):
		return OutOfRange
	case errors.Is(err, syscall.EIO), errors.Is(err, syscall.EFAULT):
		return Unreadable
	}
	return Other
}

// gone turns the ways the kernel says "no more" into ErrGone.
func gone(err error) error {
	if err != nil && Classify(err) == Gone {
		return ErrGone
	}
	return err
}
