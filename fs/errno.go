package fs

import (
	"errors"
	"io"
	"log"
	"syscall"

	"github.com/procmem/procmem/procfs"
)

// toErrno is the one place where errors become what the kernel hands to
// the caller. A process that is gone becomes ENOENT (the name no longer
// exists); a system call's own errno is kept; anything else is logged and
// becomes EIO, never go-fuse's fallback ENOTSUP.
func toErrno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var errno syscall.Errno
	switch {
	case errors.Is(err, procfs.ErrAddressRange):
		return syscall.EIO
	case errors.Is(err, syscall.ESRCH), errors.Is(err, io.EOF):
		return syscall.ENOENT
	case errors.As(err, &errno):
		return errno
	}
	log.Printf("procmem: %v", err)
	return syscall.EIO
}
