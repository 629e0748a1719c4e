//go:build linux

package integration

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// setuidProgram is a program that runs with another user's rights and
// waits on its standard input, as the attacks in these tests need.
const setuidProgram = "/usr/bin/passwd"

// execer is a process of the unprivileged user that execs setuidProgram
// when told to.
type execer struct {
	t   *testing.T
	cmd *exec.Cmd
	in  io.WriteCloser
	pid int
}

func startExecer(t *testing.T) *execer {
	t.Helper()
	requireSetuid(t)
	args := append(append([]string(nil), asNobody...), "sh", "-c", "read x; exec "+setuidProgram)
	cmd := exec.Command(args[0], args[1:]...)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e := &execer{t: t, cmd: cmd, in: in, pid: cmd.Process.Pid}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, "the shell to run as the user", func() (string, bool) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", e.pid))
		return string(b), strings.TrimSpace(string(b)) == "sh"
	})
	return e
}

// exec makes it exec setuidProgram and waits until that runs.
func (e *execer) exec() {
	e.t.Helper()
	fmt.Fprintln(e.in, "go")
	want := filepath.Base(setuidProgram)
	waitFor(e.t, want+" to run", func() (string, bool) {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", e.pid))
		return string(b), strings.TrimSpace(string(b)) == want
	})
}

func requireSetuid(t *testing.T) {
	t.Helper()
	requireRoot(t)
	requireTool(t, "setpriv", "sh")
	st, err := os.Stat(setuidProgram)
	if err != nil || st.Mode()&os.ModeSetuid == 0 {
		skipOrFail(t, "%s is not a setuid program here: %v", setuidProgram, err)
	}
}

// holder is fdhold run as the unprivileged user.
type holder struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// hold opens path as the unprivileged user and keeps it open.
func hold(t *testing.T, path, mode string) *holder {
	t.Helper()
	args := append(append([]string(nil), asNobody...), fdholdBin, path, mode)
	h := &holder{cmd: exec.Command(args[0], args[1:]...)}
	var err error
	if h.in, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	h.out = bufio.NewReader(stdout)
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.cmd.Process.Kill(); h.cmd.Wait() })
	if line, err := h.out.ReadString('\n'); line != "open\n" {
		t.Fatalf("fdhold %s %s: %q, %v", path, mode, line, err)
	}
	return h
}

// read reads through the held descriptor: what the file or listing shows.
func (h *holder) read(t *testing.T) string {
	t.Helper()
	fmt.Fprintln(h.in, "go")
	b, err := io.ReadAll(h.out)
	if err != nil {
		t.Fatal(err)
	}
	h.cmd.Wait()
	s := string(b)
	if !strings.HasSuffix(s, "end\n") {
		t.Fatalf("fdhold did not finish: %q", s)
	}
	return strings.TrimSuffix(s, "end\n")
}

// TestAccessAcrossSetuidExec: descriptors a user opened on its own process
// before it exec'd a setuid program show nothing of the new image, as the
// kernel's own descriptors of /proc/PID/maps read nothing; new opens are
// refused as /proc refuses them; the files are owned as /proc/PID is.
func TestAccessAcrossSetuidExec(t *testing.T) {
	requireSetuid(t)
	openToAll(t, binDir)
	m := startMount(t, "--allow-other")
	openToAll(t, filepath.Dir(m.dir))
	e := startExecer(t)
	pid := itoa(e.pid)

	dir := hold(t, m.path(pid), "dir")
	info := hold(t, m.path(pid, "info"), "file")
	maps := hold(t, "/proc/"+pid+"/maps", "file")
	e.exec()

	if got := maps.read(t); got != "" {
		t.Fatalf("the kernel's maps fd held across the exec reads %q; this test expects nothing", got)
	}
	var regions []string
	for _, name := range strings.Split(strings.TrimSpace(dir.read(t)), "\n") {
		switch name {
		case ".", "..", "info", "statm":
		default:
			regions = append(regions, name)
		}
	}
	if len(regions) > 0 {
		t.Errorf("a directory opened before the setuid exec lists %d entries of the new image: %v", len(regions), regions[:min(len(regions), 5)])
	}
	if got := info.read(t); strings.Contains(got, setuidProgram) {
		t.Errorf("an info file opened before the setuid exec shows the new image:\n%s", got)
	}
	for _, args := range [][]string{{"ls", m.path(pid)}, {"cat", m.path(pid, "info")}, {"cat", "/proc/" + pid + "/maps"}} {
		if r := runAs(t, asNobody, args[0], args[1:]...); r.code == 0 || !strings.Contains(r.stderr, "Permission denied") {
			t.Errorf("%q after the setuid exec: exit %d, %q; want permission denied", args, r.code, r.stderr)
		}
	}
	var direct, via syscall.Stat_t
	if err := syscall.Stat("/proc/"+pid, &direct); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(m.path(pid), &via); err != nil {
		t.Fatal(err)
	}
	if via.Uid != direct.Uid || via.Gid != direct.Gid {
		t.Errorf("after the setuid exec the directory is owned by %d:%d, /proc/%s by %d:%d", via.Uid, via.Gid, pid, direct.Uid, direct.Gid)
	}
	m.alive()
}

