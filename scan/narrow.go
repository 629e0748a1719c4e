package scan

import (
	"bytes"
	"context"
	"io"
	"sort"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

// narrowJob is a narrowing's job: a frame of the matches (or, for a first
// scan against a snapshot, of the snapshot), and the frames of the
// snapshot that its matches compare with.
type narrowJob struct {
	prev packed
	olds []packed
}

// oldSource is where a narrowing's old values come from: the matches'
// own, or a snapshot.
type oldSource struct {
	snap     *setReader // nil: the matches' own values
	fromSnap bool       // no matches: every position of the snapshot's pages is one
}

// narrowPage is one page of matches in a narrowing, and the piece of
// memory read for it.
type narrowPage struct {
	p     *page
	piece int    // in worker.pieces
	start uint64 // the lowest address its matches may be read from
}

// plan is a piece of memory to read: pages' matches in one region.
type plan struct {
	addr, end uint64
	region    int
}

// narrow reads the matches of prev again and keeps those that pass t,
// writing them to out. regions are a fresh reading of maps (in address
// order), filtered as the user asked: matches outside them, unmapped since
// or filtered out, are dropped, and so are matches that can no longer be
// read. With a snapshot, old values are the snapshot's; with src.fromSnap
// there is no prev, and every position of the snapshot's pages is tried.
// total is the work for progress: the pages of matches times PageSize.
func (sc *Scanner) narrow(ctx context.Context, regions []procfs.Region, prev *setReader, src oldSource, t *test, out *setWriter, total uint64) (Result, error) {
	add := sc.begin("narrowing", total)
	defer sc.end()
	prevSpec := t.spec
	if prev != nil {
		prevSpec = prev.hdr.Spec
	}
	frames := prev
	if src.fromSnap {
		frames = src.snap
	}
	jobs := &jobSource{frames: frames, src: src}
	newWorker := func() *worker {
		return &worker{b: newBuilder(&t.spec, 1<<20), cur: newCursor(&prevSpec)}
	}
	work := func(ctx context.Context, j narrowJob, w *worker) (packed, error) {
		err := sc.narrowFrame(ctx, regions, j, src, t, &prevSpec, w)
		add(uint64(j.prev.h.pages) * uint64(PageSize))
		if err != nil {
			return packed{}, err
		}
		if w.same {
			// Every match kept with the value it had: the frame as it was,
			// written as a reference to where it lies.
			return j.prev, nil
		}
		f := w.b.take()
		p := out.pack(f)
		w.b.recycle(f)
		if src.snap == nil {
			putBuf(j.prev.data) // only this job had it
		}
		return p, nil
	}
	if err := ordered(ctx, sc.workers(), newWorker, jobs.next, work, out.write); err != nil {
		return Result{}, err
	}
	return Result{Matches: out.matches()}, nil
}

// jobSource hands out a narrowing's jobs: each frame of matches with the
// snapshot frames that hold any byte its matches may reach (from its first
// page to past its last), read once, in order, beside it.
type jobSource struct {
	frames *setReader
	src    oldSource
	held   []packed // snapshot frames that the next jobs may need
	peeked *packed
}

func (js *jobSource) read() (packed, error) {
	if js.peeked != nil {
		p := *js.peeked
		js.peeked = nil
		return p, nil
	}
	return js.frames.next()
}

func (js *jobSource) next() (narrowJob, bool, error) {
	var j narrowJob
	var err error
	if j.prev, err = js.read(); err == io.EOF {
		return j, false, nil
	} else if err != nil {
		return j, false, err
	}
	lo, hi := j.prev.h.first, j.prev.h.last+2*uint64(PageSize)
	switch {
	case js.src.snap == nil:
	case js.src.fromSnap:
		// The frame is the snapshot; a match at its end may reach into
		// the next one.
		j.olds = []packed{j.prev}
		p, err := js.frames.next()
		if err == nil {
			js.peeked = &p
			if p.h.first < hi {
				j.olds = append(j.olds, p)
			}
		} else if err != io.EOF {
			return j, false, err
		}
	default:
		for len(js.held) > 0 && js.held[0].h.last < lo {
			js.held = js.held[1:]
		}
		for len(js.held) == 0 || js.held[len(js.held)-1].h.first < hi {
			p, err := js.src.snap.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return j, false, err
			}
			js.held = append(js.held, p)
		}
		for _, p := range js.held {
			if p.h.first < hi && p.h.last >= lo {
				j.olds = append(j.olds, p)
			}
		}
	}
	return j, true, nil
}

