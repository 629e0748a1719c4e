package procfs

// This file asks /proc/PID/maps about one address with the PROCMAP_QUERY
// ioctl (linux/fs.h, kernel 6.11 and later), without reading the file.

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrNoQuery is returned where the kernel has no PROCMAP_QUERY.
var ErrNoQuery = errors.New("PROCMAP_QUERY is not supported by this kernel")

// MapsQuery is an open /proc/PID/maps that answers which mapping covers an
// address. The kernel allows it to whoever may read maps (PTRACE_MODE_READ),
// and binds it to the address space it was opened on.
type MapsQuery struct{ f *os.File }

// OpenMapsQuery opens the process's maps for queries.
func (p *Process) OpenMapsQuery() (*MapsQuery, error) {
	f, err := p.OpenFile("maps", unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	return &MapsQuery{f: f}, nil
}

// Close closes the file.
func (q *MapsQuery) Close() error { return q.f.Close() }

// procmapQuery is struct procmap_query.
type procmapQuery struct {
	size, flags, addr, vmaStart, vmaEnd, vmaFlags, vmaPageSize, vmaOffset, inode uint64
	devMajor, devMinor, vmaNameSize, buildIDSize                                 uint32
	vmaNameAddr, buildIDAddr                                                     uint64
}

const (
	procmapQueryIoctl   = 0xc0686611 // _IOWR('f', 17, struct procmap_query)
	queryCoveringOrNext = 0x10       // PROCMAP_QUERY_COVERING_OR_NEXT_VMA
)

// MappedUpTo returns the first address in [start, end) that no mapping
// covers, or end if all of it is mapped.
func (q *MapsQuery) MappedUpTo(start, end uint64) (uint64, error) {
	for at := start; at < end; {
		vs, ve, ok, err := q.Next(at)
		if err != nil {
			return 0, err
		}
		if !ok || vs > at {
			return at, nil
		}
		at = ve
	}
	return end, nil
}

// Next returns the bounds of the mapping that covers addr or, if none
// does, of the first one after it; ok is false if there is none.
func (q *MapsQuery) Next(addr uint64) (start, end uint64, ok bool, err error) {
	arg := procmapQuery{size: uint64(unsafe.Sizeof(procmapQuery{})), flags: queryCoveringOrNext, addr: addr}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, q.f.Fd(), procmapQueryIoctl, uintptr(unsafe.Pointer(&arg)))
	switch {
	case errno == unix.ENOENT: // nothing at or after addr
		return 0, 0, false, nil
	case errno == unix.ENOTTY || errno == unix.EINVAL:
		return 0, 0, false, ErrNoQuery
	case errno != 0:
		return 0, 0, false, fmt.Errorf("PROCMAP_QUERY 0x%x: %w", addr, errno)
	}
	return arg.vmaStart, arg.vmaEnd, true, nil
}
