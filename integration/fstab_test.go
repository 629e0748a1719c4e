//go:build linux

package integration

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Set-up like every other filesystem: mount(8), fstab, a daemon in the
// background, systemd's readiness, and one daemon per mountpoint.

// daemonsOn lists the live processes of the binary under test whose
// command line names dir: the daemons serving there.
func daemonsOn(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if args[0] != procmemBin || !contains(args, dir) {
			continue
		}
		if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(stat), ") Z ") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// noDaemonLeft fails the test unless every daemon serving dir has exited
// within 5 seconds; it kills those left.
func noDaemonLeft(t *testing.T, dir string) {
	t.Helper()
	if !poll(5*time.Second, func() bool { return len(daemonsOn(dir)) == 0 }) {
		left := daemonsOn(dir)
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		t.Errorf("daemons left serving %s: %v", dir, left)
	}
}

// cleanMountpoint unmounts dir and ends its daemons when the test ends,
// whatever the test did.
func cleanMountpoint(t *testing.T, dir string) {
	t.Cleanup(func() {
		for isMounted(dir) {
			if syscall.Unmount(dir, syscall.MNT_DETACH) != nil {
				break
			}
		}
		for _, pid := range daemonsOn(dir) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
}

// TestMountWithMountCommand: mount -t fuse.procmem and an fstab line
// mount procmem through mount.fuse3, which runs "procmem SOURCE DIR -o
// OPTIONS" and waits for it: the mount is ready when mount returns, the
// heap reads through it, and umount leaves no daemon behind. mount.fuse3
// finds procmem in the standard PATH only, so the test runs in a mount
// namespace of its own where /usr/local/sbin holds it.
func TestMountWithMountCommand(t *testing.T) {
	requireRoot(t)
	requireFUSE(t)
	requireTool(t, "mount", "umount", "unshare", "mount.fuse3", "dd", "grep")
	tg := startTarget(t, "", 1<<20)
	bin := t.TempDir()
	if err := os.Symlink(procmemBin, filepath.Join(bin, "procmem")); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "mnt")
	os.Mkdir(dir, 0o755)
	fstab := filepath.Join(t.TempDir(), "fstab")
	line := fmt.Sprintf("procmem %s fuse.procmem allow_other,ro,timeout=3s,nofail,_netdev,x-systemd.automount 0 0\n", dir)
	os.WriteFile(fstab, []byte(line), 0o644)
	heap := tg.region(tg.addr["marker"])
	heapFile := filepath.Join(dir, itoa(tg.pid), "heap")
	readMarker := fmt.Sprintf("dd if=%s bs=1 skip=%d count=%d status=none; echo", heapFile, tg.addr["marker"]-heap.Start, len(tg.marker))
	mounts := fmt.Sprintf(`echo "mounts: $(grep ' %s ' /proc/self/mountinfo | grep -c ' - fuse.procmem ')"`, dir)
	script := strings.Join([]string{
		"set -e",
		"mount --bind " + bin + " /usr/local/sbin",
		"mount -t fuse.procmem -o allow_other procmem " + dir,
		mounts, readMarker,
		"umount " + dir,
		"mount -T " + fstab + " " + dir,
		mounts, readMarker,
		"umount " + dir,
	}, "\n")
	cleanMountpoint(t, dir)
	r := run(t, "", "unshare", "-m", "--propagation", "private", "sh", "-c", script)
	if want := strings.Repeat("mounts: 1\n"+tg.marker+"\n", 2); r.code != 0 || r.stdout != want {
		t.Errorf("mount -t fuse.procmem, then mount -T with the fstab line %q: exit %d\n%s\nstderr: %s\nwant:\n%s", line, r.code, r.stdout, r.stderr, want)
	}
	noDaemonLeft(t, dir)
}

// TestMountBackground: mount --background returns once the mount serves,
// holds none of the caller's output open (run would wait for it), and
// leaves the daemon serving until umount; an error reaches the caller
// before anything is mounted.
func TestMountBackground(t *testing.T) {
	requireFUSE(t)
	requireTool(t, "dd")
	tg := startTarget(t, "", 1<<20)
	dir := filepath.Join(t.TempDir(), "mnt")
	cleanMountpoint(t, dir)
	r := procmem(t, "mount", "--background", "-o", "allow_other,timeout=2s", dir)
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("mount --background: exit %d, %q, %q; want 0 and silence", r.code, r.stdout, r.stderr)
	}
	if !isMounted(dir) || len(daemonsOn(dir)) != 1 {
		t.Fatalf("after mount --background: mounted %v, daemons %v", isMounted(dir), daemonsOn(dir))
	}
	heap := tg.region(tg.addr["marker"])
	b := make([]byte, len(tg.marker))
	f, err := os.Open(filepath.Join(dir, itoa(tg.pid), "heap"))
	if err != nil {
		t.Fatal(err)
	}
	f.ReadAt(b, int64(tg.addr["marker"]-heap.Start))
	f.Close()
	if string(b) != tg.marker {
		t.Errorf("the heap through the background daemon: %q, want %q", b, tg.marker)
	}
	if err := syscall.Unmount(dir, 0); err != nil {
		t.Fatal(err)
	}
	noDaemonLeft(t, dir)

	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	r = procmem(t, "mount", "--background", file)
	if want := fmt.Sprintf("procmem: %s is not a directory\n", file); r.code != 1 || r.stderr != want {
		t.Errorf("mount --background on a file: exit %d, %q; want 1 and %q", r.code, r.stderr, want)
	}
	if isMounted(file) || len(daemonsOn(file)) != 0 {
		t.Errorf("a failed mount --background left a mount or a daemon behind")
	}
}

