package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"github.com/procmem/procmem/procfs"
)

func TestParseHexBytes(t *testing.T) {
	for in, want := range map[string][]byte{
		"deadbeef": {0xde, 0xad, 0xbe, 0xef}, "de ad be ef": {0xde, 0xad, 0xbe, 0xef},
		"0xde,0xad": {0xde, 0xad}, "DE:AD": {0xde, 0xad},
	} {
		got, err := parseHexBytes(in)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("parseHexBytes(%q) = % x, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "abc", "zz", "0x", " "} {
		if _, err := parseHexBytes(in); err == nil {
			t.Errorf("parseHexBytes(%q) succeeded", in)
		}
	}
}

func FuzzParseHexBytes(f *testing.F) {
	f.Add("de ad be ef")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := parseHexBytes(s)
		if err == nil && len(b) == 0 {
			t.Fatalf("parseHexBytes(%q) accepted nothing", s)
		}
	})
}

func TestEncodeValue(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	tests := []struct {
		typ, value string
		order      binary.AppendByteOrder
		want       []byte
	}{
		{"uint8", "255", le, []byte{0xff}},
		{"int8", "-1", le, []byte{0xff}},
		{"int16", "-2", be, []byte{0xff, 0xfe}},
		{"uint32", "0xC0DEFACE", le, []byte{0xce, 0xfa, 0xde, 0xc0}},
		{"uint32", "0xC0DEFACE", be, []byte{0xc0, 0xde, 0xfa, 0xce}},
		{"int64", "-1", le, bytes.Repeat([]byte{0xff}, 8)},
		{"float", "1.5", le, []byte{0, 0, 0xc0, 0x3f}},
		{"double", "1.5", be, []byte{0x3f, 0xf8, 0, 0, 0, 0, 0, 0}},
	}
	for _, tt := range tests {
		got, err := encodeValue(tt.typ, tt.value, tt.order)
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("encodeValue(%s, %s) = % x, %v; want % x", tt.typ, tt.value, got, err, tt.want)
		}
	}
	for _, bad := range [][2]string{{"uint8", "256"}, {"int8", "128"}, {"uint32", "-1"}, {"float", "x"}, {"int128", "1"}} {
		if _, err := encodeValue(bad[0], bad[1], le); err == nil {
			t.Errorf("encodeValue(%s, %s) succeeded", bad[0], bad[1])
		}
	}
}

func TestCovered(t *testing.T) {
	regions := []procfs.Region{{Start: 0x1000, End: 0x2000}, {Start: 0x2000, End: 0x3000}, {Start: 0x5000, End: 0x6000}}
	for _, c := range []struct {
		start, end uint64
		want       bool
	}{
		{0x1000, 0x1001, true}, {0x1ff0, 0x2010, true}, {0x1000, 0x3000, true},
		{0x2ff0, 0x3010, false}, {0x4000, 0x4001, false}, {0x5fff, 0x6001, false}, {0x0, 0x10, false},
	} {
		if got := covered(regions, c.start, c.end); got != c.want {
			t.Errorf("covered(%x-%x) = %v", c.start, c.end, got)
		}
	}
}

// TestRunInProcess exercises run itself: exit codes and one-line errors.
func TestRunInProcess(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"-p", "self", "statm"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "total program size") {
		t.Errorf("statm of self: %d %q %q", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"-p", "self", "write", "-a", "0", "-s", "x"}, &out, &errOut); code != 1 || !strings.HasPrefix(errOut.String(), "procmem: ") || strings.Count(errOut.String(), "\n") != 1 {
		t.Errorf("write to page 0: %d %q", code, errOut.String())
	}
	errOut.Reset()
	if code := run([]string{"nope"}, &out, &errOut); code != 2 {
		t.Errorf("unknown verb: exit %d", code)
	}
}

func TestResolve(t *testing.T) {
	if pid, err := resolvePID("self"); err != nil || pid != os.Getpid() {
		t.Errorf("resolvePID(self) = %d, %v", pid, err)
	}
	for _, bad := range []string{"", "0", "-1", "x", "012", "99999999999"} {
		if _, err := resolvePID(bad); err == nil {
			t.Errorf("resolvePID(%q) succeeded", bad)
		}
	}
	a := exec.Command("sleep", "60")
	b := exec.Command("sleep", "60")
	for _, c := range []*exec.Cmd{a, b} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer func(c *exec.Cmd) { c.Process.Kill(); c.Wait() }(c)
	}
	pids, err := findByName("sleep")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, pid := range pids {
		if pid == a.Process.Pid || pid == b.Process.Pid {
			found++
		}
	}
	if found != 2 {
		t.Errorf("findByName(sleep) = %v, want both %d and %d", pids, a.Process.Pid, b.Process.Pid)
	}
	if _, err := resolveName("sleep"); err == nil || !strings.Contains(err.Error(), "processes are named") {
		t.Errorf("ambiguous name: %v", err)
	}
	if _, err := resolveName("no-such-process-name"); err == nil {
		t.Error("unknown name resolved")
	}
}

// TestMessage: the CLI's one error-to-message function keeps messages on
// one line and explains running out of descriptors.
func TestMessage(t *testing.T) {
	if got := message(&os.PathError{Op: "open", Path: "/proc/1", Err: syscall.EMFILE}); !strings.Contains(got, "too many open files") || !strings.Contains(got, "ulimit -n") {
		t.Errorf("EMFILE: %q", got)
	}
	if got := message(errors.New("a\nb")); got != "a; b" {
		t.Errorf("two lines: %q", got)
	}
}

// TestManPageCurrent: docs/procmem.1 is what the verb table makes now.
func TestManPageCurrent(t *testing.T) {
	var want bytes.Buffer
	if err := manPage(&want); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("docs/procmem.1")
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Errorf("docs/procmem.1 is not current (%v): run 'go run . man > docs/procmem.1'", err)
	}
}

// TestCompletion: the shells' scripts offer the verbs and each verb's
// flags; bash's, run, completes a verb and a flag.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		var out, errOut bytes.Buffer
		if code := run([]string{"completion", shell}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "search") || !strings.Contains(out.String(), "no-default-filter") {
			t.Errorf("completion %s: exit %d, %q", shell, code, errOut.String())
		}
	}
	var script bytes.Buffer
	run([]string{"completion", "bash"}, &script, io.Discard)
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ words, want string }{
		{"procmem se", "search"},
		{"procmem -p self read --ran", "--range"},
		{"procmem completion f", "fish"},
		// After the verb -P is a pathname, offered from the process's maps.
		{fmt.Sprintf("procmem -p %d info -P /", os.Getpid()), exe},
		{"procmem -p 1 scan -t any", "anyint anynumber"},
		{"procmem -p 1 scan -e l", "little"},
	} {
		prog := script.String() + fmt.Sprintf("\nCOMP_WORDS=(%s); COMP_CWORD=%d; _procmem; echo \"${COMPREPLY[@]}\"\n", c.words, len(strings.Fields(c.words))-1)
		out, err := exec.Command(bash, "-c", prog).CombinedOutput()
		if err != nil || !strings.Contains(string(out), c.want) {
			t.Errorf("completing %q: %v %q, want %q", c.words, err, out, c.want)
		}
		if strings.Contains(c.words, "scan -") && strings.Contains(string(out), "main.go") {
			t.Errorf("completing %q offers file names: %q", c.words, out)
		}
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"--version"}, &out, io.Discard); code != 0 || !strings.HasPrefix(out.String(), "procmem ") || !strings.Contains(out.String(), "go1") {
		t.Errorf("--version: exit %d, %q", code, out.String())
	}
}
