// Package procfs reads what Linux publishes about a process under
// /proc/PID: the mappings (maps, smaps), the page tables (pagemap), the
// usage counters (statm), the identity and credentials of the process
// (stat, status); and of the system, the boot time (/proc/stat) and how
// /proc is mounted (mountinfo). A Process pins one process, and every file
// is opened through it. The memory itself is read by package memory.
//
// Every file is read whole in one go and then parsed from its text, so the
// parsers can be tested and fuzzed on captured fixtures. Parsers never
// panic; malformed input yields an error wrapping ErrParse. Errors from the
// operating system are wrapped with %w so callers can tell a process that is
// gone (ESRCH, ENOENT) from a page that cannot be read (EIO).
package procfs

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// ErrParse is wrapped by every error that comes from malformed /proc text.
var ErrParse = errors.New("procfs: malformed input")

// Root is where procfs is mounted. Tests may point it elsewhere.
const Root = "/proc"

// readFileAt reads the file name, relative to the directory dir (or
// AT_FDCWD), whole: until read returns 0, since the sizes /proc reports are
// 0 or wrong.
func readFileAt(dir int, name, path string) ([]byte, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Openat(dir, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	return readAll(fd, path)
}

// readAll reads an open /proc file whole, from its start.
func readAll(fd int, path string) ([]byte, error) {
	b := make([]byte, 0, 4096)
	for {
		if len(b) == cap(b) {
			// Double: append grows large slices by only a quarter, and
			// reading the maps of 60,000 regions that way took 26-91 ms
			// against 19-22 ms (as cat) doubling.
			b = append(make([]byte, 0, 2*cap(b)), b...)
		}
		n, err := unix.Pread(fd, b[len(b):cap(b)], int64(len(b)))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
	}
}
