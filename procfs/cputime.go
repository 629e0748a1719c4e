package procfs

// This file reads the CPU time fields of /proc/PID/stat, described in
// proc_pid_stat(5).

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of stat's times: 100 on every Linux
// architecture procmem runs on (sysconf(_SC_CLK_TCK)).
const clockTick = time.Second / 100

// CPUTime reads the CPU time all threads of the process have used, in user
// and kernel mode (stat fields 14 and 15), to the clock tick.
func (p *Process) CPUTime() (time.Duration, error) {
	b, err := p.ReadFile("stat")
	if err != nil {
		return 0, err
	}
	return parseCPUTime(string(b))
}

// parseCPUTime parses utime and stime from a stat line.
func parseCPUTime(line string) (time.Duration, error) {
	close := strings.LastIndexByte(line, ')')
	if close < 0 {
		return 0, fmt.Errorf("%w: stat: no command name: %q", ErrParse, line)
	}
	rest := strings.Fields(line[close+1:])
	// rest[0] is field 3 (state): utime and stime are fields 14 and 15.
	if len(rest) < 13 {
		return 0, fmt.Errorf("%w: stat: too few fields: %q", ErrParse, line)
	}
	var ticks uint64
	for _, f := range rest[11:13] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil || v > 1<<36 { // 21 years of CPU: the sum stays within a Duration
			return 0, fmt.Errorf("%w: stat: bad CPU time %q", ErrParse, f)
		}
		ticks += v
	}
	return time.Duration(ticks) * clockTick, nil
}
