package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/pflag"

	"github.com/procmem/procmem/procfs"
	"github.com/procmem/procmem/report"
)

func setupWatch(fs *pflag.FlagSet) func(*env, []string) error {
	rangeFlag := fs.StringP("range", "r", "", "watch `RANGE` (see below)")
	width := fs.IntP("width", "W", 16, "hexdump `N` bytes per row")
	interval := fs.Duration("interval", 100*time.Millisecond, "how often to look")
	return func(e *env, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		if *rangeFlag == "" {
			return usagef("watch: -r RANGE is required")
		}
		if *interval <= 0 {
			return usagef("watch: --interval must be positive")
		}
		if *width < 1 || *width > 4096 {
			return usagef("watch: -W takes a width from 1 to 4096")
		}
		rng, err := parseRange(*rangeFlag)
		if err != nil {
			return err
		}
		if rng.end-rng.start > 64<<20 {
			return fmt.Errorf("watch: range of %s is too large (at most 64.00MiB)", report.Size(rng.end-rng.start))
		}
		m, err := procfs.OpenMem(e.pid, false)
		if err != nil {
			return err
		}
		defer m.Close()
		return watch(e, m, rng, *width, *interval)
	}
}

// watch prints the range, then prints it again each time it changes, until
// the context ends (Ctrl-C) or the process exits.
func watch(e *env, m *procfs.Mem, rng addrRange, width int, interval time.Duration) error {
	fmt.Fprintf(e.stdout, "watching 0x%x-0x%x of process %d\n", rng.start, rng.end, e.pid)
	cur := make([]byte, rng.end-rng.start)
	var prev []byte
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if _, err := m.ReadFull(cur, rng.start); err != nil {
			if errors.Is(err, io.EOF) {
				return errGone
			}
			return err
		}
		if prev == nil || !bytes.Equal(prev, cur) {
			what := "changed"
			if prev == nil {
				what = "initial"
			}
			fmt.Fprintf(e.stdout, "-- %s %s --\n", time.Now().Format("15:04:05.000"), what)
			h := report.NewHexdump(e.stdout, width)
			h.Write(rng.start, cur)
			if err := h.Flush(); err != nil {
				return err
			}
			prev = append(prev[:0], cur...)
		}
		select {
		case <-e.ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
