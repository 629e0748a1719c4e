package main

import (
	"bytes"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/report"
)

var watchVerb = verb{
	name:        "watch",
	args:        "-r RANGE [--interval 100ms]",
	short:       "print a range whenever it changes",
	long:        rangeHelp,
	setup:       setupWatch,
	needsTarget: true,
}

// maxWatch bounds the range watch compares on every look.
const maxWatch = 64 << 20

func setupWatch(flags *pflag.FlagSet) func(*env, []string) error {
	rangeFlag := flags.StringP("range", "r", "", "watch `RANGE` (see below)")
	width := flags.IntP("width", "W", 16, "hexdump `N` bytes per row")
	interval := flags.Duration("interval", 100*time.Millisecond, "how often to look")
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
		rng, err := resolveRange(e, *rangeFlag)
		if err != nil {
			return err
		}
		if rng.end-rng.start > maxWatch {
			return fmt.Errorf("watch: range of %s is too large (at most %s)", report.Size(rng.end-rng.start), report.Size(maxWatch))
		}
		mem, err := openMemory(e, false)
		if err != nil {
			return err
		}
		defer mem.Close()
		return watch(e, mem, rng, *width, *interval)
	}
}

// watch prints the range, then prints it again each time it changes, until
// the context ends (Ctrl-C) or the process exits.
func watch(e *env, mem *memory.Reader, rng addrRange, width int, interval time.Duration) error {
	cur := make([]byte, rng.end-rng.start)
	var prev []byte
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		regions, err := e.proc.Maps()
		if err == nil {
			err = mem.ReadRange(cur, rng.start, regions)
		}
		if err != nil {
			if memory.Classify(err) == memory.Gone {
				return memory.ErrGone
			}
			return err
		}
		if prev == nil {
			// Said once the range is known to be readable.
			fmt.Fprintf(e.stdout, "watching 0x%x-0x%x of process %d\n", rng.start, rng.end, e.pid())
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
