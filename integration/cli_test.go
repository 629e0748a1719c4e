//go:build linux

package integration

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procmem/procmem/report"
)

func TestInfo(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	pid := itoa(tg.pid)
	r := procmem(t, "-p", pid, "info")
	mustSucceed(t, r, "info")
	pat := tg.region(tg.addr["pattern"])
	line := fmt.Sprintf("%012x-%012x     1.00MiB  rw-p\n", pat.Start, pat.End)
	if !strings.Contains(r.stdout, line) {
		t.Errorf("info lacks the pattern region line %q:\n%s", line, r.stdout)
	}
	heap := tg.regionByPath("[heap]")
	if !strings.Contains(r.stdout, report.RegionLine(heap)+"\n") {
		t.Errorf("info lacks the heap line")
	}
	if strings.Contains(r.stdout, "[vvar]") || strings.Contains(r.stdout, "[vsyscall]") {
		t.Errorf("info shows unreadable regions by default")
	}
	if !regexp.MustCompile(`(?m)^-{72}\nTotal: [0-9.]+[KMG]iB - [0-9]+ bytes\n\z`).MatchString(r.stdout) {
		t.Errorf("no total line at the end:\n%s", r.stdout)
	}
	all := procmem(t, "-p", pid, "info", "--no-default-filter")
	if !strings.Contains(all.stdout, "[vvar]") {
		t.Errorf("--no-default-filter does not show [vvar]")
	}
	onlyHeap := procmem(t, "-p", pid, "info", "-P", "[heap]")
	if lines := strings.Split(onlyHeap.stdout, "\n"); lines[0] != report.RegionLine(heap) || len(lines) != 4 {
		t.Errorf("info -P [heap]:\n%s", onlyHeap.stdout)
	}
	writable := procmem(t, "-p", pid, "info", "-w")
	for _, l := range strings.Split(writable.stdout, "\n") {
		if f := strings.Fields(l); len(f) >= 3 && strings.Contains(f[0], "-") && f[2][1] != 'w' {
			t.Errorf("info -w shows a non-writable region: %s", l)
		}
	}
	verbose := procmem(t, "-p", pid, "info", "-v", "-P", "[heap]")
	for _, want := range []string{"    Rss               :", "    Private_Dirty     :", "    VmFlags:\n", "        rd - readable\n", "        wr - writable\n"} {
		if !strings.Contains(verbose.stdout, want) {
			t.Errorf("info -v lacks %q:\n%s", want, verbose.stdout)
		}
	}
	raw := procmem(t, "-p", pid, "info", "-R")
	smaps, _ := os.ReadFile("/proc/" + pid + "/smaps")
	if first := strings.SplitN(string(smaps), "\n", 2)[0]; !strings.HasPrefix(raw.stdout, first+"\n") || !strings.Contains(raw.stdout, "VmFlags:") {
		t.Errorf("info -R is not raw smaps")
	}
}

