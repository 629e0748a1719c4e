package fs

import (
	"context"
	"fmt"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Every open handle holds something of the daemon's: descriptors (a
// memory file's mem, maps, pagemap, pin, stat and mapped files; a
// directory's maps) and bytes (a listing's entries, a text file's
// rendering, a core's headers). One user must not take them all from
// everyone, nor be told that processes are gone (ENOENT) when the daemon
// runs out: each user other than the daemon's own holds at most a share of
// each, and past it opens fail with EMFILE or ENOMEM. Every handle kind
// is charged here, at open, and refunded at release.

// handleBytesShare is what one user's handles may hold in bytes.
const handleBytesShare = 256 << 20

// minHandleBytes is charged for any handle, whatever it holds: the
// daemon's and go-fuse's bookkeeping of it.
const minHandleBytes = 4 << 10

// Descriptors each kind of handle holds at most.
const (
	fdsMemory = 5 // mem, maps, pagemap, the pin of the process, stat for the fast path
	fdsRegion = fdsMemory + 1
	fdsSpace  = fdsMemory + 8 // memory.maxMapFiles mapped files
	fdsDir    = 1             // maps
)

// account keeps what each user's open handles hold.
type account struct {
	daemonUID uint32

	mu    sync.Mutex
	users map[uint32]*holding
}

type holding struct {
	fds   int
	bytes int64
}

// charge is what one handle holds, charged to its user.
type charge struct {
	a     *account
	uid   uint32
	fds   int
	bytes int64
}

// fdShare is how many descriptors one user's handles may hold: a quarter
// of the daemon's.
func fdShare() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 1 << 30
	}
	return max(64, int(lim.Cur/4))
}

// open charges a new handle of the caller's: fds descriptors and bytes
// (at least minHandleBytes). Past the caller's share it fails with EMFILE
// or ENOMEM and charges nothing.
func (a *account) open(ctx context.Context, fds int, bytes int64) (*charge, error) {
	c := &charge{a: a, uid: callerUID(ctx)}
	if err := c.grow(fds, max(bytes, minHandleBytes)); err != nil {
		return nil, err
	}
	return c, nil
}

// grow charges the handle fds descriptors and bytes more, if that stays
// within its user's share.
func (c *charge) grow(fds int, bytes int64) error {
	a := c.a
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.users[c.uid]
	if h == nil {
		h = &holding{}
	}
	if c.uid != a.daemonUID {
		if fds > 0 && h.fds+fds > fdShare() {
			return fmt.Errorf("user %d holds %d of the daemon's descriptors in open files, its share: %w", c.uid, h.fds, syscall.EMFILE)
		}
		if bytes > 0 && h.bytes+bytes > handleBytesShare {
			return fmt.Errorf("user %d holds %d MiB in open files, its share: %w", c.uid, h.bytes>>20, syscall.ENOMEM)
		}
	}
	if a.users == nil {
		a.users = map[uint32]*holding{}
	}
	h.fds += fds
	h.bytes += bytes
	a.users[c.uid] = h
	c.fds += fds
	c.bytes += bytes
	return nil
}

// release refunds everything the handle was charged; a second release
// does nothing.
func (c *charge) release() {
	if c == nil {
		return
	}
	a := c.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if h := a.users[c.uid]; h != nil {
		h.fds -= c.fds
		h.bytes -= c.bytes
		if h.fds <= 0 && h.bytes <= 0 {
			delete(a.users, c.uid)
		}
	}
	c.fds, c.bytes = 0, 0
}

// held tells what user uid's handles hold, for tests and the daemon's
// statistics.
func (a *account) held(uid uint32) (fds int, bytes int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if h := a.users[uid]; h != nil {
		return h.fds, h.bytes
	}
	return 0, 0
}
