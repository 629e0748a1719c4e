package procfs

// This file reads /proc/PID/stat, described in proc_pid_stat(5).

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Stat holds the fields of /proc/PID/stat that procmem uses.
type Stat struct {
	PID       int
	Comm      string // command name, up to 15 bytes, may contain spaces and ')'
	State     byte
	PPID      int
	PGRP, SID int    // process group and session
	StartTime uint64 // field 22: start time after boot, in clock ticks
	Image     Image
}

// Image is where exec placed the program in the address space: fields
// 26-28 and 45-51 of stat. The kernel shows them only to readers allowed to
// look at the process's memory (zeros otherwise) and sets them anew on every
// exec; with address space randomization two images of one process differ
// in them, so procmem uses them to notice an exec.
type Image struct {
	StartCode, EndCode, StartStack     uint64
	StartData, EndData, StartBrk       uint64
	ArgStart, ArgEnd, EnvStart, EnvEnd uint64
}

// Known reports whether the fields were shown: every process with an
// address space has a stack.
func (im Image) Known() bool { return im.StartStack != 0 }

// Exited reports whether the process has exited and awaits its parent's
// wait (zombie, state Z) or is being torn down (X).
func (s Stat) Exited() bool { return s.State == 'Z' || s.State == 'X' }

func parseStat(r io.Reader) (Stat, error) {
	b, err := io.ReadAll(io.LimitReader(r, 8192))
	if err != nil {
		return Stat{}, err
	}
	return parseStatLine(string(b))
}

func parseStatLine(line string) (Stat, error) {
	var err error
	// The command name is in parentheses and may itself contain ") ", so
	// it ends at the last ')'.
	open := strings.IndexByte(line, '(')
	close := strings.LastIndexByte(line, ')')
	if open < 0 || close < open {
		return Stat{}, fmt.Errorf("%w: stat: no command name: %q", ErrParse, line)
	}
	var s Stat
	if s.PID, err = strconv.Atoi(strings.TrimSpace(line[:open])); err != nil {
		return Stat{}, fmt.Errorf("%w: stat: bad pid: %q", ErrParse, line)
	}
	s.Comm = line[open+1 : close]
	rest := strings.Fields(line[close+1:])
	// rest[0] is field 3 (state); field 22 (starttime) is rest[19].
	if len(rest) < 20 || len(rest[0]) != 1 {
		return Stat{}, fmt.Errorf("%w: stat: too few fields: %q", ErrParse, line)
	}
	s.State = rest[0][0]
	if s.PPID, err = strconv.Atoi(rest[1]); err != nil {
		return Stat{}, fmt.Errorf("%w: stat: bad ppid: %q", ErrParse, line)
	}
	if s.PGRP, err = strconv.Atoi(rest[2]); err != nil {
		return Stat{}, fmt.Errorf("%w: stat: bad pgrp: %q", ErrParse, line)
	}
	if s.SID, err = strconv.Atoi(rest[3]); err != nil {
		return Stat{}, fmt.Errorf("%w: stat: bad session: %q", ErrParse, line)
	}
	if s.StartTime, err = strconv.ParseUint(rest[19], 10, 64); err != nil {
		return Stat{}, fmt.Errorf("%w: stat: bad starttime: %q", ErrParse, line)
	}
	// The image fields: all of them, or none on kernels before 3.3, which
	// lack fields 45-51.
	if len(rest) >= 49 {
		im := &s.Image
		for i, f := range []*uint64{&im.StartCode, &im.EndCode, &im.StartStack} {
			if *f, err = strconv.ParseUint(rest[23+i], 10, 64); err != nil {
				return Stat{}, fmt.Errorf("%w: stat: bad field %d: %q", ErrParse, 26+i, line)
			}
		}
		for i, f := range []*uint64{&im.StartData, &im.EndData, &im.StartBrk, &im.ArgStart, &im.ArgEnd, &im.EnvStart, &im.EnvEnd} {
			if *f, err = strconv.ParseUint(rest[42+i], 10, 64); err != nil {
				return Stat{}, fmt.Errorf("%w: stat: bad field %d: %q", ErrParse, 45+i, line)
			}
		}
	}
	return s, nil
}

// TaskStat reads /proc/PID/task/TID/stat: one thread's stat, whose start
// time orders the threads by when they were started.
func (p *Process) TaskStat(tid int) (Stat, error) {
	b, err := p.ReadFile("task/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return parseStat(bytes.NewReader(b))
}