// notifications listens where systemd would (NOTIFY_SOCKET) and returns
// the socket's path and the datagrams that arrive.
func notifications(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch := make(chan string, 10)
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := conn.Read(b)
			if err != nil {
				close(ch)
				return
			}
			ch <- string(b[:n])
		}
	}()
	return path, ch
}

func nextNotification(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(15 * time.Second):
		t.Fatal("no notification in 15 s")
		return ""
	}
}

// TestMountNotify: run as dist/procmem.service's ExecStart runs it
// (Type=notify), procmem tells systemd READY=1 once the mount serves and
// STOPPING=1 when asked to stop; in the background, the daemon does, with
// its own pid.
func TestMountNotify(t *testing.T) {
	requireFUSE(t)
	start := unitExecStart(t)
	dir := filepath.Join(t.TempDir(), "mnt")
	cleanMountpoint(t, dir)
	sock, notes := notifications(t)
	start[len(start)-1] = dir // for /mnt/procmem
	cmd := exec.Command(start[0], start[1:]...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if got, want := nextNotification(t, notes), fmt.Sprintf("READY=1\nMAINPID=%d", cmd.Process.Pid); got != want {
		t.Errorf("first notification %q, want %q", got, want)
	}
	if !isMounted(dir) {
		t.Errorf("READY=1 before the mount")
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if got := nextNotification(t, notes); got != "STOPPING=1" {
		t.Errorf("after SIGTERM %q, want STOPPING=1", got)
	}
	if err := cmd.Wait(); err != nil || isMounted(dir) {
		t.Errorf("after SIGTERM: %v, mounted %v", err, isMounted(dir))
	}

	background := exec.Command(procmemBin, "mount", "--background", dir)
	background.Env = cmd.Env
	if out, err := background.CombinedOutput(); err != nil {
		t.Fatalf("mount --background: %v %s", err, out)
	}
	daemons := daemonsOn(dir)
	if len(daemons) != 1 {
		t.Fatalf("daemons serving after mount --background: %v", daemons)
	}
	if got, want := nextNotification(t, notes), fmt.Sprintf("READY=1\nMAINPID=%d", daemons[0]); got != want {
		t.Errorf("in the background: %q, want %q", got, want)
	}
	syscall.Unmount(dir, 0)
	noDaemonLeft(t, dir)
}

// unitExecStart returns the ExecStart line of dist/procmem.service with the
// binary under test in it: the command systemd runs.
func unitExecStart(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../dist/procmem.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if cmd, ok := strings.CutPrefix(line, "ExecStart="); ok {
			args := strings.Fields(cmd)
			args[0] = procmemBin
			return args
		}
	}
	t.Fatal("dist/procmem.service has no ExecStart")
	return nil
}

// TestSystemdUnit: systemd-analyze verify finds nothing wrong with
// dist/procmem.service (offline: it needs no running systemd; --man=no,
// as the manual page need not be installed; the binary under test stands
// in for /usr/local/bin/procmem, which must exist).
func TestSystemdUnit(t *testing.T) {
	requireTool(t, "systemd-analyze")
	b, err := os.ReadFile("../dist/procmem.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "procmem.service")
	os.WriteFile(unit, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/procmem", procmemBin)), 0o644)
	r := run(t, "", "systemd-analyze", "verify", "--man=no", unit)
	if r.code != 0 || strings.Contains(r.stdout+r.stderr, "procmem.service") {
		t.Errorf("systemd-analyze verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// TestMountOneDaemonPerMountpoint: several procmem mount of one directory
// at once leave exactly one daemon serving there, one mount; the others
// fail with one line. (Before the mountpoint lock, two daemons stacked
// one mount on the other about once in ten tries.)
func TestMountOneDaemonPerMountpoint(t *testing.T) {
	requireFUSE(t)
	dir := filepath.Join(t.TempDir(), "mnt")
	cleanMountpoint(t, dir)
	for round := range 15 {
		type daemon struct {
			cmd     *exec.Cmd
			stderr  syncBuffer
			mounted chan struct{}
			exited  chan struct{}
		}
		var ds []*daemon
		for range 4 {
			d := &daemon{cmd: exec.Command(procmemBin, "mount", dir), mounted: make(chan struct{}), exited: make(chan struct{})}
			d.cmd.Stderr = &d.stderr
			out, _ := d.cmd.StdoutPipe()
			ds = append(ds, d)
			go func() {
				if sc := bufio.NewScanner(out); sc.Scan() {
					close(d.mounted)
				}
			}()
		}
		for _, d := range ds {
			if err := d.cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { d.cmd.Wait(); close(d.exited) }()
			t.Cleanup(func() { d.cmd.Process.Kill(); <-d.exited })
		}
		var serving []*daemon
		for _, d := range ds {
			select {
			case <-d.mounted:
				serving = append(serving, d)
			case <-d.exited:
				if lines := strings.Count(d.stderr.String(), "\n"); d.cmd.ProcessState.ExitCode() != 1 || lines != 1 {
					t.Errorf("round %d: a daemon that did not mount: exit %d, %q; want 1 and one line", round, d.cmd.ProcessState.ExitCode(), d.stderr.String())
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("round %d: a daemon neither mounted nor exited in 15 s", round)
			}
		}
		n := strings.Count(readFile(t, "/proc/self/mountinfo"), " "+dir+" ")
		if len(serving) != 1 || n != 1 {
			t.Errorf("round %d: %d daemons serving, %d mounts at %s; want one of each", round, len(serving), n, dir)
		}
		// Stacked daemons may not stop on SIGTERM: the lower one finds
		// its mount busy.
		for _, d := range serving {
			d.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, d := range serving {
			select {
			case <-d.exited:
			case <-time.After(5 * time.Second):
				d.cmd.Process.Kill()
				<-d.exited
			}
		}
		for isMounted(dir) {
			if syscall.Unmount(dir, syscall.MNT_DETACH) != nil {
				break
			}
		}
		if t.Failed() {
			return
		}
	}
}

// TestMountInsideMount: a mountpoint inside a live procmem mount, one
// that exists (a process directory) or not, is refused with one line, and
// nothing is mounted.
func TestMountInsideMount(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	m := startMount(t)
	for _, dir := range []string{m.path(itoa(tg.pid)), m.path("new")} {
		r := procmem(t, "mount", dir)
		if r.code != 1 || r.stderr != fmt.Sprintf("procmem: %s is inside the procmem mount at %s: mount somewhere else\n", dir, m.dir) {
			t.Errorf("mount on %s: exit %d, %q; want a one-line refusal", dir, r.code, r.stderr)
		}
	}
	for _, dir := range []string{m.path(itoa(tg.pid)), m.path("new")} {
		if isMounted(dir) {
			t.Errorf("%s is mounted", dir)
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	}
	m.alive()
}
