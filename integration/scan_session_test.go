//go:build linux

package integration

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestScanUndoRedo: undo and redo go through every step, across separate
// procmem runs; a scan after undo drops what redo would have gone to; a
// named snapshot is compared with later, as a narrowing and as a first
// scan; the undo budget drops the oldest steps.
func TestScanUndoRedo(t *testing.T) {
	g := startGame(t)
	s := newScanner(t, g)
	counts := []int{s.count("100")}
	for _, v := range []string{"90", "80", "70"} {
		g.do("hit 10")
		counts = append(counts, s.count(v))
	}
	if fmt.Sprint(counts[1:]) != "[21 5 1]" {
		t.Fatalf("narrowing: %v", counts)
	}
	for i := 2; i >= 0; i-- {
		if n := s.count("undo"); n != counts[i] {
			t.Errorf("undo to step %d: %d matches, want %d", i+1, n, counts[i])
		}
	}
	if r := s.run("undo"); r.stdout != "no scan yet\n" {
		t.Errorf("undo to before the first scan: %q", r.stdout)
	}
	if r := s.run("undo"); r.code != 1 || r.stderr != "procmem: nothing to undo\n" {
		t.Errorf("undo past the start: exit %d, %q", r.code, r.stderr)
	}
	for i := 0; i < 3; i++ {
		if n := s.count("redo"); n != counts[i] {
			t.Errorf("redo to step %d: %d matches, want %d", i+1, n, counts[i])
		}
	}
	history := s.run("history")
	if lines := strings.Split(strings.TrimSpace(history.stdout), "\n"); len(lines) != 5 || !strings.HasPrefix(lines[3], "* #3  = 80") {
		t.Errorf("history:\n%s", history.stdout)
	}
	// A new scan after undo: redo has nowhere to go.
	if n := s.count("70"); n != 1 {
		t.Errorf("70 after the redos: %d", n)
	}
	if r := s.run("redo"); r.code != 1 || r.stderr != "procmem: nothing to redo\n" {
		t.Errorf("redo after a new scan: exit %d, %q", r.code, r.stderr)
	}

	// snapshot NAME keeps memory and leaves the matches alone.
	r := s.run("snapshot", "before")
	mustSucceed(t, r, "snapshot before")
	if !strings.HasPrefix(r.stdout, "snapshot before: ") || s.count("count") != 1 {
		t.Errorf("snapshot before: %q", r.stdout)
	}
	g.do("hit 5")
	if n := s.count("changed", "since", "before"); n != 1 {
		t.Errorf("changed since before: %d", n)
	}
	mustSucceed(t, s.run("reset"), "reset")
	n := s.count("decreased", "since", "before")
	if _, ok := s.listed(n)[g.addr["health"]]; !ok || n > 50 {
		t.Errorf("decreased since before, as a first scan: %d matches, the health among them: %v", n, ok)
	}
	if r := s.run("snapshots"); !strings.HasPrefix(r.stdout, "before ") {
		t.Errorf("snapshots: %q", r.stdout)
	}
	mustSucceed(t, s.run("forget", "before"), "forget")
	if r := s.run("changed", "since", "before"); r.code != 1 || !strings.Contains(r.stderr, `no snapshot "before"`) {
		t.Errorf("since a forgotten snapshot: exit %d, %q", r.code, r.stderr)
	}

	// A budget of one byte keeps no step but the current one.
	r = s.run("--undo-budget", "1", "snapshot")
	if r.code != 0 || !strings.Contains(r.stderr, "oldest steps were dropped") {
		t.Errorf("a snapshot under a budget of 1 byte: exit %d, %q", r.code, r.stderr)
	}
	if r := s.run("undo"); r.code != 1 || !strings.Contains(r.stderr, "no older step is kept") {
		t.Errorf("undo past the budget: exit %d, %q", r.code, r.stderr)
	}
	entries, _ := os.ReadDir(s.session)
	if len(entries) != 2 { // the state and one step
		t.Errorf("the session keeps %d files", len(entries))
	}
}

// TestScanPromptReset: reset and then a value at the prompt keep the
// session (issue 26: the rename of the session to its undo file failed,
// and the matches were lost).
func TestScanPromptReset(t *testing.T) {
	g := startGame(t)
	s := newScanner(t, g)
	s.count("100")
	r := run(t, "reset\n100\n90\nreset\n100\nquit\n", procmemBin, "-p", itoa(g.pid), "scan", "--session", s.session)
	if r.code != 0 || r.stderr != "procmem: scanning process "+itoa(g.pid)+" for int32; type help for the commands\n" {
		t.Fatalf("the prompt: exit %d, %q", r.code, r.stderr)
	}
	if n := s.count("count"); n < 85 {
		t.Errorf("count after the prompt: %d", n)
	}
	if r := s.run("undo"); r.stdout != "no scan yet\n" {
		t.Errorf("undo after the prompt's last reset and value: %q", r.stdout)
	}
}

