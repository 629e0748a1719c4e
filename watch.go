package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"syscall"
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
		p, m, release, err := openMemory(e.pid, false)
		if err != nil {
			return err
		}
		defer release()
		return watch(e, p, m, rng, *width, *interval)
	}
}

// watch prints the range, then prints it again each time it changes, until
// the context ends (Ctrl-C) or the process exits.
func watch(e *env, p *procfs.Process, m *procfs.Mem, rng addrRange, width int, interval time.Duration) error {
	fmt.Fprintf(e.stdout, "watching 0x%x-0x%x of process %d\n", rng.start, rng.end, e.pid)
	cur := make([]byte, rng.end-rng.start)
	var prev []byte
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		if err := readRange(p, m, cur, rng.start); err != nil {
			if errors.Is(err, io.EOF) || procfs.IsGone(err) {
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

// readRange fills b with the memory at addr as the filesystem reads it:
// pages without data are zeros and stay untouched. Every byte must be
// mapped.
func readRange(p *procfs.Process, m *procfs.Mem, b []byte, addr uint64) error {
	regions, err := p.Maps()
	if err != nil {
		return err
	}
	end := addr + uint64(len(b))
	at := addr
	for _, r := range regions {
		if r.End <= at || r.Start >= end {
			continue
		}
		if r.Start > at {
			break
		}
		stop := min(r.End, end)
		layout, err := p.OpenLayout(r)
		if err != nil {
			return err
		}
		segs, err := layout.Segments(at, stop)
		if err == nil {
			var n int
			n, err = procfs.ReadSegments(m, b[at-addr:stop-addr], at, segs)
			if err == nil && uint64(n) < stop-at {
				err = fmt.Errorf("read at 0x%x: %w", at+uint64(n), syscall.EIO)
			}
		}
		layout.Close()
		if err != nil {
			return err
		}
		at = stop
		if at == end {
			return nil
		}
	}
	return fmt.Errorf("0x%x-0x%x is not mapped", at, end)
}