// TestInfoRacesSetuidExec opens info again and again while the process
// execs a setuid program: no open may show the new image (the check and
// the read of maps are one act, as the kernel's are).
func TestInfoRacesSetuidExec(t *testing.T) {
	requireSetuid(t)
	openToAll(t, binDir)
	m := startMount(t, "--allow-other")
	openToAll(t, filepath.Dir(m.dir))
	rounds := 300
	if testing.Short() {
		rounds = 30
	}
	leaks, opens := 0, 0
	for round := 0; round < rounds; round++ {
		e := startExecer(t)
		args := append(append([]string(nil), asNobody...), fdholdBin, m.path(itoa(e.pid), "info"), "race", setuidProgram)
		racer := exec.Command(args[0], args[1:]...)
		out, err := racer.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := racer.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(out)
		if line, err := r.ReadString('\n'); line != "started\n" {
			t.Fatalf("the racer did not start: %q, %v", line, err)
		}
		e.exec()
		b, _ := io.ReadAll(r)
		racer.Wait()
		leaks += strings.Count(string(b), "leak\n")
		var n int
		fmt.Sscanf(string(b[strings.LastIndex(string(b), "opens "):]), "opens %d", &n)
		opens += n
		e.cmd.Process.Kill()
		e.cmd.Wait()
	}
	t.Logf("%d opens of info in %d rounds", opens, rounds)
	if leaks > 0 {
		t.Errorf("%d opens of info showed the setuid image", leaks)
	}
	if opens < rounds {
		t.Errorf("only %d opens in %d rounds: the race was not run", opens, rounds)
	}
	m.alive()
}

// TestHidePID mounts /proc with hidepid=2 in a mount namespace of the
// daemon's own: a caller sees in the mount the processes it sees in /proc
// there, and finds by name those it finds there, on the default mount
// (for a uid 0 caller without capabilities) and under --allow-other (for
// a user).
func TestHidePID(t *testing.T) {
	requireRoot(t)
	requireTool(t, "unshare", "nsenter", "setpriv", "ls", "stat")
	openToAll(t, binDir)
	mine := startTargetAs(t, asNobody, targetBin, 1<<20)
	roots := startTarget(t, "", 1<<20)
	script := `mount -t proc -o hidepid=2 proc /proc && exec "$0" "$@"`
	prefix := []string{"unshare", "--mount", "--propagation", "private", "sh", "-c", script}
	noCaps := []string{"setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all"}
	cases := []struct {
		flags      []string
		caller     []string
		sees       *target // a process the caller sees in /proc
		other      *target // one that is not the caller's
		otherShown bool    // whether /proc shows it to the caller
		who        string
	}{
		// gid 0 is exempt from hidepid (its gid= option defaults to 0),
		// and the default mount lets in only uid and gid 0: such a caller
		// sees all, in both.
		{nil, noCaps, roots, mine, true, "uid 0 without capabilities"},
		{[]string{"--allow-other"}, asNobody, mine, roots, false, "nobody"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.flags), func(t *testing.T) {
			m := startMountIn(t, true, prefix, filepath.Join(t.TempDir(), "mnt"), c.flags...)
			openToAll(t, filepath.Dir(m.dir))
			asRoot := []string{"nsenter", "--target", itoa(m.cmd.Process.Pid), "--mount", "--"}
			inNS := append(append([]string(nil), asRoot...), c.caller...)
			pids := func(dir string) map[string]bool {
				r := runAs(t, inNS, "ls", dir)
				mustSucceed(t, r, "ls "+dir)
				set := map[string]bool{}
				for _, name := range strings.Fields(r.stdout) {
					if _, err := strconv.Atoi(name); err == nil {
						set[name] = true
					}
				}
				return set
			}
			before, viaMount, after := pids("/proc"), pids(m.dir), pids("/proc")
			for pid := range viaMount {
				_, err := os.Stat("/proc/" + pid)
				if !before[pid] && !after[pid] && err == nil { // not an ls of this test, gone now
					b, _ := os.ReadFile("/proc/" + pid + "/status")
					t.Errorf("%s sees process %s in the mount, not in /proc:\n%s", c.who, pid, b)
				}
			}
			for pid, want := range map[int]bool{c.sees.pid: true, c.other.pid: c.otherShown} {
				if p := itoa(pid); before[p] != want || viaMount[p] != want {
					t.Errorf("%s sees process %s in /proc: %v, in the mount: %v; want %v", c.who, p, before[p], viaMount[p], want)
				}
			}
			// Looked up by root a moment before, the name must still answer
			// for the caller as /proc does.
			other := itoa(c.other.pid)
			mustSucceed(t, runAs(t, asRoot, "stat", filepath.Join(m.dir, other)), "stat as root")
			if r := runAs(t, inNS, "stat", filepath.Join(m.dir, other)); (r.code == 0) != c.otherShown {
				t.Errorf("%s stats process %s in the mount: exit %d, want it found: %v", c.who, other, r.code, c.otherShown)
			}
		})
	}
}
