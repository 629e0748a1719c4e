package pointers

import (
	"cmp"
	"context"
	"encoding/binary"
	"runtime"
	"slices"
	"sort"
	"sync"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

// Source is an address space to take a pointer map of: its memory (a live
// process's, or a capture's), its maps, and its static bases.
type Source struct {
	Memory  *memory.Reader
	Regions []procfs.Region
	Modules []Module
	Stacks  []Stack
	// Also is memory beyond the writable regions that pointers into
	// count: the region of a target in read-only memory.
	Also     Range
	Progress func(bytes uint64) // told of every stretch scanned, in both passes
}

// piece is a stretch of one writable region, scanned by one worker: large
// regions are cut, so that one heap keeps every core busy.
type piece struct {
	region  procfs.Region
	start   uint64
	end     uint64
	statics []Range // where in it pointers lie in a static base
	// count[d] pointers of bucket d were found by the first pass; the
	// second puts them from at[d] on.
	count [buckets]uint32
	at    [buckets]int
}

const pieceSize = 16 << 20

// Take scans the source's writable memory for pointers: every aligned
// word whose value lies in writable memory (or in Also). Pages that hold
// no data are not read. Memory is read twice: the first pass counts the
// pointers of each piece by bucket of value (buckets split the values in
// order), the second puts each one into its bucket's place in one array
// of the size counted. So a map needs no more memory than its pointers
// take (16 bytes each while they are sorted, about 6 once encoded), the
// first digit of the sort is done, and the buckets sort on every core. The
// process runs on; what changed between the passes is taken as the second
// pass finds it.
func Take(ctx context.Context, src Source) (*Map, error) {
	pieces := cut(src)
	into := newValueSet(src.Regions, src.Also)
	if err := eachPiece(ctx, src, pieces, func(_, i int, addr uint64, b []byte) {
		count := &pieces[i].count
		collectPointers(b, addr, into, nil, func(d int, _ entry) { count[d]++ })
	}, nil); err != nil {
		return nil, err
	}
	var bounds [buckets + 1]int // bucket d is es[bounds[d]:bounds[d+1]]
	for d := range buckets {
		bounds[d+1] = bounds[d]
		for i := range pieces {
			pieces[i].at[d] = bounds[d+1]
			bounds[d+1] += int(pieces[i].count[d])
		}
	}
	arr := newEntryArray(bounds[buckets])
	defer arr.free()
	es := arr.es
	var mu sync.Mutex
	var extra []entry // what the second pass found beyond the count
	place := func(p *piece, d int, batch []entry) {
		n := min(len(batch), int(p.count[d]))
		copy(es[p.at[d]:], batch[:n])
		p.at[d] += n
		p.count[d] -= uint32(n)
		if n < len(batch) {
			mu.Lock()
			extra = append(extra, batch[n:]...)
			mu.Unlock()
		}
	}
	// Each bucket's pointers are staged and copied into place a batch at a
	// time: written one by one to 256 places in the array, every write
	// would miss the cache. A worker flushes its stage when it is done
	// with a piece.
	stages := make([]stage, runtime.GOMAXPROCS(0))
	err := eachPiece(ctx, src, pieces, func(w, i int, addr uint64, b []byte) {
		p, st := &pieces[i], &stages[w]
		collectPointers(b, addr, into, p.statics, func(d int, e entry) {
			if st.add(d, e) {
				place(p, d, st.take(d))
			}
		})
	}, func(w, i int) {
		for d := range buckets {
			place(&pieces[i], d, stages[w].take(d))
		}
	})
	if err != nil {
		return nil, err
	}
	// Places the second pass left empty (fewer pointers than counted)
	// hold zeros, which sort first in their bucket and are dropped.
	parallel(buckets, func(d int) { radixSort(es[bounds[d]:bounds[d+1]]) })
	es = slices.DeleteFunc(es, func(e entry) bool { return e.value == 0 })
	release := arr.release
	if len(extra) > 0 {
		radixSort(extra)
		es, release = merge(es, extra), nil
	}
	m := &Map{Regions: src.Regions, Modules: src.Modules, Stacks: src.Stacks}
	m.fill(es, release)
	return m, nil
}

// stage holds the last pointers found of each bucket, to be copied into
// place together.
type stage struct {
	n [buckets]uint8
	e [buckets][stageLen]entry
}

const stageLen = 32

// add stages e in bucket d and reports whether the bucket is full.
func (st *stage) add(d int, e entry) bool {
	st.e[d][st.n[d]] = e
	st.n[d]++
	return st.n[d] == stageLen
}

// take empties bucket d.
func (st *stage) take(d int) []entry {
	n := st.n[d]
	st.n[d] = 0
	return st.e[d][:n]
}

// merge merges two sorted lists of entries.
func merge(a, b []entry) []entry {
	out := make([]entry, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if less(b[0], a[0]) {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
}

// fill makes the map's index and bases of entries sorted by value;
// release, if not nil, is told how many entries are encoded as it goes.
func (m *Map) fill(es []entry, release func(int)) {
	m.bases = nil
	for _, e := range es {
		if e.isStatic() {
			m.bases = append(m.bases, Pointer{e.addr(), e.value})
		}
	}
	m.ix = buildIndex(es, release)
	slices.SortFunc(m.bases, func(a, b Pointer) int { return cmp.Compare(a.Addr, b.Addr) })
}

// staticData is where the static bases of modules and stacks lie: each
// module's static data, and the whole of every known stack (how much of a
// stack counts is for a search to say).
func staticData(mods []Module, stacks []Stack) []Range {
	var out []Range
	for _, m := range mods {
		for _, s := range m.Static {
			out = append(out, Range{m.Base + s.Start, m.Base + s.End})
		}
	}
	for _, s := range stacks {
		if s.Known() {
			out = append(out, Range{s.Start, s.Top})
		}
	}
	return out
}

// cut cuts the writable regions into pieces, each with the static bases
// inside it.
func cut(src Source) []piece {
	statics := staticData(src.Modules, src.Stacks)
	var pieces []piece
	for _, r := range src.Regions {
		if !r.Perms.Read || !r.Perms.Write || r.Unreadable() {
			continue
		}
		for at := r.Start; at < r.End; at += min(pieceSize, r.End-at) {
			p := piece{region: r, start: at, end: at + min(pieceSize, r.End-at)}
			for _, s := range statics {
				if s.Start < p.end && p.start < s.End {
					p.statics = append(p.statics, Range{max(s.Start, p.start), min(s.End, p.end)})
				}
			}
			pieces = append(pieces, p)
		}
	}
	return pieces
}

// eachPiece streams every piece's data to scan, on every core, and tells
// done (if not nil) when a piece is over; w numbers the worker. A process
// that is gone ends it; pages that cannot be read are left out.
func eachPiece(ctx context.Context, src Source, pieces []piece, scan func(w, i int, addr uint64, b []byte), done func(w, i int)) error {
	work := make(chan int)
	var mu sync.Mutex
	var gone error
	var wg sync.WaitGroup
	for w := range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for i := range work {
				p := &pieces[i]
				g := src.Memory.Region(p.region)
				_, err := g.Stream(ctx, p.start, p.end, buf, memory.Sink{
					Data: func(addr uint64, b []byte) error {
						scan(w, i, addr, b)
						src.progress(uint64(len(b)))
						return nil
					},
					Zeros: func(addr, n uint64) error { src.progress(n); return nil },
				})
				g.Close()
				if done != nil {
					done(w, i)
				}
				if err != nil && (memory.Classify(err) == memory.Gone || ctx.Err() != nil) {
					mu.Lock()
					gone = err
					mu.Unlock()
				}
			}
		}()
	}
	for i := range pieces {
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if gone == nil {
		gone = ctx.Err()
	}
	return gone
}

func (src Source) progress(n uint64) {
	if src.Progress != nil {
		src.Progress(n)
	}
}

// valueSet tells whether a value points into writable memory, and in
// which bucket it is: the ranges sorted, with the last one hit tried first
// (most pointers of a stretch point into one heap).
type valueSet struct {
	ranges    []Range
	before    []uint64 // the bytes of the ranges before each
	shift     uint     // a value's place among all bytes, shifted by this, is its bucket
	low, high uint64   // every range lies in [low, high)
}

// buckets is how many buckets the values are put in by the second pass:
// the first digit of their sort.
const buckets = 256

func newValueSet(regions []procfs.Region, also Range) valueSet {
	var vs valueSet
	var total uint64
	for _, r := range regions {
		if r.Perms.Write && !r.Unreadable() || also.Start < r.End && r.Start < also.End {
			if n := len(vs.ranges); n > 0 && vs.ranges[n-1].End == r.Start {
				vs.ranges[n-1].End = r.End
			} else {
				vs.ranges = append(vs.ranges, Range{r.Start, r.End})
				vs.before = append(vs.before, total)
			}
			total += r.Size()
		}
	}
	if len(vs.ranges) > 0 {
		vs.low, vs.high = vs.ranges[0].Start, vs.ranges[len(vs.ranges)-1].End
	}
	for total>>vs.shift > buckets {
		vs.shift++
	}
	return vs
}

// find returns the range holding v, starting with the one at hint.
func (vs *valueSet) find(v uint64, hint int) (int, bool) {
	if v-vs.low >= vs.high-vs.low {
		return hint, false
	}
	if r := vs.ranges[hint]; v-r.Start < r.End-r.Start {
		return hint, true
	}
	i := sort.Search(len(vs.ranges), func(i int) bool { return vs.ranges[i].End > v })
	if i < len(vs.ranges) && vs.ranges[i].Start <= v {
		return i, true
	}
	return hint, false
}

// bucket is the bucket of v, which lies in range i.
func (vs *valueSet) bucket(v uint64, i int) int {
	return min(int((vs.before[i]+v-vs.ranges[i].Start)>>vs.shift), buckets-1)
}

// collectPointers hands every aligned word of b (at addr) that points into
// the set to add with its bucket, flagged if it lies in one of statics.
func collectPointers(b []byte, addr uint64, into valueSet, statics []Range, add func(int, entry)) {
	if len(into.ranges) == 0 {
		return
	}
	hint := 0
	for i := (8 - addr%8) % 8; i+8 <= uint64(len(b)); i += 8 {
		v := binary.LittleEndian.Uint64(b[i:])
		var ok bool
		if hint, ok = into.find(v, hint); !ok {
			continue
		}
		at := addr + i
		for _, s := range statics {
			if s.contains(at) {
				at |= staticFlag
				break
			}
		}
		add(into.bucket(v, hint), entry{at: at, value: v})
	}
}

// LiveSource describes a live process for Take: its maps, its modules
// (the program is the one whose mapping holds the start of its code, as
// stat tells) and its threads' stacks.
func LiveSource(p *procfs.Process, mem *memory.Reader) (Source, error) {
	regions, err := p.Maps()
	if err != nil {
		return Source{}, err
	}
	stacks, err := Stacks(p, regions)
	if err != nil {
		return Source{}, err
	}
	var program string
	if r, ok := procfs.RegionAt(regions, p.Image.StartCode); ok {
		program = r.Path
	}
	mods := FindModules(regions, program, mem, LiveFiles(p))
	return Source{Memory: mem, Regions: regions, Modules: mods, Stacks: stacks}, nil
}
