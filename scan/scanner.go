package scan

import (
	"bytes"
	"context"
	"encoding/binary"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

// Scanner scans one process's memory through its Reader: pages that hold
// no data are never read (they hold only zeros, and reading them would
// fault them in), and the process is left running.
type Scanner struct {
	Mem      *memory.Reader
	Workers  int               // goroutines reading at once; GOMAXPROCS if 0
	Progress func(bytes int64) // called as work is done: bytes of regions, or pages of matches times PageSize; may be nil
}

// chunkSize is the share of a region one worker takes at a time in a
// first scan.
const chunkSize = 8 << 20

// streamBuf is how much one worker reads at a time.
const streamBuf = 1 << 20

// Result is what a first scan found, and what it could not read.
type Result struct {
	Set    *Set
	Unread uint64 // bytes of pages that could not be read
}

// First scans the regions (in address order) for values of type t at
// positions a multiple of step that pass c, every core taking chunks of
// them. c must not need a previous scan.
func (sc *Scanner) First(ctx context.Context, regions []procfs.Region, t Type, step int, c Cond) (Result, error) {
	type chunk struct {
		r          procfs.Region
		start, end uint64
	}
	var chunks []chunk
	for _, r := range regions {
		for at := r.Start; at < r.End; {
			end := min(r.End, (at+chunkSize)&^uint64(PageSize-1))
			chunks = append(chunks, chunk{r, at, end})
			at = end
		}
	}
	var unread atomic.Uint64
	sets := make([]*Set, len(chunks))
	err := sc.parallel(ctx, len(chunks), func(i int, scratch *[]byte) error {
		buf := grow(scratch, streamBuf)
		ch := chunks[i]
		f := newFinder(t, step, c)
		b := builder{s: NewSet(t, step)}
		g := sc.Mem.Region(ch.r)
		defer g.Close()
		var part partPage
		bad, err := g.Stream(ctx, ch.start, ch.end, buf, memory.Sink{
			Data: func(addr uint64, data []byte) error {
				for len(data) > 0 {
					pageAddr := addr &^ uint64(PageSize-1)
					from := int(addr - pageAddr)
					n := min(len(data), PageSize-from)
					if from == 0 && n == PageSize {
						part.flush(&b, f)
						b.add(pageAddr, f.find(data[:n], 0), data[:n], 0)
					} else {
						part.put(&b, f, pageAddr, from, data[:n])
					}
					addr += uint64(n)
					data = data[n:]
				}
				return nil
			},
			Zeros: func(addr, n uint64) error { part.flush(&b, f); return nil },
		})
		part.flush(&b, f)
		for _, u := range bad {
			unread.Add(u.End - u.Start)
		}
		if sc.Progress != nil {
			sc.Progress(int64(ch.end - ch.start))
		}
		sets[i] = b.s
		return err
	})
	if err != nil {
		return Result{}, err
	}
	return Result{Set: join(t, step, sets), Unread: unread.Load()}, nil
}

// Narrow reads the matches of prev again and keeps those that pass c. The
// regions are a fresh reading of maps (in address order), filtered as the
// user asked: matches outside them, unmapped since or filtered out, are
// dropped, and so are matches that can no longer be read.
func (sc *Scanner) Narrow(ctx context.Context, regions []procfs.Region, prev *Set, c Cond) (*Set, error) {
	// Work: runs of prev's pages inside one region, a few thousand pages
	// at most, so every core gets some.
	type run struct {
		r        procfs.Region
		from, to int // prev.pages[from:to]
	}
	var runs []run
	const maxRun = 4096
	pages := prev.pages
	for i := 0; i < len(pages); {
		k := sort.Search(len(regions), func(k int) bool { return regions[k].End > pages[i].addr })
		if k == len(regions) {
			break
		}
		r := regions[k]
		if pages[i].addr < r.Start {
			// Not in any region now: skip to the next page that may be.
			i += sort.Search(len(pages)-i, func(j int) bool { return pages[i+j].addr >= r.Start })
			continue
		}
		j := i + sort.Search(len(pages)-i, func(j int) bool { return pages[i+j].addr >= r.End })
		for ; i < j; i += maxRun {
			runs = append(runs, run{r, i, min(j, i+maxRun)})
		}
		i = j
	}

	t, size := prev.Type, prev.Type.Size
	sets := make([]*Set, len(runs))
	err := sc.parallel(ctx, len(runs), func(ri int, scratch *[]byte) error {
		rn := runs[ri]
		b := builder{s: NewSet(t, prev.Step)}
		sets[ri] = b.s
		// One piece a page: its bytes from the first match to the end of
		// the last.
		pieces := make([]memory.Piece, 0, rn.to-rn.from)
		spans := make([]int, 0, rn.to-rn.from) // the page offset each piece starts at
		var offs []uint16
		total := 0
		for pi := rn.from; pi < rn.to; pi++ {
			p := &pages[pi]
			offs = prev.offsets(p, offs[:0])
			first, last := int(offs[0]), int(offs[len(offs)-1])+size
			pieces = append(pieces, memory.Piece{Addr: p.addr + uint64(first), N: last - first})
			spans = append(spans, first)
			total += last - first
		}
		buf := grow(scratch, total)
		for i := range pieces {
			pieces[i].B, buf = buf[:pieces[i].N:pieces[i].N], buf[pieces[i].N:]
		}
		g := sc.Mem.Region(rn.r)
		err := g.ReadPieces(pieces)
		g.Close()
		if err != nil {
			return err
		}
		zero := make([]byte, size)
		var keep []uint16
		for i, pc := range pieces {
			p := &pages[rn.from+i]
			offs = prev.offsets(p, offs[:0])
			keep = keep[:0]
			from := spans[i]
			for k, off := range offs {
				at := int(off) - from
				if at+size > pc.N {
					break // could not be read: dropped
				}
				if c.test(t, pc.B[at:at+size], prev.value(p, k, off, zero)) {
					keep = append(keep, off)
				}
			}
			b.add(p.addr, keep, pc.B, from)
		}
		if sc.Progress != nil {
			sc.Progress(int64(rn.to-rn.from) * int64(PageSize))
		}
		return ctx.Err()
	})
	if err != nil {
		return nil, err
	}
	return join(t, prev.Step, sets), nil
}

// parallel runs work(i) for i in [0, n) on the scanner's workers, each
// with a scratch buffer of its own (see grow), and returns the first
// error.
func (sc *Scanner) parallel(ctx context.Context, n int, work func(i int, scratch *[]byte) error) error {
	workers := sc.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, n))
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var scratch []byte
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := work(i, &scratch); err != nil {
					once.Do(func() { first = err })
					next.Store(int64(n)) // the others stop at their next chunk
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// grow returns the first n bytes of *scratch, made larger first if need
// be: a worker's buffer is allocated once, not for every piece of work.
func grow(scratch *[]byte, n int) []byte {
	if cap(*scratch) < n {
		*scratch = make([]byte, n)
	}
	return (*scratch)[:n]
}

// join puts sets of consecutive parts of memory together, in order.
func join(t Type, step int, sets []*Set) *Set {
	out := NewSet(t, step)
	var pos, blocks, pages int
	for _, s := range sets {
		if s != nil {
			pos, blocks, pages = pos+len(s.pos), blocks+len(s.vals), pages+len(s.pages)
		}
	}
	out.pos = make([]byte, 0, pos)
	out.vals = make([][]byte, 0, blocks)
	out.pages = make([]page, 0, pages)
	for _, s := range sets {
		if s != nil {
			out.appendSet(s)
		}
	}
	return out
}

// finder finds the positions in a page that pass a first scan's test.
type finder struct {
	t      Type
	step   int
	c      Cond
	needle []byte // for = on integers: the value's bytes, found with bytes.Index
	span   *span  // for the other tests of little-endian integers
	offs   []uint16
	zero   []byte
}

func newFinder(t Type, step int, c Cond) *finder {
	f := &finder{t: t, step: step, c: c, zero: make([]byte, t.Size)}
	if c.Op == OpEq && t.Kind != Float {
		f.needle = t.Encode(c.A)
	}
	f.span = newSpan(t, c)
	return f
}

// span is an integer test as one interval of the values' bits, read
// little-endian and biased so that the type's order is the order of
// unsigned numbers (signed: the sign bit flipped): a value passes when
// its biased bits lie in [lo, hi], or outside when invert is set. It lets
// a first scan test a value in a few instructions.
type span struct {
	flip, lo, hi uint64
	invert, none bool // none: no value passes
}

// newSpan makes the span of c on t, or nil if c is no such test.
func newSpan(t Type, c Cond) *span {
	if t.Kind == Float || t.Big {
		return nil
	}
	bits := uint(8 * t.Size)
	max := ^uint64(0) >> (64 - bits)
	sp := &span{}
	if t.Kind == Signed {
		sp.flip = 1 << (bits - 1)
	}
	biased := func(v Value) uint64 {
		if t.Kind == Signed {
			return uint64(v.n.i)&max ^ sp.flip
		}
		return v.n.u
	}
	switch c.Op {
	case OpNe:
		sp.lo, sp.hi, sp.invert = biased(c.A), biased(c.A), true
	case OpGt:
		sp.lo, sp.hi = biased(c.A)+1, max
		sp.none = biased(c.A) == max
	case OpLt:
		sp.lo, sp.hi = 0, biased(c.A)-1
		sp.none = biased(c.A) == 0
	case OpRange:
		sp.lo, sp.hi = biased(c.A), biased(c.B)
	default:
		return nil
	}
	return sp
}

// find appends the offsets of the values of b (the page from offset from
// on, first position start) that pass.
func (sp *span) find(b []byte, size, from, start, step int, offs []uint16) []uint16 {
	if sp.none {
		return offs
	}
	lo, width, flip, invert := sp.lo, sp.hi-sp.lo, sp.flip, sp.invert
	for at := start - from; at+size <= len(b); at += step {
		var u uint64
		switch size {
		case 1:
			u = uint64(b[at])
		case 2:
			u = uint64(binary.LittleEndian.Uint16(b[at:]))
		case 4:
			u = uint64(binary.LittleEndian.Uint32(b[at:]))
		default:
			u = binary.LittleEndian.Uint64(b[at:])
		}
		if ((u^flip)-lo <= width) != invert {
			offs = append(offs, uint16(from+at))
		}
	}
	return offs
}

// find returns the page offsets of the values in b, which holds the page
// from offset from on, that pass. The returned slice is reused by the
// next call.
func (f *finder) find(b []byte, from int) []uint16 {
	offs := f.offs[:0]
	size, step := f.t.Size, f.step
	// The first position at or after from.
	start := (from + step - 1) / step * step
	switch {
	case f.needle != nil:
		for at := start - from; at+size <= len(b); {
			i := bytes.Index(b[at:], f.needle)
			if i < 0 {
				break
			}
			at += i
			if off := from + at; off%step == 0 {
				offs = append(offs, uint16(off))
				at += step
			} else {
				at++
			}
		}
	case f.span != nil:
		offs = f.span.find(b, size, from, start, step, offs)
	case f.c.Op == OpSnapshot:
		for off := start; off-from+size <= len(b); off += step {
			offs = append(offs, uint16(off))
		}
	default:
		for off := start; off-from+size <= len(b); off += step {
			if f.c.test(f.t, b[off-from:], f.zero) {
				offs = append(offs, uint16(off))
			}
		}
	}
	f.offs = offs
	return offs
}

// partPage gathers the parts of a page that a stream hands over in more
// than one piece (a mapping whose file ends inside the page, a range that
// starts or ends inside it), so that the page is added to a set once.
type partPage struct {
	buf      []byte
	addr     uint64
	from, to int // the bytes of the page gathered: buf[from:to]
	on       bool
}

// put adds data, which holds the page at addr from offset from on.
func (p *partPage) put(b *builder, f *finder, addr uint64, from int, data []byte) {
	if p.on && (p.addr != addr || p.to != from) {
		p.flush(b, f)
	}
	if !p.on {
		if p.buf == nil {
			p.buf = make([]byte, PageSize)
		}
		p.on, p.addr, p.from, p.to = true, addr, from, from
	}
	p.to += copy(p.buf[from:], data)
}

// flush scans what was gathered.
func (p *partPage) flush(b *builder, f *finder) {
	if p.on {
		span := p.buf[p.from:p.to]
		b.add(p.addr, f.find(span, p.from), span, p.from)
		p.on = false
	}
}
