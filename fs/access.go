package fs

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

// accessControl decides opens of /proc/PID files for the caller of a FUSE
// request exactly as the kernel would: the file is opened on a locked OS
// thread that has taken the caller's credentials, so the kernel's own
// check (ptrace_may_access, the file's mode) runs against the caller. What
// is read then goes through that fd, so the check and the read are one act.
type accessControl struct {
	daemon    credentials
	self      int  // the daemon's PID
	canSwitch bool // the daemon may take other credentials (root)
}

// credentials are a task's whole credentials: its ids, groups and
// capabilities, in the user namespace it is in. They are what a caller is
// switched to; their identity (below) is what decides, and keys the
// per-caller caches.
type credentials struct {
	uid, gid [4]uint32 // real, effective, saved, filesystem
	groups   string    // supplementary groups, sorted, comma-separated
	capEff   uint64
	capPrm   uint64
	capInh   uint64
	userNS   string
}

// credentialsOf reads the credentials of task tid (a thread or a process).
func credentialsOf(tid int) (credentials, error) {
	p, err := procfs.OpenTask(tid)
	if err != nil {
		return credentials{}, err
	}
	defer p.Close()
	st, err := p.Status()
	if err != nil {
		return credentials{}, err
	}
	ns, err := p.Namespace("user")
	if err != nil {
		return credentials{}, err
	}
	groups := slices.Clone(st.Groups)
	slices.Sort(groups)
	g := make([]string, len(groups))
	for i, id := range groups {
		g[i] = strconv.FormatUint(uint64(id), 10)
	}
	return credentials{uid: st.Uid, gid: st.Gid, groups: strings.Join(g, ","),
		capEff: st.CapEff, capPrm: st.CapPrm, capInh: st.CapInh, userNS: ns}, nil
}

func (c credentials) groupList() []uint32 {
	if c.groups == "" {
		return nil
	}
	var ids []uint32
	for _, f := range strings.Split(c.groups, ",") {
		v, _ := strconv.ParseUint(f, 10, 32)
		ids = append(ids, uint32(v))
	}
	return ids
}

// capSetUID, capSetGID: what switching needs; a daemon without them
// cannot act for anyone else.
const (
	capSetGID = 6
	capSetUID = 7
)

func newAccessControl() (*accessControl, error) {
	// The main thread's credentials are every thread's: the daemon never
	// changes its own.
	self, err := credentialsOf(unix.Getpid())
	if err != nil {
		return nil, fmt.Errorf("reading the daemon's own credentials: %w", err)
	}
	need := uint64(1)<<capSetUID | uint64(1)<<capSetGID
	return &accessControl{daemon: self, self: unix.Getpid(), canSwitch: self.capEff&need == need}, nil
}

// identity is what the kernel's checks of a /proc open read of the
// opener's credentials: the filesystem ids (ptrace_may_access compares them
// with the target's ids in PTRACE_MODE_FSCREDS, generic_permission with
// the file's owner; the files procmem opens give their group no more than
// everyone, so supplementary groups change nothing), the effective
// capabilities, and the user namespace they count in. Callers
// of one identity get one answer, so it keys the per-caller caches. It
// costs a capget and a readlink to learn, where the whole credentials
// cost a read of /proc/TID/status (10-15 µs, on every lookup of ls -l).
type identity struct {
	fsuid, fsgid uint32
	capEff       uint64
	userNS       string
}

func (c credentials) identity() identity {
	return identity{fsuid: c.uid[3], fsgid: c.gid[3], capEff: c.capEff, userNS: c.userNS}
}

// who is the caller of a request: its identity, and its thread, for when
// its whole credentials must be read.
type who struct {
	identity
	tid int
}

// callerKey keys the caller in a request's context, once learnt
// (withCaller).
type callerKey struct{}

// withCaller learns the caller once for a request that asks more than
// once.
func (a *accessControl) withCaller(ctx context.Context) (context.Context, error) {
	w, err := a.caller(ctx)
	if err != nil {
		return ctx, err
	}
	return context.WithValue(ctx, callerKey{}, w), nil
}

// caller learns who the request's caller is: FUSE gives its filesystem
// ids and its thread, capget its capabilities. A request without a caller
// (the kernel's own), or whose caller is gone, is refused.
func (a *accessControl) caller(ctx context.Context) (who, error) {
	if w, ok := ctx.Value(callerKey{}).(who); ok {
		return w, nil
	}
	c, ok := fuse.FromContext(ctx)
	if !ok || c.Pid == 0 {
		return who{}, syscall.EACCES
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3, Pid: int32(c.Pid)}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return who{}, syscall.EACCES
	}
	buf := make([]byte, 64)
	n, err := unix.Readlink(procfs.Root+"/"+strconv.Itoa(int(c.Pid))+"/ns/user", buf)
	if err != nil {
		return who{}, syscall.EACCES
	}
	return who{identity{fsuid: c.Uid, fsgid: c.Gid, capEff: uint64(data[1].Effective)<<32 | uint64(data[0].Effective), userNS: string(buf[:n])}, int(c.Pid)}, nil
}

// opener opens files of process pid with the rights of caller w: the only
// way the filesystem gets a memory.Reader. Files of map_files are opened
// with the caller's credentials and CAP_CHECKPOINT_RESTORE, which the
// kernel asks of whoever looks there: the caller's own rights still decide
// whether it may reach the process and read the file.
func (a *accessControl) opener(w who, pid int) memory.Opener {
	return func(open func() error, mapFiles bool) error {
		if !mapFiles {
			return a.as(w, pid, open)
		}
		return a.asPlus(w, pid, capCheckpointRestore, open)
	}
}

