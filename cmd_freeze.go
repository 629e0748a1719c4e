package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/scan"
)

var freezeVerb = verb{
	name:  "freeze",
	args:  "[-t TYPE] [-e little|big] [--interval DURATION] ADDR=VALUE...",
	short: "hold values in place: write them again and again until Ctrl-C or the process exits",
	long: "ADDR is a hex address or an address expression (see read). An expression that reads pointers,\n" +
		"such as [[game+0x4010]+0x8]+0xc, is followed anew before every write, so the value is held wherever\n" +
		"the chain leads now. A write that fails is reported once and tried again at every interval.",
	setup:       setupFreeze,
	needsTarget: true,
	ownSuspend:  true,
}

func setupFreeze(flags *pflag.FlagSet) func(*env, []string) error {
	typ := flags.StringP("type", "t", "int32", "the values' `TYPE`: "+strings.Join(scan.TypeNames(), ", "))
	endian := flags.StringP("endian", "e", "little", "byte order of the values: little or big")
	interval := flags.Duration("interval", 10*time.Millisecond, "how often to write the values")
	return func(e *env, args []string) error {
		if e.suspend {
			return usagef("freeze: -S would keep the process stopped for as long as freeze runs")
		}
		t, err := scan.ParseType(*typ, *endian)
		if err != nil {
			return usagef("freeze: %s", syntaxMsg(err))
		}
		if *interval <= 0 {
			return usagef("freeze: --interval must be above 0")
		}
		if len(args) == 0 {
			return usagef("freeze: give at least one ADDR=VALUE")
		}
		mem, err := openMemory(e, true)
		if err != nil {
			return err
		}
		defer mem.Close()
		res, err := newResolver(e.proc)
		if err != nil {
			return err
		}
		defer res.close()
		f := &freezer{env: e, mem: mem, res: res, interval: *interval}
		for _, arg := range args {
			at, val, ok := strings.Cut(arg, "=")
			if !ok {
				return usagef("freeze: %q: want ADDR=VALUE", arg)
			}
			x, err := parseExpr(strings.TrimSpace(at))
			if err != nil {
				return err
			}
			v, err := t.ParseValue(strings.TrimSpace(val))
			if err != nil {
				return usagef("freeze: %s", syntaxMsg(err))
			}
			h := hold{value: t.Encode(v), text: at}
			if h.addr, err = res.eval(x); err != nil {
				return err
			}
			if x.reads() {
				h.x = x
			} else if _, err := bytesAt(h.addr, len(h.value)); err != nil {
				return usagef("freeze: %s: %v", at, err)
			}
			f.holds = append(f.holds, h)
		}
		if err := f.writeAll(true); err != nil {
			return err
		}
		for _, h := range f.holds {
			fmt.Fprintf(e.stdout, "holding %s = %s (%s) at %016x\n", h.text, t.Format(h.value), scan.Spec{Num: t, Big: t.Big}, h.addr)
		}
		if err := f.run(e.ctx); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, "released")
		return nil
	}
}

// reads reports whether evaluating the expression reads memory.
func (x expr) reads() bool {
	for _, st := range x {
		if st.term.isRef {
			return true
		}
	}
	return false
}

// hold is one value freeze keeps in place.
type hold struct {
	addr   uint64
	x      expr // set when the address reads pointers: followed again before each write
	value  []byte
	text   string // the address as the user wrote it
	failed bool   // the last write failed, and that was said
}

// freezer writes values again and again: freeze, and freeze at the scan
// prompt.
type freezer struct {
	*env
	mem      *memory.Reader // open for writing
	res      *resolver      // for holds that read pointers; may be nil
	holds    []hold
	interval time.Duration
	mapsRead time.Time // when res's regions were last read again
}

// run writes every value every interval until ctx ends (nil) or the
// process is gone (nil too, after saying so). The caller writes them once
// before, with writeAll(true), to learn whether the addresses are right.
func (f *freezer) run(ctx context.Context) error {
	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	for {
		if err := f.writeAll(false); err != nil {
			if memory.Classify(err) == memory.Gone {
				stderrf(f.env, "process %d exited: nothing left to hold", f.pid())
				return nil
			}
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// writeAll writes each value once. A write that fails is said once, when
// it starts failing, and once more when it works again; on the first
// round (first) it is an error: the address is wrong.
func (f *freezer) writeAll(first bool) error {
	for i := range f.holds {
		h := &f.holds[i]
		err := f.follow(h)
		if err == nil {
			var span addrRange
			if span, err = bytesAt(h.addr, len(h.value)); err == nil {
				_, err = f.mem.Writer(span.start, span.end).WriteFull(h.value, h.addr)
			}
		}
		switch {
		case memory.Classify(err) == memory.Gone:
			return err
		case err != nil && first:
			return fmt.Errorf("%s: %w", h.text, err)
		case err != nil && !h.failed:
			h.failed = true
			stderrf(f.env, "%s: %s (trying again)", h.text, message(err))
		case err == nil && h.failed:
			h.failed = false
			stderrf(f.env, "%s: held again at %016x", h.text, h.addr)
		}
	}
	return nil
}

// follow computes a hold's address anew if it reads pointers. When the
// chain leads out of the regions known, maps is read again (at most once
// a second) before it fails.
func (f *freezer) follow(h *hold) error {
	if h.x == nil {
		return nil
	}
	addr, err := f.res.eval(h.x)
	if err != nil && time.Since(f.mapsRead) > time.Second {
		f.mapsRead = time.Now()
		if regions, merr := f.proc.Maps(); merr == nil {
			f.res.regions = regions
			addr, err = f.res.eval(h.x)
		}
	}
	if err == nil {
		h.addr = addr
	}
	return err
}

// runningFreeze is a freezer at work beside the scan prompt.
type runningFreeze struct {
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// start runs the freezer until stop.
func (f *freezer) start() *runningFreeze {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningFreeze{cancel: cancel}
	r.done.Add(1)
	go func() {
		defer r.done.Done()
		defer f.mem.Close()
		if err := f.run(ctx); err != nil {
			stderrf(f.env, "freeze: %s", message(err))
		}
	}()
	return r
}

// stop ends the freezer and waits for its last write.
func (r *runningFreeze) stop() {
	r.cancel()
	r.done.Wait()
}