// narrowFrame narrows one frame of matches into the worker's builder.
func (sc *Scanner) narrowFrame(ctx context.Context, regions []procfs.Region, j narrowJob, src oldSource, t *test, prevSpec *Spec, w *worker) error {
	frameSpec := prevSpec
	if src.fromSnap {
		frameSpec = &snapshotSpec
	}
	f, err := j.prev.unpack(frameSpec, &w.scratch)
	if err != nil {
		return err
	}
	var snap *snapIndex
	if src.snap != nil {
		if snap, err = w.snapIndex(j, f, src.snap.hdr.Regions); err != nil {
			return err
		}
	}
	readLen := uint64(t.readLen(^uint16(0)))
	if src.fromSnap || prevSpec.Text() {
		readLen = max(readLen, uint64(prevSpec.maxExtent()))
	}
	// Plan the pieces: one a page, from its first match to past its last,
	// cut to its region, merged where they overlap or lie less than a page
	// apart (reading a gap costs less than another piece: the kernel pins
	// and maps each piece on its own), up to readBatch.
	w.pages, w.plans = w.pages[:0], w.plans[:0]
	k := 0
	for i := range f.pages {
		p := &f.pages[i]
		w.offs = w.candidates(f, p, frameSpec, t, src, w.offs[:0])
		if len(w.offs) == 0 {
			continue
		}
		lo, hi := p.addr+uint64(w.offs[0]), p.addr+uint64(w.offs[len(w.offs)-1])+readLen
		for k < len(regions) && regions[k].End <= lo {
			k++
		}
		if k == len(regions) {
			break
		}
		if lo, hi = max(lo, regions[k].Start), min(hi, regions[k].End); lo >= hi {
			continue // no longer in a selected region
		}
		if n := len(w.plans); n > 0 && w.plans[n-1].region == k && lo <= w.plans[n-1].end+uint64(PageSize) &&
			(hi-w.plans[n-1].addr <= readBatch || lo < w.plans[n-1].end) {
			w.plans[n-1].end = max(w.plans[n-1].end, hi)
		} else {
			w.plans = append(w.plans, plan{lo, hi, k})
		}
		w.pages = append(w.pages, narrowPage{p: p, start: lo, piece: len(w.plans) - 1})
	}
	w.pieces = append(w.pieces[:0], make([]memory.Piece, len(w.plans))...)
	w.readTo = 0
	// A page whose bytes are as they were keeps all its matches
	// (unchanged, update) or none (changed) without a test of each; while
	// every page so far is kept so, nothing is built: the frame may be kept
	// whole. The first page that is not adds those before it. Under other
	// tests, a frame whose every page kept every match, as it was, is kept
	// whole too.
	sameSpec := !src.fromSnap && snap == nil && t.spec.Same(*prevSpec) && t.spec.Len == prevSpec.Len
	keepAll := t.op == OpUnchanged || t.op == OpUpdate
	w.same = sameSpec && len(w.pages) == len(f.pages)
	lazy := keepAll
	for i := range w.pages {
		np := &w.pages[i]
		if err := sc.readTo(regions, w, np.piece); err != nil {
			return err
		}
		eq := sameSpec && (keepAll || t.op == OpChanged) && w.samePage(f, np, t)
		switch {
		case eq && keepAll:
			if !w.same {
				w.b.copyPage(f, np.p)
			}
			continue
		case lazy && w.same:
			lazy = false
			for k := range i {
				w.b.copyPage(f, w.pages[k].p)
			}
		}
		if eq && t.op == OpChanged {
			w.same = false
			continue
		}
		if !w.narrowPage(f, np, frameSpec, t, src, snap) {
			w.same = false
		}
	}
	if w.same && !lazy {
		w.b.recycle(w.b.take()) // built, and not needed
	}
	return ctx.Err()
}

// samePacked reports whether a group's values at cur, its offsets goffs,
// are the old ones, packed.
func samePacked(s *Spec, cur []byte, goffs []uint16, old []byte) bool {
	at, o := 0, 0
	for i, t := range s.Parts {
		if i > 0 {
			at = int(goffs[i-1])
		}
		if !bytes.Equal(cur[at:at+t.Size], old[o:o+t.Size]) {
			return false
		}
		o += t.Size
	}
	return true
}

