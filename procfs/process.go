package procfs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Process pins one process: it holds a directory fd on /proc/PID, through
// which every file is opened. Once the process is gone those opens fail
// with ESRCH even if the PID number has been reused, so data read through a
// Process always belongs to the process that was opened.
type Process struct {
	PID       int
	StartTime uint64 // from /proc/PID/stat; with PID, identifies the process
	Zombie    bool   // exited, not yet reaped: no memory left to show
	dir       int
}

// Open pins the process with the given PID.
func Open(pid int) (*Process, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("no process with pid %d: %w", pid, unix.ESRCH)
	}
	dir, err := unix.Open(Root+"/"+strconv.Itoa(pid), unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			err = unix.ESRCH
		}
		return nil, fmt.Errorf("no process with pid %d: %w", pid, err)
	}
	p := &Process{PID: pid, dir: dir}
	st, err := p.Stat()
	if err != nil {
		p.Close()
		return nil, err
	}
	p.StartTime = st.StartTime
	p.Zombie = st.Exited()
	return p, nil
}

// Close releases the pin.
func (p *Process) Close() error {
	if p.dir < 0 {
		return nil
	}
	err := unix.Close(p.dir)
	p.dir = -1
	return err
}

// ReadFile reads a file of the process's /proc directory whole.
func (p *Process) ReadFile(name string) ([]byte, error) {
	return readFileAt(p.dir, name, p.path(name))
}

func (p *Process) openat(name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(p.dir, name, flags|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: p.path(name), Err: err}
		}
		return fd, nil
	}
}

func (p *Process) path(name string) string { return pidPath(p.PID, name) }

// Stat reads /proc/PID/stat.
func (p *Process) Stat() (Stat, error) {
	b, err := p.ReadFile("stat")
	if err != nil {
		return Stat{}, err
	}
	return parseStat(strings.NewReader(string(b)))
}

// Status reads /proc/PID/status.
func (p *Process) Status() (Status, error) {
	b, err := p.ReadFile("status")
	if err != nil {
		return Status{}, err
	}
	return parseStatus(strings.NewReader(string(b)))
}

// Maps reads /proc/PID/maps.
func (p *Process) Maps() ([]Region, error) {
	b, err := p.ReadFile("maps")
	if err != nil {
		return nil, err
	}
	return parseMapsText(string(b))
}

// Smaps reads /proc/PID/smaps.
func (p *Process) Smaps() ([]Mapping, error) {
	b, err := p.ReadFile("smaps")
	if err != nil {
		return nil, err
	}
	return parseSmaps(strings.NewReader(string(b)))
}

// Statm reads /proc/PID/statm.
func (p *Process) Statm() (Statm, error) {
	b, err := p.ReadFile("statm")
	if err != nil {
		return Statm{}, err
	}
	return parseStatm(strings.NewReader(string(b)), uint64(os.Getpagesize()))
}

// Cmdline reads /proc/PID/cmdline as its NUL-separated arguments.
func (p *Process) Cmdline() ([]string, error) {
	b, err := p.ReadFile("cmdline")
	if err != nil {
		return nil, err
	}
	s := strings.TrimRight(string(b), "\x00")
	if s == "" {
		return nil, nil
	}
	return strings.Split(s, "\x00"), nil
}

// OpenMem opens /proc/PID/mem, read-only or read-write. The kernel decides
// access at open time (ptrace_may_access); the fd stays bound to the
// process's address space afterwards.
func (p *Process) OpenMem(write bool) (*Mem, error) {
	flags := unix.O_RDONLY
	if write {
		flags = unix.O_RDWR
	}
	// The image is read before mem is opened and compared after: if they
	// match, no exec came between, and the image is the one mem is bound to.
	vm := p.openVMReader()
	fd, err := p.openat("mem", flags)
	if err != nil {
		vm.close()
		return nil, err
	}
	m := &Mem{fd: fd, pid: p.PID}
	if vm != nil && vm.same() {
		m.vm = vm
	} else {
		vm.close()
	}
	return m, nil
}

