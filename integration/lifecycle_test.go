//go:build linux

package integration

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMountRecoversStaleMount kills a daemon with SIGKILL, which leaves a
// dead mount ("transport endpoint is not connected"); the next mount on the
// same directory must say so, recover it and serve.
func TestMountRecoversStaleMount(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "mnt")
	m := startMountAt(t, nil, dir)
	m.cmd.Process.Kill()
	<-m.exited
	if _, err := os.ReadDir(dir); !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("after SIGKILL the mount point says %v, want ENOTCONN", err)
	}
	m2 := startMountAt(t, nil, dir)
	if !strings.Contains(m2.stderr.String(), "recovered stale mount") {
		t.Errorf("no word about the stale mount: %q", m2.stderr.String())
	}
	if _, err := os.Readlink(m2.path("self")); err != nil {
		t.Errorf("the new mount does not serve: %v", err)
	}
}

// TestMountAsUser mounts as an unprivileged user through fusermount3.
func TestMountAsUser(t *testing.T) {
	requireRoot(t)
	requireTool(t, "setpriv", "fusermount3")
	requireFUSE(t)
	// fusermount3 opens /dev/fuse with the user's rights; Debian makes it
	// 0666, some machines 0600.
	st, err := os.Stat("/dev/fuse")
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o666 {
		if err := os.Chmod("/dev/fuse", 0o666); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod("/dev/fuse", st.Mode().Perm()) })
	}
	openToAll(t, binDir)
	base := t.TempDir()
	openToAll(t, base)
	dir := filepath.Join(base, "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(dir, 65534, 65534)
	tg := startTargetAs(t, asNobody, targetBin, 1<<20)
	m := startMountAt(t, asNobody, dir)
	r := runAs(t, asNobody, "cat", m.path(itoa(tg.pid), "statm"))
	if r.code != 0 || !strings.Contains(r.stdout, "total program size") {
		t.Errorf("the user reading its own process: exit %d, %s", r.code, r.stderr)
	}
	if r := runAs(t, asNobody, "ls", m.path("1")); r.code == 0 {
		t.Errorf("the user listed pid 1 through its own mount")
	}
	// Without --allow-other even root is kept out of a user's mount.
	if _, err := os.ReadDir(dir); !errors.Is(err, syscall.EACCES) {
		t.Errorf("root reading the user's mount: %v, want EACCES", err)
	}
	m.stop()
	if isMounted(dir) {
		t.Errorf("still mounted after SIGTERM")
	}
}

// TestMountSigtermWithOpenFile: SIGTERM while a region file is open cannot
// unmount; a second one detaches the mount lazily, the open file is still
// served, and the daemon exits 0 once it is closed.
func TestMountSigtermWithOpenFile(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	m := startMount(t)
	f := m.openPattern(tg, os.O_RDONLY)
	defer f.Close()
	m.cmd.Process.Signal(syscall.SIGTERM)
	// The daemon says so once its first unmount was refused.
	waitFor(t, "a word about the busy mount", func() (string, bool) {
		s := m.stderr.String()
		return s, strings.Contains(s, "send the signal again")
	})
	select {
	case <-m.exited:
		t.Fatalf("daemon exited with a file still open")
	default:
	}
	m.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, "the lazy unmount", func() (string, bool) { return "", !isMounted(m.dir) })
	b := make([]byte, 8)
	if _, err := f.ReadAt(b, 0); err != nil || string(b) != string(tg.pattern[:8]) {
		t.Errorf("the open file after the lazy unmount: %v", err)
	}
	f.Close()
	select {
	case <-m.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("daemon still running after the last file was closed")
	}
	if code := m.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit %d", code)
	}
	if isMounted(m.dir) {
		t.Errorf("mount left behind")
	}
}

// fixedPattern is where the lifecycle tests put the pattern of a process
// and of the one that takes its place (after an exec, or on its PID), so
// that a read bound to the PID instead of the address space would find
// memory there and show it.
const fixedPattern = "0x6f0000000000"

