package fs

import (
	"errors"
	"log"
	"syscall"

	"github.com/procmem/procmem/memory"
)

// This file is the one place where errors become what the kernel hands to
// the caller, by the class the memory layer gives them.

// toErrno answers a lookup, open, stat or read. A process that is gone
// becomes ENOENT (the name no longer exists); running out of descriptors
// is EMFILE, never "no such process", and is logged; a system call's own
// errno is kept; anything else is logged and becomes EIO, never go-fuse's
// fallback ENOTSUP.
func toErrno(err error) syscall.Errno {
	var errno syscall.Errno
	switch memory.Classify(err) {
	case memory.OK:
		return 0
	case memory.Gone:
		return syscall.ENOENT
	case memory.OutOfRange:
		return syscall.EIO
	case memory.ReadOnly:
		return syscall.EROFS
	case memory.Exhausted:
		log.Printf("procmem: %v", err)
		if errors.As(err, &errno) {
			return errno
		}
		return syscall.EMFILE
	}
	if errors.As(err, &errno) {
		return errno
	}
	log.Printf("procmem: %v", err)
	return syscall.EIO
}

// readdirErrno answers a readdir: there ENOENT reads as an empty directory
// to glibc, so a process that is gone is ESRCH.
func readdirErrno(err error) syscall.Errno {
	if memory.Classify(err) == memory.Gone {
		return syscall.ESRCH
	}
	return toErrno(err)
}

// writeErrno answers a write: after the process is gone, ESRCH, as a
// write to /proc/PID/mem of a dead process has nothing to write to.
func writeErrno(err error) syscall.Errno {
	if memory.Classify(err) == memory.Gone {
		return syscall.ESRCH
	}
	return toErrno(err)
}