func TestReadHexdump(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	pid := itoa(tg.pid)
	r := procmem(t, "-p", pid, "read", "-P", "[heap]")
	mustSucceed(t, r, "read -P [heap]")
	heap := tg.regionByPath("[heap]")
	if first := strings.SplitN(r.stdout, "\n", 2)[0]; first != report.RegionLine(heap) {
		t.Errorf("first line %q, want the heap's info line", first)
	}
	// The row holding the marker, exactly as the seed formats it.
	rowAddr := tg.addr["marker"] &^ 15
	row := string(report.FormatRow(nil, rowAddr, directRead(t, tg.pid, rowAddr, 16), 16))
	if !strings.Contains(r.stdout, row) || !strings.Contains(row, tg.marker[:min(len(tg.marker), 16-int(tg.addr["marker"]&15))]) {
		t.Errorf("hexdump lacks the marker row %q", row)
	}
	if !strings.Contains(r.stdout, "  -- skipped zeroes: ") {
		t.Errorf("no collapsed zero rows in a heap dump")
	}

	// -r ADDR:+LEN reads exactly that range, -W sets the row width.
	r = procmem(t, "-p", pid, "read", "-r", fmt.Sprintf("%x:+14", tg.addr["pattern"]), "-W", "8")
	mustSucceed(t, r, "read -r")
	var want bytes.Buffer
	want.WriteString(report.RegionLine(tg.region(tg.addr["pattern"])) + "\n") // the region, whole
	h := report.NewHexdump(&want, 8)
	h.Write(tg.addr["pattern"], tg.pattern[:20])
	h.Flush()
	if r.stdout != want.String() {
		t.Errorf("read -r -W 8:\n%s\nwant:\n%s", r.stdout, want.String())
	}
	for _, rng := range []string{fmt.Sprintf("%x:%x", tg.addr["pattern"], tg.addr["pattern"]+20), fmt.Sprintf("0x%x:-14", tg.addr["pattern"]+20)} {
		r := procmem(t, "-p", pid, "read", "-r", rng, "-W", "8")
		if !strings.Contains(r.stdout, fmt.Sprintf("%016x", tg.addr["pattern"]+8)) {
			t.Errorf("read -r %s:\n%s", rng, r.stdout)
		}
	}
}

