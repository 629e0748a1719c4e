package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/usage"
	"github.com/procmem/procmem/userfiles"
)

var usageVerb = verb{
	name:  "usage",
	args:  "[-i INTERVAL [-n N] [--exact]] [--csv|--json] [--plot FILE] | --all [--by MEASURE] [-i INTERVAL]",
	short: "show where a process's memory goes, by kind, over time",
	long: "Kinds: heap ([heap] and glibc malloc's arenas), anon (other private anonymous memory), stack (the main\n" +
		"thread's and other threads' stacks), code (executable file mappings), file (other file mappings), shmem\n" +
		"(memfd, SysV, /dev/shm, shared anonymous), other ([vdso], [vvar], devices). Each with its virtual size,\n" +
		"resident (rss), proportional (pss), swapped and private dirty bytes, summed from /proc/PID/smaps; the\n" +
		"process's pages are never read. With -i the table is shown every INTERVAL with the change since the\n" +
		"first sample and since the last, and the regions that changed most (in the address notation the other\n" +
		"verbs take); at the end, the regions that changed since the first sample. smaps costs the kernel about a\n" +
		"microsecond per region to write; when reading it would take more than 2% of the time (a process with\n" +
		"thousands of regions), samples between two reads of it take the regions from maps and their resident\n" +
		"and swapped bytes from the page tables (pagemap): all of the moment but the pss and private dirty\n" +
		"bytes, which are from the last smaps read, as the table says (pss_age in --csv and --json); --exact\n" +
		"reads smaps at every sample. --csv writes the columns\n" +
		"time,elapsed,pid,kind,size,rss,pss,swap,private_dirty,regions,pss_age (bytes, seconds; a row per kind\n" +
		"and one \"total\"); --json one object per sample per line. --plot draws the timeline and the address\n" +
		"space (.svg or .png). --all ranks every process you may read by MEASURE (rss, pss, swap, size, dirty, a\n" +
		"KIND or KIND.FIELD such as heap.pss), or with -i by its growth since the first look: 'procmem usage --all\n" +
		"-i 60s -n 2'; it reads of each process only what MEASURE needs (smaps_rollup for a total, maps for a\n" +
		"kind's size, maps and pagemap for its rss or swap, smaps for its pss or dirty bytes).",
	setup: setupUsage,
}

// usageFlags are usage's flags, parsed.
type usageFlags struct {
	interval  time.Duration
	samples   int
	csv, json bool
	exact     bool
	top       int
	plot      string
	all       bool
	by        string
}

func setupUsage(flags *pflag.FlagSet) func(*env, []string) error {
	var f usageFlags
	flags.DurationVarP(&f.interval, "interval", "i", 0, "sample every `INTERVAL` (such as 1s) until Ctrl-C")
	flags.IntVarP(&f.samples, "samples", "n", 0, "with -i, stop after `N` samples, the first included")
	flags.BoolVar(&f.csv, "csv", false, "write CSV, a row per kind per sample")
	flags.BoolVar(&f.json, "json", false, "write JSON, an object per sample per line")
	flags.BoolVar(&f.exact, "exact", false, "with -i, read smaps at every sample, however long it takes")
	flags.IntVar(&f.top, "top", 0, "show the `N` largest regions of each kind (default 3), or processes with --all (default 20)")
	flags.StringVar(&f.plot, "plot", "", "draw the timeline and the address space to `FILE` (.svg or .png)")
	flags.BoolVar(&f.all, "all", false, "rank every process you may read")
	flags.StringVar(&f.by, "by", "rss", "with --all, rank by `MEASURE`")
	return func(e *env, args []string) error {
		if err := noArgs(args); err != nil {
			return err
		}
		if err := f.check(e); err != nil {
			return err
		}
		if f.all {
			return usageAll(e, f)
		}
		return sampleUsage(e, f)
	}
}

func (f *usageFlags) check(e *env) error {
	switch {
	case f.interval < 0 || f.interval > 0 && f.interval < 10*time.Millisecond:
		return usagef("usage: -i takes an interval of 10ms or more")
	case f.samples < 0 || f.samples > 0 && f.interval == 0:
		return usagef("usage: -n takes a positive number of samples, with -i")
	case f.exact && (f.interval == 0 || f.all):
		return usagef("usage: --exact is for sampling one process, with -i")
	case f.csv && f.json:
		return usagef("usage: --csv and --json exclude each other")
	case f.top < 0:
		return usagef("usage: --top takes a positive number")
	case f.all && (f.csv || f.json || f.plot != ""):
		return usagef("usage: --all writes a table: --csv, --json and --plot are for one process")
	case !f.all && e.pid() == os.Getpid():
		return usagef("usage needs a target process: procmem -p PID usage, procmem -P NAME usage, or procmem usage --all")
	}
	if f.plot != "" {
		if ext := plotFormat(f.plot); ext != "svg" && ext != "png" {
			return usagef("usage: --plot %s: want a file name ending in .svg or .png", f.plot)
		}
	}
	if f.top == 0 {
		f.top = 3
		if f.all {
			f.top = 20
		}
	}
	return nil
}

