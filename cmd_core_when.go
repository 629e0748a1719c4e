package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"time"

	"github.com/spf13/pflag"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/usage"
)

// coreTrigger is core's --when and the flags that go with it.
type coreTrigger struct {
	when     string
	count    int
	spacing  time.Duration
	interval time.Duration
}

func (t *coreTrigger) declare(flags *pflag.FlagSet) {
	flags.StringVar(&t.when, "when", "", "write a core each time `COND` holds (see below)")
	flags.IntVar(&t.count, "count", 1, "with --when, write at most `N` cores")
	flags.DurationVar(&t.spacing, "spacing", time.Minute, "with --when, at least `D` between two cores")
	flags.DurationVarP(&t.interval, "interval", "i", time.Second, "with --when, look every `INTERVAL`")
}

// run watches the target and writes a core, named prefix.DATE-TIME.WHY,
// each time the condition holds, until count are written, Ctrl-C, or the
// process exits.
func (t *coreTrigger) run(e *env, flags *pflag.FlagSet, prefix string) error {
	switch {
	case t.when == "":
		return usagef("core: --count, --spacing and --interval go with --when")
	case t.count < 1:
		return usagef("core: --count takes a positive number")
	case t.spacing < 0:
		return usagef("core: --spacing takes a duration of 0 or more")
	case t.interval < 10*time.Millisecond:
		return usagef("core: --interval takes 10ms or more")
	case e.suspend:
		return usagef("core: --when never stops the process: -S does not go with it")
	}
	cond, err := usage.ParseCondition(t.when)
	if err != nil {
		return usagef("core: %v", err)
	}
	sigs := make(chan os.Signal, 4)
	for _, s := range usage.Signals(cond) {
		signal.Notify(sigs, s)
	}
	defer signal.Stop(sigs)
	watcher := usage.NewWatcher(cond, e.proc)
	stderrf(e, "watching process %d (procmem is pid %d) for: %s", e.pid(), os.Getpid(), cond)
	trig := usage.Trigger{Watcher: watcher, Interval: t.interval, Spacing: t.spacing, Count: t.count, Signals: sigs,
		Fire: func(f usage.Firing) (bool, error) { return fireCore(e, prefix, f) }}
	err = trig.Run(e.ctx)
	if memory.Classify(err) == memory.Gone {
		stderrf(e, "process %d exited", e.pid())
		return nil
	}
	if err == nil {
		if cerr := watcher.CgroupError(); cerr != nil {
			stderrf(e, "the cgroup's memory could not be read: %v", cerr)
		}
	}
	return err
}

// fireCore writes one triggered core; one that would not fit is said and
// skipped.
func fireCore(e *env, prefix string, f usage.Firing) (bool, error) {
	name := coreName(prefix, f)
	for _, why := range f.Why {
		stderrf(e, "%s", why)
	}
	err := writeCore(e, name)
	var room errNoRoom
	if errors.As(err, &room) {
		stderrf(e, "%s", room.msg)
		return false, nil
	}
	return err == nil, err
}

// unsafeInName is what a condition's slug may not carry into a file name.
var unsafeInName = regexp.MustCompile(`[^A-Za-z0-9.+_-]`)

// coreName is prefix.DATE-TIME.WHY, made unique if a core of that second
// is there already.
func coreName(prefix string, f usage.Firing) string {
	why := unsafeInName.ReplaceAllString(f.Slug, "_")
	if len(why) > 100 {
		why = why[:100]
	}
	base := fmt.Sprintf("%s.%s.%s", prefix, f.Time.Format("20060102-150405"), why)
	name := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
			return name
		}
		name = fmt.Sprintf("%s-%d", base, i)
	}
}
