//go:build linux

package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMountHeapWithXxdAndGrep(t *testing.T) {
	requireTool(t, "xxd", "grep")
	tg := startTarget(t, "", 1<<20)
	m := startMount(t)
	heap := m.path(itoa(tg.pid), "heap")
	heapRegion := tg.regionByPath("[heap]")

	link, err := os.Readlink(heap)
	if err != nil || link != heapRegion.Name() {
		t.Fatalf("heap -> %q, %v; want %s", link, err, heapRegion.Name())
	}
	off := tg.addr["marker"] - heapRegion.Start
	r := run(t, "", "xxd", "-s", strconv.FormatUint(off, 10), "-l", "16", heap)
	mustSucceed(t, r, "xxd")
	if !strings.Contains(r.stdout, tg.marker) {
		t.Errorf("xxd of heap at the marker:\n%s\nwant %q in it", r.stdout, tg.marker)
	}
	// The whole heap through xxd, as a user would first look at it.
	r = run(t, "", "xxd", heap)
	mustSucceed(t, r, "xxd heap")
	if lines := strings.Count(r.stdout, "\n"); uint64(lines) != heapRegion.Size()/16 {
		t.Errorf("xxd printed %d lines for a heap of %d bytes", lines, heapRegion.Size())
	}
	r = run(t, "", "grep", "-c", "-a", tg.marker, heap)
	mustSucceed(t, r, "grep")
	if strings.TrimSpace(r.stdout) != "1" {
		t.Errorf("grep -c -a marker heap = %q, want 1", r.stdout)
	}
}

func TestMountCopyRegion(t *testing.T) {
	requireTool(t, "dd", "cp", "cmp")
	tg := startTarget(t, "", defaultPatternSize)
	m := startMount(t)
	pat := tg.region(tg.addr["pattern"])
	file := m.path(itoa(tg.pid), pat.Name())
	if pat.Size() != uint64(len(tg.pattern)) {
		t.Fatalf("pattern region is %d bytes, want %d", pat.Size(), len(tg.pattern))
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != int64(pat.Size()) || st.Mode().Perm() != 0o600 {
		t.Errorf("stat: size %d mode %v, want %d and -rw-------", st.Size(), st.Mode(), pat.Size())
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Blksize != 1<<20 {
		t.Errorf("st_blksize = %d, want 1 MiB", sys.Blksize)
	}

	dir := t.TempDir()
	want := filepath.Join(dir, "want")
	if err := os.WriteFile(want, tg.pattern, 0o644); err != nil {
		t.Fatal(err)
	}
	direct := filepath.Join(dir, "direct")
	if err := os.WriteFile(direct, directRead(t, tg.pid, pat.Start, int(pat.Size())), 0o644); err != nil {
		t.Fatal(err)
	}
	ddOut, cpOut := filepath.Join(dir, "dd"), filepath.Join(dir, "cp")
	mustSucceed(t, run(t, "", "dd", "if="+file, "of="+ddOut, "bs=1M"), "dd")
	mustSucceed(t, run(t, "", "cp", file, cpOut), "cp")
	for _, got := range []string{ddOut, cpOut} {
		mustSucceed(t, run(t, "", "cmp", want, got), "cmp with the expected pattern")
		mustSucceed(t, run(t, "", "cmp", direct, got), "cmp with a direct read of /proc/PID/mem")
	}
}

func TestMountWriteInPlace(t *testing.T) {
	requireTool(t, "dd", "cp")
	tg := startTarget(t, "", 1<<20)
	m := startMount(t)
	pat := tg.region(tg.addr["pattern"])
	file := m.path(itoa(tg.pid), pat.Name())
	dir := t.TempDir()

	// dd conv=notrunc: 4 KiB of 'W' at offset 8 KiB.
	src := filepath.Join(dir, "w")
	os.WriteFile(src, bytes.Repeat([]byte("W"), 4096), 0o644)
	mustSucceed(t, run(t, "", "dd", "if="+src, "of="+file, "bs=4096", "seek=2", "conv=notrunc"), "dd conv=notrunc")
	if got := tg.peek(pat.Start+8192, 4096); !bytes.Equal(got, bytes.Repeat([]byte("W"), 4096)) {
		t.Errorf("target does not see dd's bytes")
	}
	if got := tg.peek(pat.Start+12288, 4096); !bytes.Equal(got, tg.pattern[12288:16384]) {
		t.Errorf("memory after the written range changed")
	}

	// cp opens with O_TRUNC: memory must not be zeroed, the size stays.
	os.WriteFile(src, []byte("copied by cp"), 0o644)
	mustSucceed(t, run(t, "", "cp", src, file), "cp onto a region")
	if got := tg.peek(pat.Start, 12); string(got) != "copied by cp" {
		t.Errorf("target sees %q after cp, want %q", got, "copied by cp")
	}
	if got := tg.peek(pat.Start+12, 100); !bytes.Equal(got, tg.pattern[12:112]) {
		t.Errorf("cp's O_TRUNC changed memory after the copied bytes")
	}
	if st, _ := os.Stat(file); st.Size() != int64(pat.Size()) {
		t.Errorf("size after cp: %d, want %d", st.Size(), pat.Size())
	}
	mustSucceed(t, run(t, "", "truncate", "-s", "0", file), "truncate")
	if got := tg.peek(pat.Start, 12); string(got) != "copied by cp" {
		t.Errorf("truncate changed memory: %q", got)
	}

	// Writes at or past the end fail with ENOSPC; across it, shortened.
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("x"), int64(pat.Size())); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("write at the end: %v, want ENOSPC", err)
	}
	r := run(t, "", "dd", "if="+src, "of="+file, "bs=1", "count=1", fmt.Sprintf("seek=%d", pat.Size()+4096), "conv=notrunc")
	if r.code == 0 || !strings.Contains(r.stderr, "No space left on device") {
		t.Errorf("dd past the end: exit %d, %s", r.code, r.stderr)
	}
	m.alive()
}

