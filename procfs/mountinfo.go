package procfs

// This file reads /proc/self/mountinfo, described in proc_pid_mountinfo(5):
// the options /proc itself is mounted with, and what is mounted where.

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// mount is one line of mountinfo.
type mount struct {
	point, fsType, superOptions string
	dev                         string // MAJ:MIN, st_dev of the mount's files
}

// readMounts reads the calling process's mount table.
func readMounts() ([]mount, error) {
	b, err := readFileAt(unix.AT_FDCWD, "/proc/self/mountinfo", "/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return parseMountinfo(string(b))
}

// parseMountinfo parses mountinfo text. Mount points keep the kernel's
// octal escapes (\040 for a space).
func parseMountinfo(text string) ([]mount, error) {
	var mounts []mount
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
			return nil, fmt.Errorf("%w: mountinfo line %d: %q", ErrParse, n+1, line)
		}
		mounts = append(mounts, mount{point: fields[4], fsType: fields[sep+1], superOptions: fields[sep+3], dev: fields[2]})
	}
	return mounts, nil
}

// HidesPIDs reports whether /proc (Root) is mounted with hidepid other than
// 0 ("off"): then users may not see, or not look into, other users'
// process directories, and procmem must not show them either.
func HidesPIDs() (bool, error) {
	mounts, err := readMounts()
	if err != nil {
		return false, err
	}
	return hidesPIDs(mounts, Root)
}

// hidesPIDs reads the hidepid option of the proc mounted at mountPoint
// (the last one: it hides those below it).
func hidesPIDs(mounts []mount, mountPoint string) (bool, error) {
	found, hides := false, false
	for _, m := range mounts {
		if m.point != mountPoint || m.fsType != "proc" {
			continue
		}
		found, hides = true, false
		for _, opt := range strings.Split(m.superOptions, ",") {
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

// parseHidePID is hidesPIDs of mountinfo text.
func parseHidePID(text, mountPoint string) (bool, error) {
	mounts, err := parseMountinfo(text)
	if err != nil {
		return false, err
	}
	return hidesPIDs(mounts, mountPoint)
}

// MountedType returns the filesystem type of what is mounted at dir (an
// absolute, clean path), "" if nothing is: the last mount there, the one
// that is seen.
func MountedType(dir string) (string, error) {
	mounts, err := readMounts()
	if err != nil {
		return "", err
	}
	escaped := strings.NewReplacer(" ", `\040`, "\t", `\011`, "\n", `\012`, `\`, `\134`).Replace(dir)
	fsType := ""
	for _, m := range mounts {
		if m.point == escaped {
			fsType = m.fsType
		}
	}
	return fsType, nil
}

// MountOfDevice returns where the filesystem whose files have device
// number dev (their st_dev) is mounted, and its type; "" if nowhere (the
// last such mount, as for MountedType). A path's device tells which mount
// it lies in, whatever path leads there.
func MountOfDevice(dev uint64) (point, fsType string, err error) {
	mounts, err := readMounts()
	if err != nil {
		return "", "", err
	}
	point, fsType = mountOfDevice(mounts, dev)
	return point, fsType, nil
}

func mountOfDevice(mounts []mount, dev uint64) (point, fsType string) {
	want := fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev))
	for _, m := range mounts {
		if m.dev == want {
			point, fsType = unescapeMountinfo(m.point), m.fsType
		}
	}
	return point, fsType
}

// unescapeMountinfo undoes the kernel's octal escapes of a mount point
// (\040 for a space, \011, \012, \134).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