// capCheckpointRestore lets a thread look in /proc/PID/map_files (Linux
// 5.9), as CAP_SYS_ADMIN does, without any other privilege.
const capCheckpointRestore = 40

// as runs open, which opens files of process pid, as caller w. A caller
// of the daemon's identity is decided as the daemon: the kernel would
// decide the same for it. Any other is switched to, with its whole
// credentials, on a thread of its own. What cannot be emulated fails
// closed: a caller in another user namespace (the kernel would compare
// capabilities there), every caller of a daemon that cannot switch, and
// the daemon's own process, which the kernel lets every thread of it read
// whatever its credentials.
func (a *accessControl) as(w who, pid int, open func() error) error {
	return a.asPlus(w, pid, -1, open)
}

// asPlus is as, with capability extra (if not -1) added to the caller's
// effective set when it is switched to; the daemon's own identity has it.
func (a *accessControl) asPlus(w who, pid, extra int, open func() error) error {
	switch {
	case w.identity == a.daemon.identity():
		return open()
	case !a.canSwitch, w.userNS != a.daemon.userNS, pid == a.self:
		return syscall.EACCES
	}
	c, err := a.credentials(w)
	if err != nil {
		return err
	}
	if extra >= 0 {
		c.capEff |= 1 << extra & a.daemon.capPrm
	}
	return runAs(c, a.daemon, open)
}

// credentials reads the caller's whole credentials, for a switch to them.
// They must be of the identity the request was decided for: a caller that
// changed its credentials meanwhile is refused.
func (a *accessControl) credentials(w who) (credentials, error) {
	c, err := credentialsOf(w.tid)
	if err != nil || c.identity() != w.identity {
		return credentials{}, syscall.EACCES
	}
	return c, nil
}

// runAs runs fn on a locked OS thread that has taken credentials c, and
// gives the thread back to the runtime only once it has the daemon's
// credentials (back) again; a thread that cannot get them back ends with
// its goroutine, so no later request ever runs with the wrong ones.
//
// Every change is a raw per-thread system call: syscall.Setresuid and the
// like change every thread of the process. The permitted set stays the
// daemon's, so the thread can switch back; the kernel's checks of /proc
// opens (PTRACE_MODE_FSCREDS, generic_permission) read only the
// filesystem ids, groups and effective capabilities, which are the
// caller's.
func runAs(c, back credentials, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := become(c, back); err != nil {
			if become(back, back) == nil {
				runtime.UnlockOSThread()
			}
			done <- err
			return
		}
		err := fn()
		if become(back, back) == nil {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// become gives the calling thread credentials c; base holds the sets it
// keeps (the daemon's permitted and inheritable ones).
func become(c, base credentials) error {
	const keep = ^uintptr(0) // -1: leave this id unchanged
	raw := func(trap uintptr, a1, a2, a3 uintptr) error {
		if _, _, e := syscall.RawSyscall(trap, a1, a2, a3); e != 0 {
			return e
		}
		return nil
	}
	if c.capEff&^base.capPrm != 0 {
		return syscall.EACCES // more than the daemon holds: cannot be emulated
	}
	// Keep the permitted set across leaving uid 0, so the thread can come
	// back; and switch back to the daemon's effective set first when
	// coming back, since changing ids needs CAP_SETUID and CAP_SETGID.
	if err := capset(base.capEff, base.capPrm, base.capInh); err != nil {
		return err
	}
	if err := raw(syscall.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 1, 0); err != nil {
		return err
	}
	groups := c.groupList()
	if _, _, e := syscall.RawSyscall(syscall.SYS_SETGROUPS, uintptr(len(groups)), uintptr(unsafe.Pointer(unsafe.SliceData(groups))), 0); e != 0 {
		return e
	}
	if err := raw(syscall.SYS_SETRESGID, uintptr(c.gid[0]), uintptr(c.gid[1]), uintptr(c.gid[2])); err != nil {
		return err
	}
	raw(syscall.SYS_SETFSGID, uintptr(c.gid[3]), 0, 0)
	if err := raw(syscall.SYS_SETRESUID, uintptr(c.uid[0]), uintptr(c.uid[1]), uintptr(c.uid[2])); err != nil {
		return err
	}
	raw(syscall.SYS_SETFSUID, uintptr(c.uid[3]), 0, 0)
	// setfsuid and setfsgid report no errors: ask for the ids they set.
	fsuid, _, _ := syscall.RawSyscall(syscall.SYS_SETFSUID, keep, 0, 0)
	fsgid, _, _ := syscall.RawSyscall(syscall.SYS_SETFSGID, keep, 0, 0)
	if uint32(fsuid) != c.uid[3] || uint32(fsgid) != c.gid[3] {
		return syscall.EACCES
	}
	if err := capset(c.capEff, base.capPrm, base.capInh); err != nil {
		return err
	}
	if c == base {
		return raw(syscall.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 0, 0)
	}
	return nil
}

// capset sets the calling thread's capability sets.
func capset(eff, prm, inh uint64) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(eff), Permitted: uint32(prm), Inheritable: uint32(inh)},
		{Effective: uint32(eff >> 32), Permitted: uint32(prm >> 32), Inheritable: uint32(inh >> 32)},
	}
	return unix.Capset(&hdr, &data[0])
}