// ProcessEntry is one line of the process list.
type ProcessEntry struct {
	PID  int
	Comm string
}

// Processes lists every process (thread-group leader) with its command name.
// Processes that exit while being listed are left out.
func Processes() ([]ProcessEntry, error) {
	pids, err := PIDs()
	if err != nil {
		return nil, err
	}
	var list []ProcessEntry
	for _, pid := range pids {
		b, err := readFile(pidPath(pid, "comm"))
		if err != nil {
			continue
		}
		list = append(list, ProcessEntry{PID: pid, Comm: strings.TrimSuffix(string(b), "\n")})
	}
	return list, nil
}

// PIDs lists the numeric entries of /proc in ascending order: the
// thread-group leaders (threads are not listed there).
func PIDs() ([]int, error) {
	d, err := os.Open(Root)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, name := range names {
		if pid, err := strconv.Atoi(name); err == nil && pid > 0 && name == strconv.Itoa(pid) {
			pids = append(pids, pid)
		}
	}
	sort.Ints(pids)
	return pids, nil
}

// commLen is the kernel's TASK_COMM_LEN less the terminating NUL.
const commLen = 15

// FindByName returns the PIDs whose command name is exactly name. Command
// names are cut to 15 bytes by the kernel, so a longer name matches a
// process whose comm is its first 15 bytes and whose argv[0] has it as
// base name.
func FindByName(name string) ([]int, error) {
	list, err := Processes()
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, p := range list {
		switch {
		case p.Comm == name:
			pids = append(pids, p.PID)
		case len(name) > commLen && p.Comm == name[:commLen]:
			b, err := readFile(pidPath(p.PID, "cmdline"))
			if err != nil {
				continue
			}
			argv0, _, _ := strings.Cut(string(b), "\x00")
			if filepath.Base(argv0) == name {
				pids = append(pids, p.PID)
			}
		}
	}
	return pids, nil
}

// ResolvePID turns a -p argument, a number or "self", into a PID of an
// existing process.
func ResolvePID(spec string) (int, error) {
	if spec == "self" {
		return os.Getpid(), nil
	}
	pid, err := strconv.Atoi(spec)
	if err != nil || pid <= 0 || spec != strconv.Itoa(pid) {
		return 0, fmt.Errorf("bad pid %q: want a positive number or \"self\"", spec)
	}
	if _, err := os.Stat(pidPath(pid, "stat")); err != nil {
		return 0, fmt.Errorf("no process with pid %d", pid)
	}
	return pid, nil
}

// ResolveName turns a -P argument into the PID of the one process with that
// command name; none or several are errors, the latter listing them.
func ResolveName(name string) (int, error) {
	pids, err := FindByName(name)
	if err != nil {
		return 0, err
	}
	switch len(pids) {
	case 0:
		return 0, fmt.Errorf("no process named %q", name)
	case 1:
		return pids[0], nil
	}
	s := make([]string, len(pids))
	for i, pid := range pids {
		s[i] = strconv.Itoa(pid)
	}
	return 0, fmt.Errorf("%d processes are named %q, pick one with -p: %s", len(pids), name, strings.Join(s, ", "))
}

// IsGone reports whether err means the process no longer exists.
func IsGone(err error) bool {
	return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) || errors.Is(err, io.EOF)
}

// OpenFile opens a file of the process's /proc directory.
func (p *Process) OpenFile(name string, flags int) (*os.File, error) {
	fd, err := p.openat(name, flags)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), p.path(name)), nil
}

// OpenMapFile opens the file a shared or file-backed region maps, through
// /proc/PID/map_files, which the kernel allows only with CAP_SYS_ADMIN.
func (p *Process) OpenMapFile(r Region) (*os.File, error) {
	return p.OpenFile(fmt.Sprintf("map_files/%x-%x", r.Start, r.End), unix.O_RDONLY)
}
