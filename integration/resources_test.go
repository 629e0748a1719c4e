//go:build linux

package integration

import (
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

	"golang.org/x/sys/unix"
)

// TestDescriptorsExhausted leaves the daemon no file descriptor to spare
// (its limit lowered to its lowest free descriptor): opens, listings and
// lookups of live processes then fail with EMFILE, never ENOENT (which
// would tell the kernel the processes are gone), the daemon says why in
// its log, and it serves normally once its limit is back.
func TestDescriptorsExhausted(t *testing.T) {
	requireTool(t, "prlimit")
	tg := startTarget(t, "", 1<<20)
	other := startTarget(t, "", 1<<20) // not looked up before the test
	m := startMount(t)
	pid := itoa(tg.pid)
	file := m.path(pid, tg.region(tg.addr["pattern"]).Name())
	if _, err := os.ReadDir(m.path(pid)); err != nil {
		t.Fatal(err)
	}
	daemon := itoa(m.cmd.Process.Pid)
	limit := lowestFreeFD(t, m.cmd.Process.Pid)
	soft := strings.TrimSpace(run(t, "", "prlimit", "--pid", daemon, "--nofile", "--noheadings", "--output=SOFT").stdout)
	mustSucceed(t, run(t, "", "prlimit", "--pid", daemon, fmt.Sprintf("--nofile=%d:", limit)), "prlimit")

	for what, err := range map[string]error{
		"open":                    func() error { _, err := os.Open(file); return err }(),
		"listing":                 func() error { _, err := os.ReadDir(m.path(pid)); return err }(),
		"lookup of a new process": func() error { _, err := os.Stat(m.path(itoa(other.pid))); return err }(),
	} {
		if !errors.Is(err, syscall.EMFILE) {
			t.Errorf("%s with the daemon out of descriptors: %v, want EMFILE", what, err)
		}
	}
	if !strings.Contains(m.stderr.String(), "too many open files") {
		t.Errorf("the daemon did not log running out of descriptors:\n%s", m.stderr.String())
	}
	mustSucceed(t, run(t, "", "prlimit", "--pid", daemon, "--nofile="+soft+":"), "prlimit")
	waitFor(t, "the daemon to serve again", func() (string, bool) {
		f, err := os.Open(file)
		if err != nil {
			return err.Error(), false
		}
		f.Close()
		return "", true
	})
	if _, err := os.ReadDir(m.path(pid)); err != nil {
		t.Errorf("listing after descriptors were freed: %v", err)
	}
	if _, err := os.Stat(m.path(itoa(other.pid))); err != nil {
		t.Errorf("the new process after descriptors were freed: %v", err)
	}
}

// lowestFreeFD is the lowest descriptor number process pid has not open:
// with RLIMIT_NOFILE at that number, it can open nothing more.
func lowestFreeFD(t *testing.T, pid int) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	open := map[int]bool{}
	for _, e := range entries {
		n, _ := strconv.Atoi(e.Name())
		open[n] = true
	}
	fd := 0
	for open[fd] {
		fd++
	}
	return fd
}

// TestHandleQuota: one user holding region files open runs into its share
// of the daemon's descriptors with EMFILE, and the daemon's own user can
// still open files meanwhile.
func TestHandleQuota(t *testing.T) {
	requireRoot(t)
	requireTool(t, "prlimit", "setpriv", "bash")
	openToAll(t, binDir)
	tg := startTargetAs(t, asNobody, targetBin, 1<<20)
	m := startMount(t, "--allow-other")
	openToAll(t, filepath.Dir(m.dir))
	daemon := itoa(m.cmd.Process.Pid)
	// A share of 64 descriptors (the least there is: 256 / 4 is not
	// more), 10 region files of 6 descriptors each.
	mustSucceed(t, run(t, "", "prlimit", "--pid", daemon, "--nofile=256:"), "prlimit")
	file := m.path(itoa(tg.pid), tg.region(tg.addr["pattern"]).Name())
	// The user opens the file on descriptors 3, 4, ... until an open
	// fails, and holds them while root opens it too.
	script := `for i in $(seq 3 60); do eval "exec $i<\"$1\"" || { echo "failed at $i"; break; }; done; read x`
	args := append(append([]string(nil), asNobody...), "bash", "-c", script, "bash", file)
	user := exec.Command(args[0], args[1:]...)
	in, err := user.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	user.Stdout, user.Stderr = &out, &out
	if err := user.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); user.Wait() })
	got := waitFor(t, "the user's opens to fail", func() (string, bool) {
		s := out.String()
		return s, strings.Contains(s, "failed at")
	})
	if !strings.Contains(got, "Too many open files") || !strings.Contains(got, "failed at 13") {
		t.Errorf("the user's opens past its share: %q; want the 11th (descriptor 13) to fail with EMFILE", got)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Errorf("the daemon's user could not open a region file while another user holds its share: %v", err)
	} else {
		f.Close()
	}
	in.Close()
	user.Wait()
}