// samePage reports whether a page's bytes are as they were, for the tests
// that compare bytes alone: every match is then kept (unchanged, update)
// or dropped (changed) without a test of each.
func (w *worker) samePage(f *frame, np *narrowPage, t *test) bool {
	p := np.p
	if p.enc&flagsMask == flagsExplicit || p.enc&valMask != valRaw || t.spec.Class == Group {
		return false
	}
	piece := &w.pieces[np.piece]
	from := p.addr + uint64(p.rawFrom)
	if from < np.start || from < piece.Addr {
		return false
	}
	at := int(from - piece.Addr)
	end := at + int(p.vlen)
	return end <= piece.N && bytes.Equal(piece.B[at:end], f.vals[p.val:p.val+p.vlen])
}

// readBatch is how much memory a narrowing reads at a time: little enough
// that what it tests is still in the cache.
const readBatch = 512 << 10

// readTo reads the planned pieces up to piece, a batch of one region's at a
// time, into the worker's buffer (a batch's pieces are tested before the
// next is read over them).
func (sc *Scanner) readTo(regions []procfs.Region, w *worker, piece int) error {
	for piece >= w.readTo {
		i, r := w.readTo, w.plans[w.readTo].region
		e, total := i, uint64(0)
		for e < len(w.plans) && w.plans[e].region == r && (e == i || total+w.plans[e].end-w.plans[e].addr <= readBatch) {
			total += w.plans[e].end - w.plans[e].addr
			e++
		}
		buf := grow(&w.read, int(total))
		for k := i; k < e; k++ {
			n := w.plans[k].end - w.plans[k].addr
			w.pieces[k] = memory.Piece{Addr: w.plans[k].addr, B: buf[:n:n]}
			buf = buf[n:]
		}
		g := sc.Mem.Region(regions[r])
		err := g.ReadPieces(w.pieces[i:e])
		g.Close()
		if err != nil {
			return err
		}
		w.readTo = e
	}
	return nil
}

// snapshotSpec is what a snapshot of memory is kept as: every byte of each
// page that holds data.
var snapshotSpec = Spec{Class: Bytes, Len: 1}

// candidates appends the page offsets of p's matches to buf: the set's, or
// for a first scan against a snapshot every position of the page.
func (w *worker) candidates(f *frame, p *page, frameSpec *Spec, t *test, src oldSource, buf []uint16) []uint16 {
	if !src.fromSnap {
		return offsets(frameSpec, f, p, buf)
	}
	w.offs2 = offsets(frameSpec, f, p, w.offs2[:0])
	step := t.spec.step()
	for _, off := range w.offs2 {
		if int(off)%step == 0 {
			buf = append(buf, off)
		}
	}
	return buf
}

// narrowPage tests the matches of one page and adds those that pass to
// the worker's builder.
func (w *worker) narrowPage(f *frame, np *narrowPage, frameSpec *Spec, t *test, src oldSource, snap *snapIndex) (kept bool) {
	p := np.p
	piece := &w.pieces[np.piece]
	pm := &w.pm
	pm.reset()
	s := &t.spec
	kept = true // every match, with the flags and the value it had
	keep := func(off uint16, flags uint16, goffs []uint16, cur, old []byte) {
		switch {
		case s.numeric():
			nf := t.flags(cur, old, flags)
			kept = kept && nf == flags && bytes.Equal(cur[:min(len(cur), len(old))], old)
			if nf == 0 {
				return
			}
			if s.Class != Number {
				pm.flags = append(pm.flags, nf)
			}
		case s.Class == Group:
			if !t.passGroup(cur, goffs, old) {
				kept = false
				return
			}
			kept = kept && samePacked(s, cur, goffs, old)
			pm.goffs = append(pm.goffs, goffs...)
		default:
			if !t.passText(cur, old) || len(cur) < s.Len {
				kept = false
				return
			}
			kept = kept && bytes.Equal(cur[:s.Len], old)
		}
		pm.offs = append(pm.offs, off)
	}
	curAt := func(addr uint64, n int) []byte {
		if addr < np.start || addr < piece.Addr {
			return nil
		}
		at := int(addr - piece.Addr)
		if at >= piece.N {
			return nil
		}
		return piece.B[at:min(piece.N, at+n)]
	}
	if src.fromSnap {
		w.offs = w.candidates(f, p, frameSpec, t, src, w.offs[:0])
		for _, off := range w.offs {
			addr := p.addr + uint64(off)
			flags := s.allowed(int(off))
			n := s.extent(flags)
			cur := curAt(addr, n)
			if cur == nil {
				continue
			}
			old, ok := snap.read(addr, n, &w.old)
			if ok {
				keep(off, flags, nil, cur, old)
			}
		}
	} else {
		c := w.cur
		c.start(f, p)
		for m, ok := c.next(); ok; m, ok = c.next() {
			addr := p.addr + uint64(m.off)
			cur := curAt(addr, t.readLen(m.flags))
			if cur == nil {
				continue
			}
			old := m.old
			if snap != nil {
				if old, ok = w.snapOld(snap, frameSpec, addr, m); !ok {
					continue
				}
			}
			keep(m.off, m.flags, m.goffs, cur, old)
		}
	}
	if len(pm.offs) > 0 {
		from := int(np.start - p.addr)
		w.b.add(p.addr, pm, piece.B[np.start-piece.Addr:piece.N], from)
	}
	return kept && len(pm.offs) == int(p.n)
}