func TestReadToFiles(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	pid := itoa(tg.pid)
	pat := tg.region(tg.addr["pattern"])
	dir := t.TempDir()
	rng := fmt.Sprintf("%x:%x", pat.Start, pat.End)

	out := filepath.Join(dir, "raw")
	mustSucceed(t, procmem(t, "-p", pid, "read", "-r", rng, "-o", out), "read -o")
	if b, _ := os.ReadFile(out); !bytes.Equal(b, tg.pattern) {
		t.Errorf("read -o wrote %d bytes that differ from the pattern", len(b))
	}

	split := filepath.Join(dir, "split")
	heap := tg.regionByPath("[heap]")
	mustSucceed(t, procmem(t, "-p", pid, "read", "-w", "-o", split, "--split"), "read --split")
	b, err := os.ReadFile(fmt.Sprintf("%s-%016x", split, pat.Start))
	if err != nil || !bytes.Equal(b, tg.pattern) {
		t.Errorf("--split file of the pattern region: %v", err)
	}
	if st, err := os.Stat(fmt.Sprintf("%s-%016x", split, heap.Start)); err != nil || st.Size() != int64(heap.Size()) {
		t.Errorf("--split file of the heap: %v", err)
	}

	// Region addresses exceed ext4's largest file; tmpfs holds them.
	shm, err := os.MkdirTemp("/dev/shm", "procmem-test-")
	if err != nil {
		skipOrFail(t, "no tmpfs at /dev/shm for --sparse: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	sparse := filepath.Join(shm, "sparse")
	r := procmem(t, "-p", pid, "read", "-r", rng, "-o", sparse, "--sparse")
	mustSucceed(t, r, "read --sparse")
	f, err := os.Open(sparse)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, len(tg.pattern))
	if _, err := f.ReadAt(got, int64(pat.Start)); err != nil || !bytes.Equal(got, tg.pattern) {
		t.Errorf("--sparse: region not at its address: %v", err)
	}
	var st syscall.Stat_t
	syscall.Fstat(int(f.Fd()), &st)
	if st.Size != int64(pat.End) || st.Blocks*512 > 2*int64(pat.Size()) {
		t.Errorf("--sparse file: size %d blocks %d, want size %d and about %d bytes allocated", st.Size, st.Blocks, pat.End, pat.Size())
	}

	img := filepath.Join(dir, "img")
	mustSucceed(t, procmem(t, "-p", pid, "read", "-r", rng, "--png", img), "read --png")
	pf, err := os.Open(fmt.Sprintf("%s-%016x.png", img, pat.Start))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	pic, err := png.Decode(pf)
	if err != nil {
		t.Fatal(err)
	}
	if b := pic.Bounds(); b.Dx() != 1024 || b.Dy() != len(tg.pattern)/1024 {
		t.Errorf("png is %v, want 1024 x %d", b, len(tg.pattern)/1024)
	}
	if r, _, _, _ := pic.At(5, 1).RGBA(); byte(r>>8) != tg.pattern[1024+5] {
		t.Errorf("png pixel (5,1) = %d, want %d", r>>8, tg.pattern[1024+5])
	}
}

func TestReadUnreadable(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	r := procmem(t, "-p", itoa(tg.pid), "read", "--no-default-filter", "-P", "[vvar]")
	if r.code != 1 || !strings.Contains(r.stderr, "procmem: ") || !strings.Contains(r.stderr, "input/output error") {
		t.Errorf("read of [vvar]: exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.HasPrefix(r.stdout, report.RegionLine(tg.regionByPath("[vvar]"))) {
		t.Errorf("the info line of [vvar] is not printed: %q", r.stdout)
	}
	r = procmem(t, "-p", itoa(tg.pid), "read", "--no-default-filter", "-P", "[vsyscall]")
	if r.code != 1 || !strings.Contains(r.stderr, "beyond the reach") {
		t.Errorf("read of [vsyscall]: exit %d, stderr %q", r.code, r.stderr)
	}
	// A range that spans the heap and unmapped memory reads what is mapped.
	if r := procmem(t, "-p", itoa(tg.pid), "read", "-r", "1000:+1000"); r.code != 1 || !strings.Contains(r.stderr, "not mapped") {
		t.Errorf("read of unmapped range: exit %d, %q", r.code, r.stderr)
	}
}

func TestWrite(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	pid := itoa(tg.pid)
	at := tg.addr["pattern"] + 100
	mustSucceed(t, procmem(t, "-p", pid, "write", "-a", fmt.Sprintf("%x", at), "-s", "hello"), "write -s")
	if got := tg.peek(at, 6); !bytes.Equal(got, append([]byte("hello"), tg.pattern[105])) {
		t.Errorf("write -s: target sees %q", got)
	}
	mustSucceed(t, procmem(t, "-p", pid, "write", "-a", fmt.Sprintf("0x%x", at), "-S", "hi"), "write -S")
	if got := tg.peek(at, 4); string(got) != "hi\x00l" {
		t.Errorf("write -S: target sees %q", got)
	}
	mustSucceed(t, procmem(t, "-p", pid, "write", "-a", fmt.Sprintf("%X", at), "-b", "de ad be ef"), "write -b")
	if got := tg.peek(at, 5); !bytes.Equal(got, []byte{0xde, 0xad, 0xbe, 0xef, 'o'}) {
		t.Errorf("write -b: target sees % x", got)
	}
	// Read-only memory is refused, and written with --force as
	// /proc/PID/mem allows.
	if r := procmem(t, "-p", pid, "write", "-a", fmt.Sprintf("%x", tg.addr["rodata"]), "-s", "READ"); r.code != 1 || !strings.Contains(r.stderr, "--force") {
		t.Errorf("write to r--p without --force: exit %d, %q", r.code, r.stderr)
	}
	if got := tg.peek(tg.addr["rodata"], 4); string(got) == "READ" {
		t.Errorf("a refused write to r--p landed")
	}
	mustSucceed(t, procmem(t, "-p", pid, "write", "--force", "-a", fmt.Sprintf("%x", tg.addr["rodata"]), "-s", "READ"), "write --force to r--p")
	if got := tg.peek(tg.addr["rodata"], 14); string(got) != "READ-only page" {
		t.Errorf("write to r--p: %q", got)
	}
	// A write that would run off the end of mapped memory writes nothing:
	// the stack is followed by unmapped memory.
	stack := tg.regionByPath("[stack]")
	before := directRead(t, tg.pid, stack.End-2, 2)
	r := procmem(t, "-p", pid, "write", "-a", fmt.Sprintf("%x", stack.End-2), "-s", "abcd")
	if r.code != 1 || !strings.Contains(r.stderr, "not mapped") {
		t.Errorf("write across the end of mapped memory: exit %d, %q", r.code, r.stderr)
	}
	if got := directRead(t, tg.pid, stack.End-2, 2); !bytes.Equal(got, before) {
		t.Errorf("a refused write changed memory: % x", got)
	}
}

func TestStatm(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	r := procmem(t, "-p", itoa(tg.pid), "statm")
	mustSucceed(t, r, "statm")
	s, err := pinned(t, tg.pid).Statm()
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	report.Statm(&want, s)
	if r.stdout != want.String() {
		t.Errorf("statm:\n%s\nwant:\n%s", r.stdout, want.String())
	}
	if !regexp.MustCompile(`^( *[0-9.]+(B|[KMG]iB)  (total program size|resident set size|shared size|text|data \+ stack)\n){5}$`).MatchString(r.stdout) {
		t.Errorf("statm format:\n%s", r.stdout)
	}
}

func TestList(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	r := procmem(t, "list")
	mustSucceed(t, r, "list")
	if !strings.Contains(r.stdout, fmt.Sprintf("%5d  target\n", tg.pid)) {
		t.Errorf("list lacks the target")
	}
}

func TestSearch(t *testing.T) {
	tg := startTarget(t, "", 4<<20)
	pid := itoa(tg.pid)
	matches := func(r result) []string {
		var addrs []string
		for _, l := range strings.Split(r.stdout, "\n") {
			if f := strings.Fields(l); len(f) >= 3 && !strings.HasPrefix(l, " ") {
				addrs = append(addrs, f[0])
			}
		}
		return addrs
	}
	r := procmem(t, "-p", pid, "search", "-s", tg.marker)
	mustSucceed(t, r, "search -s")
	if got := matches(r); len(got) != 1 || got[0] != fmt.Sprintf("%016x", tg.addr["marker"]) {
		t.Errorf("search for the marker: %q\n%s", got, r.stdout)
	}
	if !strings.Contains(r.stdout, fmt.Sprintf("[heap]+%x\n", tg.addr["marker"]-tg.regionByPath("[heap]").Start)) || !strings.Contains(r.stdout, "|"+tg.marker) {
		t.Errorf("search output lacks region or context:\n%s", r.stdout)
	}
	// Across the 1 MiB read-chunk boundary.
	r = procmem(t, "-p", pid, "search", "-s", "STRADDLE", "-w")
	if got := matches(r); len(got) != 1 || got[0] != fmt.Sprintf("%016x", tg.addr["pattern"]+1<<20-3) {
		t.Errorf("search across a chunk boundary: %q\n%s", got, r.stdout)
	}
	values := tg.addr["values"]
	le := binary.LittleEndian
	for _, c := range []struct {
		args []string
		addr uint64
	}{
		{[]string{"-t", "uint32", "0xC0DEFACE"}, values},
		{[]string{"-t", "int64", "--", "-1234567890123"}, values + 8},
		{[]string{"-t", "double", "3.0625"}, values + 16},
		{[]string{"-b", fmt.Sprintf("%x", le.AppendUint64(nil, math.Float64bits(3.0625)))}, values + 16},
		{[]string{"-t", "uint32", "-e", "big", "0xCEFADEC0"}, values},
	} {
		r := procmem(t, append([]string{"-p", pid, "search", "-P", "[heap]"}, c.args...)...)
		if got := matches(r); len(got) != 1 || got[0] != fmt.Sprintf("%016x", c.addr) {
			t.Errorf("search %q: %q, want %016x\n%s%s", c.args, got, c.addr, r.stdout, r.stderr)
		}
	}
	if r := procmem(t, "-p", pid, "search", "-s", "no such bytes anywhere 12345"); r.code != 1 {
		t.Errorf("search without a match: exit %d", r.code)
	}
}

func TestWatch(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	at := tg.addr["pattern"]
	cmd := exec.Command(procmemBin, "-p", itoa(tg.pid), "watch", "-r", fmt.Sprintf("%x:+10", at), "--interval", "20ms")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(what string, match func(string) bool) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("watch ended before %s: %s", what, stderr.String())
				}
				if match(l) {
					return
				}
			case <-timeout:
				t.Fatalf("watch did not print %s", what)
			}
		}
	}
	expect("the initial dump", func(l string) bool { return strings.HasPrefix(l, fmt.Sprintf("%016x", at)) })
	tg.poke(at+2, []byte("CHANGED"))
	expect("the change", func(l string) bool { return strings.Contains(l, "changed") })
	expect("the new bytes", func(l string) bool { return strings.Contains(l, "|") && strings.Contains(l, "CHANGED") })
	cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Errorf("watch after Ctrl-C: %v, want exit 0", err)
	}
}