// TestSelfMapping: a target that maps one of its own region files (from
// this very mount) and keeps a writer queued on its mmap_lock. Reading
// that mapping through /proc/PID/mem would fault it in while holding the
// lock, and the fault would wait on this daemon, whose handler waits on
// the same lock: the daemon never reads such a mapping through the
// target. Every read is answered (EIO) at once, and the daemon serves on.
func TestSelfMapping(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	m := startMount(t)
	t.Cleanup(tg.kill) // before the unmount: its mapping holds a file of the mount open
	pid := itoa(tg.pid)
	own := m.path(pid, tg.region(tg.addr["pattern"]).Name())
	got := tg.ask("mapfile %s", own)
	addr, err := strconv.ParseUint(strings.TrimPrefix(got, "0x"), 16, 64)
	if err != nil {
		t.Fatalf("mapfile: %q", got)
	}
	if got := tg.ask("mmaploop"); got != "ok" {
		t.Fatalf("mmaploop: %q", got)
	}
	mapping := m.path(pid, tg.region(addr).Name())
	done := make(chan error, 1)
	go func() {
		var last error
		for i := 0; i < 300; i++ {
			f, err := os.Open(mapping)
			if err != nil {
				last = err
				break
			}
			_, last = f.ReadAt(make([]byte, 4096), 0)
			f.Close()
		}
		done <- last
	}()
	select {
	case err := <-done:
		if !errors.Is(err, syscall.EIO) {
			t.Errorf("reads of the mapping of the mount's own file: %v, want EIO", err)
		}
	case <-time.After(20 * time.Second):
		abortConnection(t, m.dir)
		t.Fatal("reads of the mapping of the mount's own file hang: the daemon deadlocked")
	}
	if b, err := os.ReadFile(m.path(pid, "statm")); err != nil || len(b) == 0 {
		t.Errorf("the daemon after reads of its own file's mapping: %v", err)
	}
	m.alive()
}

// abortConnection ends a FUSE connection whose daemon hangs, so that the
// test can end: its waiters get ECONNABORTED.
func abortConnection(t *testing.T, dir string) {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Logf("stat %s: %v", dir, err)
		return
	}
	if _, err := os.Stat("/sys/fs/fuse/connections/" + itoa(int(unix.Minor(st.Dev)))); err != nil {
		run(t, "", "mount", "-t", "fusectl", "fusectl", "/sys/fs/fuse/connections")
	}
	abort := fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", unix.Minor(st.Dev))
	if err := os.WriteFile(abort, []byte("1"), 0); err != nil {
		t.Logf("abort %s: %v", abort, err)
	}
}

// TestUserfaultfdMapping: a region registered with userfaultfd whose
// faults are never answered, filled and dropped without pause. A read that
// faults there waits for ever in process_vm_readv (/proc/PID/mem fails at
// once instead), so such a region is never read with it: every read, large
// ones included, is answered at once.
func TestUserfaultfdMapping(t *testing.T) {
	requireRoot(t) // userfaultfd, with vm.unprivileged_userfaultfd 0
	tg := startTarget(t, "", 1<<20)
	m := startMount(t)
	got := tg.ask("uffd")
	addr, err := strconv.ParseUint(strings.TrimPrefix(got, "0x"), 16, 64)
	if err != nil {
		t.Fatalf("uffd: %q", got)
	}
	r := tg.region(addr)
	file := m.path(itoa(tg.pid), r.Name())
	done := make(chan [2]int, 1)
	go func() {
		var reads, fails int
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); reads++ {
			f, err := os.Open(file)
			if err != nil {
				fails++
				continue
			}
			if _, err := f.ReadAt(make([]byte, r.Size()), 0); err != nil && err != io.EOF {
				fails++
			}
			f.Close()
		}
		done <- [2]int{reads, fails}
	}()
	select {
	case n := <-done:
		t.Logf("%d reads of %d bytes, %d failed (EIO where a page is missing)", n[0], r.Size(), n[1])
	case <-time.After(30 * time.Second):
		abortConnection(t, m.dir)
		t.Fatal("reads of the userfaultfd region hang")
	}
	if b, err := os.ReadFile(m.path(itoa(tg.pid), "statm")); err != nil || len(b) == 0 {
		t.Errorf("the daemon after reads of the userfaultfd region: %v", err)
	}
	tg.kill() // before the unmount: its faults may still hold the mount's requests
}

