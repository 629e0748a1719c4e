//go:build linux

package integration

// The attacks of a hostile local user on a root daemon with
// --allow-other, one test each, as they were first reported: every file
// kind must keep every promise (docs/security.md has the table).

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/procmem/procmem/procfs"
)

// asOther runs a command as a second unprivileged user, uid and gid 65533.
var asOther = []string{"setpriv", "--reuid=65533", "--regid=65533", "--clear-groups"}

// preader holds a file open as a user and reads LEN bytes at OFF through
// that descriptor whenever asked (fdhold's pread mode).
type preader struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// openPreader opens path as the user prefix runs as, to read n bytes at
// off; the open must succeed.
func openPreader(t *testing.T, prefix []string, path string, off uint64, n int) *preader {
	t.Helper()
	p, err := tryPreader(t, prefix, path, off, n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func tryPreader(t *testing.T, prefix []string, path string, off uint64, n int) (*preader, error) {
	t.Helper()
	args := append(append([]string(nil), prefix...), fdholdBin, path, "pread", fmt.Sprintf("%x", off), fmt.Sprintf("%x", n))
	p := &preader{cmd: exec.Command(args[0], args[1:]...)}
	var err error
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.out = bufio.NewReader(stdout)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.in.Close(); p.cmd.Process.Kill(); p.cmd.Wait() })
	if line, err := p.out.ReadString('\n'); line != "open\n" {
		return nil, fmt.Errorf("fdhold %s: %q, %v", path, line, err)
	}
	return p, nil
}

// start asks for a read without waiting for it.
func (p *preader) start() { fmt.Fprintln(p.in, "go") }

// result waits for the read asked for: its bytes, or the error it got.
func (p *preader) result() ([]byte, error) {
	line, err := p.out.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "error: ") {
		return nil, errors.New(line)
	}
	return hex.DecodeString(line)
}

// read reads once.
func (p *preader) read() ([]byte, error) {
	p.start()
	return p.result()
}

// setuidCopy installs a copy of bin, owned by root and setuid, where
// other users may run it; it fails the test where setuid programs do
// not run (a nosuid file system).
func setuidCopy(t *testing.T, bin string) string {
	t.Helper()
	dir := t.TempDir()
	openToAll(t, dir)
	path := filepath.Join(dir, filepath.Base(bin))
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o755|os.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil || st.Flags&unix.ST_NOSUID != 0 {
		skipOrFail(t, "%s is on a nosuid file system: setuid programs do not run there", dir)
	}
	return path
}

