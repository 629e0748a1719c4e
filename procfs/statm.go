package procfs

// This file reads /proc/PID/statm, described in proc_pid_statm(5).

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Statm is /proc/PID/statm converted from pages to bytes.
type Statm struct {
	Size     uint64 // total program size (VmSize)
	Resident uint64 // resident set size (VmRSS)
	Shared   uint64 // resident file-backed and shared pages (RssFile+RssShmem)
	Text     uint64 // text (code)
	Lib      uint64 // unused since Linux 2.6, always 0
	Data     uint64 // data + stack
	Dirty    uint64 // unused since Linux 2.6, always 0
}

func parseStatm(r io.Reader, pageSize uint64) (Statm, error) {
	b, err := io.ReadAll(io.LimitReader(r, 4096))
	if err != nil {
		return Statm{}, err
	}
	fields := strings.Fields(string(b))
	if len(fields) != 7 {
		return Statm{}, fmt.Errorf("%w: statm: %d fields, want 7: %q", ErrParse, len(fields), b)
	}
	var pages [7]uint64
	for i, f := range fields {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil || v > (1<<64-1)/pageSize {
			return Statm{}, fmt.Errorf("%w: statm: bad field %q", ErrParse, f)
		}
		pages[i] = v * pageSize
	}
	return Statm{pages[0], pages[1], pages[2], pages[3], pages[4], pages[5], pages[6]}, nil
}
