// Package daemon lets procmem mount run as every filesystem's daemon does:
// in the background once its mount is ready (mount(8) waits for its
// helper to return, as sshfs does), telling systemd when it is ready
// (sd_notify), and alone on its mountpoint.
package daemon

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The parent hands the daemon two descriptors: the write end of a pipe on
// which the daemon says "ready", and where its log goes once it is.
const (
	readyEnv = "PROCMEM_DAEMON_READY_FD"
	readyFD  = 3
	logFD    = 4
	readyMsg = "ready\n"
)

// ErrFailed is returned by Start when the daemon ended before it was
// ready; what it said on its standard error was passed on.
var ErrFailed = errors.New("the daemon did not start")

// Start starts this program again with args, detached (a session of its
// own, standard input and output on /dev/null), and returns once it says
// it is ready, or ErrFailed once it has ended without. Until then its
// standard error goes to stderr, so its errors reach the caller; after,
// to the journal when stderr is the journal (systemd runs us), or nowhere.
func Start(args []string, stderr io.Writer) (pid int, err error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer null.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer readyR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		readyW.Close()
		return 0, err
	}
	defer errR.Close()
	log := null
	if toJournal(os.Stderr) {
		log = os.Stderr
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), readyEnv+"="+strconv.Itoa(readyFD))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = null, null, errW
	cmd.ExtraFiles = []*os.File{readyW, log} // descriptors 3 and 4
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	readyW.Close()
	errW.Close()
	if err != nil {
		return 0, err
	}
	forwarded := make(chan struct{})
	go func() { io.Copy(stderr, errR); close(forwarded) }()
	line, _ := bufio.NewReader(readyR).ReadString('\n')
	<-forwarded // the daemon closes its stderr before it says ready
	if line != readyMsg {
		cmd.Wait()
		return 0, ErrFailed
	}
	pid = cmd.Process.Pid
	cmd.Process.Release()
	return pid, nil
}

// toJournal reports whether f is the journal's stream: systemd names it
// in JOURNAL_STREAM (device:inode) for the processes it starts.
func toJournal(f *os.File) bool {
	dev, ino, ok := strings.Cut(os.Getenv("JOURNAL_STREAM"), ":")
	if !ok {
		return false
	}
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return false
	}
	return dev == strconv.FormatUint(st.Dev, 10) && ino == strconv.FormatUint(st.Ino, 10)
}

// Child is the daemon Start started, until it is ready.
type Child struct {
	ready *os.File
	log   *os.File
}

// Detached returns the daemon's side of Start's handshake, or nil if this
// process was not started by Start. It is called once, early.
func Detached() *Child {
	if os.Getenv(readyEnv) != strconv.Itoa(readyFD) {
		return nil
	}
	os.Unsetenv(readyEnv) // not for what the daemon starts in turn
	closeInherited()
	return &Child{ready: os.NewFile(readyFD, "ready"), log: os.NewFile(logFD, "log")}
}

// closeInherited closes the descriptors the daemon inherited beyond those
// Start gave it: the caller's strays (Go passes on every descriptor that
// is not close-on-exec), which the daemon would otherwise hold for as long
// as it serves. Go's own descriptors are all close-on-exec.
func closeInherited() {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= logFD {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
}

// Ready tells the parent that the mount is ready, once the daemon's
// standard error goes to its log: what was said before reached the caller,
// and nothing the daemon says afterwards holds the caller's stderr open.
// It also leaves the caller's working directory, so that it can be
// unmounted.
func (c *Child) Ready() error {
	err := unix.Dup3(int(c.log.Fd()), 2, 0)
	c.log.Close()
	if err != nil {
		return fmt.Errorf("daemon: standard error to the log: %w", err)
	}
	os.Chdir("/")
	_, err = io.WriteString(c.ready, readyMsg)
	c.ready.Close()
	return err
}

// Notify sends state ("READY=1", "STOPPING=1") to systemd's notification
// socket, NOTIFY_SOCKET, if there is one (sd_notify(3)): a datagram on a
// Unix socket, named "@..." in the abstract namespace.
func Notify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify %s: %w", path, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %s: %w", path, err)
	}
	return nil
}