// TestScanWritableRegions: scans cover writable regions unless
// --all-regions; set writes into a region without w only with --force.
func TestScanWritableRegions(t *testing.T) {
	g := startGame(t)
	s := newScanner(t, g)
	writable := s.count("-t", "anyint", "100")
	for _, line := range s.listed(writable) {
		if perms := strings.Fields(line)[1]; perms[1] != 'w' {
			t.Errorf("a match in a region without w: %q", line)
		}
	}
	mustSucceed(t, s.run("reset"), "reset")
	all := s.count("--all-regions", "100")
	ro := 0
	for _, line := range s.listed(all) {
		if strings.Fields(line)[1][1] != 'w' {
			ro++
		}
	}
	if all <= writable || ro == 0 {
		t.Errorf("--all-regions: %d matches (%d without w), the writable ones %d", all, ro, writable)
	}

	// The game's ELF header: \x7fELF, in its first mapping (r--p).
	elf := regionsOf(t, g.pid, gameBin)[0]
	head := fmt.Sprintf("%x:+4", elf.Start)
	mustSucceed(t, s.run("reset"), "reset")
	if n := s.count("-t", "uint32", "--all-regions", "-r", head, "0x464c457f"); n != 1 {
		t.Fatalf("the ELF header: %d matches", n)
	}
	for _, args := range [][]string{{"set", "0x464c457e"}, {"set", fmt.Sprintf("%x", elf.Start), "0x464c457e"}} {
		r := s.run(args...)
		if r.code != 1 || !strings.Contains(r.stderr, "without write permission") || !strings.Contains(r.stderr, "--force") ||
			strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%q into r--p: exit %d, %q", args, r.code, r.stderr)
		}
	}
	if b := directRead(t, g.pid, elf.Start, 4); string(b) != "\x7fELF" {
		t.Fatalf("a refused set wrote %q", b)
	}
	// Forced, it writes: the same bytes, so the game is none the worse.
	r := s.run("set", "--force", "0x464c457f")
	if r.code != 0 || r.stdout != "wrote 0x464c457f to 1 match\n" {
		t.Errorf("set --force: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
}

// regionsOf is the regions of pid that map path, in address order.
func regionsOf(t *testing.T, pid int, path string) []procfsRegion {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	var out []procfsRegion
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[5] != path {
			continue
		}
		start, end, _ := strings.Cut(f[0], "-")
		s, _ := strconv.ParseUint(start, 16, 64)
		e, _ := strconv.ParseUint(end, 16, 64)
		out = append(out, procfsRegion{s, e, f[1]})
	}
	if len(out) == 0 {
		t.Fatalf("%s is not mapped in %d", path, pid)
	}
	return out
}

type procfsRegion struct {
	Start, End uint64
	Perms      string
}

// tree lists every path under dir with its mode and owner.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		var st syscall.Stat_t
		if err == nil && syscall.Lstat(path, &st) == nil {
			out = append(out, fmt.Sprintf("%s %o %d", path, st.Mode, st.Uid))
		}
		return nil
	})
	return out
}

// TestScanSymlinkedLock: a user's ~/.cache/procmem/scan-PID.session.lock
// is a symlink into a root-only directory; root runs procmem scan with the
// user's HOME (what sudo -E gives). Nothing is created in the root-only
// directory, and nothing in the user's home (issue 25: root created the
// link's target, and a root-owned ~/.cache/procmem).
func TestScanSymlinkedLock(t *testing.T) {
	requireRoot(t)
	g := startGame(t)
	base := t.TempDir()
	home := filepath.Join(base, "home")
	cache := filepath.Join(home, ".cache", "procmem")
	if err := os.MkdirAll(cache, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{home, filepath.Dir(cache), cache} {
		os.Chown(d, 65534, 65534)
	}
	rootOnly := filepath.Join(base, "rootonly")
	os.Mkdir(rootOnly, 0o700)
	lock := filepath.Join(cache, fmt.Sprintf("scan-%d.session.lock", g.pid))
	if err := os.Symlink(filepath.Join(rootOnly, "nologin"), lock); err != nil {
		t.Fatal(err)
	}
	os.Lchown(lock, 65534, 65534)
	before := tree(t, home)
	// Root's own cache directory is where the session goes: take away
	// what this run leaves there.
	rootCache := filepath.Join("/root", ".cache", "procmem")
	_, statErr := os.Stat(rootCache)
	t.Cleanup(func() {
		os.RemoveAll(filepath.Join(rootCache, fmt.Sprintf("scan-%d.session", g.pid)))
		if os.IsNotExist(statErr) {
			os.Remove(rootCache)
		}
	})

	cmd := exec.Command(procmemBin, "-p", itoa(g.pid), "scan", "1094795585")
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(e string) bool {
		return strings.HasPrefix(e, "HOME=") || strings.HasPrefix(e, "XDG_CACHE_HOME=")
	}), "HOME="+home)
	out, err := cmd.CombinedOutput()
	t.Logf("procmem: %v %s", err, out)
	if entries, _ := os.ReadDir(rootOnly); len(entries) != 0 {
		t.Errorf("root created %v in the root-only directory the user's link points into", entries)
	}
	if after := tree(t, home); !slices.Equal(before, after) {
		t.Errorf("the user's home changed:\nbefore %v\nafter  %v", before, after)
	}
}

