package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestNotify: the state arrives as one datagram on NOTIFY_SOCKET, a path
// or an abstract name; without the variable nothing is sent.
func TestNotify(t *testing.T) {
	for _, name := range []string{filepath.Join(t.TempDir(), "notify"), fmt.Sprintf("@procmem-test-%d", os.Getpid())} {
		conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("NOTIFY_SOCKET", name)
		if err := Notify("READY=1\nMAINPID=42"); err != nil {
			t.Fatal(err)
		}
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 100)
		n, err := conn.Read(b)
		if err != nil || string(b[:n]) != "READY=1\nMAINPID=42" {
			t.Errorf("%s received %q, %v", name, b[:n], err)
		}
		conn.Close()
	}
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Notify("READY=1"); err != nil {
		t.Errorf("Notify without NOTIFY_SOCKET: %v", err)
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "nobody-listens"))
	if err := Notify("READY=1"); err == nil {
		t.Errorf("Notify to a socket nobody listens on: no error")
	}
}

// TestLockMountpoint: the second lock of a directory is ErrBusy until the
// first is let go; a file is no mountpoint.
func TestLockMountpoint(t *testing.T) {
	dir := t.TempDir()
	first, err := LockMountpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockMountpoint(dir); !errors.Is(err, ErrBusy) {
		t.Errorf("a second lock: %v, want ErrBusy", err)
	}
	first.Close()
	again, err := LockMountpoint(dir)
	if err != nil {
		t.Errorf("the lock once let go: %v", err)
	} else {
		again.Close()
	}
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := LockMountpoint(file); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("a lock of a file: %v, want ENOTDIR", err)
	}
}

// TestToJournal: the journal is the stream JOURNAL_STREAM names, by
// device and inode, and nothing else.
func TestToJournal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "stream")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	if !toJournal(f) {
		t.Errorf("the stream JOURNAL_STREAM names is not taken for the journal")
	}
	if toJournal(os.Stdin) {
		t.Errorf("another file is taken for the journal")
	}
	t.Setenv("JOURNAL_STREAM", "")
	if toJournal(f) {
		t.Errorf("without JOURNAL_STREAM a file is taken for the journal")
	}
}

// TestDetachedOnlyWhenStarted: a process Start did not start has no
// handshake.
func TestDetachedOnlyWhenStarted(t *testing.T) {
	t.Setenv(readyEnv, "")
	if c := Detached(); c != nil {
		t.Errorf("Detached without %s: %+v", readyEnv, c)
	}
}
