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
	count   int     // pointers found by the first pass
	offset  int     // where the second pass puts them
}

const pieceSize = 16 << 20

// Take scans the source's writable memory for pointers: every aligned
// word whose value lies in writable memory (or in Also). Pages that hold
// no data are not read. Memory is read twice, once to count the pointers
// and once to collect them into one array of the size counted, so a map
// needs no more memory than its pointers take (16 bytes each while they
// are sorted, about 6 once encoded); the process runs on, and what
// changed between the passes is taken as the second pass finds it.
func Take(ctx context.Context, src Source) (*Map, error) {
	pieces := cut(src)
	into := newValueSet(src.Regions, src.Also)
	if err := eachPiece(ctx, src, pieces, func(i int, addr uint64, b []byte) {
		pieces[i].count += countPointers(b, addr, into)
	}); err != nil {
		return nil, err
	}
	total := 0
	for i := range pieces {
		pieces[i].offset = total
		total += pieces[i].count
	}
	es := make([]entry, total)
	var mu sync.Mutex
	var extra []entry // what the second pass found beyond the count
	filled := make([]int, len(pieces))
	err := eachPiece(ctx, src, pieces, func(i int, addr uint64, b []byte) {
		p, n := &pieces[i], &filled[i]
		collectPointers(b, addr, into, p.statics, func(e entry) {
			if *n < p.count {
				es[p.offset+*n] = e
				*n++
				return
			}
			mu.Lock()
			extra = append(extra, e)
			mu.Unlock()
		})
	})
	if err != nil {
		return nil, err
	}
	m := &Map{Regions: src.Regions, Modules: src.Modules, Stacks: src.Stacks}
	m.fill(compact(es, pieces, filled, extra))
	return m, nil
}

// fill sorts the entries and makes the map's index and bases of them.
func (m *Map) fill(es []entry) {
	sortEntries(es)
	m.ix = buildIndex(es)
	m.bases = nil
	for _, e := range es {
		if e.isStatic() {
			m.bases = append(m.bases, Pointer{e.addr(), e.value})
		}
	}
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

// compact closes the gaps the second pass left where it found fewer
// pointers than the first, and appends what it found beyond.
func compact(es []entry, pieces []piece, filled []int, extra []entry) []entry {
	at := 0
	for i, p := range pieces {
		at += copy(es[at:], es[p.offset:p.offset+filled[i]])
	}
	return append(es[:at], extra...)
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

// eachPiece streams every piece's data to scan, on every core. A process
// that is gone ends it; pages that cannot be read are left out.
func eachPiece(ctx context.Context, src Source, pieces []piece, scan func(i int, addr uint64, b []byte)) error {
	work := make(chan int)
	var mu sync.Mutex
	var gone error
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for i := range work {
				p := &pieces[i]
				g := src.Memory.Region(p.region)
				_, err := g.Stream(ctx, p.start, p.end, buf, memory.Sink{
					Data: func(addr uint64, b []byte) error {
						scan(i, addr, b)
						src.progress(uint64(len(b)))
						return nil
					},
					Zeros: func(addr, n uint64) error { src.progress(n); return nil },
				})
				g.Close()
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

// valueSet tells whether a value points into writable memory: the ranges
// sorted, with the last one hit tried first (most pointers of a stretch
// point into one heap).
type valueSet struct {
	ranges    []Range
	low, high uint64 // every range lies in [low, high)
}

func newValueSet(regions []procfs.Region, also Range) valueSet {
	var rs []Range
	for _, r := range regions {
		if r.Perms.Write && !r.Unreadable() || also.Start < r.End && r.Start < also.End {
			if n := len(rs); n > 0 && rs[n-1].End == r.Start {
				rs[n-1].End = r.End
			} else {
				rs = append(rs, Range{r.Start, r.End})
			}
		}
	}
	vs := valueSet{ranges: rs}
	if len(rs) > 0 {
		vs.low, vs.high = rs[0].Start, rs[len(rs)-1].End
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

// countPointers counts the aligned words of b (at addr) that point into
// the set.
func countPointers(b []byte, addr uint64, into valueSet) int {
	n, hint := 0, 0
	if len(into.ranges) == 0 {
		return 0
	}
	for i := (8 - addr%8) % 8; i+8 <= uint64(len(b)); i += 8 {
		var ok bool
		if hint, ok = into.find(binary.LittleEndian.Uint64(b[i:]), hint); ok {
			n++
		}
	}
	return n
}

// collectPointers hands every aligned word of b (at addr) that points into
// the set to add, flagged if it lies in one of statics.
func collectPointers(b []byte, addr uint64, into valueSet, statics []Range, add func(entry)) {
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
		add(entry{at: at, value: v})
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
