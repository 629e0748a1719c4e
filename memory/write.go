package memory

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/procmem/procmem/procfs"
)

// Writes are decided when they are made, not when a file was opened: a
// region may have become read-only since (mprotect), or been replaced by
// another mapping (mmap MAP_FIXED), and /proc/PID/mem writes by force into
// either. So before each write the Reader asks the kernel, through its
// maps fd (PROCMAP_QUERY), how the range is mapped at that moment, and
// refuses it (EACCES, nothing written) unless every byte lies in a mapping
// that may be written. What is left is the time between the question and
// the write, microseconds, which no interface of the kernel closes.

// Writer writes memory inside one range only, and only where the kernel
// maps writable memory at the moment of the write (or any memory, if it is
// forcing).
type Writer struct {
	rd         *Reader
	start, end uint64
	force      bool
	of         *procfs.Region // the mapping it writes, if it is a region's writer
}

// Writer returns a writer of [start, end). The Reader must have been
// opened for writing.
func (rd *Reader) Writer(start, end uint64) *Writer {
	return &Writer{rd: rd, start: start, end: end}
}

// RegionWriter returns a writer of region r that writes only as long as
// r's mapping is there: the same file (device, inode) at the same offset,
// or anonymous memory if it was.
func (rd *Reader) RegionWriter(r procfs.Region) *Writer {
	return &Writer{rd: rd, start: r.Start, end: r.End, of: &r}
}

// Forcing makes w write where the mapping does not allow it, as
// /proc/PID/mem does: code and read-only data are patched copy-on-write,
// a shared file mapping changes the file. It returns w.
func (w *Writer) Forcing() *Writer {
	w.force = true
	return w
}

// Write writes what of b fits in the writer's range at addr, in one system
// call: a write that runs into a page that cannot be written is short, and
// one into memory that may not be written now fails with EACCES. Nothing
// is ever written outside the range.
func (w *Writer) Write(b []byte, addr uint64) (int, error) {
	if w.rd.capture != nil {
		return 0, fmt.Errorf("write at 0x%x: %w", addr, ErrCaptured)
	}
	if !w.rd.write {
		return 0, fmt.Errorf("write at 0x%x: %w", addr, unix.EBADF)
	}
	if addr < w.start || addr >= w.end {
		return 0, fmt.Errorf("0x%x: %w", addr, ErrOutOfRange)
	}
	b = b[:min(uint64(len(b)), w.end-addr)]
	n, err := w.rd.writable(addr, uint64(len(b)), w.force, w.of)
	if n == 0 {
		return 0, err
	}
	return w.rd.mem.pwrite(b[:n], addr)
}

// WriteFull writes all of b at addr, which must fit the range; a short
// write is an error that says where it stopped.
func (w *Writer) WriteFull(b []byte, addr uint64) (int, error) {
	if end := addr + uint64(len(b)); end < addr || end > w.end {
		return 0, fmt.Errorf("0x%x-0x%x: %w", addr, end, ErrOutOfRange)
	}
	return full(w.Write, b, addr)
}

// writable tells how much of [addr, addr+n) may be written now: every byte
// up to the first that is not mapped (EIO if that is addr), or whose
// mapping may not be written unless force (EACCES), or, for a region's
// writer (of), whose mapping is no longer the region's.
func (rd *Reader) writable(addr, n uint64, force bool, of *procfs.Region) (uint64, error) {
	end := addr + n
	at := addr
	var why error
	for at < end {
		m, ok, err := rd.query.Find(at)
		if err != nil {
			return 0, err
		}
		if !ok || m.Start > at {
			why = fmt.Errorf("write at 0x%x: not mapped: %w", at, unix.EIO)
			break
		}
		if !force && !m.Perms.Write {
			why = fmt.Errorf("write at 0x%x: the mapping %s is %s, not writable: %w", at, m.Name(), m.Perms, unix.EACCES)
			break
		}
		if of != nil && !sameMapping(m, *of, at) {
			why = fmt.Errorf("write at 0x%x: %s is no longer mapped there: %w", at, of.Label(), unix.EACCES)
			break
		}
		at = min(end, m.End)
	}
	if at > addr {
		return at - addr, nil
	}
	if err := rd.alive(); err != nil {
		return 0, err // nothing is mapped once the address space is gone
	}
	return 0, why
}

// sameMapping reports whether mapping m, found at addr, maps what region r
// mapped there: the same file at the same offset, shared as it was, or
// anonymous memory again.
func sameMapping(m, r procfs.Region, addr uint64) bool {
	if m.Inode != r.Inode || m.Perms.Shared != r.Perms.Shared {
		return false
	}
	if r.Inode == 0 {
		return true
	}
	return m.Dev == r.Dev && m.Offset+(addr-m.Start) == r.Offset+(addr-r.Start)
}

// WriteSpan writes b at addr, anywhere in the address space: all of it
// must be mapped (EIO, nothing written, if not) and writable unless force
// (EACCES, nothing written), as the kernel maps it at the moment of the
// write.
func (rd *Reader) WriteSpan(b []byte, addr uint64, force bool) (int, error) {
	if rd.capture != nil {
		return 0, fmt.Errorf("write at 0x%x: %w", addr, ErrCaptured)
	}
	if !rd.write {
		return 0, fmt.Errorf("write at 0x%x: %w", addr, unix.EBADF)
	}
	if end := addr + uint64(len(b)); end < addr || end > MaxAddress {
		return 0, fmt.Errorf("0x%x: %w", addr, ErrAddressRange)
	}
	n, err := rd.writable(addr, uint64(len(b)), force, nil)
	if err != nil {
		return 0, err
	}
	if n < uint64(len(b)) {
		_, err := rd.writable(addr+n, uint64(len(b))-n, force, nil)
		return 0, err
	}
	return rd.mem.pwrite(b, addr)
}
