//go:build linux

package integration

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/procmem/procmem/procfs"
)

// target is a running testdata/target.c.
type target struct {
	t       testing.TB
	cmd     *exec.Cmd
	pid     int
	in      io.WriteCloser
	out     *bufio.Reader
	addr    map[string]uint64 // what it announced: marker, pattern, ...
	marker  string
	pattern []byte          // expected content of the pattern region
	looked  map[string]bool // region names unlookedRegion gave out
}

const defaultPatternSize = 64 << 20

// patternByte is target.c's pattern_byte.
func patternByte(i uint64) byte { return byte((i * 7) ^ (i >> 12) ^ 0x5a) }

func expectedPattern(size uint64) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = patternByte(uint64(i))
	}
	if size > 1<<20+16 {
		copy(b[1<<20-3:], "STRADDLE")
	}
	return b
}

// startTarget runs the target binary at path (targetBin if empty) and
// stops it when the test ends.
func startTarget(t testing.TB, path string, patternSize uint64) *target {
	t.Helper()
	if path == "" {
		path = targetBin
	}
	return startTargetAs(t, nil, path, patternSize)
}

// startTargetAs runs the target through a command prefix that execs it,
// such as setpriv or unshare, so it runs with other credentials.
func startTargetAs(t testing.TB, prefix []string, path string, patternSize uint64, extra ...string) *target {
	t.Helper()
	args := append(append(append([]string(nil), prefix...), path, fmt.Sprintf("%#x", patternSize)), extra...)
	cmd := exec.Command(args[0], args[1:]...)
	in, out := startPiped(t, cmd)
	tg := &target{t: t, cmd: cmd, pid: cmd.Process.Pid, in: in, out: out, addr: map[string]uint64{}}
	for {
		line, err := tg.readLine(30 * time.Second)
		if err != nil {
			t.Fatalf("target did not get ready: %v", err)
		}
		if line == "ready" {
			break
		}
		name, value, _ := strings.Cut(line, " ")
		v, err := strconv.ParseUint(strings.TrimPrefix(value, "0x"), 16, 64)
		if name == "pid" {
			v, err = strconv.ParseUint(value, 10, 64)
		}
		if err != nil {
			t.Fatalf("target said %q: %v", line, err)
		}
		tg.addr[name] = v
	}
	if pid := int(tg.addr["pid"]); pid != tg.pid {
		if len(prefix) == 0 || prefix[0] != spawnatBin {
			t.Fatalf("target says it is pid %d, started as %d: the prefix %q must exec it", pid, tg.pid, prefix)
		}
		tg.pid = pid // spawnat's child: it dies with spawnat
	}
	tg.marker = fmt.Sprintf("PMMARK-%08x", tg.pid)
	tg.pattern = expectedPattern(tg.addr["pattern_size"])
	return tg
}

func (tg *target) stop() {
	if tg.cmd.ProcessState != nil {
		return
	}
	tg.cmd.Process.Kill()
	tg.cmd.Wait()
}

// execAgain has the target exec itself (same pid, new address space) and
// waits until the new image is ready.
func (tg *target) execAgain() {
	tg.t.Helper()
	fmt.Fprintf(tg.in, "exec\n")
	for {
		line, err := tg.readLine(30 * time.Second)
		if err != nil {
			tg.t.Fatalf("target after exec: %v", err)
		}
		if line == "ready" {
			return
		}
	}
}

// kill ends the target and reaps it.
func (tg *target) kill() { tg.stop() }

func (tg *target) readLine(timeout time.Duration) (string, error) {
	type result struct {
		line string
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		line, err := tg.out.ReadString('\n')
		ch <- result{strings.TrimSuffix(line, "\n"), err}
	}()
	select {
	case r := <-ch:
		return r.line, r.err
	case <-time.After(timeout):
		return "", fmt.Errorf("no answer from the target in %v", timeout)
	}
}

// ask sends a command and returns the answer line.
func (tg *target) ask(format string, a ...any) string {
	tg.t.Helper()
	if _, err := fmt.Fprintf(tg.in, format+"\n", a...); err != nil {
		tg.t.Fatalf("target: %v", err)
	}
	line, err := tg.readLine(10 * time.Second)
	if err != nil {
		tg.t.Fatalf("target: %v", err)
	}
	return line
}