// TestHandleAfterExec: a file opened before the process execs stays bound
// to the address space it was opened on, never the new program's (which
// has its pattern at the same address, filled with 0xEE). Once that
// address space is gone the file reads EOF and cannot write; while a
// process created with CLONE_VM still holds it, the file reads it, as
// /proc/PID/mem itself does.
func TestHandleAfterExec(t *testing.T) {
	for _, sibling := range []bool{false, true} {
		t.Run(map[bool]string{false: "alone", true: "clone-vm-sibling"}[sibling], func(t *testing.T) {
			tg := startTargetAs(t, nil, targetBin, 1<<20, "at", fixedPattern)
			m := startMount(t)
			pat := tg.region(tg.addr["pattern"])
			f, err := os.OpenFile(m.path(itoa(tg.pid), pat.Name()), os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if sibling {
				tg.ask("sibling")
			}
			tg.execAgain()
			if got := tg.peek(pat.Start, 4); string(got) != "\xee\xee\xee\xee" {
				t.Fatalf("the new image has no pattern at %#x: %x", pat.Start, got)
			}
			// Large and small reads: they take different paths (procfs/vmread.go).
			for _, size := range []int{1 << 20, 16} {
				b := make([]byte, size)
				n, err := f.ReadAt(b, 0)
				switch {
				case bytes.Contains(b[:n], []byte{0xee, 0xee, 0xee, 0xee}):
					t.Errorf("read of %d after exec shows the new image: %x...", size, b[:min(n, 8)])
				case !sibling && (n != 0 || err != io.EOF):
					t.Errorf("read of %d after exec: %d bytes, %v; want EOF", size, n, err)
				case sibling && (n != size || !bytes.Equal(b, tg.pattern[:size])):
					t.Errorf("read of %d after exec, old address space alive: %d bytes, %v; want its pattern", size, n, err)
				}
			}
			if !sibling {
				if n, err := f.WriteAt([]byte("x"), 0); n != 0 || err == nil {
					t.Errorf("write after exec: %d, %v; want a failure", n, err)
				}
			}
			if _, err := os.ReadFile(m.path(itoa(tg.pid), "info")); err != nil {
				t.Errorf("the new program's info: %v", err)
			}
		})
	}
}

// TestPidReuse gives the PID of an exited process to a new one (clone3
// with set_tid, through testdata/spawnat.c): a file opened on the old
// process never reads or writes the new one, and the new process's
// directory is a new inode.
func TestPidReuse(t *testing.T) {
	requireRoot(t)
	old := startTargetAs(t, nil, targetBin, 1<<20, "at", fixedPattern)
	m := startMount(t)
	pid := old.pid
	pat := old.region(old.addr["pattern"])
	f, err := os.OpenFile(m.path(itoa(pid), pat.Name()), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("OLD-ONLY"), 0); err != nil {
		t.Fatal(err)
	}
	var oldIno uint64
	if st, err := os.Stat(m.path(itoa(pid))); err == nil {
		oldIno = st.Sys().(*syscall.Stat_t).Ino
	}
	old.kill()

	reused := startTargetAs(t, []string{spawnatBin, itoa(pid)}, targetBin, 1<<20, "at", fixedPattern)
	if reused.pid != pid {
		t.Fatalf("the new process has pid %d, not %d", reused.pid, pid)
	}
	if reused.addr["pattern"] != old.addr["pattern"] {
		t.Fatalf("the new pattern is at %#x, not %#x", reused.addr["pattern"], old.addr["pattern"])
	}
	for _, size := range []int{1 << 20, 8} {
		b := make([]byte, size)
		if n, err := f.ReadAt(b, 0); n != 0 {
			t.Errorf("the old file read %d bytes (%q..., %v) from the process that reused its pid", n, b[:min(n, 8)], err)
		}
	}
	if n, err := f.WriteAt([]byte("LEAKED!!"), 0); n != 0 || err == nil {
		t.Errorf("the old file wrote to the process that reused its pid: %d, %v", n, err)
	}
	newPat := reused.region(reused.addr["pattern"])
	if got := reused.peek(newPat.Start, 8); string(got) != string(reused.pattern[:8]) {
		t.Errorf("the new process's memory changed: %q", got)
	}
	// Once procmem has seen the old process gone (the reads above), the
	// name leads to the new process, under a new inode.
	waitFor(t, "the new process's directory", func() (string, bool) {
		st, err := os.Stat(m.path(itoa(pid)))
		return fmt.Sprint(err), err == nil && st.Sys().(*syscall.Stat_t).Ino != oldIno
	})
	if got, err := os.ReadFile(m.path(itoa(pid), newPat.Name())); err != nil || string(got[:8]) != string(reused.pattern[:8]) {
		t.Errorf("a fresh open reads the new process: %v", err)
	}
}

// TestMountOutputClosed: "procmem mount DIR | true" must go on serving
// once nobody reads what it prints, and still stop cleanly on SIGTERM.
func TestMountOutputClosed(t *testing.T) {
	requireFUSE(t)
	tg := startTarget(t, "", 1<<20)
	dir := filepath.Join(t.TempDir(), "mnt")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // as "| true" does, before the daemon says anything
	cmd := exec.Command(procmemBin, "mount", dir)
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		if isMounted(dir) {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	waitFor(t, "the mount", func() (string, bool) { return "", isMounted(dir) })
	for i := 0; i < 3; i++ { // and it goes on serving, past its first writes
		b, err := os.ReadFile(filepath.Join(dir, itoa(tg.pid), "statm"))
		if err != nil || !strings.Contains(string(b), "total program size") {
			t.Fatalf("reading through a daemon whose output is closed: %v", err)
		}
		select {
		case err := <-exited:
			t.Fatalf("the daemon exited: %v", err)
		default:
		}
	}
	cmd.Process.Signal(syscall.SIGUSR1) // makes it write to the closed pipe
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("daemon after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("daemon did not exit on SIGTERM")
	}
	if isMounted(dir) {
		t.Error("mount left behind")
	}
}
