//go:build linux

package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/procmem/procmem/report"
	"golang.org/x/sys/unix"
)

// What a stranger hit on a first day with procmem (issues 25 and 26), each
// shown fixed.

// TestPathnameTakesBaseName: -P takes a mapped file's base name, as
// address expressions do, in every verb's region filter.
func TestPathnameTakesBaseName(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	pid := itoa(tg.pid)
	regions, err := pinned(t, tg.pid).Maps()
	if err != nil {
		t.Fatal(err)
	}
	libc := ""
	for _, r := range regions {
		if filepath.Base(r.Path) == "libc.so.6" {
			libc = r.Path
		}
	}
	if libc == "" {
		t.Fatal("the target maps no libc.so.6")
	}
	info := procmem(t, "-p", pid, "info", "-P", "libc.so.6")
	mustSucceed(t, info, "info -P libc.so.6")
	full := procmem(t, "-p", pid, "info", "-P", libc)
	if info.stdout != full.stdout || !strings.Contains(info.stdout, libc) {
		t.Errorf("info -P libc.so.6:\n%s\nwant what info -P %s prints:\n%s", info.stdout, libc, full.stdout)
	}
	// search and read select the same regions.
	if r := procmem(t, "-p", pid, "search", "-P", "libc.so.6", "-s", "GLIBC_2."); r.code != 0 || !strings.Contains(r.stdout, "libc.so.6+") {
		t.Errorf("search -P libc.so.6: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := procmem(t, "-p", pid, "read", "-P", "libc.so.6", "-o", os.DevNull); r.code != 0 {
		t.Errorf("read -P libc.so.6: exit %d, %s", r.code, r.stderr)
	}
	// A name that matches nothing says which names there are.
	r := procmem(t, "-p", pid, "info", "-P", "libc.so")
	if r.code != 1 || !strings.Contains(r.stderr, "libc.so.6") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("info -P libc.so: exit %d, %q; want one line that names libc.so.6", r.code, r.stderr)
	}
}

// TestReadPNGSaysWhatItWrote: --png reports the size of the image file it
// wrote, not the size of the region it shows.
func TestReadPNGSaysWhatItWrote(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	pat := tg.region(tg.addr["pattern"])
	img := filepath.Join(t.TempDir(), "img")
	r := procmem(t, "-p", itoa(tg.pid), "read", "-r", fmt.Sprintf("%x:%x", pat.Start, pat.End), "--png", img)
	mustSucceed(t, r, "read --png")
	name := fmt.Sprintf("%s-%016x.png", img, pat.Start)
	st, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("procmem: wrote %s to %s\n", report.Size(uint64(st.Size())), name); r.stderr != want {
		t.Errorf("read --png said %q, want %q (the file is %d bytes, the region %d)", r.stderr, want, st.Size(), pat.Size())
	}
}

// TestWriteSaysWhatItWrote: write prints one line: how many bytes, at
// which address, in which region.
func TestWriteSaysWhatItWrote(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	at := tg.addr["marker"]
	heap := tg.region(at)
	r := procmem(t, "-p", itoa(tg.pid), "write", "-a", fmt.Sprintf("%x", at), "-s", "PMXX")
	mustSucceed(t, r, "write")
	if want := fmt.Sprintf("wrote 4 bytes at 0x%x ([heap]+%x)\n", at, at-heap.Start); r.stdout != want {
		t.Errorf("write printed %q, want %q", r.stdout, want)
	}
	if got := tg.peek(at, 4); string(got) != "PMXX" {
		t.Errorf("the target sees %q", got)
	}
}

// TestPastTheLastAddress: bytes that would run past 0xffffffffffffffff
// are a usage error that says so, in every verb that takes an address and
// a length, and nothing is written.
func TestPastTheLastAddress(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	pid := itoa(tg.pid)
	for _, args := range [][]string{
		{"write", "-a", "ffffffffffffffff", "-b", "0000"},
		{"write", "-a", "fffffffffffffffe", "-s", "abc"},
		{"freeze", "fffffffffffffffe=1"},
		{"read", "-r", "ffffffffffffffff:+2"},
		{"read", "-r", "ffffffffffffffff"},
		{"search", "-r", "ffffffffffffffff:+2", "-s", "a"},
		{"watch", "-r", "fffffffffffffff0:+20"},
	} {
		r := procmem(t, append([]string{"-p", pid}, args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, "past the last address") || strings.Contains(r.stderr, "0x1 ") {
			t.Errorf("%q: exit %d, %q; want a usage error that says the bytes run past the last address", args, r.code, r.stderr)
		}
	}
}

// TestInfoKeepsPathname: a pathname that ends in a space is printed as it
// is, trailing space and all.
func TestInfoKeepsPathname(t *testing.T) {
	requireTool(t, "python3")
	path := filepath.Join(t.TempDir(), "ends in a space ")
	os.WriteFile(path, []byte("data"), 0o644)
	cmd := exec.Command("python3", "-c", `import mmap, sys
f = open(sys.argv[1], "rb")
m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
print("ready", flush=True)
sys.stdin.read()
`, path)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); cmd.Wait() })
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("python3: %q, %v", line, err)
	}
	r := procmem(t, "-p", itoa(cmd.Process.Pid), "info", "-P", path)
	mustSucceed(t, r, "info -P of a path that ends in a space")
	if line, _, _ := strings.Cut(r.stdout, "\n"); !strings.HasSuffix(line, "  "+path) {
		t.Errorf("info -P %q printed %q, want the pathname as it is", path, line)
	}
}

// TestReadToDevNull: read -o /dev/null (to time a whole read) streams:
// /dev/null seeks but cannot be truncated to a region's end. A read into
// what is no regular file that fails leaves it where it was: root's
// procmem removed /dev/null that way. (The test uses a null device of its
// own: a build with that bug must not remove the machine's.)
func TestReadToDevNull(t *testing.T) {
	requireRoot(t) // mknod
	requireTool(t, "mkfifo", "head")
	tg := startTarget(t, "", 1<<20)
	null := filepath.Join(t.TempDir(), "null")
	if err := syscall.Mknod(null, syscall.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	r := procmem(t, "-p", itoa(tg.pid), "read", "-o", null)
	if r.code != 0 || !strings.Contains(r.stderr, "wrote ") {
		t.Errorf("read -o NULL: exit %d, %q", r.code, r.stderr)
	}
	if st, err := os.Lstat(null); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("the null device after read -o into it: %v, %v", st, err)
	}
	if r := procmem(t, "-p", itoa(tg.pid), "read", "-w", "-o", null, "--sparse"); r.code != 2 {
		t.Errorf("read --sparse -o NULL: exit %d, %q; want a usage error", r.code, r.stderr)
	}

	// A pipe whose reader goes away after 10 bytes: the read fails with
	// EPIPE, and the pipe stays.
	fifo := filepath.Join(t.TempDir(), "fifo")
	mustSucceed(t, run(t, "", "mkfifo", fifo), "mkfifo")
	reader := exec.Command("head", "-c", "10", fifo)
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reader.Process.Kill(); reader.Wait() })
	pat := tg.region(tg.addr["pattern"])
	r = procmem(t, "-p", itoa(tg.pid), "read", "-r", fmt.Sprintf("%x:%x", pat.Start, pat.End), "-o", fifo)
	if r.code != 1 || !strings.Contains(r.stderr, "broken pipe") {
		t.Errorf("read -o into a pipe closed early: exit %d, %q", r.code, r.stderr)
	}
	if st, err := os.Lstat(fifo); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the pipe after a failed read -o into it: %v, %v; want it left where it was", st, err)
	}
}
