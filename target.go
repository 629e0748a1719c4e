package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/procmem/procmem/core"
	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

// resolveTarget turns -p and -P into the PID of the target: -p's number or
// "self", -P's one process of that name, procmem itself when neither.
func resolveTarget(pidSpec, name string) (int, error) {
	switch {
	case pidSpec != "":
		return resolvePID(pidSpec)
	case name != "":
		return resolveName(name)
	}
	return os.Getpid(), nil
}

// resolvePID turns a -p argument, a number or "self", into a PID of an
// existing process.
func resolvePID(spec string) (int, error) {
	if spec == "self" {
		return os.Getpid(), nil
	}
	pid, err := strconv.Atoi(spec)
	if err != nil || pid <= 0 || spec != strconv.Itoa(pid) {
		return 0, usagef("bad pid %q: want a positive number or \"self\"", spec)
	}
	if _, err := os.Stat(fmt.Sprintf("%s/%d/stat", procfs.Root, pid)); err != nil {
		return 0, noProcess{pid}
	}
	return pid, nil
}

// noProcess is a -p that names no process (any more).
type noProcess struct{ pid int }

func (e noProcess) Error() string { return fmt.Sprintf("no process with pid %d", e.pid) }

// resolveName turns a -P argument into the PID of the one process with that
// command name; none or several are errors, the latter listing them.
func resolveName(name string) (int, error) {
	pids, err := findByName(name)
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

// processEntry is one line of the process list.
type processEntry struct {
	pid  int
	comm string
}

// processes lists every process (thread-group leader) with its command
// name. Processes that exit while being listed are left out.
func processes() ([]processEntry, error) {
	pids, err := procfs.PIDs()
	if err != nil {
		return nil, err
	}
	var list []processEntry
	for _, pid := range pids {
		p, err := procfs.Open(pid)
		if err != nil {
			continue
		}
		if st, err := p.Stat(); err == nil {
			list = append(list, processEntry{pid, st.Comm})
		}
		p.Close()
	}
	return list, nil
}

// commLen is the kernel's TASK_COMM_LEN less the terminating NUL.
const commLen = 15

// findByName returns the PIDs whose command name is exactly name. Command
// names are cut to 15 bytes by the kernel, so a longer name matches a
// process whose comm is its first 15 bytes and whose argv[0] has it as
// base name.
func findByName(name string) ([]int, error) {
	list, err := processes()
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range list {
		switch {
		case e.comm == name:
			pids = append(pids, e.pid)
		case len(name) > commLen && e.comm == name[:commLen] && argv0(e.pid) == name:
			pids = append(pids, e.pid)
		}
	}
	return pids, nil
}

// argv0 is the base name of the process's first argument, "" if unknown.
func argv0(pid int) string {
	p, err := procfs.Open(pid)
	if err != nil {
		return ""
	}
	defer p.Close()
	args, err := p.Cmdline()
	if err != nil || len(args) == 0 {
		return ""
	}
	return filepath.Base(args[0])
}

// stopProcess stops the process with SIGSTOP and waits until it is
// stopped. The returned function resumes it, unless it was already stopped
// before. The caller defers it; signals that would end procmem are caught
// (see runErr), so the target is resumed on Ctrl-C too.
func stopProcess(p *procfs.Process) (resume func(), err error) {
	if p.PID == os.Getpid() {
		return nil, fmt.Errorf("-S cannot suspend procmem itself: select a target with -p or -P")
	}
	st, err := p.Stat()
	if err != nil {
		return nil, err
	}
	if st.State == 'T' || st.State == 't' {
		return func() {}, nil
	}
	if err := syscall.Kill(p.PID, syscall.SIGSTOP); err != nil {
		return nil, fmt.Errorf("suspend process %d: %w", p.PID, err)
	}
	resume = func() { syscall.Kill(p.PID, syscall.SIGCONT) }
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		st, err := p.Stat()
		if err != nil || st.State == 'T' {
			return resume, nil
		}
	}
	resume()
	return nil, fmt.Errorf("process %d did not stop after SIGSTOP", p.PID)
}

// openMemory opens the target's memory as procmem's own user, or the
// captured memory of --core, which nothing writes.
func openMemory(e *env, write bool) (*memory.Reader, error) {
	if e.capture != nil {
		if write {
			return nil, fmt.Errorf("%w: %s is a core file", memory.ErrCaptured, e.capture.Path())
		}
		return memory.OpenCapture(e.capture), nil
	}
	return memory.Open(e.proc, memory.Self, write)
}

// maps are the target's regions: as maps shows them now, or as the
// capture holds them.
func (e *env) maps() ([]procfs.Region, error) {
	if e.capture != nil {
		return e.capture.Regions(), nil
	}
	return e.proc.Maps()
}

// runCaptured runs verb v on the core file at path (--core): verbs that
// only read memory work on captured memory as on a live process; the rest
// need one.
func runCaptured(e *env, v verb, path string, run func() error) error {
	if !v.captures {
		return fmt.Errorf("%s needs a live process: %s is captured memory (info, read, search, scan and pointers read it)", v.name, path)
	}
	c, err := core.Open(path, core.OpenOptions{})
	if err != nil {
		return err
	}
	defer c.Close()
	for _, w := range c.Warnings() {
		stderrf(e, "%s: %s", path, w)
	}
	e.capture = c
	return run()
}

// countSet counts the strings that are not empty.
func countSet(s ...string) int {
	n := 0
	for _, x := range s {
		if x != "" {
			n++
		}
	}
	return n
}