// TestMountWriteStaysInRegion writes across the end of the middle page of
// the fence (r-- | rw- | r--): nothing may land in the neighbours.
func TestMountWriteStaysInRegion(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	m := startMount(t, "--force-write")
	page := tg.addr["page"]
	mid := tg.region(tg.addr["fence"] + page)
	if mid.Size() != page || !mid.Perms.Write {
		t.Fatalf("fence middle region %+v", mid)
	}
	f, err := os.OpenFile(m.path(itoa(tg.pid), mid.Name()), os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := syscall.Pwrite(int(f.Fd()), bytes.Repeat([]byte{0xEE}, 64), int64(page)-16)
	if n != 16 || err != nil {
		t.Errorf("write across the end: %d, %v; want 16 bytes", n, err)
	}
	for _, off := range []int64{int64(page), int64(page) + 1, 1 << 62, 1<<63 - 2} {
		if _, err := syscall.Pwrite(int(f.Fd()), []byte{0xEE}, off); err != syscall.ENOSPC {
			t.Errorf("write at offset %d: %v, want ENOSPC", off, err)
		}
	}
	if got := tg.peek(tg.addr["fence"]+page, int(page)); !bytes.Equal(got[:page-16], bytes.Repeat([]byte{0x11}, int(page)-16)) || !bytes.Equal(got[page-16:], bytes.Repeat([]byte{0xEE}, 16)) {
		t.Errorf("middle page content wrong")
	}
	if got := tg.peek(tg.addr["fence"], int(page)); !bytes.Equal(got, bytes.Repeat([]byte{0xAA}, int(page))) {
		t.Errorf("page before the region changed")
	}
	if got := tg.peek(tg.addr["fence"]+2*page, int(page)); !bytes.Equal(got, bytes.Repeat([]byte{0xBB}, int(page))) {
		t.Errorf("page after the region changed")
	}
}

func TestMountReadOnlyRegion(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	ro := tg.region(tg.addr["rodata"])
	if ro.Perms.String() != "r--p" {
		t.Fatalf("rodata is %s", ro.Perms)
	}
	write := func(m *mount) error {
		f, err := os.OpenFile(m.path(itoa(tg.pid), ro.Name()), os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.WriteAt([]byte("patched"), 0)
		return err
	}
	m := startMount(t)
	if st, _ := os.Stat(m.path(itoa(tg.pid), ro.Name())); st.Mode().Perm() != 0o400 {
		t.Errorf("r--p region has mode %v, want -r--------", st.Mode())
	}
	if err := write(m); !errors.Is(err, syscall.EACCES) {
		t.Errorf("write to r--p without --force-write: %v, want EACCES", err)
	}
	if got := tg.peek(ro.Start, 14); string(got) != "read-only page" {
		t.Errorf("memory changed: %q", got)
	}
	m.stop()

	m = startMount(t, "--force-write")
	if err := write(m); err != nil {
		t.Errorf("write to r--p with --force-write: %v", err)
	}
	if got := tg.peek(ro.Start, 14); string(got) != "patchedly page" {
		t.Errorf("target sees %q, want the patch", got)
	}
}

func TestMountReadOnlyFlag(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	m := startMount(t, "--read-only")
	file := m.path(itoa(tg.pid), tg.region(tg.addr["pattern"]).Name())
	if _, err := os.OpenFile(file, os.O_WRONLY, 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("open for writing: %v, want EROFS", err)
	}
	if err := os.Truncate(file, 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("truncate: %v, want EROFS", err)
	}
	if err := syscall.Setxattr(file, "user.x", []byte("1"), 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("setxattr: %v, want EROFS", err)
	}
	if err := os.Chtimes(file, time.Now(), time.Now()); !errors.Is(err, syscall.EROFS) {
		t.Errorf("utimes: %v, want EROFS", err)
	}
	if _, err := os.ReadFile(m.path(itoa(tg.pid), "info")); err != nil {
		t.Errorf("reading still works: %v", err)
	}
}

func TestMountSelf(t *testing.T) {
	m := startMount(t)
	// The test process reads it from some thread; self is the process.
	if link, err := os.Readlink(m.path("self")); err != nil || link != itoa(os.Getpid()) {
		t.Errorf("self -> %q, %v; want %d", link, err, os.Getpid())
	}
	r := run(t, "", "sh", "-c", `echo $$; exec readlink "$1"`, "sh", m.path("self"))
	mustSucceed(t, r, "readlink")
	lines := strings.Fields(r.stdout)
	if len(lines) != 2 || lines[0] != lines[1] {
		t.Errorf("self for a shell that execs readlink: %q, want its own pid twice", r.stdout)
	}
	if _, err := os.Stat(m.path("self", "info")); err != nil {
		t.Errorf("self/info: %v", err)
	}
}

func TestMountProcessesComeAndGo(t *testing.T) {
	m := startMount(t)
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := itoa(cmd.Process.Pid)
	if !contains(m.readdir(""), pid) {
		t.Fatalf("ls does not show new process %s", pid)
	}
	st1, err := os.Stat(m.path(pid))
	if err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(m.path(pid))
	if st1.Sys().(*syscall.Stat_t).Ino != st2.Sys().(*syscall.Stat_t).Ino {
		t.Errorf("inode of a process directory changed between two stats")
	}
	if contains(m.readdir(""), itoa(threadOf(t, os.Getpid()))) {
		t.Errorf("threads are listed")
	}
	cmd.Process.Kill()
	cmd.Wait()
	if contains(m.readdir(""), pid) {
		t.Errorf("ls still shows exited process %s", pid)
	}
	waitWithin(t, time.Second, "the directory of exited process "+pid+" to go", func() (string, bool) {
		_, err := os.Stat(m.path(pid))
		return fmt.Sprint(err), errors.Is(err, os.ErrNotExist)
	})
}

// threadOf returns a thread id of pid that is not pid itself.
func threadOf(t *testing.T, pid int) int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if tid, _ := strconv.Atoi(e.Name()); tid != pid {
			return tid
		}
	}
	t.Fatal("no second thread")
	return 0
}

