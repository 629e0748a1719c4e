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
	"testing"
)

var (
	procmemBin string // the procmem binary under test
	targetBin  string // testdata/target.c, built
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
	build := exec.Command("go", "build", "-o", procmemBin, "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building procmem:", err)
		return 1
	}
	if out, err := exec.Command("cc", "-O0", "-g", "-Wall", "-pthread", "-o", targetBin, "testdata/target.c").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the target (needs a C compiler): %v\n%s", err, out)
		return 1
	}
	return m.Run()
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
	t.Skipf(format, a...)
}

// requireRoot is for tests that switch users or read other users' memory.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root")
	}
}