// startStallFS mounts a filesystem whose reads never answer (stallfs) and
// returns its file's path, and a function that kills the server: the
// kernel then fails every read waiting on it.
func startStallFS(t *testing.T, size uint64, opts ...string) (string, func()) {
	t.Helper()
	bin := buildTool(t, "stallfs")
	dir := filepath.Join(t.TempDir(), "stallfs")
	os.Mkdir(dir, 0o755)
	cmd := exec.Command(bin, append([]string{dir, strconv.FormatUint(size, 10)}, opts...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	kill := func() {
		cmd.Process.Kill()
		cmd.Wait()
		syscall.Unmount(dir, syscall.MNT_DETACH)
	}
	t.Cleanup(kill)
	waitFor(t, "stallfs", func() (string, bool) { _, err := os.Stat(filepath.Join(dir, "data")); return "", err == nil })
	return filepath.Join(dir, "data"), kill
}

// readRegion reads n bytes at the start of a region file, and says how
// long it took.
func readRegion(path string, n int) (time.Duration, error) {
	start := time.Now()
	f, err := os.Open(path)
	if err == nil {
		_, err = f.ReadAt(make([]byte, n), 0)
		f.Close()
	}
	return time.Since(start), err
}

// stalledRead reads a stalled mapping through m: it must fail with EIO
// within the bound. If it hangs, the connection is aborted so that the
// test can end.
func stalledRead(t *testing.T, m *mount, path string, bound time.Duration) {
	t.Helper()
	type result struct {
		took time.Duration
		err  error
	}
	done := make(chan result, 1)
	go func() { took, err := readRegion(path, 4096); done <- result{took, err} }()
	select {
	case r := <-done:
		if !errors.Is(r.err, syscall.EIO) || r.took > bound+2*time.Second {
			t.Fatalf("read of the stalled mapping: %v after %v; want EIO within %v", r.err, r.took, bound)
		}
	case <-time.After(bound + 10*time.Second):
		abortConnection(t, m.dir)
		t.Fatalf("read of the stalled mapping hangs past the bound %v", bound)
	}
}

// TestStalledTarget: a target maps a file of a filesystem that hangs, so
// that reading the mapping waits for ever, wherever it is read from (the
// file, or the process). Every request is answered within the mount's
// bound (EIO); a pile-up of 1,000 readers costs a few threads; the stuck
// process's further requests fail at once while other processes are
// served as usual; a daemon with a stuck call unmounts and exits; and once
// the filesystem lets the call go, the process is served again.
func TestStalledTarget(t *testing.T) {
	requireRoot(t) // mounting stallfs
	const bound = time.Second
	data, unstall := startStallFS(t, 1<<20)
	tg := startTarget(t, "", 1<<20)
	other := startTarget(t, "", 1<<20)
	got := tg.ask("mapfile %s", data)
	addr, err := strconv.ParseUint(strings.TrimPrefix(got, "0x"), 16, 64)
	if err != nil {
		t.Fatalf("mapfile: %q", got)
	}
	name := tg.region(addr).Name()

	// A daemon with a call stuck ends on SIGTERM all the same.
	early := startMount(t, "--timeout", bound.String())
	stalledRead(t, early, early.path(itoa(tg.pid), name), bound)
	stopped := time.Now()
	early.stop()
	if took := time.Since(stopped); took > 5*time.Second {
		t.Errorf("a daemon with a stuck call took %v to stop", took)
	}

	m := startMount(t, "--timeout", bound.String())
	daemon := m.cmd.Process.Pid
	file := m.path(itoa(tg.pid), name)
	stalledRead(t, m, file, bound)

	// 1,000 readers at once; another process is served meanwhile (slowly:
	// the readers fill the connection's queue), and at its usual speed
	// once they are answered, with the process still stuck.
	const readers = 1000
	type result struct {
		took time.Duration
		err  error
	}
	results := make(chan result, readers)
	begin := time.Now()
	for range readers {
		go func() {
			took, err := readRegion(file, 256<<10)
			results <- result{took, err}
		}()
	}
	otherFile := m.path(itoa(other.pid), other.region(other.addr["pattern"]).Name())
	var slowest time.Duration
	for range 20 {
		took, err := readRegion(otherFile, 4096)
		if err != nil {
			t.Fatalf("another process during the stall: %v", err)
		}
		slowest = max(slowest, took)
	}
	if slowest > 5*time.Second {
		t.Errorf("another process during the pile-up: a read took %v", slowest)
	}
	threads := statusNumber(t, daemon, "Threads")
	var worst time.Duration
	for range readers {
		r := <-results
		if r.err == nil || !errors.Is(r.err, syscall.EIO) && !errors.Is(r.err, os.ErrNotExist) {
			t.Errorf("a reader of the stalled mapping: %v, want EIO", r.err)
		}
		worst = max(worst, r.took)
	}
	t.Logf("%d readers answered in %v (slowest %v); daemon threads %d; other process's slowest read %v", readers, time.Since(begin), worst, threads, slowest)
	if worst > bound+3*time.Second {
		t.Errorf("a reader of the stalled mapping waited %v, bound %v", worst, bound)
	}
	if threads > 40 {
		t.Errorf("the daemon has %d threads during the pile-up: stuck calls are not bounded", threads)
	}
	var during time.Duration
	for range 20 {
		took, err := readRegion(otherFile, 4096)
		if err != nil {
			t.Fatalf("another process during the stall: %v", err)
		}
		during = max(during, took)
	}
	if during > 200*time.Millisecond {
		t.Errorf("another process during the stall: a read took %v", during)
	}
	t.Logf("another process's slowest read during the stall: %v", during)
	if _, err := os.ReadFile(m.path(itoa(tg.pid), "statm")); !errors.Is(err, syscall.EIO) {
		t.Errorf("statm of the stuck process: %v, want EIO at once", err)
	}
	if !strings.Contains(m.stderr.String(), fmt.Sprintf("process %d does not answer", tg.pid)) {
		t.Errorf("the daemon did not log the stuck process:\n%s", m.stderr.String())
	}

	unstall()
	waitFor(t, "the process to answer again", func() (string, bool) {
		b, err := os.ReadFile(m.path(itoa(tg.pid), "statm"))
		return fmt.Sprint(err), err == nil && len(b) > 0
	})
	if !strings.Contains(m.stderr.String(), fmt.Sprintf("process %d answers again", tg.pid)) {
		t.Errorf("the daemon did not log that the process answers again:\n%s", m.stderr.String())
	}
	m.alive()
	tg.kill() // its mapping of the dead filesystem goes with it
}

// TestIdleEntriesDropped: "ls -l" of a process with 30,000 regions makes
// the kernel look up every region, and the daemon holds a node for each.
// Once the directory goes unused, the daemon has the kernel drop them
// (all but a file still open, which reads on), and its memory comes back;
// the directory then lists as before.
func TestIdleEntriesDropped(t *testing.T) {
	tg := startTargetAs(t, nil, targetBin, 1<<20, "mappings", "30000")
	m := startMount(t)
	dir := m.path(itoa(tg.pid))
	held := m.openPattern(tg, os.O_RDONLY)
	defer held.Close()
	listed := run(t, "", "ls", "-l", dir)
	mustSucceed(t, listed, "ls -l")
	regions := strings.Count(listed.stdout, "\n-r")
	if regions < 30000 {
		t.Fatalf("ls -l listed %d regions, want 30,000 and more", regions)
	}
	busy := m.allStats()
	rss := func() int { return statusNumber(t, m.cmd.Process.Pid, "VmRSS") }
	busyRSS := rss()
	if busy["nodes"] < regions {
		t.Fatalf("after ls -l the daemon holds %d nodes for %d regions: the test measures nothing", busy["nodes"], regions)
	}
	var idle map[string]int
	waitWithin(t, 60*time.Second, "the idle entries to be dropped", func() (string, bool) {
		idle = m.allStats()
		return fmt.Sprint(idle), idle["nodes"] < 10
	})
	idleRSS := rss()
	t.Logf("nodes %d -> %d, RSS %d -> %d kB", busy["nodes"], idle["nodes"], busyRSS, idleRSS)
	if _, err := held.ReadAt(make([]byte, 16), 0); err != nil {
		t.Errorf("an open region file after its entry was dropped: %v", err)
	}
	if again := run(t, "", "ls", "-l", dir); strings.Count(again.stdout, "\n-r") != regions {
		t.Errorf("ls -l after the entries were dropped lists %d regions, want %d", strings.Count(again.stdout, "\n-r"), regions)
	}
}

// statusNumber reads a number field of /proc/PID/status (kB for sizes).
func statusNumber(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
