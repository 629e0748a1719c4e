//go:build linux

package integration

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// helperProc is one of the tests' C helpers running: it announces what it
// set up as "NAME VALUE" lines (addresses in hex), then "ready", and
// answers commands on its standard input.
type helperProc struct {
	t    testing.TB
	cmd  *exec.Cmd
	pid  int
	in   io.WriteCloser
	out  *bufio.Reader
	addr map[string]uint64 // what it announced, by name (not its pid)
}

// startHelper runs bin with args until it says "ready", and ends it when
// the test does.
func startHelper(t testing.TB, bin string, args ...string) *helperProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	in, out := startPiped(t, cmd)
	h := &helperProc{t: t, cmd: cmd, pid: cmd.Process.Pid, in: in, out: out, addr: map[string]uint64{}}
	for {
		line, err := h.out.ReadString('\n')
		if err != nil {
			t.Fatalf("%s did not get ready: %v", bin, err)
		}
		line = strings.TrimSpace(line)
		if line == "ready" {
			return h
		}
		name, v, _ := strings.Cut(line, " ")
		if n, err := strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 64); err == nil && name != "pid" {
			h.addr[name] = n
		}
	}
}

// startPiped starts cmd with a pipe to its standard input and one from its
// standard output, its standard error the test's, and ends it when the
// test does.
func startPiped(t testing.TB, cmd *exec.Cmd) (io.WriteCloser, *bufio.Reader) {
	t.Helper()
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	return in, bufio.NewReader(out)
}

// discardOutput lets the helper write on without anyone reading.
func (h *helperProc) discardOutput() { go io.Copy(io.Discard, h.out) }
