package procfs

// This file asks /proc/PID/maps about one address with the PROCMAP_QUERY
// ioctl (linux/fs.h, kernel 6.11 and later), without reading the file; on
// older kernels it reads the file through the same descriptor instead.

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sort"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrNoQuery is returned where the kernel has no PROCMAP_QUERY.
var ErrNoQuery = errors.New("PROCMAP_QUERY is not supported by this kernel")

// MapsQuery is an open /proc/PID/maps that answers which mapping covers an
// address. The kernel allows it to whoever may read maps (PTRACE_MODE_READ),
// and binds it to the address space it was opened on: once that is gone,
// it finds nothing.
type MapsQuery struct {
	f       *os.File
	noQuery bool // the kernel has no PROCMAP_QUERY: the file is read
}

// OpenMapsQuery opens the process's maps for queries, with the rights of
// the caller.
func (p *Process) OpenMapsQuery() (*MapsQuery, error) {
	f, err := p.OpenFile("maps", unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	return &MapsQuery{f: f}, nil
}

// NewMapsQuery makes a query of an open /proc/PID/maps, such as one opened
// with someone else's credentials; it owns f from then on.
func NewMapsQuery(f *os.File) *MapsQuery { return &MapsQuery{f: f} }

// Close closes the file.
func (q *MapsQuery) Close() error { return q.f.Close() }

// Regions reads the whole of maps through the query's descriptor: what the
// address space it is bound to maps now.
func (q *MapsQuery) Regions() ([]Region, error) { return ReadMaps(q.f) }

// procmapQuery is struct procmap_query.
type procmapQuery struct {
	size, flags, addr, vmaStart, vmaEnd, vmaFlags, vmaPageSize, vmaOffset, inode uint64
	devMajor, devMinor, vmaNameSize, buildIDSize                                 uint32
	vmaNameAddr, buildIDAddr                                                     uint64
}

const (
	procmapQueryIoctl   = 0xc0686611 // _IOWR('f', 17, struct procmap_query)
	queryCoveringOrNext = 0x10       // PROCMAP_QUERY_COVERING_OR_NEXT_VMA

	vmaReadable   = 0x1 // PROCMAP_QUERY_VMA_READABLE
	vmaWritable   = 0x2
	vmaExecutable = 0x4
	vmaShared     = 0x8
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
	r, ok, err := q.Find(addr)
	return r.Start, r.End, ok, err
}

// Find returns the mapping that covers addr or, if none does, the first
// one after it, as maps would show it but for its pathname (left empty);
// ok is false if there is none.
func (q *MapsQuery) Find(addr uint64) (Region, bool, error) {
	return q.find(addr, nil)
}

// FindNamed is Find with the pathname too, as maps shows it.
func (q *MapsQuery) FindNamed(addr uint64) (Region, bool, error) {
	return q.find(addr, make([]byte, 4096))
}

func (q *MapsQuery) find(addr uint64, name []byte) (Region, bool, error) {
	if q.noQuery {
		return q.findRead(addr, name != nil)
	}
	arg := procmapQuery{size: uint64(unsafe.Sizeof(procmapQuery{})), flags: queryCoveringOrNext, addr: addr}
	if name != nil {
		arg.vmaNameSize, arg.vmaNameAddr = uint32(len(name)), uint64(uintptr(unsafe.Pointer(&name[0])))
	}
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, q.f.Fd(), procmapQueryIoctl, uintptr(unsafe.Pointer(&arg)))
	switch {
	case errno == unix.ENOENT: // nothing at or after addr
		return Region{}, false, nil
	case errno == unix.ENOTTY || errno == unix.EINVAL:
		q.noQuery = true
		return q.findRead(addr, name != nil)
	case errno != 0:
		return Region{}, false, fmt.Errorf("PROCMAP_QUERY 0x%x: %w", addr, errno)
	}
	f := arg.vmaFlags
	var path string
	if name != nil && arg.vmaNameSize > 0 {
		path = string(name[:arg.vmaNameSize-1]) // without its NUL
	}
	runtime.KeepAlive(name)
	return Region{
		Start:  arg.vmaStart,
		End:    arg.vmaEnd,
		Perms:  Perms{Read: f&vmaReadable != 0, Write: f&vmaWritable != 0, Exec: f&vmaExecutable != 0, Shared: f&vmaShared != 0},
		Offset: arg.vmaOffset,
		Dev:    fmt.Sprintf("%02x:%02x", arg.devMajor, arg.devMinor),
		Inode:  arg.inode,
		Path:   path,
	}, true, nil
}

// findRead answers Find from the text of maps, for kernels without
// PROCMAP_QUERY: slower, the same answer.
func (q *MapsQuery) findRead(addr uint64, named bool) (Region, bool, error) {
	regions, err := q.Regions()
	if err != nil {
		return Region{}, false, err
	}
	i := sort.Search(len(regions), func(i int) bool { return regions[i].End > addr })
	if i == len(regions) {
		return Region{}, false, nil
	}
	r := regions[i]
	if !named {
		r.Path = ""
	}
	return r, true, nil
}