func TestProcessByName(t *testing.T) {
	name := fmt.Sprintf("pmt%d", os.Getpid()%100000)
	bin := filepath.Join(t.TempDir(), name)
	if b, err := os.ReadFile(targetBin); err != nil || os.WriteFile(bin, b, 0o755) != nil {
		t.Fatal(err)
	}
	tg := startTarget(t, bin, 1<<20)
	r := procmem(t, "-P", name, "statm")
	mustSucceed(t, r, "-P NAME statm")
	r = procmem(t, "-P", name, "read", "-P", "[heap]")
	if !strings.Contains(r.stdout, tg.marker[:8]) {
		t.Errorf("-P NAME read: marker not found")
	}
	other := startTarget(t, bin, 1<<20)
	r = procmem(t, "-P", name, "statm")
	if r.code != 1 || !strings.Contains(r.stderr, itoa(tg.pid)) || !strings.Contains(r.stderr, itoa(other.pid)) {
		t.Errorf("ambiguous name: exit %d, %q; want both pids listed", r.code, r.stderr)
	}
	if r := procmem(t, "-P", "no-such-process", "info"); r.code != 1 || !strings.HasPrefix(r.stderr, "procmem: ") {
		t.Errorf("unknown name: exit %d, %q", r.code, r.stderr)
	}
}

