//go:build linux

package integration

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/procmem/procmem/report"
)

// The rough edges a new user hit (issue 18), each shown fixed.

// TestMountRefusesBadMountpoints: a regular file, and a live procmem mount,
// are refused before anything is mounted; nothing is left behind.
func TestMountRefusesBadMountpoints(t *testing.T) {
	requireFUSE(t)
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	for range 2 { // a second try must not "recover" anything either
		r := procmem(t, "mount", file)
		if r.code != 1 || !strings.Contains(r.stderr, "not a directory") {
			t.Errorf("mount on a regular file: exit %d, %q", r.code, r.stderr)
		}
		if isMounted(file) {
			syscall.Unmount(file, syscall.MNT_DETACH)
			t.Fatalf("mount on a regular file left a mount behind")
		}
	}

	m := startMount(t)
	r := procmem(t, "mount", m.dir)
	if r.code != 1 || !strings.Contains(r.stderr, "already a procmem mount") {
		t.Errorf("mount over a live procmem mount: exit %d, %q", r.code, r.stderr)
	}
	if n := strings.Count(readFile(t, "/proc/self/mountinfo"), " "+m.dir+" "); n != 1 {
		t.Errorf("%d mounts at %s after mounting over it, want 1", n, m.dir)
	}
	m.alive()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReadPastMapping: read -r whose range runs past its mapping prints
// what is mapped, names its region whole, and says on stderr what is not
// mapped, exit 1; -o writes the mapped part too.
func TestReadPastMapping(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	pid := itoa(tg.pid)
	pattern := tg.region(tg.addr["pattern"])
	page := tg.addr["page"]
	if got := tg.ask("unmap %x %x", pattern.End-page, page); got != "ok" {
		t.Fatalf("unmap: %q", got)
	}
	pattern.End -= page
	rng := fmt.Sprintf("%x:+%x", pattern.End-16, 32)
	r := procmem(t, "-p", pid, "read", "-r", rng)
	want := fmt.Sprintf("0x%x-0x%x is not mapped in process %d", pattern.End, pattern.End+16, tg.pid)
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("read -r %s past the mapping: exit %d, stderr %q; want exit 1 and %q", rng, r.code, r.stderr, want)
	}
	if first := strings.SplitN(r.stdout, "\n", 2)[0]; first != report.RegionLine(pattern) {
		t.Errorf("read -r header: %q, want the whole region %q", first, report.RegionLine(pattern))
	}
	if !strings.Contains(r.stdout, fmt.Sprintf("%016x", pattern.End-16)) {
		t.Errorf("read -r past the mapping printed no mapped bytes:\n%s", r.stdout)
	}
	out := filepath.Join(t.TempDir(), "part")
	r = procmem(t, "-p", pid, "read", "-r", rng, "-o", out)
	if b, err := os.ReadFile(out); r.code != 1 || err != nil || !bytes.Equal(b, tg.pattern[pattern.Size()-16:pattern.Size()]) {
		t.Errorf("read -r %s -o: exit %d, %q; file %d bytes, %v", rng, r.code, r.stderr, len(b), err)
	}
}

