package usage

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/procmem/procmem/procfs"
	"github.com/procmem/procmem/report"
)

// observation is what a Watcher saw at one moment.
type observation struct {
	time      time.Time
	total     Figures
	kinds     [numKinds]Figures
	cpu       time.Duration
	cgroup    procfs.CgroupMemory
	cgroupErr error
	signals   []syscall.Signal // delivered since the observation before
}

func (o *observation) value(m Metric) uint64 {
	if m.Kind == numKinds {
		return o.total.Of(m.Field)
	}
	return o.kinds[m.Kind].Of(m.Field)
}

// history is the observations of the last window, oldest first.
type history struct{ obs []observation }

func (h *history) now() *observation { return &h.obs[len(h.obs)-1] }

// held is an atom that held, and what it saw.
type held struct {
	atom atom
	why  string
}

func (c threshold) eval(h *history) (bool, []held) {
	v := h.now().value(c.m)
	if !compare(float64(v), c.op, float64(c.limit)) {
		return false, nil
	}
	return true, []held{{c, fmt.Sprintf("%s is %s (%s %s)", c.m, report.Size(v), c.op, FormatSize(c.limit))}}
}

// eval: the growth from the lowest value within the window to now.
func (c growth) eval(h *history) (bool, []held) {
	now := h.now()
	low, at := now.value(c.m), now.time
	for i := len(h.obs) - 1; i >= 0 && now.time.Sub(h.obs[i].time) <= c.window; i-- {
		if v := h.obs[i].value(c.m); v < low {
			low, at = v, h.obs[i].time
		}
	}
	grew := now.value(c.m) - low
	if grew < c.by {
		return false, nil
	}
	return true, []held{{c, fmt.Sprintf("%s grew by %s in %s", c.m, report.Size(grew), now.time.Sub(at).Round(time.Millisecond))}}
}

// eval: the CPU time used over the last window, from the newest
// observation at least that old; none yet is not enough to tell.
func (c cpuCond) eval(h *history) (bool, []held) {
	now := h.now()
	for i := len(h.obs) - 2; i >= 0; i-- {
		o := &h.obs[i]
		wall := now.time.Sub(o.time)
		if wall < c.window {
			continue
		}
		pct := 100 * float64(now.cpu-o.cpu) / float64(wall)
		if !compare(pct, c.op, c.percent) {
			return false, nil
		}
		return true, []held{{c, fmt.Sprintf("cpu was %.1f%% over the last %s (%s %s)", pct, wall.Round(time.Millisecond), c.op, formatPercent(c.percent))}}
	}
	return false, nil
}

func (c cgroupCond) eval(h *history) (bool, []held) {
	now := h.now()
	cg := now.cgroup
	if now.cgroupErr != nil {
		return false, nil
	}
	if !c.isPercent {
		if !compare(float64(cg.Current), c.op, float64(c.bytes)) {
			return false, nil
		}
		return true, []held{{c, fmt.Sprintf("cgroup %s uses %s (%s %s)", cg.Dir, report.Size(cg.Current), c.op, FormatSize(c.bytes))}}
	}
	if !cg.Limited {
		return false, nil
	}
	pct := 100 * float64(cg.Current) / float64(cg.Max)
	if !compare(pct, c.op, c.percent) {
		return false, nil
	}
	return true, []held{{c, fmt.Sprintf("cgroup %s uses %s of its limit %s, %.1f%% (%s %s)", cg.Dir,
		report.Size(cg.Current), report.Size(cg.Max), pct, c.op, formatPercent(c.percent))}}
}

func (c signalCond) eval(h *history) (bool, []held) {
	for _, s := range h.now().signals {
		if s == c.sig {
			return true, []held{{c, fmt.Sprintf("procmem got SIG%s", strings.TrimPrefix(c.String(), "signal "))}}
		}
	}
	return false, nil
}

// Watcher observes a process for a condition: it reads only what the
// condition needs (the process's totals from smaps_rollup and statm, the
// kinds from smaps, its CPU time from stat, its cgroup's memory files) and
// keeps the observations as far back as the condition's windows reach.
type Watcher struct {
	cond    Condition
	proc    *procfs.Process
	sampler *Sampler
	hist    history
	kinds   bool // a measure of a kind: smaps (or maps and pagemap), classified
	fresh   bool // of a kind's pss or private dirty bytes: smaps every time
	totals  bool // a measure of the whole: smaps_rollup and statm
	rollup  procfs.SmapsScanner
	cpu     bool
	cgroup  bool
	window  time.Duration // the longest window
}

// NewWatcher watches the pinned process p for c.
func NewWatcher(c Condition, p *procfs.Process) *Watcher {
	w := &Watcher{cond: c, proc: p}
	c.atoms(func(a atom) {
		var m *Metric
		switch a := a.(type) {
		case threshold:
			m = &a.m
		case growth:
			m = &a.m
			w.window = max(w.window, a.window)
		case cpuCond:
			w.cpu = true
			w.window = max(w.window, a.window)
		case cgroupCond:
			w.cgroup = true
		}
		if m != nil && m.Kind != numKinds {
			w.kinds = true
			w.fresh = w.fresh || m.Field == Pss || m.Field == Dirty
		} else if m != nil {
			w.totals = true
		}
	})
	if w.kinds {
		w.sampler = NewSampler(p)
		w.sampler.Smaps = w.fresh
	}
	return w
}

