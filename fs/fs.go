// Package fs serves process memory as a FUSE filesystem: one directory per
// process, one file per memory region of /proc/PID/maps, reads and writes
// on those files becoming offset I/O on /proc/PID/mem.
//
// The tree is built on demand from /proc on every lookup and readdir; no
// state about processes is kept beyond the inodes the kernel holds. Inode
// numbers derive from what identifies an object (pid, process start time,
// region bounds), so a lookup of the same object yields the same inode and
// a reused PID never aliases an old one.
package fs

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"log"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/procmem/procmem/procfs"
	"golang.org/x/sys/unix"
)

// Config holds the mount flags.
type Config struct {
	ReadOnly   bool // every write path fails with EROFS
	ForceWrite bool // allow writes to regions without 'w'
	AllowOther bool // let other users in, under access control
	Debug      bool // log every FUSE request
	// Xattrs serves every region's smaps fields as extended attributes
	// (user.procmem.*). Off by default: with them, ls -l asks for
	// attributes of every file, two more round trips each; without, the
	// kernel is told at its first question and never asks again.
	Xattrs bool
	// NoAsyncDIO keeps the kernel from sending the requests of one
	// asynchronous direct read or write (io_uring, libaio with O_DIRECT)
	// at once: it waits for each before the next, as for any other read.
	NoAsyncDIO bool
	// Timeout bounds how long a request waits for a process (callBound);
	// DefaultTimeout if zero.
	Timeout time.Duration
	// Cores are core files to serve instead of live processes: each is a
	// process directory of captured memory, read-only.
	Cores []string
	// CoreOptions are how the cores are opened (where compressed ones are
	// decompressed to, and the like).
	CoreOptions CaptureOptions
}

// FS is one mounted filesystem.
type FS struct {
	cfg      Config
	bootTime time.Time // to turn process start ticks into times
	hidePIDs bool      // /proc is mounted with hidepid: each caller sees what it may
	access   *accessControl
	account  *account   // what each user's open handles hold
	bound    *callBound // every call into a process
	// blockSize is st_blksize of every file: the largest request the
	// kernel allows, so that cp, tar and stdio read in such blocks.
	blockSize uint32
	root      *rootNode
	dev       atomic.Pointer[string] // the mount's device, as maps shows it
	captures  map[string]*procDir    // the captured processes served, by name; nil for live ones
}

// ownDevice is the mount's device, "" until it is known: mappings of the
// mount's own files are never read through their process (Reader.Avoid).
func (fsys *FS) ownDevice() string {
	if d := fsys.dev.Load(); d != nil {
		return *d
	}
	return ""
}

// maxRequest bounds the size of a read or write request procmem asks the
// kernel for. The kernel allows max_pages_limit pages
// (/proc/sys/fs/fuse/max_pages_limit: 256, 1 MiB, unless raised).
const maxRequest = 16 << 20

// requestSize is the largest request this kernel allows procmem, which
// go-fuse also asks for (it reads the same limit).
func requestSize() int {
	pages := 256
	if b, err := os.ReadFile("/proc/sys/fs/fuse/max_pages_limit"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 0 {
			pages = n
		}
	}
	return min(maxRequest, pages*os.Getpagesize())
}

const (
	// How long the kernel may cache names and attributes that cannot
	// change for the object they name (a region's bounds are its name).
	stableTimeout = time.Second
	// regionTimeout is how long the kernel may answer for a region's name
	// and attributes: longer than it takes to list 60,000 regions, so the
	// stat that ls -l and du make of each after the whole listing costs no
	// round trip. What procmem sees change in a fresh reading of maps it
	// tells the kernel at once (procDir.observe).
	regionTimeout = 10 * time.Second
	// A process directory must disappear within a second of the exit.
	procTimeout = 500 * time.Millisecond
	// clockTicks is USER_HZ, the unit of start times in /proc/PID/stat:
	// 100 on every architecture Linux supports.
	clockTicks = 100
)

// New prepares a filesystem with the given flags.
func New(cfg Config) (*FS, error) {
	access, err := newAccessControl()
	if err != nil {
		return nil, err
	}
	hides, err := procfs.HidesPIDs()
	if err != nil {
		return nil, fmt.Errorf("reading how /proc is mounted: %w", err)
	}
	acct := &account{daemonUID: access.daemon.uid[1]}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	fsys := &FS{cfg: cfg, bootTime: bootTime(), hidePIDs: hides, access: access, account: acct,
		bound: newCallBound(cfg.Timeout), blockSize: uint32(requestSize())}
	if len(cfg.Cores) > 0 {
		caps, err := openCaptures(cfg.Cores, cfg.CoreOptions)
		if err != nil {
			return nil, err
		}
		fsys.captures = map[string]*procDir{}
		for _, c := range caps {
			fsys.captures[c.name] = fsys.newCaptureDir(c)
		}
		fsys.cfg.ReadOnly = true
	}
	return fsys, nil
}