func TestSuspend(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	cmd := exec.Command(procmemBin, "-p", itoa(tg.pid), "-S", "watch", "-r", fmt.Sprintf("%x", tg.addr["pattern"]))
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitFor(t, "the target to be stopped", func() (string, bool) { s := tg.state(); return string(s), s == 'T' })
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	if s := tg.state(); s == 'T' {
		t.Errorf("target still stopped after procmem -S was interrupted")
	}
	mustSucceed(t, procmem(t, "-p", itoa(tg.pid), "-S", "info"), "-S info")
	if s := tg.state(); s == 'T' {
		t.Errorf("target still stopped after -S info")
	}
	// A failing verb resumes it too.
	procmem(t, "-p", itoa(tg.pid), "-S", "read", "-r", "1000")
	if s := tg.state(); s == 'T' {
		t.Errorf("target still stopped after a failing -S read")
	}
	if got := tg.ask("peek %x 1", tg.addr["pattern"]); got == "" {
		t.Errorf("target does not answer")
	}
}

func TestBadInput(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	pid := itoa(tg.pid)
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-p", "999999999", "info"}, 1, "no process"},
		{[]string{"-p", "abc", "info"}, 2, "bad pid"},
		{[]string{"-p", pid, "write", "-a", "xyz", "-s", "a"}, 2, "bad address"},
		{[]string{"-p", pid, "write", "-a", "[1000", "-s", "a"}, 2, "bad address"},
		{[]string{"-p", pid, "read", "-r", "[0]:+4"}, 1, "reading the pointer at 0x0"},
		{[]string{"-p", pid, "write", "-a", "1000", "-b", "zz"}, 2, "bad hex bytes"},
		{[]string{"-p", pid, "read", "-r", "2000:1000"}, 2, "bad range"},
		{[]string{"-p", pid, "read", "-r", "10:-20"}, 2, "bad range"},
		{[]string{"-p", pid, "read", "-r", "g"}, 2, "bad range"},
		{[]string{"-p", pid, "read", "-r", "zz"}, 2, "bad range"},
		{[]string{"-p", pid, "read", "-W", "0"}, 2, "-W takes"},
		{[]string{"-p", pid, "search", "-t", "int8", "300"}, 2, "out of range for int8"},
		{[]string{"-p", pid, "search", "-t", "int8", "abc"}, 2, "not a number"},
		{[]string{"-p", pid, "search", "-b", "xyz"}, 2, "bad hex bytes"},
		{[]string{"-p", pid, "info", "-P", "[nothing]"}, 1, "no region"},
		{[]string{"-p", pid, "search", "-t", "int32", "99999999999"}, 2, "bad int32"},
		{[]string{"-p", "1", "read", "-P", "[heap]"}, 1, ""},
		{[]string{}, 2, "no verb"},
		{[]string{"frobnicate"}, 2, "unknown verb"},
		{[]string{"-p", pid, "read", "--bogus"}, 2, "unknown flag"},
		{[]string{"-p", pid, "write", "-s", "x"}, 2, "-a ADDR is required"},
		{[]string{"-p", pid, "write", "-a", "1000", "-s", "x", "-b", "00"}, 2, "exactly one"},
		{[]string{"-p", pid, "search", "-t", "int128", "1"}, 2, "unknown type"},
		{[]string{"-p", pid, "watch"}, 2, "-r RANGE is required"},
		{[]string{"-p", pid, "-P", "x", "info"}, 2, "exclude each other"},
		{[]string{"-p", pid, "read", "--split"}, 2, "go with -o"},
		{[]string{"-p", pid, "-S", "info"}, 0, ""},
		{[]string{"-S", "info"}, 1, "cannot suspend procmem itself"},
	} {
		r := procmem(t, c.args...)
		if r.code != c.code {
			t.Errorf("procmem %q: exit %d, want %d; stderr %q", c.args, r.code, c.code, r.stderr)
			continue
		}
		if c.code == 0 {
			continue
		}
		first := strings.SplitN(r.stderr, "\n", 2)[0]
		if !strings.HasPrefix(first, "procmem: ") || !strings.Contains(first, c.msg) {
			t.Errorf("procmem %q: stderr %q, want one line starting \"procmem: \" with %q", c.args, r.stderr, c.msg)
		}
		if strings.Contains(r.stderr, "goroutine") || strings.Contains(r.stderr, "panic") {
			t.Errorf("procmem %q printed a stack trace", c.args)
		}
		if strings.Contains(r.stderr, "strconv") || strings.Contains(r.stderr, "parsing") || strings.Contains(r.stderr, " : ") {
			t.Errorf("procmem %q: stderr %q shows Go's internals or an empty field", c.args, r.stderr)
		}
	}
}

func TestPermissionDenied(t *testing.T) {
	requireRoot(t)
	requireTool(t, "setpriv")
	tg := startTarget(t, "", 1<<20)
	r := run(t, "", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", procmemBin, "-p", itoa(tg.pid), "read", "-P", "[heap]")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "procmem: ") || !strings.Contains(r.stderr, "permission denied") {
		t.Errorf("reading root's process as nobody: exit %d, %q", r.code, r.stderr)
	}
}

func TestHelp(t *testing.T) {
	for _, verb := range []string{"info", "read", "write", "statm", "list", "search", "watch", "mount"} {
		a, b := procmem(t, "help", verb), procmem(t, verb, "--help")
		if a.code != 0 || b.code != 0 || a.stdout != b.stdout || !strings.HasPrefix(a.stdout, "usage: procmem") {
			t.Errorf("help %s and %s --help differ or fail:\n%s\n%s", verb, verb, a.stdout, b.stdout)
		}
	}
	if r := procmem(t, "--help"); r.code != 0 || !strings.Contains(r.stdout, "search") {
		t.Errorf("procmem --help: %d %q", r.code, r.stdout)
	}
}
