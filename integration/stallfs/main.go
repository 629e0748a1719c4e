// Command stallfs is a filesystem that hangs, as a network filesystem
// whose server went away does: one file, "data", whose attributes and
// opens are answered but whose reads never are, until stallfs is killed
// (the kernel then fails them). Tests map the file into a target to make
// the daemon's reads of that mapping wait. Usage: stallfs MOUNTPOINT SIZE
// [allow_other] (other users' processes may map the file too).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

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

var (
	_ = (gofs.NodeGetattrer)((*file)(nil))
	_ = (gofs.NodeOpener)((*file)(nil))
	_ = (gofs.NodeReader)((*file)(nil))
)

func (f *file) Getattr(ctx context.Context, fh gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	out.Mode = syscall.S_IFREG | 0o644
	out.Size = f.size
	return 0
}

func (f *file) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	return nil, 0, 0
}

// Read never answers: the request waits until the connection ends.
func (f *file) Read(ctx context.Context, fh gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	select {}
}

func main() {
	if len(os.Args) != 3 && (len(os.Args) != 4 || os.Args[3] != "allow_other") {
		fmt.Fprintln(os.Stderr, "usage: stallfs MOUNTPOINT SIZE [allow_other]")
		os.Exit(2)
	}
	size, err := strconv.ParseUint(os.Args[2], 0, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	server, err := gofs.Mount(os.Args[1], &root{size: size}, &gofs.Options{
		MountOptions: fuse.MountOptions{
			FsName: "stallfs", Name: "stallfs", AllowOther: len(os.Args) == 4,
			DirectMount: true, DirectMountStrict: os.Geteuid() == 0,
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	go func() { <-sigs; os.Exit(0) }()
	server.Wait()
}