// TestScanLeavesNothing: a malformed command (exit 2), and one that fails
// for want of a scan (exit 1), leave no session, lock or directory behind,
// neither in the cache directory nor beside --session.
func TestScanLeavesNothing(t *testing.T) {
	g := startGame(t)
	cache := t.TempDir()
	dir := t.TempDir()
	session := filepath.Join(dir, "s")
	for _, args := range [][]string{
		{"bogus"}, {"=", "1", "2"}, {"-t", "int8", "300"}, {"-t", "nosuch", "1"}, {"group", "1"}, {"snapshot", "9x"},
		{"--undo-budget", "lots", "5"}, {"-t", "bytes", "4"}, {"-t", "string", "changed", "1"}, {"list", "0"},
		{"count"}, {"list"}, {"changed"}, {"undo"}, {"redo"}, {"set", "5"}, {"history"}, {"forget", "x"},
		{"changed", "since", "x"},
	} {
		for _, sess := range [][]string{nil, {"--session", session}} {
			cmd := exec.Command(procmemBin, append(append([]string{"-p", itoa(g.pid), "scan"}, sess...), args...)...)
			cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cache)
			out, _ := cmd.CombinedOutput()
			code := cmd.ProcessState.ExitCode()
			if code == 0 || strings.Count(string(out), "procmem: ") != 1 {
				t.Errorf("scan %q: exit %d, %q", args, code, out)
			}
			if entries, _ := os.ReadDir(cache); len(entries) != 0 {
				t.Fatalf("scan %q (exit %d) left %v in the cache directory", args, code, entries)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Fatalf("scan %q --session (exit %d) left %v beside the session", args, code, entries)
			}
		}
	}
}

// TestScanSessions: --sessions lists the sessions in the cache directory
// with their sizes; a session of a process that has exited is removed by
// reset on its PID, or by --prune.
func TestScanSessions(t *testing.T) {
	a, b, c := startGame(t), startGame(t), startGame(t)
	cache := t.TempDir()
	scan := func(args ...string) result {
		t.Helper()
		cmd := exec.Command(procmemBin, args...)
		cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+cache)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Run()
		return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
	}
	for _, g := range []*game{a, b, c} {
		mustSucceed(t, scan("-p", itoa(g.pid), "scan", "100"), "scan")
	}
	// A session is of one process: another's is refused.
	r := scan("-p", itoa(b.pid), "scan", "--session", filepath.Join(cache, "procmem", fmt.Sprintf("scan-%d.session", a.pid)), "count")
	if r.code != 1 || !strings.Contains(r.stderr, fmt.Sprintf("is of process %d (game), not of process %d", a.pid, b.pid)) {
		t.Errorf("another process's session: exit %d, %q", r.code, r.stderr)
	}
	b.exit()
	c.exit()
	r = scan("scan", "--sessions")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) != 3 {
		t.Fatalf("--sessions: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	for i, g := range []*game{a, b, c} {
		f := strings.Fields(lines[i])
		state := map[bool]string{true: "running", false: "exited"}[g == a]
		if f[0] != itoa(g.pid) || f[1] != "game" || f[2] != state || !strings.HasSuffix(lines[i], fmt.Sprintf("scan-%d.session", g.pid)) {
			t.Errorf("--sessions line %q: want %d game %s", lines[i], g.pid, state)
		}
	}
	// reset on the PID of a process that has exited removes its session.
	r = scan("-p", itoa(b.pid), "scan", "reset")
	if r.code != 0 || !strings.Contains(r.stdout, "which has exited, removed") {
		t.Errorf("reset of an exited process: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if r := scan("-p", itoa(b.pid), "scan", "count"); r.code != 1 || !strings.Contains(r.stderr, "scan reset removes its session") {
		t.Errorf("count on an exited process: exit %d, %q", r.code, r.stderr)
	}
	r = scan("scan", "--prune")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "1 sessions of processes that have exited removed") {
		t.Errorf("--prune: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	entries, _ := os.ReadDir(filepath.Join(cache, "procmem"))
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if fmt.Sprint(names) != fmt.Sprintf("[scan-%d.session]", a.pid) {
		t.Errorf("after reset and --prune the cache holds %v", names)
	}
}
