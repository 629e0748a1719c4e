package fs

import (
	"context"
	"runtime"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

// accessControl decides opens of /proc/PID files for the caller of a FUSE
// request exactly as the kernel would: a root daemon opens on a locked OS
// thread that has taken the caller's effective uid and gid, so the kernel's
// own ptrace_may_access check runs against the caller. The fd works from
// any thread afterwards; the kernel checks only at open.
type accessControl struct {
	daemonUID uint32
	daemonGID uint32
}

func newAccessControl(uid, gid uint32) *accessControl {
	return &accessControl{daemonUID: uid, daemonGID: gid}
}

// isDaemon reports whether the caller has the daemon's own uid and gid:
// then what the daemon itself may read is what the caller may read, and
// the daemon's own reads of /proc decide.
func (a *accessControl) isDaemon(ctx context.Context) bool {
	caller, ok := fuse.FromContext(ctx)
	return ok && caller.Uid == a.daemonUID && caller.Gid == a.daemonGID
}

// asCaller runs open with the credentials of the request's caller.
func (a *accessControl) asCaller(ctx context.Context, open func() error) error {
	caller, ok := fuse.FromContext(ctx)
	if !ok {
		return syscall.EACCES // fail closed: no caller, no access
	}
	switch {
	case caller.Uid == a.daemonUID && (a.daemonUID != 0 || caller.Gid == a.daemonGID):
		// The caller is who the daemon is: the kernel decides as it would
		// for the daemon. A root caller in another group still goes through
		// the switch below (with uid 0 it changes nothing of the outcome).
		return open()
	case a.daemonUID != 0:
		// An unprivileged daemon cannot take another user's credentials;
		// it must not lend its own.
		return syscall.EACCES
	}
	return runWithIDs(caller.Uid, caller.Gid, a.daemonUID, a.daemonGID, open)
}

// runWithIDs runs fn on a fresh OS thread whose effective uid and gid are
// uid and gid. It uses raw per-thread setresuid/setresgid system calls;
// syscall.Setresuid would change every thread of the process. Real and
// saved ids stay the daemon's so the thread can switch back. If switching
// back fails the thread stays locked and dies with its goroutine, so no
// later request ever runs with the wrong credentials.
func runWithIDs(uid, gid, backUID, backGID uint32, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		const keep = ^uintptr(0) // -1: leave this id unchanged
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESGID, keep, uintptr(gid), keep); e != 0 {
			runtime.UnlockOSThread()
			done <- syscall.EACCES
			return
		}
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, keep, uintptr(uid), keep); e != 0 {
			if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESGID, keep, uintptr(backGID), keep); e == 0 {
				runtime.UnlockOSThread()
			}
			done <- syscall.EACCES
			return
		}
		err := fn()
		_, _, e1 := syscall.RawSyscall(syscall.SYS_SETRESUID, keep, uintptr(backUID), keep)
		_, _, e2 := syscall.RawSyscall(syscall.SYS_SETRESGID, keep, uintptr(backGID), keep)
		if e1 == 0 && e2 == 0 {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// check tells whether the caller may open the named file of the process.
func (a *accessControl) check(ctx context.Context, p *procfs.Process, name string) error {
	return a.asCaller(ctx, func() error {
		f, err := p.OpenFile(name, syscall.O_RDONLY)
		if err == nil {
			f.Close()
		}
		return err
	})
}

// opener opens files with the rights of the request's caller: the only
// way the filesystem gets a memory.Reader.
func (a *accessControl) opener(ctx context.Context) memory.Opener {
	return func(open func() error) error { return a.asCaller(ctx, open) }
}
