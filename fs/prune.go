package fs

import (
	"log"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"

	"github.com/procmem/procmem/core"
)

// The kernel keeps every entry it looked up until memory runs short, and
// the daemon keeps a node for each: "ls -l" of a process with 60,000
// regions leaves 60,000 nodes, some 45 MB of the daemon's heap, for as
// long as the kernel likes. So the daemon asks the kernel to drop the
// entries of process directories that nobody has looked in for a while
// (FUSE_NOTIFY_PRUNE): the kernel forgets those that nothing holds (an
// open file, a working directory), and the daemon's nodes and readings go
// with them. A name asked for again is simply looked up again.

const (
	// idleAfter is how long a process directory must go unused before
	// its entries are dropped.
	idleAfter = 30 * time.Second
	// pruneEvery is how often idle directories are looked for.
	pruneEvery = time.Second
)

// touch notes that the directory is in use.
func (d *procDir) touch() { d.used.Store(time.Now().UnixNano()) }

// idleSince reports whether the directory has gone unused since t.
func (d *procDir) idleSince(t time.Time) bool { return d.used.Load() < t.UnixNano() }

// dropReadings forgets what callers have read of the process's layout,
// and the core last built.
func (d *procDir) dropReadings() {
	d.mu.Lock()
	d.views = nil
	d.mu.Unlock()
	d.coreMu.Lock()
	d.core = reading[*core.Image]{}
	d.coreMu.Unlock()
}

// Nodes counts the nodes the daemon holds for the kernel: process
// directories and what the kernel looked up in them.
func (fsys *FS) Nodes() int {
	if fsys.root == nil {
		return 0
	}
	n := 0
	for _, dir := range fsys.root.Children() {
		n += 1 + len(dir.Children())
	}
	return n
}

// pruneIdle drops the entries of idle process directories every
// pruneEvery, until done is closed. A kernel that cannot be asked
// (before FUSE protocol 7.45) keeps them, as before, and is named once in
// the log.
func (fsys *FS) pruneIdle(done <-chan struct{}) {
	tick := time.NewTicker(pruneEvery)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		if errno := fsys.pruneOnce(time.Now().Add(-idleAfter)); errno == syscall.ENOSYS {
			log.Printf("procmem: this kernel cannot be asked to drop entries (FUSE_NOTIFY_PRUNE); the daemon's memory grows with what it caches")
			return
		}
	}
}

// pruneOnce asks the kernel to drop the entries of the process
// directories unused since then, and the directories themselves.
func (fsys *FS) pruneOnce(since time.Time) syscall.Errno {
	var idle []*gofs.Inode
	for _, dir := range fsys.root.Children() {
		d, ok := dir.Operations().(*procDir)
		if !ok || !d.idleSince(since) {
			continue
		}
		if entries := dir.Children(); len(entries) > 0 {
			nodes := make([]*gofs.Inode, 0, len(entries))
			for _, n := range entries {
				nodes = append(nodes, n)
			}
			if errno := dir.NotifyPrune(nodes); errno != 0 {
				return errno
			}
		}
		d.dropReadings()
		idle = append(idle, dir)
	}
	return fsys.root.NotifyPrune(idle)
}
