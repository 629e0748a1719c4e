package procfs

// This file reads /proc/PID/task/TID/syscall, described in proc_pid_syscall(5),
// /proc/PID/coredump_filter (core(5)) and /proc/PID/auxv (proc_pid_auxv(5)):
// what a core file of a live process is made from.

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// ThreadState is where a thread is, as its syscall file tells: the
// registers it shows exist only for a thread that is blocked.
type ThreadState struct {
	Running bool      // on a CPU: nothing can be told without stopping it
	InCall  bool      // blocked in system call Nr with Args
	Nr      int64     // -1 when blocked outside a system call
	Args    [6]uint64 // the call's arguments
	SP, PC  uint64    // the user stack pointer and program counter
}

// parseSyscall parses the syscall file: "running", "-1 SP PC" (blocked,
// not in a system call) or "NR A1 A2 A3 A4 A5 A6 SP PC".
func parseSyscall(text string) (ThreadState, error) {
	bad := func() (ThreadState, error) {
		return ThreadState{}, fmt.Errorf("%w: syscall: %q", ErrParse, text)
	}
	f := strings.Fields(text)
	switch {
	case len(f) == 1 && f[0] == "running":
		return ThreadState{Running: true}, nil
	case len(f) != 3 && len(f) != 9:
		return bad()
	}
	nr, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || (len(f) == 3) != (nr == -1) {
		return bad()
	}
	var v [8]uint64
	for i, s := range f[1:] {
		if v[i], err = strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64); err != nil || !strings.HasPrefix(s, "0x") {
			return bad()
		}
	}
	st := ThreadState{Nr: nr}
	if nr == -1 {
		st.SP, st.PC = v[0], v[1]
		return st, nil
	}
	st.InCall = true
	copy(st.Args[:], v[:6])
	st.SP, st.PC = v[6], v[7]
	return st, nil
}

// ThreadState reads where thread tid of the process is.
func (p *Process) ThreadState(tid int) (ThreadState, error) {
	b, err := p.ReadFile("task/" + strconv.Itoa(tid) + "/syscall")
	if err != nil {
		return ThreadState{}, err
	}
	return parseSyscall(string(b))
}

// Threads lists the process's threads, the leader first.
func (p *Process) Threads() ([]int, error) {
	f, err := p.OpenFile("task", 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	tids := []int{p.PID}
	for _, name := range names {
		if tid, err := strconv.Atoi(name); err == nil && tid != p.PID {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// DumpFilter is /proc/PID/coredump_filter: which kinds of mapping a core
// holds the memory of (core(5)).
type DumpFilter uint32

// The bits of DumpFilter.
const (
	DumpAnonPrivate DumpFilter = 1 << iota
	DumpAnonShared
	DumpFilePrivate
	DumpFileShared
	DumpELFHeaders
	DumpHugePrivate
	DumpHugeShared
)

func parseDumpFilter(text string) (DumpFilter, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(text), 16, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: coredump_filter: %q", ErrParse, text)
	}
	return DumpFilter(v), nil
}

// DumpFilter reads the process's coredump_filter.
func (p *Process) DumpFilter() (DumpFilter, error) {
	b, err := p.ReadFile("coredump_filter")
	if err != nil {
		return 0, err
	}
	return parseDumpFilter(string(b))
}

// Auxv is the process's auxiliary vector as the kernel keeps it: pairs of
// native words, ending with AT_NULL.
type Auxv []byte

// parseAuxv checks an auxiliary vector: whole pairs, ending with AT_NULL.
func parseAuxv(b []byte) (Auxv, error) {
	if len(b)%16 != 0 || len(b) < 16 {
		return nil, fmt.Errorf("%w: auxv of %d bytes", ErrParse, len(b))
	}
	for i := 0; i < len(b); i += 16 {
		if binary.LittleEndian.Uint64(b[i:]) == 0 { // AT_NULL
			return Auxv(b[:i+16]), nil
		}
	}
	return nil, fmt.Errorf("%w: auxv without AT_NULL", ErrParse)
}

// Value returns the value of entry typ.
func (a Auxv) Value(typ uint64) (uint64, bool) {
	for i := 0; i+16 <= len(a); i += 16 {
		if binary.LittleEndian.Uint64(a[i:]) == typ {
			return binary.LittleEndian.Uint64(a[i+8:]), true
		}
	}
	return 0, false
}

// Auxv reads the process's auxiliary vector.
func (p *Process) Auxv() (Auxv, error) {
	b, err := p.ReadFile("auxv")
	if err != nil {
		return nil, err
	}
	return parseAuxv(b)
}
