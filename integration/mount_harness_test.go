//go:build linux

package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mount is a running "procmem mount" daemon.
type mount struct {
	t       testing.TB
	dir     string
	cmd     *exec.Cmd
	stderr  syncBuffer
	baseFDs int
	exited  chan struct{}
	// mountinfo lists the daemon's mounts: its namespace's, which need
	// not be the test's.
	mountinfo string
}

// syncBuffer is a bytes.Buffer that the daemon's output goroutine and the
// test may use at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startMount mounts procmem with the given flags on a fresh directory and
// unmounts it when the test ends, failing the test if the daemon does not
// exit 0 on SIGTERM, leaves the mount behind or leaked descriptors.
func startMount(t testing.TB, flags ...string) *mount {
	t.Helper()
	return startMountAt(t, nil, filepath.Join(t.TempDir(), "mnt"), flags...)
}

// startMountAt mounts on dir, running the daemon through a command prefix
// (such as setpriv) when one is given.
func startMountAt(t testing.TB, prefix []string, dir string, flags ...string) *mount {
	t.Helper()
	return startMountIn(t, false, prefix, dir, flags...)
}

// startMountIn is startMountAt for a daemon that may make a mount
// namespace of its own (ownNS), where only it and its children see the
// mount.
func startMountIn(t testing.TB, ownNS bool, prefix []string, dir string, flags ...string) *mount {
	t.Helper()
	requireFUSE(t)
	m := &mount{t: t, dir: dir, exited: make(chan struct{}), mountinfo: "/proc/self/mountinfo"}
	args := append(append(append(append([]string(nil), prefix...), procmemBin, "mount"), flags...), m.dir)
	m.cmd = exec.Command(args[0], args[1:]...)
	m.cmd.Stderr = &m.stderr
	stdout, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The daemon says "procmem mounted at DIR" once it serves.
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "procmem mounted at ") {
				close(ready)
			}
		}
	}()
	go func() { m.cmd.Wait(); close(m.exited) }()
	if ownNS {
		m.mountinfo = fmt.Sprintf("/proc/%d/mountinfo", m.cmd.Process.Pid)
	}
	t.Cleanup(m.cleanup)
	select {
	case <-ready:
	case <-m.exited:
		t.Fatalf("procmem mount exited early: %v\n%s", m.cmd.ProcessState, m.stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("procmem mount not ready in 15s:\n%s", m.stderr.String())
	}
	if !mountedIn(m.mountinfo, m.dir) {
		t.Fatalf("procmem says it mounted, but %s is not in %s", m.dir, m.mountinfo)
	}
	m.baseFDs = m.fds()
	return m
}

func requireFUSE(t testing.TB) {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil {
		skipOrFail(t, "no /dev/fuse: %v", err)
	}
}

// isMounted reports whether dir is a procmem mount point.
func isMounted(dir string) bool { return mountedIn("/proc/self/mountinfo", dir) }

// mountedIn reports whether dir is a procmem mount point in a mountinfo
// file (a process's, for its mount namespace).
func mountedIn(mountinfo, dir string) bool {
	f, err := os.Open(mountinfo)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && fields[4] == dir && strings.Contains(sc.Text(), "procmem") {
			return true
		}
	}
	return false
}

// fds counts the daemon's open file descriptors; -1 once it is gone.
func (m *mount) fds() int {
	entries, err := os.ReadDir("/proc/" + itoa(m.cmd.Process.Pid) + "/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}

// path is a path inside the mount.
func (m *mount) path(elem ...string) string {
	return filepath.Join(append([]string{m.dir}, elem...)...)
}

// openPattern opens the file of tg's pattern region through the mount;
// the test closes it.
func (m *mount) openPattern(tg *target, flag int) *os.File {
	m.t.Helper()
	f, err := os.OpenFile(m.path(itoa(tg.pid), tg.region(tg.addr["pattern"]).Name()), flag, 0)
	if err != nil {
		m.t.Fatal(err)
	}
	return f
}

// alive fails the test if the daemon stopped serving.
func (m *mount) alive() {
	m.t.Helper()
	if _, err := os.ReadDir(m.dir); err != nil {
		m.t.Fatalf("daemon no longer serving: %v\n%s", err, m.stderr.String())
	}
}

// stop sends SIGTERM and waits for the daemon; it must exit 0. Whether it
// was stopped here or died before, it must leave no mount behind.
func (m *mount) stop() {
	m.t.Helper()
	select {
	case <-m.exited:
	default:
		m.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.exited:
			if code := m.cmd.ProcessState.ExitCode(); code != 0 {
				m.t.Errorf("daemon exited %d on SIGTERM:\n%s", code, m.stderr.String())
			}
		case <-time.After(15 * time.Second):
			m.cmd.Process.Kill()
			<-m.exited
			m.t.Errorf("daemon did not exit on SIGTERM:\n%s", m.stderr.String())
		}
	}
	if mountedIn(m.mountinfo, m.dir) {
		syscall.Unmount(m.dir, syscall.MNT_DETACH)
		m.t.Errorf("mount left behind at %s", m.dir)
	}
}

func (m *mount) cleanup() {
	select {
	case <-m.exited:
	default:
		// Every file the test opened is closed by now; the kernel sends
		// RELEASE asynchronously, so give it a moment.
		var n int
		poll(5*time.Second, func() bool { n = m.fds(); return n <= m.baseFDs })
		if n < 0 {
			m.t.Errorf("the daemon is gone:\n%s", m.stderr.String())
		} else if n > m.baseFDs {
			m.t.Errorf("daemon leaked file descriptors: %d open, %d after mounting", n, m.baseFDs)
		}
	}
	m.stop()
}