// TestNoLeakAcrossSetuidExec (issue 25, 1): a user's process maps a file
// of its own at a fixed address, dumps everything (coredump_filter 0xff)
// and keeps its address space alive in a CLONE_VM child; the user opens
// its core and mem; the process then execs a setuid-root program that maps
// a root-only file at the same range. No read through the descriptors the
// user holds returns a byte of that file.
func TestNoLeakAcrossSetuidExec(t *testing.T) {
	requireRoot(t)
	requireTool(t, "setpriv")
	const at, size = 0x600000000000, 16 << 10
	secretDir := t.TempDir() // root's, 0700
	secret := filepath.Join(secretDir, "secret")
	if err := os.WriteFile(secret, bytes.Repeat([]byte("ROOTONLY"), size/8), 0o600); err != nil {
		t.Fatal(err)
	}
	userDir := t.TempDir()
	openToAll(t, userDir)
	own := filepath.Join(userDir, "own")
	if err := os.WriteFile(own, bytes.Repeat([]byte("USERDATA"), size/8), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chown(own, 65534, 65534)
	maproot := setuidCopy(t, maprootBin)
	openToAll(t, binDir)

	for _, file := range []string{"mem", "core"} {
		t.Run(file, func(t *testing.T) {
			tg := startTargetAs(t, asNobody, targetBin, 4096)
			m := startMount(t, "--allow-other")
			openToAll(t, filepath.Dir(m.dir))
			if got := tg.ask("mapover %x %x %s", at, size, own); got != "ok" {
				t.Fatalf("mapover: %q", got)
			}
			if err := os.WriteFile(fmt.Sprintf("/proc/%d/coredump_filter", tg.pid), []byte("0xff"), 0); err != nil {
				t.Fatal(err)
			}
			tg.ask("sibling")
			var r *preader
			if file == "mem" {
				r = openPreader(t, asNobody, m.path(itoa(tg.pid), "mem"), at, size)
				if b, err := r.read(); err != nil || !bytes.HasPrefix(b, []byte("USERDATA")) {
					t.Fatalf("mem before the exec: %q, %v", b[:min(len(b), 16)], err)
				}
			} else {
				r = openPreader(t, asNobody, m.path(itoa(tg.pid), "core"), 0, 64<<20)
			}
			if got := tg.ask("run %s %s %#x %#x", maproot, secret, at, size); got != "mapped" {
				t.Fatalf("the setuid exec: %q", got)
			}
			// At once, and again for longer than any reading is trusted.
			for end := time.Now().Add(300 * time.Millisecond); ; {
				b, err := r.read()
				if bytes.Contains(b, []byte("ROOTONLY")) {
					t.Fatalf("%s read the root-only file after the setuid exec", file)
				}
				if file == "core" && err == nil && !bytes.Contains(b, []byte("USERDATA")) {
					t.Errorf("the core does not hold the user's own mapping (%d bytes)", len(b))
				}
				if time.Now().After(end) {
					break
				}
			}
		})
	}
}

// rss is the Rss of the mapping that holds addr, from smaps.
func rss(t *testing.T, pid int, addr uint64) uint64 {
	t.Helper()
	mappings, err := pinned(t, pid).Smaps()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mappings {
		if m.Contains(addr) {
			v, _ := m.Field("Rss")
			return v
		}
	}
	t.Fatalf("0x%x is not mapped in %d", addr, pid)
	return 0
}

// TestReadingCoreAndMemChangesNothing (issue 25, 8): a sparse copy of
// core, with an untouched private mapping of libc whose ELF header page
// the core holds, and reads of mem over [vdso], fault nothing into the
// target: the mappings' Rss and the page tables stay as they were.
func TestReadingCoreAndMemChangesNothing(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	var libc string
	for _, r := range pinnedMaps(t, tg.pid) {
		if strings.Contains(filepath.Base(r.Path), "libc.so") {
			libc = r.Path
			break
		}
	}
	if libc == "" {
		t.Fatal("the target maps no libc")
	}
	addr, err := strconv.ParseUint(strings.TrimPrefix(tg.ask("mapfile %s", libc), "0x"), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	vdso := tg.regionByPath("[vdso]")
	m := startMount(t)
	before := [3]uint64{rss(t, tg.pid, addr), rss(t, tg.pid, vdso.Start), uint64(statusNumber(t, tg.pid, "VmPTE"))}
	if before[0] != 0 {
		t.Fatalf("the fresh mapping of libc has Rss %d", before[0])
	}
	out := filepath.Join(t.TempDir(), "core")
	mustSucceed(t, run(t, "", "cp", "--sparse=always", m.path(itoa(tg.pid), "core"), out), "cp --sparse=always core")
	f, err := os.Open(m.path(itoa(tg.pid), "mem"))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, vdso.Size())
	if _, err := f.ReadAt(got, int64(vdso.Start)); err != nil {
		t.Fatalf("reading [vdso] through mem: %v", err)
	}
	f.Close()
	if !bytes.HasPrefix(got, []byte("\x7fELF")) {
		t.Errorf("[vdso] through mem: %q", got[:16])
	}
	after := [3]uint64{rss(t, tg.pid, addr), rss(t, tg.pid, vdso.Start), uint64(statusNumber(t, tg.pid, "VmPTE"))}
	if after != before {
		t.Errorf("reading core and mem changed the target: Rss of libc's mapping, Rss of [vdso], VmPTE (kB) %v, then %v", before, after)
	}
	// The core has the mapping's ELF header: it was read, from the file.
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b, []byte("\x7fELF\x02\x01\x01")); n < 3 {
		t.Errorf("the core holds %d ELF headers; want its own, libc's and the extra mapping's", n)
	}
}

