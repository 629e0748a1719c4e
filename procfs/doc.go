// Package procfs reads what Linux publishes about a process's memory under
// /proc/PID: the mappings (maps, smaps), the usage counters (statm), the
// identity of the process (stat, status) and the memory itself (mem).
//
// Every file is read whole in one go and then parsed from an io.Reader, so
// the parsers can be tested and fuzzed on captured fixtures. Parsers never
// panic; malformed input yields an error wrapping ErrParse. Errors from the
// operating system are wrapped with %w so callers can tell a process that is
// gone (ESRCH, ENOENT) from a page that cannot be read (EIO).
package procfs

import (
	"errors"
	"os"
	"strconv"
)

// ErrParse is wrapped by every error that comes from malformed /proc text.
var ErrParse = errors.New("procfs: malformed input")

// Root is where procfs is mounted. Tests may point it elsewhere.
const Root = "/proc"

// pidPath returns the path of a file below /proc/PID.
func pidPath(pid int, name string) string {
	return Root + "/" + strconv.Itoa(pid) + "/" + name
}

// readFile reads a whole /proc file. os.ReadFile trusts the reported size
// only as a hint, which is what /proc needs (sizes there are 0 or lie).
func readFile(path string) ([]byte, error) {
	return os.ReadFile(path)
}