// snapOld is a match's old value as the snapshot has it (a group's values
// packed).
func (w *worker) snapOld(snap *snapIndex, s *Spec, addr uint64, m *match) ([]byte, bool) {
	if s.Class != Group {
		return snap.read(addr, s.extent(m.flags), &w.old)
	}
	w.group = w.group[:0]
	for i, t := range s.Parts {
		at := addr
		if i > 0 {
			at += uint64(m.goffs[i-1])
		}
		b, ok := snap.read(at, t.Size, &w.old)
		if !ok {
			return nil, false
		}
		w.group = append(w.group, b...)
	}
	return w.group, true
}

// snapIndex finds bytes in the frames of a snapshot.
type snapIndex struct {
	pages   []snapPage
	regions [][2]uint64
}

type snapPage struct {
	addr uint64
	from int    // the page offset data starts at
	data []byte // nil: the page held zeros
	zero bool
}

// snapIndex indexes the snapshot frames of job j (f is j.prev unpacked,
// when the snapshot is the frame itself).
func (w *worker) snapIndex(j narrowJob, f *frame, regions [][2]uint64) (*snapIndex, error) {
	x := &w.snap
	x.pages, x.regions = x.pages[:0], regions
	for len(w.snapScratch) < len(j.olds) {
		w.snapScratch = append(w.snapScratch, nil)
	}
	for i := range j.olds {
		of := f
		if len(j.olds[i].data) == 0 || &j.olds[i].data[0] != &j.prev.data[0] {
			var err error
			if of, err = j.olds[i].unpack(&snapshotSpec, &w.snapScratch[i]); err != nil {
				return nil, err
			}
		}
		for k := range of.pages {
			p := &of.pages[k]
			sp := snapPage{addr: p.addr, zero: p.enc&valMask == valZero}
			offs := offsets(&snapshotSpec, of, p, w.offs2[:0])
			sp.from = int(offs[0])
			if !sp.zero {
				sp.data = of.vals[p.val : p.val+p.vlen]
			} else {
				sp.data = nil
			}
			if len(x.pages) == 0 || x.pages[len(x.pages)-1].addr < sp.addr {
				x.pages = append(x.pages, sp)
			}
		}
	}
	return x, nil
}

// read returns the n bytes at addr as the snapshot has them: a page in the
// snapshot's regions that is not in it held zeros; a byte outside its
// regions has no old value (false).
func (x *snapIndex) read(addr uint64, n int, buf *[]byte) ([]byte, bool) {
	out := grow(buf, n)
	for i := 0; i < n; {
		at := addr + uint64(i)
		pageAddr := at &^ uint64(PageSize-1)
		off := int(at - pageAddr)
		chunk := min(n-i, PageSize-off)
		k := sort.Search(len(x.pages), func(k int) bool { return x.pages[k].addr >= pageAddr })
		switch {
		case k < len(x.pages) && x.pages[k].addr == pageAddr && off >= x.pages[k].from &&
			(x.pages[k].zero || off+chunk <= x.pages[k].from+len(x.pages[k].data)):
			sp := &x.pages[k]
			if sp.zero {
				clear(out[i : i+chunk])
			} else {
				copy(out[i:i+chunk], sp.data[off-sp.from:])
			}
		case x.inRegions(at, uint64(chunk)):
			clear(out[i : i+chunk])
		default:
			return nil, false
		}
		i += chunk
	}
	return out, true
}

func (x *snapIndex) inRegions(addr, n uint64) bool {
	k := sort.Search(len(x.regions), func(k int) bool { return x.regions[k][1] > addr })
	return k < len(x.regions) && x.regions[k][0] <= addr && addr+n <= x.regions[k][1]
}
