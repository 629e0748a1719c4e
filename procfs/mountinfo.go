package procfs

// This file reads /proc/self/mountinfo, described in proc_pid_mountinfo(5),
// for the options /proc itself is mounted with.

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// HidesPIDs reports whether /proc (Root) is mounted with hidepid other than
// 0 ("off"): then users may not see, or not look into, other users'
// process directories, and procmem must not show them either.
func HidesPIDs() (bool, error) {
	b, err := readFileAt(unix.AT_FDCWD, "/proc/self/mountinfo", "/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	return parseHidePID(string(b), Root)
}

// parseHidePID finds the mount at mountPoint in mountinfo text (the last
// one: it hides those below it) and reads its hidepid option.
func parseHidePID(text, mountPoint string) (bool, error) {
	found, hides := false, false
	for n, line := range strings.Split(text, "\n") {
		if line == "" {
			continue
		}
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER_OPTIONS
		fields := strings.Fields(line)
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 6 || len(fields) < sep+4 {
			return false, fmt.Errorf("%w: mountinfo line %d: %q", ErrParse, n+1, line)
		}
		if fields[4] != mountPoint || fields[sep+1] != "proc" {
			continue
		}
		found, hides = true, false
		for _, opt := range strings.Split(fields[sep+3], ",") {
			if v, ok := strings.CutPrefix(opt, "hidepid="); ok {
				hides = v != "0" && v != "off"
			}
		}
	}
	if !found {
		return false, fmt.Errorf("%w: mountinfo: no proc mounted at %s", ErrParse, mountPoint)
	}
	return hides, nil
}