// TestInfoRawFiltered: info -R honours -P, -w and -a; -v and -R exclude
// each other; -a tells how far into its region an address is.
func TestInfoRawFiltered(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	pid := itoa(tg.pid)
	heap := tg.regionByPath("[heap]")
	r := procmem(t, "-p", pid, "info", "-R", "-P", "[heap]")
	mustSucceed(t, r, "info -R -P [heap]")
	if !strings.HasPrefix(r.stdout, fmt.Sprintf("%x-%x rw-p", heap.Start, heap.End)) || strings.Count(r.stdout, "VmFlags:") != 1 {
		t.Errorf("info -R -P [heap]:\n%s", r.stdout)
	}
	r = procmem(t, "-p", pid, "info", "-R", "-w")
	mustSucceed(t, r, "info -R -w")
	for _, line := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) > 1 && strings.Contains(f[0], "-") && !strings.Contains(f[1], "w") {
			t.Errorf("info -R -w shows a region that is not writable: %s", line)
		}
	}
	if r := procmem(t, "-p", pid, "info", "-v", "-R"); r.code != 2 {
		t.Errorf("info -v -R: exit %d, want 2", r.code)
	}
	at := tg.addr["marker"]
	r = procmem(t, "-p", pid, "info", "-a", fmt.Sprintf("%x", at))
	mustSucceed(t, r, "info -a")
	if want := fmt.Sprintf("0x%x is 0x%x bytes into %s [heap]", at, at-heap.Start, heap.Name()); !strings.Contains(r.stdout, want) {
		t.Errorf("info -a:\n%s\nwant %q", r.stdout, want)
	}
	if r := procmem(t, "-p", pid, "read", "-a", fmt.Sprintf("%x", at)); r.code != 0 || strings.SplitN(r.stdout, "\n", 2)[0] != report.RegionLine(heap) {
		t.Errorf("read -a ADDR: exit %d, first line %q", r.code, strings.SplitN(r.stdout, "\n", 2)[0])
	}
}

// TestReadToStdout: -o - and -o /dev/stdout into a pipe stream the raw
// bytes, holes as zeros, and make no file named "-".
func TestReadToStdout(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	pid := itoa(tg.pid)
	pattern := tg.region(tg.addr["pattern"])
	rng := fmt.Sprintf("%x:%x", pattern.Start, pattern.End)
	dir := t.TempDir()
	cmd := exec.Command(procmemBin, "-p", pid, "read", "-r", rng, "-o", "-")
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil || !bytes.Equal(stdout.Bytes(), tg.pattern) {
		t.Errorf("read -o -: %v, %d bytes, stderr %q", err, stdout.Len(), stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "-")); err == nil {
		t.Errorf("read -o - made a file named -")
	}
	sh := run(t, "", "sh", "-c", fmt.Sprintf("%s -p %s read -r %s -o /dev/stdout | sha256sum", procmemBin, pid, rng))
	mustSucceed(t, sh, "read -o /dev/stdout | sha256sum")
	if want := fmt.Sprintf("%x", sha256.Sum256(tg.pattern)); !strings.HasPrefix(sh.stdout, want) {
		t.Errorf("read -o /dev/stdout into a pipe: %q, want the pattern's digest %s (stderr %q)", sh.stdout, want, sh.stderr)
	}
	if r := procmem(t, "-p", pid, "read", "-o", "-", "--sparse"); r.code != 2 {
		t.Errorf("read -o - --sparse: exit %d, want 2", r.code)
	}
}

// TestReadFilteredRegionNamed: a region left out by default says so and
// names the flag that includes it.
func TestReadFilteredRegionNamed(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	r := procmem(t, "-p", itoa(tg.pid), "read", "-P", "[vvar]")
	if r.code != 1 || !strings.Contains(r.stderr, "left out by default") || !strings.Contains(r.stderr, "--no-default-filter") {
		t.Errorf("read -P [vvar]: exit %d, %q", r.code, r.stderr)
	}
}