// pinnedMaps reads a process's maps as root.
func pinnedMaps(t *testing.T, pid int) []procfs.Region {
	t.Helper()
	regions, err := pinned(t, pid).Maps()
	if err != nil {
		t.Fatal(err)
	}
	return regions
}

// TestWritesDecidedAtWriteTime (issue 25, 5): a region file and mem opened
// for writing while the region was writable; the target then makes it
// read-only, or maps a file over it: writes on the old descriptors, and
// through a shared mapping of the region file, fail and change nothing.
func TestWritesDecidedAtWriteTime(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	m := startMount(t)
	pid := itoa(tg.pid)
	pattern := tg.addr["pattern"]
	region := tg.region(pattern)
	rf, err := os.OpenFile(m.path(pid, region.Name()), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	mf, err := os.OpenFile(m.path(pid, "mem"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	shared, err := syscall.Mmap(int(rf.Fd()), 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap of the region file, shared: %v", err)
	}
	defer syscall.Munmap(shared)
	original := tg.peek(pattern, 8)
	if _, err := rf.WriteAt([]byte("OPENRW"), 0); err != nil {
		t.Fatalf("a write while writable: %v", err)
	}
	tg.poke(pattern, original)

	refused := func(how string) {
		t.Helper()
		if _, err := rf.WriteAt([]byte("REGION"), 0); !errors.Is(err, syscall.EACCES) {
			t.Errorf("%s: a write on the region file: %v, want EACCES", how, err)
		}
		if _, err := mf.WriteAt([]byte("MEMORY"), int64(pattern)); !errors.Is(err, syscall.EACCES) {
			t.Errorf("%s: a write on mem: %v, want EACCES", how, err)
		}
		copy(shared, "SHARED")
		if err := unix.Msync(shared, unix.MS_SYNC); err == nil {
			t.Errorf("%s: msync of a shared mapping of the region file succeeded", how)
		}
		if got := tg.peek(pattern, 8); !bytes.Equal(got, original) {
			t.Errorf("%s: a refused write landed: % x", how, got)
		}
	}
	if got := tg.ask("protect %x %x 1", pattern, 1<<20); got != "ok" {
		t.Fatalf("protect: %q", got)
	}
	refused("after mprotect(PROT_READ)")

	if got := tg.ask("protect %x %x 3", pattern, 1<<20); got != "ok" {
		t.Fatalf("protect: %q", got)
	}
	file := filepath.Join(t.TempDir(), "over")
	if err := os.WriteFile(file, original, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Truncate(file, 4096)
	if got := tg.ask("mapover %x %x %s", pattern, 4096, file); got != "ok" {
		t.Fatalf("mapover: %q", got)
	}
	refused("after a read-only file was mapped over it")
	if b, _ := os.ReadFile(file); !bytes.Equal(b[:8], original) {
		t.Errorf("the file mapped over the region was written: % x", b[:8])
	}
}

// TestMemWriteback (issue 25, 7): a write through a shared mapping of mem
// lands in the target when written back, though the kernel sends that
// write without a caller.
func TestMemWriteback(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	m := startMount(t)
	f, err := os.OpenFile(m.path(itoa(tg.pid), "mem"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pattern := tg.addr["pattern"]
	b, err := syscall.Mmap(int(f.Fd()), int64(pattern), 4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		t.Fatalf("mmap of mem, shared: %v", err)
	}
	defer syscall.Munmap(b)
	if !bytes.Equal(b[:16], tg.pattern[:16]) {
		t.Errorf("the shared mapping of mem reads % x, want % x", b[:16], tg.pattern[:16])
	}
	copy(b[100:], "WRITTEN BACK")
	if err := unix.Msync(b, unix.MS_SYNC); err != nil {
		t.Fatalf("msync: %v", err)
	}
	if got := tg.peek(pattern+100, 12); string(got) != "WRITTEN BACK" {
		t.Errorf("after msync the target holds %q", got)
	}
}

// daemonRSS is the daemon's resident memory in bytes.
func daemonRSS(t *testing.T, m *mount) uint64 {
	t.Helper()
	return uint64(statusNumber(t, m.cmd.Process.Pid, "VmRSS")) << 10
}

// TestHandlesWithinShares (issue 25, 3 and 4): one user opens its own
// process directory 19,988 times, or the info of a 30,000-region process
// 1,500 times, and holds them: past its share the opens fail (EMFILE,
// ENOMEM), the daemon stays within its bounds, and another user's cat
// info, dd of its heap and ls of its own process work meanwhile.
func TestHandlesWithinShares(t *testing.T) {
	requireRoot(t)
	requireTool(t, "setpriv", "prlimit", "bash", "dd", "ls")
	openToAll(t, binDir)
	big := startTargetAs(t, asNobody, targetBin, 4096, "mappings", "30000")
	victim := startTargetAs(t, asOther, targetBin, 1<<20)
	m := startMount(t, "--allow-other")
	openToAll(t, filepath.Dir(m.dir))
	limit := min(hardNofile(t), 20000)
	mustSucceed(t, run(t, "", "prlimit", "--pid", itoa(m.cmd.Process.Pid), fmt.Sprintf("--nofile=%d:%d", limit, limit)), "prlimit")
	served := func(what string) {
		t.Helper()
		pid := itoa(victim.pid)
		script := fmt.Sprintf("cat %s/info >/dev/null && dd if=%s/heap of=/dev/null bs=64k status=none && ls %s >/dev/null",
			m.path(pid), m.path(pid), m.path(pid))
		r := run(t, "", asOther[0], append(append([]string(nil), asOther[1:]...), "sh", "-c", script)...)
		if r.code != 0 {
			t.Errorf("%s: another user's cat info, dd heap, ls: exit %d, %s", what, r.code, r.stderr)
		}
	}

	held := func(out *syncBuffer) int {
		t.Helper()
		got := waitWithin(t, time.Minute, "the user's opens", func() (string, bool) { s := out.String(); return s, strings.Contains(s, "held ") })
		var n int
		fmt.Sscanf(got[strings.Index(got, "held "):], "held %d", &n)
		t.Logf("%s", strings.TrimSpace(got))
		return n
	}
	t.Run("directories", func(t *testing.T) {
		script := `n=0; for i in $(seq 20 20007); do eval "exec $i<\"$1\"" 2>/dev/null || break; n=$((n+1)); done; echo held $n; read x`
		user, out := startHeld(t, "bash", "-c", script, "bash", m.path(itoa(big.pid)))
		if n := held(out); n > int(limit)/4 {
			t.Errorf("one user holds %d directory handles, past its share of the daemon's %d descriptors", n, limit)
		}
		if fds := m.fds(); fds > int(limit)/4+100 {
			t.Errorf("the daemon holds %d descriptors, past a user's share", fds)
		}
		served("while a user holds its share of directories")
		user()
	})

	t.Run("text", func(t *testing.T) {
		before := daemonRSS(t, m)
		script := `n=0; for i in $(seq 20 1519); do eval "exec $i<\"$1\"" 2>/dev/null || break; n=$((n+1)); done; echo held $n; read x`
		user, out := startHeld(t, "bash", "-c", script, "bash", m.path(itoa(big.pid), "info"))
		if n := held(out); n >= 1500 {
			t.Errorf("one user holds all of 1,500 opens of a large info")
		}
		grown := daemonRSS(t, m) - min(before, daemonRSS(t, m))
		t.Logf("the daemon's RSS grew by %d MiB", grown>>20)
		if grown > 512<<20 {
			t.Errorf("1,500 opens of a large info took the daemon's RSS from %d to %d MiB", before>>20, (before+grown)>>20)
		}
		served("while a user holds its share of text files")
		user()
	})
}

// hardNofile is the hard limit on descriptors: the most a process here
// may have (without CAP_SYS_RESOURCE, which root may lack in a sandbox).
func hardNofile(t *testing.T) uint64 {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	return lim.Max
}

// startHeld runs a command as nobody that holds what it opens until its
// input ends (the returned function ends it), with its output.
func startHeld(t *testing.T, args ...string) (func(), *syncBuffer) {
	t.Helper()
	full := append(append([]string{"prlimit", fmt.Sprintf("--nofile=%d", hardNofile(t))}, asNobody...), args...)
	cmd := exec.Command(full[0], full[1:]...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	end := func() { in.Close(); cmd.Wait() }
	t.Cleanup(end)
	return end, out
}

// TestStuckUserShare (issue 25, 2): 64 processes of one user each map a
// file of a filesystem that never answers, and 4 readers per process read
// it through the mount. Every other user is served at its usual speed
// meanwhile, and the stuck user, once its calls are overdue, is told EIO
// at once past its share.
func TestStuckUserShare(t *testing.T) {
	requireRoot(t)
	requireTool(t, "setpriv", "sh", "cat", "dd")
	const procs, readers = 64, 4
	data, unstall := startStallFS(t, 1<<20, "allow_other")
	openToAll(t, filepath.Dir(filepath.Dir(data)))
	openToAll(t, binDir)
	m := startMount(t, "--allow-other", "--timeout", "3s")
	openToAll(t, filepath.Dir(m.dir))
	victim := startTargetAs(t, asOther, targetBin, 1<<20)
	var files []string
	for range procs {
		tg := startTargetAs(t, asNobody, targetBin, 4096)
		got := tg.ask("mapfile %s", data)
		addr, err := strconv.ParseUint(strings.TrimPrefix(got, "0x"), 16, 64)
		if err != nil {
			t.Fatalf("mapfile: %q", got)
		}
		files = append(files, m.path(itoa(tg.pid), tg.region(addr).Name()))
	}
	var all []*preader
	for _, f := range files {
		for range readers {
			all = append(all, openPreader(t, asNobody, f, 0, 4096))
		}
	}
	for _, r := range all {
		r.start()
	}
	waiting := func() int {
		var st syscall.Stat_t
		syscall.Stat(m.dir, &st)
		b, _ := os.ReadFile(fmt.Sprintf("/sys/fs/fuse/connections/%d/waiting", unix.Minor(st.Dev)))
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	waitFor(t, "the readers' requests to reach the daemon", func() (string, bool) {
		n := waiting()
		return fmt.Sprint(n, " waiting"), n >= procs*readers
	})
	pid := itoa(victim.pid)
	script := fmt.Sprintf("cat %s/info >/dev/null && dd if=%s/heap of=/dev/null bs=64k status=none", m.path(pid), m.path(pid))
	timed := func(prefix []string) (time.Duration, result) {
		begin := time.Now()
		r := run(t, "", prefix[0], append(append([]string(nil), prefix[1:]...), "sh", "-c", script)...)
		return time.Since(begin), r
	}
	var took []time.Duration
	for range 5 {
		d, r := timed(asOther)
		if r.code != 0 {
			t.Fatalf("another user while one is stuck: exit %d after %v: %s", r.code, d, r.stderr)
		}
		took = append(took, d)
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	t.Logf("another user's cat info and dd of its heap while 256 calls hang: %v", took)
	if took[len(took)/2] > 100*time.Millisecond {
		t.Errorf("another user was served in %v (median), not at its usual speed", took[len(took)/2])
	}

	// Once the stuck user's calls are overdue, its next request past its
	// share fails at once instead of waiting.
	for _, r := range all[:8] {
		r.result()
	}
	other := startTargetAs(t, asNobody, targetBin, 4096)
	begin := time.Now()
	_, err := os.ReadFile(m.path(itoa(other.pid), "info")) // as root: a probe that must work
	if err != nil {
		t.Fatalf("root reading info: %v", err)
	}
	r := run(t, "", asNobody[0], append(append([]string(nil), asNobody[1:]...), "cat", m.path(itoa(other.pid), "statm"))...)
	if took := time.Since(begin); r.code == 0 || took > time.Second {
		t.Errorf("the stuck user past its share: exit %d after %v; want EIO at once", r.code, took)
	}
	if d, r := timed(asOther); r.code != 0 || d > time.Second {
		t.Errorf("another user once the stuck one's calls are overdue: exit %d after %v", r.code, d)
	}
	unstall() // the calls return, and the daemon can let everything go
	for _, r := range all {
		r.in.Close()
		r.cmd.Process.Kill()
		r.cmd.Wait()
	}
}