// Close releases what the filesystem holds open: the cores it serves.
func (fsys *FS) Close() {
	for _, d := range fsys.captures {
		d.capture.c.Close()
	}
}

// Mount mounts the filesystem at dir and serves it in the background.
func (fsys *FS) Mount(dir string) (*fuse.Server, error) {
	zero := time.Duration(0)
	opts := &gofs.Options{
		// Timeouts are set per entry: 0 unless the object is stable.
		EntryTimeout:    &zero,
		AttrTimeout:     &zero,
		NegativeTimeout: &zero,
		// Permission bits come from the region's perms; "---p" is 0000
		// and must stay so.
		NullPermissions: true,
		RootStableAttr:  &gofs.StableAttr{Ino: rootIno},
		MountOptions: fuse.MountOptions{
			FsName:            "procmem",
			Name:              "procmem",
			AllowOther:        fsys.cfg.AllowOther,
			Options:           []string{"default_permissions"},
			MaxWrite:          maxRequest, // go-fuse lowers it to the kernel's limit
			DisableSplice:     true,
			DisableXAttrs:     !fsys.cfg.Xattrs,
			Debug:             fsys.cfg.Debug,
			DirectMount:       true,
			DirectMountStrict: os.Geteuid() == 0,
			// Every listing is a READDIRPLUS, its lookups answered from the
			// listing's own reading: the kernel then has every name and
			// attribute, and the stat of each file that ls -l and du make
			// after reading the whole directory costs no round trip (with
			// READDIRPLUS only for the first batch, du -s of 60,000
			// regions looked up 60,000 names one by one). Shared mappings
			// of the direct-I/O files (GHex, scanners), which the kernel
			// otherwise refuses with ENODEV.
			ExtraCapabilities: fuse.CAP_DIRECT_IO_ALLOW_MMAP,
		},
	}
	if !fsys.cfg.NoAsyncDIO {
		// An asynchronous direct read (fio, databases, io_uring) is cut
		// into requests the kernel sends at once, so several copies of
		// one reader are in flight: 21-30% more throughput with
		// iodepth 8 (docs/performance.md). Synchronous reads (dd, cp)
		// do not change.
		opts.MountOptions.ExtraCapabilities |= fuse.CAP_ASYNC_DIO
	}
	if fsys.cfg.ReadOnly {
		opts.MountOptions.Options = append(opts.MountOptions.Options, "ro")
	}
	fsys.root = newRoot(fsys)
	server, err := gofs.Mount(dir, fsys.root, opts)
	if err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err == nil {
		dev := fmt.Sprintf("%02x:%02x", unix.Major(st.Dev), unix.Minor(st.Dev))
		fsys.dev.Store(&dev)
	}
	if server.KernelSettings().Flags64()&fuse.CAP_DIRECT_IO_ALLOW_MMAP == 0 {
		log.Printf("procmem: this kernel cannot map region files shared (FUSE_DIRECT_IO_ALLOW_MMAP, Linux 6.6): MAP_SHARED fails with ENODEV, MAP_PRIVATE works")
	}
	done := make(chan struct{})
	go func() { server.Wait(); close(done) }()
	go fsys.pruneIdle(done)
	return server, nil
}

// bootTime is when the system booted, or the epoch if /proc cannot say.
func bootTime() time.Time {
	t, err := procfs.BootTime()
	if err != nil {
		return time.Unix(0, 0)
	}
	return t
}

// startTime converts a start time in clock ticks after boot to wall time.
func (fsys *FS) startTime(ticks uint64) time.Time {
	return fsys.bootTime.Add(time.Duration(ticks) * time.Second / clockTicks)
}

// Inode kinds, mixed into inode numbers so that different objects of one
// process never share a number.
const (
	kindProc uint64 = iota + 1
	kindRegion
	kindInfo
	kindStatm
	kindLink
	kindSelf
	kindMem
	kindCore
)

// rootIno is the root directory's inode number, as in /proc (and FUSE's
// root node id); inode never gives it to anything else.
const rootIno = 1

// inode derives an inode number from what identifies an object.
func inode(parts ...uint64) uint64 {
	h := fnv.New64a()
	var b [8]byte
	for _, p := range parts {
		binary.LittleEndian.PutUint64(b[:], p)
		h.Write(b[:])
	}
	ino := h.Sum64()
	if ino <= 1 || ino == ^uint64(0) { // reserved by go-fuse and the kernel
		ino = 2
	}
	return ino
}

// inodeName derives an inode number from a name within a process.
func inodeName(kind uint64, pid int, start uint64, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return inode(kind, uint64(pid), start, h.Sum64())
}

func setTimes(a *fuse.Attr, t time.Time) {
	a.SetTimes(&t, &t, &t)
}