func plotFormat(name string) string {
	return strings.ToLower(strings.TrimPrefix(filepath.Ext(name), "."))
}

// sampleUsage samples the target once, or every interval until Ctrl-C, the
// samples asked for, or the process's exit.
func sampleUsage(e *env, f usageFlags) error {
	sampler := usage.NewSampler(e.proc)
	sampler.Smaps = f.exact
	restoreGC := holdGC()
	first, err := sampler.Sample()
	if f.interval > 0 {
		restoreGC()
	} else {
		defer restoreGC()
	}
	if err != nil {
		return err
	}
	live := f.interval > 0 && !f.csv && !f.json && isTerminal(e)
	out := sampleWriter(e, f, first, live)
	if err := out(nil, first); err != nil {
		return err
	}
	timeline := []usage.Point{usage.PointOf(first)}
	last := first
	if f.interval > 0 {
		tick := time.NewTicker(f.interval)
		defer tick.Stop()
		for n := 1; f.samples == 0 || n < f.samples; n++ {
			select {
			case <-e.ctx.Done():
			case <-tick.C:
			}
			if e.ctx.Err() != nil {
				break
			}
			s, err := sampler.Sample()
			if memory.Classify(err) == memory.Gone {
				stderrf(e, "process %d exited", e.pid())
				break
			}
			if err != nil {
				return err
			}
			if err := out(last, s); err != nil {
				return err
			}
			timeline = append(timeline, usage.PointOf(s))
			if last != first {
				sampler.Recycle(last)
			}
			last = s
		}
		if !f.csv && !f.json {
			if err := usage.WriteChanges(e.stdout, "since the first sample", first, last, 20); err != nil {
				return err
			}
		}
	}
	if f.plot != "" {
		return writePlot(e, f.plot, timeline, last)
	}
	return nil
}

// holdGC holds off the garbage collector until the function it returns is
// called, as the Go tools do for a short run: the first sample keeps what
// it allocates (some 10 MB for a process of 60,000 regions, read into a
// slice larger still whose pages are not touched unless written or
// scanned), and collecting meanwhile took a quarter to half of its time.
// The memory limit bounds the heap all the same.
func holdGC() (restore func()) {
	limit := debug.SetMemoryLimit(-1)
	percent := debug.SetGCPercent(-1)
	debug.SetMemoryLimit(min(limit, 512<<20))
	return func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	}
}

// sampleWriter returns what writes each sample in the form asked for.
func sampleWriter(e *env, f usageFlags, first *usage.Sample, live bool) func(last, s *usage.Sample) error {
	switch {
	case f.csv:
		fmt.Fprint(e.stdout, usage.CSVHeader)
		return func(_, s *usage.Sample) error { return usage.WriteCSV(e.stdout, first, s) }
	case f.json:
		return func(last, s *usage.Sample) error { return usage.WriteJSON(e.stdout, first, last, s, f.top) }
	}
	return func(last, s *usage.Sample) error {
		if last == nil {
			if f.interval > 0 && live {
				fmt.Fprint(e.stdout, clearScreen)
			}
			return usage.WriteTable(e.stdout, s, f.top)
		}
		if live {
			fmt.Fprint(e.stdout, clearScreen)
		} else {
			fmt.Fprintln(e.stdout)
		}
		return usage.WriteLive(e.stdout, first, last, s, 5)
	}
}

// clearScreen moves a terminal's cursor home and clears it, so a live
// table is redrawn in place.
const clearScreen = "\x1b[H\x1b[2J"

func isTerminal(e *env) bool {
	f, ok := e.stdout.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// writePlot draws the picture to name, whole or not at all.
func writePlot(e *env, name string, timeline []usage.Point, last *usage.Sample) error {
	f, err := userfiles.Create(name, 0o644)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := usage.Plot(f, plotFormat(name), timeline, last); err != nil {
		return err
	}
	if err := f.Commit(); err != nil {
		return err
	}
	stderrf(e, "drew %d samples to %s", len(timeline), name)
	return nil
}

// usageAll ranks every process by a measure, or by its growth every
// interval.
func usageAll(e *env, f usageFlags) error {
	m, err := usage.ParseMeasure(f.by)
	if err != nil {
		return usagef("usage: --by %s: %v", f.by, err)
	}
	first, err := usage.TakeCensus(m, os.Getpid())
	if err != nil {
		return err
	}
	if f.interval == 0 {
		return usage.WriteRanking(e.stdout, nil, first, usage.Rank(nil, first, f.top))
	}
	live := isTerminal(e)
	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	for n := 1; f.samples == 0 || n < f.samples; n++ {
		select {
		case <-e.ctx.Done():
			return nil
		case <-tick.C:
		}
		now, err := usage.TakeCensus(m, os.Getpid())
		if err != nil {
			return err
		}
		if live {
			fmt.Fprint(e.stdout, clearScreen)
		} else if n > 1 {
			fmt.Fprintln(e.stdout)
		}
		if err := usage.WriteRanking(e.stdout, first, now, usage.Rank(first, now, f.top)); err != nil {
			return err
		}
	}
	return nil
}
