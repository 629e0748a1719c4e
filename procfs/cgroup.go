package procfs

// This file reads /proc/PID/cgroup (cgroups(7)) and the memory files of
// the cgroup it names: memory.current and memory.max on cgroup v2,
// memory.usage_in_bytes and memory.limit_in_bytes on v1's memory
// controller (the kernel's Documentation/admin-guide/cgroup-v2.rst and
// cgroup-v1/memory.rst).

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// cgroupEntry is one line of /proc/PID/cgroup: "ID:CONTROLLERS:PATH".
// On v2 the ID is 0 and the controller list empty.
type cgroupEntry struct {
	id          int
	controllers []string
	path        string
}

// parseCgroup parses /proc/PID/cgroup.
func parseCgroup(text string) ([]cgroupEntry, error) {
	var entries []cgroupEntry
	for n, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		if line == "" && n == 0 {
			continue
		}
		id, rest, ok1 := strings.Cut(line, ":")
		controllers, p, ok2 := strings.Cut(rest, ":")
		num, err := strconv.Atoi(id)
		if !ok1 || !ok2 || err != nil || num < 0 || !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("%w: cgroup line %d: %q", ErrParse, n+1, line)
		}
		e := cgroupEntry{id: num, path: path.Clean(p)}
		if controllers != "" {
			e.controllers = strings.Split(controllers, ",")
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// unlimitedV1 is where cgroup v1 limits start to mean "none": the kernel
// writes PAGE_COUNTER_MAX pages, 9223372036854771712 on x86-64.
const unlimitedV1 = 1 << 62

// parseCgroupBytes parses a memory file of a cgroup: a number of bytes, or
// "max" (v2) for no limit; a v1 limit of 2^62 or more is no limit too.
func parseCgroupBytes(text string) (v uint64, limited bool, err error) {
	s := strings.TrimSpace(text)
	if s == "max" {
		return 0, false, nil
	}
	v, err = strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("%w: cgroup memory value %q", ErrParse, text)
	}
	return v, v < unlimitedV1, nil
}

// CgroupMemory is what the memory controller counts for the cgroup a
// process is in.
type CgroupMemory struct {
	Dir     string // the cgroup's directory
	Current uint64 // bytes charged to it and its descendants
	// Max is the tightest limit of the cgroup and its ancestors, set in
	// LimitDir; Limited is false when none has one.
	Max      uint64
	LimitDir string
	Limited  bool
}

// CgroupMemory reads the memory use and limit of the process's cgroup, on
// the memory controller of cgroup v1 if it is mounted, else on cgroup v2.
// The cgroup's path is as /proc/PID/cgroup shows it to procmem, relative
// to procmem's own cgroup namespace, so a container's process is found
// from the host.
func (p *Process) CgroupMemory() (CgroupMemory, error) {
	b, err := p.ReadFile("cgroup")
	if err != nil {
		return CgroupMemory{}, err
	}
	entries, err := parseCgroup(string(b))
	if err != nil {
		return CgroupMemory{}, err
	}
	mounts, err := readMounts()
	if err != nil {
		return CgroupMemory{}, err
	}
	dir, current, limit, ok := cgroupMemoryDir(entries, mounts)
	if !ok {
		return CgroupMemory{}, fmt.Errorf("process %d: no cgroup memory controller is mounted", p.PID)
	}
	return readCgroupMemory(dir, current, limit)
}

// cgroupMemoryDir finds the directory of the process's memory cgroup and
// the names of its files.
func cgroupMemoryDir(entries []cgroupEntry, mounts []mount) (dir, current, limit string, ok bool) {
	for _, e := range entries {
		for _, c := range e.controllers {
			if c != "memory" {
				continue
			}
			for _, m := range mounts {
				if m.fsType == "cgroup" && hasOption(m.superOptions, "memory") {
					return path.Join(m.point, e.path), "memory.usage_in_bytes", "memory.limit_in_bytes", true
				}
			}
		}
	}
	for _, e := range entries {
		if e.id != 0 || e.controllers != nil {
			continue
		}
		for _, m := range mounts {
			if m.fsType == "cgroup2" {
				return path.Join(m.point, e.path), "memory.current", "memory.max", true
			}
		}
	}
	return "", "", "", false
}

func hasOption(options, name string) bool {
	for _, o := range strings.Split(options, ",") {
		if o == name {
			return true
		}
	}
	return false
}

// readCgroupMemory reads the use of the cgroup at dir and the limits of it
// and its ancestors, up to the hierarchy's root (the first directory
// without the limit file).
func readCgroupMemory(dir, currentFile, limitFile string) (CgroupMemory, error) {
	b, err := readFileAt(unix.AT_FDCWD, path.Join(dir, currentFile), path.Join(dir, currentFile))
	if err != nil {
		return CgroupMemory{}, err
	}
	cm := CgroupMemory{Dir: dir}
	if cm.Current, _, err = parseCgroupBytes(string(b)); err != nil {
		return CgroupMemory{}, err
	}
	for d := dir; ; d = path.Dir(d) {
		b, err := readFileAt(unix.AT_FDCWD, path.Join(d, limitFile), path.Join(d, limitFile))
		if err != nil {
			break // above the hierarchy's root, or the root itself on v2
		}
		max, limited, err := parseCgroupBytes(string(b))
		if err != nil {
			return CgroupMemory{}, err
		}
		if limited && (!cm.Limited || max < cm.Max) {
			cm.Max, cm.LimitDir, cm.Limited = max, d, true
		}
		if d == "/" {
			break
		}
	}
	return cm, nil
}