// Observe looks at the process now, with the signals delivered since the
// last look, and reports whether the condition holds and why: a sentence
// per atom that holds, and the same in a few characters for a file name.
func (w *Watcher) Observe(sigs []syscall.Signal) (ok bool, why []string, slug string, err error) {
	o := observation{time: time.Now(), signals: sigs}
	if err := w.read(&o); err != nil {
		return false, nil, "", err
	}
	w.hist.obs = append(w.hist.obs, o)
	// Keep what the windows reach back to, and one more, the newest
	// observation at least a window old.
	drop := 0
	for drop+1 < len(w.hist.obs)-1 && o.time.Sub(w.hist.obs[drop+1].time) >= w.window {
		drop++
	}
	w.hist.obs = append(w.hist.obs[:0], w.hist.obs[drop:]...)
	ok, helds := w.cond.eval(&w.hist)
	if !ok {
		return false, nil, "", nil
	}
	var slugs []string
	for _, h := range helds {
		why = append(why, h.why)
		slugs = append(slugs, h.atom.slug())
	}
	return true, why, strings.Join(slugs, "+"), nil
}

func (w *Watcher) read(o *observation) error {
	if w.kinds {
		s, err := w.sampler.Sample()
		if err != nil {
			return err
		}
		o.total, o.kinds, o.cpu = s.Total, s.Kinds, s.CPU
		w.sampler.Recycle(s)
	} else if w.totals {
		if err := w.readTotals(o); err != nil {
			return err
		}
	}
	if w.cpu && !w.kinds {
		var err error
		if o.cpu, err = w.proc.CPUTime(); err != nil {
			return err
		}
	}
	if w.cgroup {
		o.cgroup, o.cgroupErr = w.proc.CgroupMemory()
		if o.cgroupErr != nil {
			// Said at every look, since it may be mended meanwhile;
			// a process gone is told by the other reads.
			if _, err := w.proc.Stat(); err != nil {
				return err
			}
		}
	}
	if !w.kinds && !w.totals && !w.cpu && !w.cgroup {
		// Signals alone: still notice the process exiting.
		_, err := w.proc.Stat()
		return err
	}
	return nil
}

// readTotals reads the process's totals from smaps_rollup (a few
// milliseconds even for 60,000 mappings) and its size from statm.
func (w *Watcher) readTotals(o *observation) error {
	r, _, err := w.rollup.Rollup(w.proc)
	if err != nil {
		return err
	}
	o.total = Figures{Rss: r.Rss, Pss: r.Pss, Swap: r.Swap, PrivateDirty: r.PrivateDirty}
	sm, err := w.proc.Statm()
	if err != nil {
		return err
	}
	o.total.Size = sm.Size
	return nil
}

// CgroupError is why the last look could not read the cgroup's memory
// files, nil if it could or was not asked to.
func (w *Watcher) CgroupError() error {
	if len(w.hist.obs) == 0 {
		return nil
	}
	return w.hist.now().cgroupErr
}

// Firing is a moment the condition held and a core was due.
type Firing struct {
	Time time.Time
	Why  []string // a sentence per atom that held
	Slug string   // the same, in a few characters for a file name
	N    int      // how many cores were written before it
}

// Trigger runs a Watcher every Interval and calls Fire when the condition
// holds, at most Count times and no sooner than Spacing after the last
// firing. Signals the condition names are read from Signals, and each is
// looked at at once, not at the next tick.
type Trigger struct {
	Watcher  *Watcher
	Interval time.Duration
	Spacing  time.Duration
	Count    int
	Signals  <-chan os.Signal
	// Fire writes a core; it reports whether one was written (a core
	// that would not fit on the disk is not, and does not count).
	Fire func(Firing) (bool, error)
}

// Run watches until Count cores are written, ctx ends, or the process
// exits (the error of the read that found it gone).
func (t *Trigger) Run(ctx context.Context) error {
	tick := time.NewTicker(t.Interval)
	defer tick.Stop()
	written := 0
	var last time.Time
	var sigs []syscall.Signal
	for written < t.Count {
		ok, why, slug, err := t.Watcher.Observe(sigs)
		sigs = nil
		if err != nil {
			return err
		}
		if now := time.Now(); ok && (last.IsZero() || now.Sub(last) >= t.Spacing) {
			last = now
			wrote, err := t.Fire(Firing{Time: now, Why: why, Slug: slug, N: written})
			if err != nil {
				return err
			}
			if wrote {
				written++
				continue
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case s := <-t.Signals:
			if sig, ok := s.(syscall.Signal); ok {
				sigs = append(sigs, sig)
			}
		}
	}
	return nil
}
