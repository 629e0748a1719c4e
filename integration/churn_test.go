//go:build linux

package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// churnDuration is how long TestChurn runs: PROCMEM_CHURN (a Go duration)
// or 30 seconds.
func churnDuration(t *testing.T) time.Duration {
	if v := os.Getenv("PROCMEM_CHURN"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("PROCMEM_CHURN=%q: %v", v, err)
		}
		return d
	}
	return 30 * time.Second
}

// allowedErrnos are the failures the filesystem documents for processes
// and mappings that change under it.
var allowedErrnos = map[string]bool{"ENOENT": true, "ESRCH": true, "EIO": true, "ENOSPC": true, "EACCES": true, "EROFS": true}

func errnoName(err error) string {
	var errno syscall.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, io.EOF):
		return "EOF"
	case errors.As(err, &errno):
		for name, e := range map[string]syscall.Errno{"ENOENT": syscall.ENOENT, "ESRCH": syscall.ESRCH, "EIO": syscall.EIO,
			"ENOSPC": syscall.ENOSPC, "EACCES": syscall.EACCES, "EROFS": syscall.EROFS, "EINVAL": syscall.EINVAL,
			"ENOTSUP": syscall.ENOTSUP, "ENOTDIR": syscall.ENOTDIR, "EINTR": syscall.EINTR, "ENOTCONN": syscall.ENOTCONN,
			"ENODATA": syscall.ENODATA, "EPERM": syscall.EPERM} {
			if errno == e {
				return name
			}
		}
		return errno.Error()
	}
	return "other: " + err.Error()
}

// stats asks the daemon for its goroutine and descriptor counts (SIGUSR1).
func (m *mount) stats() (goroutines, fds int) {
	m.t.Helper()
	all := m.allStats()
	return all["goroutines"], all["fds"]
}

// allStats asks the daemon what it holds (SIGUSR1): goroutines, fds,
// threads, nodes.
func (m *mount) allStats() map[string]int {
	m.t.Helper()
	before := strings.Count(m.stderr.String(), "stats:")
	m.cmd.Process.Signal(syscall.SIGUSR1)
	line := waitFor(m.t, "the daemon's stats", func() (string, bool) {
		s := m.stderr.String()
		return s[max(strings.LastIndex(s, "stats:"), 0):], strings.Count(s, "stats:") > before
	})
	stats := map[string]int{}
	for _, kv := range regexp.MustCompile(`(\w+) (\d+)`).FindAllStringSubmatch(strings.SplitN(line, "\n", 2)[0], -1) {
		stats[kv[1]], _ = strconv.Atoi(kv[2])
	}
	return stats
}

// toolErrno runs cmd and turns its failure into the errno its tools
// reported.
func toolErrno(cmd *exec.Cmd) error {
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	for _, e := range []syscall.Errno{syscall.EACCES, syscall.ENOENT, syscall.ESRCH, syscall.EIO} {
		if strings.Contains(strings.ToLower(string(out)), e.Error()) {
			return e
		}
	}
	return fmt.Errorf("%v: %s", err, out)
}

