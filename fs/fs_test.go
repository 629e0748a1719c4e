package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

func TestToErrno(t *testing.T) {
	for _, c := range []struct {
		err  error
		want syscall.Errno
	}{
		{nil, 0},
		{syscall.EIO, syscall.EIO},
		{fmt.Errorf("read at 0x1000: %w", syscall.EIO), syscall.EIO},
		{&os.PathError{Op: "open", Path: "/proc/1/mem", Err: syscall.EACCES}, syscall.EACCES},
		{fmt.Errorf("x: %w", syscall.ESRCH), syscall.ENOENT},
		{io.EOF, syscall.ENOENT},
		{fmt.Errorf("0x1: %w", memory.ErrAddressRange), syscall.EIO},
		{memory.ErrGone, syscall.ENOENT},
		{&os.PathError{Op: "open", Path: "/proc/1", Err: syscall.EMFILE}, syscall.EMFILE},
		{fmt.Errorf("process 1: %w", syscall.ENFILE), syscall.ENFILE},
		{errors.New("something else"), syscall.EIO},
	} {
		if got := toErrno(c.err); got != c.want {
			t.Errorf("toErrno(%v) = %v, want %v", c.err, got, c.want)
		}
	}
	if got := readdirErrno(memory.ErrGone); got != syscall.ESRCH {
		t.Errorf("readdirErrno(gone) = %v, want ESRCH", got)
	}
	if got := writeErrno(io.EOF); got != syscall.ESRCH {
		t.Errorf("writeErrno(EOF) = %v, want ESRCH", got)
	}
}

func TestLinks(t *testing.T) {
	regions := []procfs.Region{
		{Start: 0x1000, End: 0x2000, Path: "[heap]"},
		{Start: 0x2000, End: 0x3000, Path: "[anon:buf]"},
		{Start: 0x3000, End: 0x4000, Path: "[anon:buf]"},
		{Start: 0x4000, End: 0x5000, Path: "[anon:a/b]"},
		{Start: 0x5000, End: 0x6000, Path: "/usr/lib/libc.so.6"},
		{Start: 0x6000, End: 0x7000, Path: "[stack]"},
		{Start: 0x7000, End: 0x8000, Path: "[info]"},
	}
	got := links(regions)
	if len(got) != 2 || got["heap"].Start != 0x1000 || got["stack"].Start != 0x6000 {
		t.Errorf("links = %v; want heap and stack only (anon:buf is not unique, a/b and info cannot be names)", got)
	}
}

func TestSearchRegion(t *testing.T) {
	regions := []procfs.Region{{Start: 0x1000, End: 0x2000}, {Start: 0x3000, End: 0x5000}, {Start: 0x9000, End: 0xa000}}
	for _, start := range []uint64{0x1000, 0x3000, 0x9000} {
		if r, ok := searchRegion(regions, start); !ok || r.Start != start {
			t.Errorf("searchRegion(%x) = %v, %v", start, r, ok)
		}
	}
	for _, start := range []uint64{0, 0x2000, 0x4000, 0xa000} {
		if _, ok := searchRegion(regions, start); ok {
			t.Errorf("searchRegion(%x) found a region", start)
		}
	}
}

func TestSpan(t *testing.T) {
	h := &regionHandle{start: 0x1000, end: 0x3000}
	for _, c := range []struct {
		off        int64
		n          int
		addr       uint64
		wantLength int
	}{
		{0, 16, 0x1000, 16}, {0x1ff0, 64, 0x2ff0, 16}, {0x2000, 1, 0, 0}, {-1, 1, 0, 0},
		{1<<63 - 1, 1 << 30, 0, 0}, {0, 1 << 30, 0x1000, 0x2000},
	} {
		addr, n := h.span(c.off, c.n)
		if addr != c.addr || n != c.wantLength {
			t.Errorf("span(%x, %d) = %x, %d; want %x, %d", c.off, c.n, addr, n, c.addr, c.wantLength)
		}
	}
}

func TestInodesDiffer(t *testing.T) {
	seen := map[uint64]string{}
	add := func(ino uint64, what string) {
		if ino <= 1 || ino == ^uint64(0) {
			t.Errorf("%s: reserved inode %d", what, ino)
		}
		if prev, ok := seen[ino]; ok {
			t.Errorf("%s and %s share inode %d", what, prev, ino)
		}
		seen[ino] = what
	}
	for pid := 1; pid < 50; pid++ {
		for start := uint64(1); start < 4; start++ {
			add(inode(kindProc, uint64(pid), start), fmt.Sprint("proc ", pid, start))
			add(inode(kindInfo, uint64(pid), start), fmt.Sprint("info ", pid, start))
			add(inode(kindRegion, uint64(pid), start, 0x1000, 0x2000), fmt.Sprint("region ", pid, start))
			add(inodeName(kindLink, pid, start, "heap"), fmt.Sprint("heap ", pid, start))
		}
	}
}