// peek returns what the target itself sees at addr.
func (tg *target) peek(addr uint64, n int) []byte {
	tg.t.Helper()
	b, err := hex.DecodeString(tg.ask("peek %x %x", addr, n))
	if err != nil || len(b) != n {
		tg.t.Fatalf("peek %x %d: %q, %v", addr, n, b, err)
	}
	return b
}

func (tg *target) poke(addr uint64, b []byte) {
	tg.t.Helper()
	if got := tg.ask("poke %x %x", addr, b); got != "ok" {
		tg.t.Fatalf("poke: %q", got)
	}
}

// region returns the target's region that contains addr, from maps.
func (tg *target) region(addr uint64) procfs.Region {
	tg.t.Helper()
	regions, err := pinned(tg.t, tg.pid).Maps()
	if err != nil {
		tg.t.Fatal(err)
	}
	for _, r := range regions {
		if r.Contains(addr) {
			return r
		}
	}
	tg.t.Fatalf("0x%x is not mapped in the target", addr)
	return procfs.Region{}
}

func (tg *target) regionByPath(path string) procfs.Region {
	tg.t.Helper()
	regions, err := pinned(tg.t, tg.pid).Maps()
	if err != nil {
		tg.t.Fatal(err)
	}
	for _, r := range regions {
		if r.Path == path {
			return r
		}
	}
	tg.t.Fatalf("no %s in the target", path)
	return procfs.Region{}
}

// state is the target's state letter from /proc/PID/stat.
func (tg *target) state() byte {
	st, err := pinned(tg.t, tg.pid).Stat()
	if err != nil {
		tg.t.Fatal(err)
	}
	return st.State
}

// result is what a command did.
type result struct {
	stdout, stderr string
	code           int
}

// run runs a command to completion with a deadline.
func run(t testing.TB, stdin string, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %q did not finish in 2 minutes", name, args)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// procmem runs the binary under test.
func procmem(t testing.TB, args ...string) result {
	t.Helper()
	return run(t, "", procmemBin, args...)
}

// mustSucceed fails the test unless r exited 0.
func mustSucceed(t testing.TB, r result, what string) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", what, r.code, r.stdout, r.stderr)
	}
}

// directRead reads the target's memory straight from /proc/PID/mem.
func directRead(t testing.TB, pid int, addr uint64, n int) []byte {
	t.Helper()
	m := procMem(t, pid, false)
	b := make([]byte, n)
	if _, err := m.ReadAt(b, int64(addr)); err != nil {
		t.Fatal(err)
	}
	return b
}

// procMem opens /proc/PID/mem itself, the kernel's interface procmem is
// compared with; it is closed when the test ends.
func procMem(t testing.TB, pid int, write bool) *os.File {
	t.Helper()
	flag := os.O_RDONLY
	if write {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/mem", pid), flag, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// pinned pins process pid for the rest of the test.
func pinned(t testing.TB, pid int) *procfs.Process {
	t.Helper()
	p, err := procfs.Open(pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func itoa(n int) string { return strconv.Itoa(n) }

// unlookedRegion names a region of the target's that no test has looked up
// through a mount yet, a different one each call, and has the kernel drop
// the names it caches (a name once looked up, or listed by READDIRPLUS,
// may be answered from the cache for every caller). The target must have
// been started with "mappings N".
func (tg *target) unlookedRegion() string {
	tg.t.Helper()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("2"), 0); err != nil {
		tg.t.Fatalf("dropping the kernel's cached names: %v", err)
	}
	if tg.looked == nil {
		tg.looked = map[string]bool{}
	}
	regions, err := pinned(tg.t, tg.pid).Maps()
	if err != nil {
		tg.t.Fatal(err)
	}
	for _, r := range regions {
		if r.Size() == tg.addr["page"] && r.Path == "" && !tg.looked[r.Name()] {
			tg.looked[r.Name()] = true
			return r.Name()
		}
	}
	tg.t.Fatal("no region left that no test looked up: start the target with more mappings")
	return ""
}