// TestChurn runs readers and writers against processes whose mappings
// change all the time and processes that start, exec and exit. The daemon
// must answer every operation in bounded time, fail only with the
// documented errnos, write only inside the region addressed, and give back
// every descriptor and goroutine afterwards.
func TestChurn(t *testing.T) {
	duration := churnDuration(t)
	// As root: mounted with --allow-other, so that the kernel caches no
	// region names and every path lookup reaches the daemon while the maps
	// change, and with two churners of another user, one it may read and
	// one made non-dumpable, which it may not.
	var m *mount
	var own, undumpable *target
	if os.Geteuid() != 0 {
		m = startMount(t)
	} else {
		requireTool(t, "setpriv", "sh", "cat", "stat", "ls")
		m = startMount(t, "--allow-other")
		openToAll(t, binDir)
		openToAll(t, filepath.Dir(m.dir))
		own = startTargetAs(t, asNobody, targetBin, 1<<20, "churn")
		undumpable = startTargetAs(t, asNobody, targetBin, 1<<20, "churn")
		if got := undumpable.ask("nodump"); got != "ok" {
			t.Fatalf("nodump: %s", got)
		}
	}
	var churners []*target
	for i := 0; i < 3; i++ {
		churners = append(churners, startTargetAs(t, nil, targetBin, 1<<20, "churn"))
	}
	page := churners[0].addr["page"]

	var (
		pidsMu sync.Mutex
		pids   []int // candidates for readers: churners and short-lived processes
	)
	for _, c := range churners {
		pids = append(pids, c.pid)
	}
	// Half the time a churner, half the time any recent process.
	randomPID := func(r *rand.Rand) int {
		pidsMu.Lock()
		defer pidsMu.Unlock()
		if r.Intn(2) == 0 {
			return pids[r.Intn(len(churners))]
		}
		return pids[r.Intn(len(pids))]
	}

	var (
		countsMu sync.Mutex
		counts   = map[string]map[string]int{} // op -> errno -> count
		ops      atomic.Int64
		inflight sync.Map // worker -> start of its current operation
	)
	record := func(op string, err error) {
		ops.Add(1)
		name := errnoName(err)
		countsMu.Lock()
		defer countsMu.Unlock()
		if counts[op] == nil {
			counts[op] = map[string]int{}
		}
		counts[op][name]++
	}
	// do runs one operation under the watchdog's eye.
	do := func(worker int, op string, fn func() error) {
		inflight.Store(worker, [2]any{op, time.Now()})
		err := fn()
		inflight.Delete(worker)
		record(op, err)
	}

	// Warm up with as many concurrent callers as the churn has, so go-fuse
	// has started the request readers it keeps, then take the baseline of
	// the daemon's goroutines and fds.
	var warm sync.WaitGroup
	for w := 0; w < 8; w++ {
		warm.Add(1)
		go func() {
			defer warm.Done()
			for end := time.Now().Add(time.Second); time.Now().Before(end); {
				os.ReadDir(m.path(itoa(churners[0].pid)))
				os.ReadFile(m.path(itoa(churners[0].pid), "info"))
			}
		}()
	}
	warm.Wait()
	// The baseline once the daemon has settled: the same in two readings.
	baseG, baseFD := m.stats()
	poll(5*time.Second, func() bool {
		g, fds := m.stats()
		settled := g == baseG && fds == baseFD
		baseG, baseFD = g, fds
		return settled
	})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	deadline := time.Now().Add(duration)

	// Processes that start, exec and exit.
	var spawned atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var cmd *exec.Cmd
			if i%2 == 0 {
				cmd = exec.Command("sleep", "0.05")
			} else {
				cmd = exec.Command("sh", "-c", "sleep 0.02; exec sleep 0.03")
			}
			if err := cmd.Start(); err != nil {
				t.Errorf("spawn: %v", err)
				return
			}
			spawned.Add(1)
			pidsMu.Lock()
			pids = append(pids, cmd.Process.Pid)
			if len(pids) > 40 {
				pids = append(pids[:3], pids[len(pids)-30:]...)
			}
			pidsMu.Unlock()
			go cmd.Wait()
			time.Sleep(20 * time.Millisecond) // pacing: some 50 processes a second
		}
	}()

	// Readers.
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(w)))
			buf := make([]byte, 256<<10)
			for time.Now().Before(deadline) {
				pid := itoa(randomPID(r))
				switch r.Intn(6) {
				case 0:
					do(w, "readdir root", func() error { _, err := os.ReadDir(m.dir); return err })
				case 1:
					do(w, "readdir process", func() error { _, err := os.ReadDir(m.path(pid)); return err })
				case 2:
					name := []string{"info", "statm"}[r.Intn(2)]
					do(w, "read "+name, func() error { _, err := os.ReadFile(m.path(pid, name)); return err })
				case 3:
					do(w, "readlink", func() error { _, err := os.Readlink(m.path(pid, "heap")); return err })
				default:
					entries, err := os.ReadDir(m.path(pid))
					record("readdir process", err)
					if err != nil || len(entries) == 0 {
						continue
					}
					name := entries[r.Intn(len(entries))].Name()
					do(w, "read region", func() error {
						f, err := os.Open(m.path(pid, name))
						if err != nil {
							return err
						}
						defer f.Close()
						st, err := f.Stat()
						if err != nil {
							return err
						}
						if st.Size() == 0 {
							return nil
						}
						off := r.Int63n(st.Size())
						_, err = f.ReadAt(buf[:1+r.Intn(len(buf))], off)
						if errors.Is(err, io.EOF) {
							return nil // short read at the end
						}
						return err
					})
				}
			}
		}(w)
	}

	// Writers: random stretches of the churners' pattern regions and of the
	// middle page of their fences, often crossing the end.
	for w := 10; w < 12; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewSource(int64(w)))
			data := make([]byte, 3*page)
			for time.Now().Before(deadline) {
				c := churners[r.Intn(len(churners))]
				addr := c.addr["fence"] + page
				if r.Intn(2) == 0 {
					addr = c.addr["pattern"]
				}
				do(w, "write region", func() error {
					f, err := os.OpenFile(m.path(itoa(c.pid), fmt.Sprintf("%012x-%012x", addr, addr+map[bool]uint64{true: page, false: c.addr["pattern_size"]}[addr != c.addr["pattern"]])), os.O_WRONLY, 0)
					if err != nil {
						return err
					}
					defer f.Close()
					st, _ := f.Stat()
					off := r.Int63n(st.Size() + int64(page))
					n := 1 + r.Intn(len(data))
					r.Read(data[:n])
					_, err = syscall.Pwrite(int(f.Fd()), data[:n], off)
					return err
				})
			}
		}(w)
	}

	// The other user (as root only): info, a stat of a region and a listing
	// of its churners, so the daemon decides as that user while maps
	// change. What the kernel denies must never succeed.
	if own != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewSource(20))
			for time.Now().Before(deadline) {
				c, whose := own, "own"
				if r.Intn(2) == 0 {
					c, whose = undumpable, "undumpable"
				}
				dir := m.path(itoa(c.pid))
				pattern := fmt.Sprintf("%012x-%012x", c.addr["pattern"], c.addr["pattern"]+c.addr["pattern_size"])
				args := [][]string{{"cat", filepath.Join(dir, "info")}, {"stat", filepath.Join(dir, pattern)}, {"ls", dir}}[r.Intn(3)]
				do(20, "nobody "+args[0]+", "+whose, func() error {
					return toolErrno(exec.Command(asNobody[0], append(asNobody[1:], args...)...))
				})
			}
		}()
	}

	// The watchdog: no operation may take longer than 15 seconds.
	watchdogDone := make(chan struct{})
	go func() {
		defer close(watchdogDone)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Second):
			}
			inflight.Range(func(k, v any) bool {
				op := v.([2]any)
				if since := time.Since(op[1].(time.Time)); since > 15*time.Second {
					t.Errorf("worker %v: %s has not returned for %v: the daemon hangs", k, op[0], since)
				}
				return true
			})
		}
	}()

	<-time.After(time.Until(deadline)) // the churn's duration
	close(stop)
	wg.Wait()
	<-watchdogDone

	// Nothing leaked out of the regions written.
	for _, c := range churners {
		if got := c.peek(c.addr["fence"], int(page)); !bytes.Equal(got, bytes.Repeat([]byte{0xaa}, int(page))) {
			t.Errorf("target %d: the page before the written one changed", c.pid)
		}
		if got := c.peek(c.addr["fence"]+2*page, int(page)); !bytes.Equal(got, bytes.Repeat([]byte{0xbb}, int(page))) {
			t.Errorf("target %d: the page after the written one changed", c.pid)
		}
		mapsNow, _ := os.ReadFile(fmt.Sprintf("/proc/%d/maps", c.pid))
		t.Logf("churner %d alive with %d regions after %s mapping changes (mmap, munmap, mprotect)", c.pid, strings.Count(string(mapsNow), "\n"), c.ask("churned"))
	}

	if own != nil {
		for _, tool := range []string{"cat", "stat", "ls"} {
			if n := counts["nobody "+tool+", undumpable"]["ok"]; n > 0 {
				t.Errorf("%s as a user succeeded %d times on its non-dumpable process", tool, n)
			}
			if counts["nobody "+tool+", own"]["ok"] == 0 {
				t.Errorf("%s as a user never succeeded on its own process: %v", tool, counts["nobody "+tool+", own"])
			}
		}
	}

	// Report, and fail on undocumented errnos.
	var lines []string
	for op, byErr := range counts {
		for name, n := range byErr {
			lines = append(lines, fmt.Sprintf("%-24s %-8s %d", op, name, n))
			if name != "ok" && name != "EOF" && !allowedErrnos[name] {
				t.Errorf("%s failed %d times with %s", op, n, name)
			}
		}
	}
	sort.Strings(lines)
	t.Logf("%d operations in %v, %d processes started; by operation and result:\n%s", ops.Load(), duration, spawned.Load(), strings.Join(lines, "\n"))

	// Everything given back. go-fuse keeps a pool of idle request readers
	// whose size floats between one and its maxReaders (GOMAXPROCS, at
	// least 2, at most 16); beyond that any goroutine is a leak, and so is
	// any descriptor.
	readerPool := min(max(runtime.GOMAXPROCS(0), 2), 16)
	var g, fds int
	poll(10*time.Second, func() bool { g, fds = m.stats(); return g <= baseG && fds <= baseFD })
	t.Logf("daemon goroutines %d -> %d, fds %d -> %d", baseG, g, baseFD, fds)
	if g > baseG+readerPool || fds > baseFD {
		t.Errorf("daemon did not give back: goroutines %d (baseline %d, reader pool %d), fds %d (baseline %d)", g, baseG, readerPool, fds, baseFD)
	}
	m.alive()
}

// TestSigtermDuringReads: SIGTERM while a dd is reading waits for it to
// finish, then unmounts and exits 0; the dd gets all its data.
func TestSigtermDuringReads(t *testing.T) {
	tg := startTarget(t, "", 256<<20)
	m := startMount(t)
	file := m.path(itoa(tg.pid), tg.region(tg.addr["pattern"]).Name())
	out := filepath.Join(t.TempDir(), "copy")
	dd := exec.Command("dd", "if="+file, "of="+out, "bs=64k")
	if err := dd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "dd to be reading", func() (string, bool) {
		st, err := os.Stat(out)
		return fmt.Sprint(st, err), err == nil && st.Size() > 0
	})
	m.cmd.Process.Signal(syscall.SIGTERM)
	if err := dd.Wait(); err != nil {
		t.Errorf("dd during SIGTERM: %v", err)
	}
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not exit after the reader finished")
	}
	if code := m.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit %d: %s", code, m.stderr.String())
	}
	if isMounted(m.dir) {
		t.Errorf("mount left behind")
	}
	if b, _ := os.ReadFile(out); string(b) != string(tg.pattern) {
		t.Errorf("dd got %d bytes that differ from the region", len(b))
	}
}
