package daemon

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ErrBusy is returned by LockMountpoint when another procmem holds the
// mountpoint's lock: it is mounting there, or serves there.
var ErrBusy = errors.New("another procmem is mounting or serving there")

// LockMountpoint takes the mountpoint's lock: an exclusive flock on the
// directory dir names now, before anything is mounted on it, held until
// the returned file is closed (the daemon holds it while it serves, and
// the kernel lets go when it dies). Two daemons that start at once take
// the same directory's lock, so one of them gets ErrBusy; one that opens
// dir after the other mounted gets the mount's root, and must see the
// mount when it looks again under the lock.
func LockMountpoint(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	f := os.NewFile(uintptr(fd), dir)
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrBusy)
		}
		return nil, &os.PathError{Op: "flock", Path: dir, Err: err}
	}
	return f, nil
}
