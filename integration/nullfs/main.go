// Command nullfs is the FUSE transport's own ceiling for procmem's
// benchmarks: one direct-I/O file, "data", whose reads return the request
// buffer untouched and whose writes are dropped, mounted with the options
// procmem uses. Usage: nullfs MOUNTPOINT SIZE; SIGTERM unmounts.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

type root struct {
	gofs.Inode
	size uint64
}

func (r *root) OnAdd(ctx context.Context) {
	f := &file{size: r.size}
	r.AddChild("data", r.NewPersistentInode(ctx, f, gofs.StableAttr{Mode: syscall.S_IFREG}), false)
}

type file struct {
	gofs.Inode
	size uint64
}

func (f *file) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o600
	out.Size = f.size
	out.Blksize = 1 << 20
	return 0
}

func (f *file) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	return nil, fuse.FOPEN_DIRECT_IO, 0
}

func (f *file) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if off < 0 || uint64(off) >= f.size {
		return fuse.ReadResultData(nil), 0
	}
	return fuse.ReadResultData(dest[:min(uint64(len(dest)), f.size-uint64(off))]), 0
}

func (f *file) Write(ctx context.Context, fh gofs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	return uint32(len(data)), 0
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: nullfs MOUNTPOINT SIZE")
		os.Exit(2)
	}
	size, err := strconv.ParseUint(os.Args[2], 0, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	zero := time.Duration(0)
	server, err := gofs.Mount(os.Args[1], &root{size: size}, &gofs.Options{
		EntryTimeout: &zero, AttrTimeout: &zero,
		MountOptions: fuse.MountOptions{
			FsName: "nullfs", Name: "procmem", MaxWrite: 1 << 20, DisableSplice: true,
			DirectMount: true, DirectMountStrict: os.Geteuid() == 0,
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	go func() { <-sigs; server.Unmount() }()
	server.Wait()
}
