// Command rawfuse serves nullfs's file without go-fuse, to show what the
// FUSE transport itself costs on this machine: one thread reads a request
// from /dev/fuse, answers it and reads the next, one request at a time,
// through raw system calls the Go scheduler never sees. The difference
// between it and nullfs is go-fuse's pool of reader goroutines plus the
// runtime's handling of blocking system calls (sysmon takes the P of a
// thread blocked in read and another thread is woken to look for work).
// With -syscall it makes ordinary system calls instead, so its difference
// from the raw loop is the runtime's share alone.
//
// It is a measuring instrument, not a pattern to copy: a thread blocked in
// a raw system call keeps its P, so a garbage collection would wait for
// the next request (the loop allocates nothing, so none starts), and a
// signal cannot stop it; it exits when the mount goes away. Usage:
// rawfuse [-syscall] MOUNTPOINT SIZE, as root; unmount it to stop it.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// Opcodes from linux/fuse.h.
const (
	opLookup      = 1
	opForget      = 2
	opGetattr     = 3
	opOpen        = 14
	opRead        = 15
	opRelease     = 18
	opFlush       = 25
	opInit        = 26
	opInterrupt   = 36
	opDestroy     = 38
	opBatchForget = 42

	rootID = 1
	fileID = 2
)

func main() {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "-syscall" {
		call, args = syscall.Syscall, args[1:]
	}
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: rawfuse [-syscall] MOUNTPOINT SIZE")
		os.Exit(2)
	}
	size, err := strconv.ParseUint(args[1], 0, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rawfuse:", err)
		os.Exit(2)
	}
	fd, err := syscall.Open("/dev/fuse", syscall.O_RDWR|syscall.O_CLOEXEC, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rawfuse:", err)
		os.Exit(1)
	}
	opts := fmt.Sprintf("fd=%d,rootmode=40000,user_id=0,group_id=0,max_read=%d", fd, 1<<20)
	if err := syscall.Mount("rawfuse", args[0], "fuse.rawfuse", syscall.MS_NOSUID|syscall.MS_NODEV, opts); err != nil {
		fmt.Fprintln(os.Stderr, "rawfuse: mount:", err)
		os.Exit(1)
	}
	serve(fd, size)
}

// call makes the loop's system calls: raw unless -syscall is given.
var call = syscall.RawSyscall

// serve answers requests until the mount goes away.
func serve(fd int, size uint64) {
	runtime.LockOSThread()
	in := make([]byte, 1<<20+64<<10) // a WRITE's data and its header
	data := make([]byte, 1<<20)
	var out [4096]byte
	iov := make([]syscall.Iovec, 2)
	for {
		n, _, errno := call(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&in[0])), uintptr(len(in)))
		switch {
		case errno == syscall.EINTR || errno == syscall.ENOENT || errno == syscall.EAGAIN:
			continue
		case errno != 0: // ENODEV: unmounted
			return
		case int(n) < int(unsafe.Sizeof(fuse.InHeader{})):
			continue
		}
		h := (*fuse.InHeader)(unsafe.Pointer(&in[0]))
		body := out[unsafe.Sizeof(fuse.OutHeader{}):]
		clear(body[:256])
		blen, status := 0, int32(0)
		var payload []byte
		switch h.Opcode {
		case opForget, opBatchForget, opInterrupt:
			continue // no reply
		case opInit:
			ii := (*fuse.InitIn)(unsafe.Pointer(&in[0]))
			o := (*fuse.InitOut)(unsafe.Pointer(&body[0]))
			*o = fuse.InitOut{
				Major: 7, Minor: min(ii.Minor, 31), MaxReadAhead: ii.MaxReadAhead,
				Flags:         fuse.CAP_MAX_PAGES | fuse.CAP_BIG_WRITES,
				MaxBackground: 12, CongestionThreshold: 9, MaxWrite: 1 << 20, MaxPages: 256,
			}
			blen = int(unsafe.Sizeof(*o))
		case opLookup:
			if name := in[unsafe.Sizeof(*h):n]; h.NodeId != rootID || string(name) != "data\x00" {
				status = -int32(syscall.ENOENT)
				break
			}
			o := (*fuse.EntryOut)(unsafe.Pointer(&body[0]))
			o.NodeId = fileID
			attr(&o.Attr, fileID, size)
			blen = int(unsafe.Sizeof(*o))
		case opGetattr:
			o := (*fuse.AttrOut)(unsafe.Pointer(&body[0]))
			attr(&o.Attr, h.NodeId, size)
			blen = int(unsafe.Sizeof(*o))
		case opOpen:
			o := (*fuse.OpenOut)(unsafe.Pointer(&body[0]))
			o.OpenFlags = fuse.FOPEN_DIRECT_IO
			blen = int(unsafe.Sizeof(*o))
		case opRead:
			r := (*fuse.ReadIn)(unsafe.Pointer(&in[0]))
			if r.Offset < size {
				payload = data[:min(uint64(r.Size), size-r.Offset, uint64(len(data)))]
			}
		case opRelease, opFlush, opDestroy:
		default:
			status = -int32(syscall.ENOSYS)
		}
		head := int(unsafe.Sizeof(fuse.OutHeader{})) + blen
		*(*fuse.OutHeader)(unsafe.Pointer(&out[0])) = fuse.OutHeader{
			Length: uint32(head + len(payload)), Status: status, Unique: h.Unique,
		}
		iov[0] = syscall.Iovec{Base: &out[0], Len: uint64(head)}
		cnt := 1
		if len(payload) > 0 {
			iov[1] = syscall.Iovec{Base: &payload[0], Len: uint64(len(payload))}
			cnt = 2
		}
		call(syscall.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(cnt))
	}
}

// attr describes the root directory or the file.
func attr(a *fuse.Attr, id, size uint64) {
	a.Ino = id
	if id == rootID {
		a.Mode, a.Nlink = syscall.S_IFDIR|0o755, 2
		return
	}
	a.Mode, a.Nlink, a.Size, a.Blksize = syscall.S_IFREG|0o600, 1, size, 1<<20
}
