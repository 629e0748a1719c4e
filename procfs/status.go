package procfs

// This file reads /proc/PID/status, described in proc_pid_status(5).

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Status holds the fields of /proc/PID/status that procmem uses. The id
// arrays are real, effective, saved and filesystem ids, in that order.
type Status struct {
	Name   string
	Tgid   int
	Uid    [4]uint32
	Gid    [4]uint32
	Groups []uint32 // supplementary groups
	// The capability sets, one bit per capability (CAP_SYS_PTRACE is bit
	// 19): inheritable, permitted, effective.
	CapInh, CapPrm, CapEff uint64
	// Sizes is every "Vm*", "Rss*" and "Huge*" field in bytes.
	Sizes map[string]uint64
}

func parseStatus(r io.Reader) (Status, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return Status{}, err
	}
	return parseStatusText(string(b))
}

// parseStatusText parses status from its text. It is read for the caller
// of every request of a mount under access control, so it walks the text
// without a scanner.
func parseStatusText(text string) (Status, error) {
	s := Status{Tgid: -1, Sizes: make(map[string]uint64, 32)}
	var haveUid, haveGid bool
	for n := 1; text != ""; n++ {
		var line string
		line, text, _ = strings.Cut(text, "\n")
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		value = strings.TrimSpace(value)
		var err error
		switch {
		case name == "Name":
			s.Name = value
		case name == "Tgid":
			s.Tgid, err = strconv.Atoi(value)
		case name == "Uid":
			s.Uid, err = parseIDs(value)
			haveUid = true
		case name == "Gid":
			s.Gid, err = parseIDs(value)
			haveGid = true
		case name == "Groups":
			s.Groups, err = parseGroups(value)
		case name == "CapInh":
			s.CapInh, err = strconv.ParseUint(value, 16, 64)
		case name == "CapPrm":
			s.CapPrm, err = strconv.ParseUint(value, 16, 64)
		case name == "CapEff":
			s.CapEff, err = strconv.ParseUint(value, 16, 64)
		case strings.HasSuffix(value, " kB"):
			var v uint64
			v, err = strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(value, " kB")), 10, 64)
			if err == nil && v > (1<<64-1)/1024 {
				err = fmt.Errorf("overflow")
			}
			s.Sizes[name] = v * 1024
		}
		if err != nil {
			return Status{}, fmt.Errorf("%w: status line %d: %q", ErrParse, n, line)
		}
	}
	if s.Tgid < 0 || !haveUid || !haveGid {
		return Status{}, fmt.Errorf("%w: status: missing Tgid, Uid or Gid", ErrParse)
	}
	return s, nil
}

func parseIDs(value string) ([4]uint32, error) {
	var ids [4]uint32
	f := strings.Fields(value)
	if len(f) != 4 {
		return ids, fmt.Errorf("want 4 ids")
	}
	for i := range f {
		v, err := strconv.ParseUint(f[i], 10, 32)
		if err != nil {
			return ids, err
		}
		ids[i] = uint32(v)
	}
	return ids, nil
}

func parseGroups(value string) ([]uint32, error) {
	var groups []uint32
	for _, f := range strings.Fields(value) {
		v, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return nil, err
		}
		groups = append(groups, uint32(v))
	}
	return groups, nil
}