// TestWatchUnmapped: watch of an unmapped range fails before it prints
// anything.
func TestWatchUnmapped(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	r := procmem(t, "-p", itoa(tg.pid), "watch", "-r", "1000:+10")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "not mapped") {
		t.Errorf("watch of an unmapped range: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestReadLeavesNoPartialFile: -o to a filesystem that runs out of room
// fails and removes what it wrote.
func TestReadLeavesNoPartialFile(t *testing.T) {
	requireRoot(t) // a small tmpfs
	tg := startTarget(t, "", 1<<20)
	dir := t.TempDir()
	mustSucceed(t, run(t, "", "mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", dir), "mount tmpfs")
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	pattern := tg.region(tg.addr["pattern"])
	out := filepath.Join(dir, "out")
	r := procmem(t, "-p", itoa(tg.pid), "read", "-r", fmt.Sprintf("%x:%x", pattern.Start, pattern.End), "-o", out)
	if r.code != 1 || !strings.Contains(r.stderr, "no space left") {
		t.Errorf("read -o to a full filesystem: exit %d, %q", r.code, r.stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("read -o to a full filesystem left %s behind", out)
	}
}

// TestRecursiveTools: grep -r, cp -r, tar -c and yara -r of a process
// directory succeed: what cannot be read is not listed, and mem (a second
// view of every byte) is not listed either.
func TestRecursiveTools(t *testing.T) {
	requireTool(t, "grep", "cp", "tar", "yara")
	tg := startTarget(t, "", 1<<20)
	m := startMount(t)
	dir := m.path(itoa(tg.pid))
	if r := run(t, "", "grep", "-r", "-l", "-a", tg.marker, dir); r.code != 0 || !strings.Contains(r.stdout, tg.region(tg.addr["marker"]).Name()) {
		t.Errorf("grep -r of the process directory: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	out := t.TempDir()
	if r := run(t, "", "cp", "-r", dir, filepath.Join(out, "copy")); r.code != 0 {
		t.Errorf("cp -r of the process directory: exit %d, %q", r.code, r.stderr)
	}
	if r := run(t, "", "tar", "-S", "-c", "-f", filepath.Join(out, "p.tar"), "-C", m.dir, itoa(tg.pid)); r.code != 0 {
		t.Errorf("tar -c of the process directory: exit %d, %q", r.code, r.stderr)
	}
	rules := filepath.Join(out, "marker.yar")
	os.WriteFile(rules, []byte(fmt.Sprintf("rule marker { strings: $m = %q condition: $m }\n", tg.marker)), 0o644)
	heap := m.path(itoa(tg.pid), tg.region(tg.addr["marker"]).Name())
	if r := run(t, "", "yara", "-r", "-N", rules, dir); r.code != 0 || r.stderr != "" || strings.TrimSpace(r.stdout) != "marker "+heap {
		t.Errorf("yara -r -N of the process directory: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestProgressOnTerminal: read -o shows its progress on a terminal (under
// tmux), and not on a stderr that is no terminal.
func TestProgressOnTerminal(t *testing.T) {
	requireTool(t, "tmux", "sh")
	tg := startTarget(t, "", 64<<20)
	pattern := tg.region(tg.addr["pattern"])
	out := filepath.Join(t.TempDir(), "out")
	args := []string{"-p", itoa(tg.pid), "read", "-r", fmt.Sprintf("%x:%x", pattern.Start, pattern.End), "-o", out}
	socket := fmt.Sprintf("procmem-progress-%d", tg.pid)
	tmux := func(a ...string) (string, error) {
		b, err := exec.Command("tmux", append([]string{"-L", socket}, a...)...).CombinedOutput()
		return string(b), err
	}
	t.Cleanup(func() { tmux("kill-server") })
	script := fmt.Sprintf("%s %s; echo DONE; sleep 60", procmemBin, strings.Join(args, " "))
	if b, err := tmux("new-session", "-d", "-s", "p", "-x", "150", "-y", "20", "sh", "-c", script); err != nil {
		t.Fatalf("tmux: %v: %s", err, b)
	}
	screen := waitFor(t, "the read to finish on the terminal", func() (string, bool) {
		s, _ := tmux("capture-pane", "-p", "-t", "p")
		return s, strings.Contains(s, "DONE")
	})
	if !strings.Contains(screen, "reading 100%") || !strings.Contains(screen, "67/67 MB") || !strings.Contains(screen, "B/s") {
		t.Errorf("no finished progress line on the terminal:\n%s", screen)
	}
	r := procmem(t, args...)
	mustSucceed(t, r, "read -o")
	if strings.Contains(r.stderr, "%") || strings.Contains(r.stderr, "\r") {
		t.Errorf("progress written to a stderr that is no terminal: %q", r.stderr)
	}
}
