//go:build linux

// Package integration runs the real procmem binary, as its own process,
// against target processes whose memory the tests know, and drives it with
// the tools people use: xxd, dd, cp, cmp, grep, hexedit, gdb.
package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	procmemBin string // the procmem binary under test
	targetBin  string // testdata/target.c, built
	fdholdBin  string // testdata/fdhold.c, built
	spawnatBin string // testdata/spawnat.c, built
	coreBin    string // testdata/coretarget.c, built
	gameBin    string // testdata/game.c, built
	aioBin     string // testdata/aioread.c, built
	maprootBin string // testdata/maproot.c, built
	usageBin   string // testdata/usagetarget.c, built
	binDir     string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "procmem-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	procmemBin = filepath.Join(dir, "procmem")
	targetBin = filepath.Join(dir, "target")
	fdholdBin = filepath.Join(dir, "fdhold")
	spawnatBin = filepath.Join(dir, "spawnat")
	coreBin = filepath.Join(dir, "coretarget")
	gameBin = filepath.Join(dir, "game")
	aioBin = filepath.Join(dir, "aioread")
	maprootBin = filepath.Join(dir, "maproot")
	usageBin = filepath.Join(dir, "usagetarget")
	build := exec.Command("go", "build", "-o", procmemBin, "..")
	// Built as the README builds it, static: a procmem that maps libc
	// would share its pages with the target while it measures, and lower
	// the target's Pss that TestUsageKinds compares with smaps_rollup.
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if cover := os.Getenv("PROCMEM_COVERDIR"); cover != "" {
		// Every run of the binary, the daemons included, writes its
		// coverage there; .ci/run reports it.
		build = exec.Command("go", "build", "-cover", "-coverpkg=github.com/procmem/procmem/...", "-o", procmemBin, "..")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		os.Setenv("GOCOVERDIR", cover)
	}
	if other := os.Getenv("PROCMEM_BIN"); other != "" {
		// Another build under test, such as one with a fix taken out, to
		// show that the tests catch what it lacks.
		build = exec.Command("cp", other, procmemBin)
	}
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building procmem:", err)
		return 1
	}
	for bin, src := range map[string]string{targetBin: "testdata/target.c", fdholdBin: "testdata/fdhold.c", spawnatBin: "testdata/spawnat.c", coreBin: "testdata/coretarget.c", gameBin: "testdata/game.c", aioBin: "testdata/aioread.c", maprootBin: "testdata/maproot.c", usageBin: "testdata/usagetarget.c"} {
		if out, err := exec.Command("cc", "-O0", "-g", "-Wall", "-pthread", "-o", bin, src).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s (needs a C compiler): %v\n%s", src, err, out)
			return 1
		}
	}
	code := m.Run()
	sayWhatSkipped()
	return code
}

// skipped are the reasons tests skipped for, on a machine without CI set.
var (
	skippedMu sync.Mutex
	skipped   []string
)

// sayWhatSkipped tells a developer which tests skipped, even without -v:
// go test shows a passing package's output only with -v, so the list goes
// to the terminal when there is one.
func sayWhatSkipped() {
	skippedMu.Lock()
	defer skippedMu.Unlock()
	if len(skipped) == 0 {
		return
	}
	w := os.Stderr
	if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
		defer tty.Close()
		w = tty
	}
	fmt.Fprintf(w, "procmem integration: %d tests SKIPPED (run ./test.sh, or set CI=true to make them fail):\n  %s\n",
		len(skipped), strings.Join(skipped, "\n  "))
}

// requireTool skips the test when a tool is missing, and fails it in CI
// (CI set), where every tool must be installed by .ci/run.
func requireTool(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			skipOrFail(t, "%s is not installed", name)
		}
	}
}

func skipOrFail(t testing.TB, format string, a ...any) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI must not skip: "+format, a...)
	}
	skippedMu.Lock()
	skipped = append(skipped, t.Name()+": "+fmt.Sprintf(format, a...))
	skippedMu.Unlock()
	t.Skipf(format, a...)
}

// requireRoot is for tests that switch users or read other users' memory.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root")
	}
}

// waitFor polls cond until it holds, failing the test after 10 seconds;
// cond says what it saw, for the failure message.
func waitFor(t testing.TB, what string, cond func() (string, bool)) string {
	t.Helper()
	return waitWithin(t, 10*time.Second, what, cond)
}

// waitWithin is waitFor with another bound, for what must happen within a
// promised time (an entry timeout, a cleanup).
func waitWithin(t testing.TB, timeout time.Duration, what string, cond func() (string, bool)) string {
	t.Helper()
	var out string
	if !poll(timeout, func() bool { var ok bool; out, ok = cond(); return ok }) {
		t.Fatalf("timed out after %v waiting for %s; last:\n%s", timeout, what, out)
	}
	return out
}

// poll calls cond every 20 ms until it holds or timeout passes, and
// reports whether it held: the one loop every wait of these tests uses.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