// TestRunAs checks that a switch to another caller's credentials (ids,
// groups, effective capabilities) holds on the locked thread only, that
// the kernel then decides as for that caller, that it is undone
// afterwards, and that all of it holds under concurrency.
func TestRunAs(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs as root: this test must not skip")
		}
		t.Skip("needs root to switch credentials")
	}
	a, err := newAccessControl()
	if err != nil {
		t.Fatal(err)
	}
	if !a.canSwitch {
		t.Fatal("a root daemon cannot switch credentials")
	}
	// A root process other than this one, whose memory only a caller with
	// CAP_SYS_PTRACE or all of its capabilities may open.
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sleeper.Process.Kill(); sleeper.Wait() }()
	rootMem := fmt.Sprintf("/proc/%d/mem", sleeper.Process.Pid)

	nobody := func(uid uint32) credentials {
		c := a.daemon
		c.uid = [4]uint32{uid, uid, uid, uid}
		c.gid = [4]uint32{uid, uid, uid, uid}
		c.groups = "5,7"
		c.capEff = 0
		return c
	}
	rootWithout := a.daemon
	rootWithout.capEff = 0
	rootPtrace := rootWithout
	rootPtrace.capEff = 1 << 19 // CAP_SYS_PTRACE

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, mayOpen := nobody(uint32(60000+i%4)), false
			switch i % 4 {
			case 1:
				c, mayOpen = rootWithout, false
			case 2:
				c, mayOpen = rootPtrace, true
			}
			err := runAs(c, a.daemon, func() error {
				runtime.Gosched()
				self, err := credentialsOf(unix.Gettid())
				if err != nil {
					return err
				}
				if self.uid != c.uid || self.gid != c.gid || self.groups != c.groups || self.capEff != c.capEff {
					return fmt.Errorf("thread has %+v inside, want %+v", self, c)
				}
				f, err := os.Open(rootMem)
				if err == nil {
					f.Close()
				}
				if (err == nil) != mayOpen {
					return fmt.Errorf("%+v opened a root process's memory: %v, want %v", c, err == nil, mayOpen)
				}
				return nil
			})
			if err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	after, err := credentialsOf(unix.Getpid())
	if err != nil || after != a.daemon {
		t.Errorf("credentials leaked to the process: %+v, %v; want %+v", after, err, a.daemon)
	}
	if f, err := os.Open(rootMem); err != nil {
		t.Errorf("the daemon can no longer open a root process's memory: %v", err)
	} else {
		f.Close()
	}
	// More than the daemon holds cannot be emulated.
	more := a.daemon
	more.capEff |= 1 << 63
	if err := runAs(more, a.daemon, func() error { return nil }); err == nil {
		t.Error("emulated capabilities the daemon does not hold")
	}
}

// TestListingSeek: a listing resumes where the kernel asks (the Off of the
// last entry it kept), refuses offsets it never gave, and rewound, reads
// maps again.
func TestListingSeek(t *testing.T) {
	fsys, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	d, errno := fsys.newProcDir(os.Getpid())
	if errno != 0 {
		t.Fatal(errno)
	}
	d.fsys = fsys
	ctx := fuse.NewContext(context.Background(), &fuse.Caller{Owner: fuse.Owner{Uid: uint32(os.Geteuid()), Gid: uint32(os.Getegid())}, Pid: uint32(os.Getpid())})
	l, err := d.openListing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Releasedir(ctx, 0)
	var all []fuse.DirEntry
	for {
		e, errno := l.Readdirent(ctx)
		if errno != 0 {
			t.Fatal(errno)
		}
		if e == nil {
			break
		}
		if e.Off != uint64(len(all)+1) {
			t.Errorf("entry %d (%s) has Off %d", len(all), e.Name, e.Off)
		}
		all = append(all, *e)
	}
	if len(all) < 7 || all[0].Name != "." || all[1].Name != ".." || all[2].Name != "info" || all[3].Name != "statm" {
		t.Fatalf("listing: %v", all)
	}
	snap := l.snap
	if errno := l.Seekdir(ctx, 3); errno != 0 {
		t.Fatal(errno)
	}
	if e, _ := l.Readdirent(ctx); e == nil || e.Name != all[3].Name {
		t.Errorf("after Seekdir(3): %v, want %s", e, all[3].Name)
	}
	if errno := l.Seekdir(ctx, uint64(len(all)+1)); errno != syscall.EINVAL {
		t.Errorf("Seekdir past the end: %v", errno)
	}
	if errno := l.Seekdir(ctx, 0); errno != 0 {
		t.Fatal(errno)
	}
	if e, _ := l.Readdirent(ctx); e == nil || e.Name != "." || l.snap == snap {
		t.Errorf("after rewinding: %v, same snapshot %v", e, l.snap == snap)
	}
}

// BenchmarkCredentials is what every request of a caller costs before it
// is decided: learning its identity, and for a caller other than the
// daemon, reading its whole credentials and switching to them and back.
func BenchmarkCredentials(b *testing.B) {
	a, err := newAccessControl()
	if err != nil {
		b.Fatal(err)
	}
	ctx := fuse.NewContext(context.Background(), &fuse.Caller{Owner: fuse.Owner{Uid: uint32(os.Geteuid()), Gid: uint32(os.Getegid())}, Pid: uint32(os.Getpid())})
	b.Run("identity", func(b *testing.B) {
		for b.Loop() {
			if _, err := a.caller(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("whole", func(b *testing.B) {
		for b.Loop() {
			if _, err := credentialsOf(os.Getpid()); err != nil {
				b.Fatal(err)
			}
		}
	})
	if !a.canSwitch {
		return
	}
	other := a.daemon
	other.uid = [4]uint32{65534, 65534, 65534, 65534}
	other.capEff = 0
	b.Run("switch", func(b *testing.B) {
		for b.Loop() {
			if err := runAs(other, a.daemon, func() error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
	})
}
