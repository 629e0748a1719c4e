package usage

import (
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
	"github.com/procmem/procmem/report"
)

// ProcFigures is what a census saw of one process.
type ProcFigures struct {
	PID       int
	StartTime uint64
	Comm      string
	Value     uint64 // the measure the census was taken of
}

// Census is one look at every process the caller may read.
type Census struct {
	Time       time.Time
	Measure    Metric
	Procs      []ProcFigures
	Unreadable int // processes whose smaps the caller may not read
}

// TakeCensus measures m of every process but skip (procmem itself),
// GOMAXPROCS processes at a time (at least two), each read no more than m
// needs: a total from smaps_rollup (and statm for size); a kind's size
// from maps, its resident or swapped bytes from maps and the page tables,
// its proportional or private dirty bytes from smaps. Thread stacks are
// told by their shape only (no syscall file per thread).
func TakeCensus(m Metric, skip int) (*Census, error) {
	pids, err := procfs.PIDs()
	if err != nil {
		return nil, err
	}
	c := &Census{Time: time.Now(), Measure: m}
	work := make(chan int)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range max(2, runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs := censusTaker{measure: m}
			for pid := range work {
				pf, ok, readable := cs.take(pid)
				mu.Lock()
				if ok {
					c.Procs = append(c.Procs, pf)
				} else if !readable {
					c.Unreadable++
				}
				mu.Unlock()
			}
		}()
	}
	for _, pid := range pids {
		if pid != skip {
			work <- pid
		}
	}
	close(work)
	wg.Wait()
	return c, nil
}

// censusTaker measures one process after another, with the same buffers.
type censusTaker struct {
	measure Metric
	read    regionReader
	regions []Region
}

// take reads the measure of process pid. A process that is gone, or has
// no address space (a kernel thread), is neither measured nor unreadable.
func (cs *censusTaker) take(pid int) (pf ProcFigures, ok, readable bool) {
	// Pinned without reading stat, which is read once here.
	p, err := procfs.OpenTask(pid)
	if err != nil {
		return pf, false, true
	}
	defer p.Close()
	st, err := p.Stat()
	if err != nil || st.Exited() {
		return pf, false, true
	}
	pf = ProcFigures{PID: pid, StartTime: st.StartTime, Comm: st.Comm}
	f, ok, err := cs.figures(p)
	if err != nil {
		return pf, false, !notPermitted(err)
	}
	pf.Value = f.Of(cs.measure.Field)
	return pf, ok, true
}

// figures reads the figures the measure is taken from: the process's
// totals, or its kind's; ok is false for a process without an address
// space.
func (cs *censusTaker) figures(p *procfs.Process) (f Figures, ok bool, err error) {
	m := cs.measure
	if m.Kind == numKinds {
		r, ok, err := cs.read.scan.Rollup(p)
		if err != nil || !ok {
			return f, false, err
		}
		f = Figures{Rss: r.Rss, Pss: r.Pss, Swap: r.Swap, PrivateDirty: r.PrivateDirty}
		if m.Field == Size {
			sm, err := p.Statm()
			if err != nil {
				return f, false, err
			}
			f.Size = sm.Size
		}
		return f, true, nil
	}
	read := cs.read.pages
	switch m.Field {
	case Pss, Dirty:
		read = cs.read.smaps
	case Size:
		read = cs.read.maps
	}
	cs.regions, err = read(p, cs.regions[:0])
	if err != nil || len(cs.regions) == 0 {
		return f, false, err
	}
	classify(cs.regions, nil)
	for i := range cs.regions {
		if r := &cs.regions[i]; r.Kind == m.Kind {
			f.add(r.Figures)
		}
	}
	return f, true, nil
}

func notPermitted(err error) bool { return memory.Classify(err) == memory.NotPermitted }

// Ranked is a process's place in a ranking.
type Ranked struct {
	ProcFigures
	Growth int64 // since the census before, if there was one
}

// Rank orders the processes of now by their measure, or with a census
// before, by its growth since (processes new since then grew from
// nothing), and returns the first n.
func Rank(before, now *Census, n int) []Ranked {
	type key struct {
		pid   int
		start uint64
	}
	old := map[key]uint64{}
	if before != nil {
		for _, p := range before.Procs {
			old[key{p.PID, p.StartTime}] = p.Value
		}
	}
	ranked := make([]Ranked, len(now.Procs))
	for i, p := range now.Procs {
		ranked[i] = Ranked{p, int64(p.Value) - int64(old[key{p.PID, p.StartTime}])}
	}
	sort.Slice(ranked, func(i, j int) bool {
		a, b := ranked[i], ranked[j]
		if before != nil && a.Growth != b.Growth {
			return a.Growth > b.Growth
		}
		if a.Value != b.Value {
			return a.Value > b.Value
		}
		return a.PID < b.PID
	})
	return ranked[:min(n, len(ranked))]
}

// WriteRanking writes a ranking as a table.
func WriteRanking(w io.Writer, before, now *Census, ranked []Ranked) error {
	var b strings.Builder
	what := fmt.Sprintf("%d processes by %s", len(now.Procs), now.Measure)
	if before != nil {
		what = fmt.Sprintf("%d processes by growth of %s in the last %s", len(now.Procs), now.Measure,
			now.Time.Sub(before.Time).Round(time.Second))
	}
	fmt.Fprintf(&b, "%s at %s", what, now.Time.Format("15:04:05"))
	if now.Unreadable > 0 {
		fmt.Fprintf(&b, " (%d more not readable by you)", now.Unreadable)
	}
	fmt.Fprintf(&b, "\n%8s  %-16s %11s", "pid", "command", now.Measure)
	if before != nil {
		fmt.Fprintf(&b, " %12s", "growth")
	}
	b.WriteByte('\n')
	for _, r := range ranked {
		fmt.Fprintf(&b, "%8d  %-16s %11s", r.PID, r.Comm, report.Size(r.Value))
		if before != nil {
			fmt.Fprintf(&b, " %12s", Signed(r.Growth))
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}
