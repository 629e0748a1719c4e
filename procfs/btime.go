package procfs

// This file reads the btime line of /proc/stat, described in proc_stat(5).

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// BootTime reads when the system booted, to which the start times of
// /proc/PID/stat are relative.
func BootTime() (time.Time, error) {
	b, err := readFileAt(unix.AT_FDCWD, Root+"/stat", Root+"/stat")
	if err != nil {
		return time.Time{}, err
	}
	return parseBootTime(string(b))
}

func parseBootTime(text string) (time.Time, error) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil || sec < 0 {
				return time.Time{}, fmt.Errorf("%w: stat: btime %q", ErrParse, v)
			}
			return time.Unix(sec, 0), nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: stat: no btime line", ErrParse)
}
