package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
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
	Image     Image  // the image it ran when pinned (zero for OpenTask)
	root      string
	dir       int
}

// Open pins the process with the given PID. A process that does not exist
// is ESRCH; every other failure (EMFILE, EACCES) keeps its own errno.
func Open(pid int) (*Process, error) { return OpenIn(Root, pid) }

// OpenIn pins the process pid of the procfs mounted at root: another
// mount's /proc (a container's, mounted with its own PID namespace), or a
// copy of /proc/PID files saved under root/PID.
func OpenIn(root string, pid int) (*Process, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("process %d: %w", pid, unix.ESRCH)
	}
	dir, err := unix.Open(root+"/"+strconv.Itoa(pid), unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			err = unix.ESRCH
		}
		return nil, fmt.Errorf("process %d: %w", pid, err)
	}
	p := &Process{PID: pid, root: root, dir: dir}
	st, err := p.Stat()
	if err != nil {
		p.Close()
		return nil, err
	}
	p.StartTime = st.StartTime
	p.Zombie = st.Exited()
	p.Image = st.Image
	return p, nil
}

// OpenTask pins task tid (a process or one of its threads) to read its own
// files, status above all, without reading its stat first: StartTime and
// Zombie are left unknown.
func OpenTask(tid int) (*Process, error) {
	dir, err := unix.Open(Root+"/"+strconv.Itoa(tid), unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			err = unix.ESRCH
		}
		return nil, fmt.Errorf("task %d: %w", tid, err)
	}
	return &Process{PID: tid, root: Root, dir: dir}, nil
}

// Dup returns a second pin of the same process, to be closed on its own.
func (p *Process) Dup() (*Process, error) {
	dir, err := unix.FcntlInt(uintptr(p.dir), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", p.PID, err)
	}
	q := *p
	q.dir = dir
	return &q, nil
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

// OpenFd opens a file of the process's /proc directory as a bare fd, for
// the system calls the os package does not make (pread of mem at offsets
// past 2^63 is refused, and ioctls).
func (p *Process) OpenFd(name string, flags int) (int, error) {
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

func (p *Process) path(name string) string {
	return p.root + "/" + strconv.Itoa(p.PID) + "/" + name
}

// Stat reads /proc/PID/stat.
func (p *Process) Stat() (Stat, error) {
	f, err := p.OpenStat()
	if err != nil {
		return Stat{}, err
	}
	defer f.Close()
	return f.Read()
}

// StatFile is /proc/PID/stat held open, to be read again and again: the
// image check of every large read of memory reads it. Reads fail once the
// process is gone.
type StatFile struct {
	fd   int
	path string
}

// OpenStat opens /proc/PID/stat.
func (p *Process) OpenStat() (*StatFile, error) {
	fd, err := p.OpenFd("stat", unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	return &StatFile{fd: fd, path: p.path("stat")}, nil
}

// Read reads the file afresh. The line is far shorter than the buffer on
// the stack, and the kernel makes it in one read.
func (f *StatFile) Read() (Stat, error) {
	var buf [2048]byte
	for {
		n, err := unix.Pread(f.fd, buf[:], 0)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return Stat{}, &os.PathError{Op: "read", Path: f.path, Err: err}
		case n == len(buf):
			return Stat{}, fmt.Errorf("%w: %s longer than %d bytes", ErrParse, f.path, len(buf))
		}
		return parseStat(bytes.NewReader(buf[:n]))
	}
}

// Close closes the file.
func (f *StatFile) Close() error { return unix.Close(f.fd) }

// Status reads /proc/PID/status.
func (p *Process) Status() (Status, error) {
	b, err := p.ReadFile("status")
	if err != nil {
		return Status{}, err
	}
	return parseStatusText(string(b))
}

// Maps reads /proc/PID/maps.
func (p *Process) Maps() ([]Region, error) {
	b, err := p.ReadFile("maps")
	if err != nil {
		return nil, err
	}
	return parseMapsText(string(b))
}

// ReadMaps reads an open /proc/PID/maps whole, from its start: one opened
// with someone else's credentials, whose reads show what the kernel let
// them see (nothing, once the address space it was opened on is gone).
func ReadMaps(f *os.File) ([]Region, error) {
	b, err := readAll(int(f.Fd()), f.Name())
	if err != nil {
		return nil, err
	}
	return parseMapsText(string(b))
}

// ReadSmaps reads an open /proc/PID/smaps whole, as ReadMaps does maps.
func ReadSmaps(f *os.File) ([]Mapping, error) {
	b, err := readAll(int(f.Fd()), f.Name())
	if err != nil {
		return nil, err
	}
	return parseSmapsText(b) // the text as read, not copied: 43 MB for 60,000 mappings
}

// Smaps reads /proc/PID/smaps.
func (p *Process) Smaps() ([]Mapping, error) {
	b, err := p.ReadFile("smaps")
	if err != nil {
		return nil, err
	}
	return parseSmapsText(b)
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

// OpenFile opens a file of the process's /proc directory.
func (p *Process) OpenFile(name string, flags int) (*os.File, error) {
	fd, err := p.OpenFd(name, flags)
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

// Namespace names the namespace of the given kind ("user", "pid", "mnt")
// the process is in, as the link /proc/PID/ns/KIND reads: "user:[4026531837]".
func (p *Process) Namespace(kind string) (string, error) {
	buf := make([]byte, 64)
	for {
		n, err := unix.Readlinkat(p.dir, "ns/"+kind, buf)
		if err != nil {
			return "", &os.PathError{Op: "readlink", Path: p.path("ns/" + kind), Err: err}
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, 2*len(buf))
	}
}

// Owner is the owner of the process's /proc directory, as the kernel shows
// it: the effective uid and gid, or root for a process that is not
// dumpable.
func (p *Process) Owner() (uid, gid uint32, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(p.dir, &st); err != nil {
		return 0, 0, &os.PathError{Op: "stat", Path: p.path(""), Err: err}
	}
	return st.Uid, st.Gid, nil
}
