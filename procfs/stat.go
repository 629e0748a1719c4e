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
	StartTime uint64 // field 22: start time after boot, in clock ticks
}

// Exited reports whether the process has exited and awaits its parent's
// wait (zombie, state Z) or is being torn down (X).
func (s Stat) Exited() bool { return s.State == 'Z' || s.State == 'X' }

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := readFile(pidPath(pid, "stat"))
	if err != nil {
		return Stat{}, err
	}
	return parseStat(bytes.NewReader(b))
}

func parseStat(r io.Reader) (Stat, error) {
	b, err := io.ReadAll(io.LimitReader(r, 8192))
	if err != nil {
		return Stat{}, err
	}
	line := string(b)
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
	if s.StartTime, err = strconv.ParseUint(rest[19], 10, 64); err != nil {
		return Stat{}, fmt.Errorf("%w: stat: bad starttime: %q", ErrParse, line)
	}
	return s, nil
}