func (m *mount) readdir(elem ...string) []string {
	m.t.Helper()
	entries, err := os.ReadDir(m.path(elem...))
	if err != nil {
		m.t.Fatal(err)
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestMountInfoAndStatm(t *testing.T) {
	requireTool(t, "cat", "wc", "grep", "cp")
	tg := startTarget(t, "", 1<<20)
	m := startMount(t)
	dir := m.path(itoa(tg.pid))
	info := run(t, "", "cat", filepath.Join(dir, "info"))
	mustSucceed(t, info, "cat info")
	want := procmem(t, "-p", itoa(tg.pid), "info", "--no-default-filter")
	if info.stdout != want.stdout {
		t.Errorf("info differs from procmem info (-want +got):\n-%s\n+%s", want.stdout, info.stdout)
	}
	wc := run(t, "", "wc", "-c", filepath.Join(dir, "info"))
	if n, _ := strconv.Atoi(strings.Fields(wc.stdout + " x")[0]); n != len(info.stdout) {
		t.Errorf("wc -c info = %q, want %d", wc.stdout, len(info.stdout))
	}
	g := run(t, "", "grep", "-c", `\[heap\]`, filepath.Join(dir, "info"))
	if strings.TrimSpace(g.stdout) != "1" {
		t.Errorf("grep [heap] info: %q", g.stdout)
	}
	cpOut := filepath.Join(t.TempDir(), "statm")
	mustSucceed(t, run(t, "", "cp", filepath.Join(dir, "statm"), cpOut), "cp statm")
	b, _ := os.ReadFile(cpOut)
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 5 || !strings.HasSuffix(lines[0], "  total program size") {
		t.Errorf("statm copy:\n%s", b)
	}
}

func TestMountRegionsFollowMaps(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	m := startMount(t)
	before := tg.regionByPath("[heap]")
	// An open listing shows maps as they were when it was read; rewound,
	// it shows them as they are.
	dir, err := os.Open(m.path(itoa(tg.pid)))
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if names, err := dir.Readdirnames(-1); err != nil || !contains(names, before.Name()) {
		t.Fatalf("listing lacks the heap %s: %v", before.Name(), err)
	}
	if link, _ := os.Readlink(m.path(itoa(tg.pid), "heap")); link != before.Name() {
		t.Fatalf("heap -> %s, want %s", link, before.Name())
	}
	tg.ask("grow %x", 1<<20)
	after := tg.regionByPath("[heap]")
	if after.End <= before.End {
		t.Fatalf("heap did not grow: %s -> %s", before.Name(), after.Name())
	}
	link, err := os.Readlink(m.path(itoa(tg.pid), "heap"))
	if err != nil || link != after.Name() {
		t.Errorf("after growing, heap -> %q, %v; want %s", link, err, after.Name())
	}
	st, err := os.Stat(m.path(itoa(tg.pid), "heap"))
	if err != nil || st.Size() != int64(after.Size()) {
		t.Errorf("grown heap: %v, %v; want size %d", st, err, after.Size())
	}
	// The kernel may keep the old name cached for its entry timeout (1s).
	waitWithin(t, 1500*time.Millisecond, "the old heap name to go", func() (string, bool) {
		_, err := os.Stat(m.path(itoa(tg.pid), before.Name()))
		return fmt.Sprint(err), errors.Is(err, os.ErrNotExist)
	})
	if contains(m.readdir(itoa(tg.pid)), before.Name()) {
		t.Errorf("old heap name still listed")
	}
	if _, err := dir.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if names, err := dir.Readdirnames(-1); err != nil || contains(names, before.Name()) || !contains(names, after.Name()) {
		t.Errorf("rewound listing: has old heap %v, new heap %v, %v", contains(names, before.Name()), contains(names, after.Name()), err)
	}
}

func TestMountHandleBoundToProcess(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	m := startMount(t)
	f := m.openPattern(tg, os.O_RDONLY)
	defer f.Close()
	b := make([]byte, 16)
	if _, err := f.ReadAt(b, 0); err != nil || !bytes.Equal(b, tg.pattern[:16]) {
		t.Fatalf("read: %v %x", err, b)
	}
	tg.kill()
	if n, err := f.ReadAt(b, 0); n != 0 || err == nil {
		t.Errorf("read after the process exited: %d bytes, %v; want EOF or an error", n, err)
	}
	m.alive()
}

// TestMountUnmappedUnderOpenFile: a page the process unmaps while its
// region file is open reads as /proc/PID/mem reads it: EIO where a read
// starts, a short read where one runs into it; never zeros.
func TestMountUnmappedUnderOpenFile(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	m := startMount(t)
	f := m.openPattern(tg, os.O_RDONLY)
	defer f.Close()
	page := tg.addr["page"]
	pat := tg.region(tg.addr["pattern"])
	gap := pat.Start + 4*page
	if got := tg.ask("unmap %x %x", gap, page); got != "ok" {
		t.Fatalf("unmap: %q", got)
	}
	direct := procMem(t, tg.pid, false)
	b := make([]byte, page)
	_, directErr := direct.ReadAt(b, int64(gap))
	_, viaErr := f.ReadAt(b, int64(4*page))
	if !errors.Is(directErr, syscall.EIO) || !errors.Is(viaErr, syscall.EIO) {
		t.Errorf("a read of the unmapped page: through the mount %v, /proc/PID/mem %v; want EIO", viaErr, directErr)
	}
	big := make([]byte, 8*page)
	n, _ := syscall.Pread(int(f.Fd()), big, int64(2*page))
	if uint64(n) != 2*page || !bytes.Equal(big[:n], tg.pattern[2*page:4*page]) {
		t.Errorf("a read running into the unmapped page: %d bytes, want the %d before it", n, 2*page)
	}
	m.alive()
}

func TestMountRefusesChanges(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	m := startMount(t)
	dir := m.path(itoa(tg.pid))
	checks := []struct {
		what string
		err  error
	}{
		{"create", func() error { _, err := os.Create(filepath.Join(dir, "new")); return err }()},
		{"mkdir", os.Mkdir(filepath.Join(dir, "d"), 0o755)},
		{"unlink", os.Remove(filepath.Join(dir, "info"))},
		{"rename", os.Rename(filepath.Join(dir, "info"), filepath.Join(dir, "x"))},
		{"symlink", os.Symlink("info", filepath.Join(dir, "l"))},
		{"mkdir in root", os.Mkdir(m.path("d"), 0o755)},
	}
	for _, c := range checks {
		if !errors.Is(c.err, syscall.EPERM) {
			t.Errorf("%s: %v, want EPERM", c.what, c.err)
		}
	}
	for _, name := range []string{"x", "123abc", "99999999999999999999", "0", "-1", strconv.Itoa(1 << 30)} {
		if _, err := os.Stat(m.path(name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat %q: %v, want ENOENT", name, err)
		}
	}
	for _, name := range []string{"000000001000-000000002000", "1000-2000", "heapx"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat %q: %v, want ENOENT", name, err)
		}
	}
	f := m.openPattern(tg, os.O_RDWR)
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Errorf("fsync: %v", err)
	}
	if _, err := f.ReadAt(make([]byte, 0), 0); err != nil {
		t.Errorf("zero-length read: %v", err)
	}
	if n, err := f.ReadAt(make([]byte, 16), 1<<62); n != 0 {
		t.Errorf("read far past the end: %d, %v", n, err)
	}
	if n, err := syscall.Pread(int(f.Fd()), make([]byte, 16), 1<<63-17); n != 0 || err != nil {
		t.Errorf("read at 2^63-17: %d, %v; want EOF", n, err)
	}
	// A huge read returns the region; a huge write fills it and stops.
	size := tg.addr["pattern_size"]
	big := make([]byte, 64<<20)
	if n, err := syscall.Pread(int(f.Fd()), big, 0); uint64(n) != size || err != nil {
		t.Errorf("64 MiB read of a %d-byte region: %d, %v", size, n, err)
	}
	if n, err := syscall.Pwrite(int(f.Fd()), big[:0], 0); n != 0 || err != nil {
		t.Errorf("zero-length write: %d, %v", n, err)
	}
	for i := range big[:size] {
		big[i] = tg.pattern[i] ^ 0xff
	}
	if n, err := syscall.Pwrite(int(f.Fd()), big, 0); uint64(n) != size || err != nil {
		t.Errorf("64 MiB write to a %d-byte region: %d, %v; want a short write of the region", size, n, err)
	}
	if got := tg.peek(tg.addr["pattern"]+size-4, 4); !bytes.Equal(got, big[size-4:size]) {
		t.Errorf("end of region after the huge write: % x", got)
	}
	m.alive()
}

// TestMountLongListing: ls -l of a process with thousands of regions (a
// listing the kernel reads in many READDIRPLUS batches, some cut short and
// resumed) shows every region of maps once, with its size and mode.
func TestMountLongListing(t *testing.T) {
	tg := startTargetAs(t, nil, targetBin, 1<<20, "mappings", "5000")
	m := startMount(t)
	r := run(t, "", "ls", "-l", "--time-style=+", m.path(itoa(tg.pid)))
	mustSucceed(t, r, "ls -l")
	regions, err := pinned(t, tg.pid).Maps()
	if err != nil {
		t.Fatal(err)
	}
	if len(regions) < 5000 {
		t.Fatalf("the target has %d regions", len(regions))
	}
	listed := map[string]string{} // name -> "mode size"
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 6 || f[0][0] != '-' {
			continue // the links (lrwx...)
		}
		name := f[len(f)-1]
		if _, dup := listed[name]; dup {
			t.Errorf("%s listed twice", name)
		}
		listed[name] = f[0] + " " + f[4]
	}
	for _, reg := range regions {
		mode := []byte("----------")
		if reg.Perms.Read {
			mode[1] = 'r'
		}
		if reg.Perms.Write {
			mode[2] = 'w'
		}
		want := fmt.Sprintf("%s %d", mode, reg.Size())
		if reg.Unreadable() { // [vvar], [vsyscall]: there by name only
			if _, ok := listed[reg.Name()]; ok {
				t.Errorf("%s (%s) is listed", reg.Name(), reg.Path)
			}
			if _, err := os.Stat(m.path(itoa(tg.pid), reg.Name())); err != nil {
				t.Errorf("%s (%s) cannot be looked up: %v", reg.Name(), reg.Path, err)
			}
			continue
		}
		if got, ok := listed[reg.Name()]; !ok {
			t.Errorf("%s not listed", reg.Name())
		} else if got != want {
			t.Errorf("%s: %s, want %s", reg.Name(), got, want)
		}
		delete(listed, reg.Name())
	}
	for name := range listed {
		if name != "info" && name != "statm" {
			t.Errorf("%s listed but not in maps", name)
		}
	}
	// Both directories list the dots; the root is inode 1, as in /proc.
	for _, dir := range []string{m.dir, m.path(itoa(tg.pid))} {
		r := run(t, "", "ls", "-a", "-1", "-U", dir)
		if lines := strings.SplitN(r.stdout, "\n", 3); len(lines) < 3 || lines[0] != "." || lines[1] != ".." {
			t.Errorf("ls -a %s starts with %q", dir, lines[:min(2, len(lines))])
		}
	}
	if st, err := os.Stat(m.dir); err != nil || st.Sys().(*syscall.Stat_t).Ino != 1 {
		t.Errorf("the root's inode: %v", err)
	}
}
