//go:build linux

package integration

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
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
