package scan

import (
	"context"
	"runtime"
	"sync/atomic"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

// Scanner scans one address space through its Reader: pages that hold no
// data are never read (they hold only zeros, and reading them would fault
// them in), and a live process is left running. It reads memory only
// through the Reader and the regions it is given, so a captured address
// space can be scanned as a live one.
type Scanner struct {
	Mem      *memory.Reader
	Workers  int      // goroutines at work at once; GOMAXPROCS if 0
	Progress Progress // told how the work goes; may be nil
}

// Progress is told how long work goes: bytes of regions for a first scan,
// pages of matches times PageSize for a narrowing.
type Progress interface {
	Begin(what string, total uint64)
	Add(n uint64)
	End()
}

// Result is what a scan wrote, and what it could not read.
type Result struct {
	Matches uint64
	Unread  uint64 // bytes of pages that could not be read
	Size    int64  // of the set file
}

// chunkSize is the share of a region one worker takes at a time in a
// first scan: one frame of the set.
const chunkSize = 8 << 20

// streamBuf is how much one worker reads at a time.
const streamBuf = 1 << 20

func (sc *Scanner) workers() int {
	if sc.Workers > 0 {
		return sc.Workers
	}
	return runtime.GOMAXPROCS(0)
}

func (sc *Scanner) begin(what string, total uint64) func(uint64) {
	if sc.Progress == nil {
		return func(uint64) {}
	}
	sc.Progress.Begin(what, total)
	return sc.Progress.Add
}

func (sc *Scanner) end() {
	if sc.Progress != nil {
		sc.Progress.End()
	}
}

// worker is what one goroutine of a scan keeps between its jobs: buffers
// that grow to what the largest job needed, and are reused.
type worker struct {
	buf, stage, read []byte
	status           []uint8
	runEnd           []int
	scratch          []byte   // the payload of the frame of matches read
	snapScratch      [][]byte // the payloads of the snapshot's frames
	old, group       []byte
	offs, offs2      []uint16
	pm               pageMatches
	b                *builder
	find             finder
	cur              *cursor
	plans            []plan
	pieces           []memory.Piece
	pages            []narrowPage
	snap             snapIndex
	same             bool // the frame being narrowed keeps every match as it was
	readTo           int  // the pieces read so far
}

// chunk is a first scan's job: part of one region.
type chunk struct {
	r          procfs.Region
	start, end uint64
}

// first scans the regions (in address order) for what t finds, and writes
// the matches to out.
func (sc *Scanner) first(ctx context.Context, regions []procfs.Region, t *test, out *setWriter) (Result, error) {
	var chunks []chunk
	var total uint64
	for _, r := range regions {
		for at := r.Start; at < r.End; {
			end := min(r.End, (at+chunkSize)&^uint64(PageSize-1))
			chunks = append(chunks, chunk{r, at, end})
			at = end
		}
		total += r.Size()
	}
	add := sc.begin("scanning", total)
	defer sc.end()
	var unread atomic.Uint64
	i := 0
	next := func() (chunk, bool, error) {
		if i == len(chunks) {
			return chunk{}, false, nil
		}
		i++
		return chunks[i-1], true, nil
	}
	newWorker := func() *worker {
		return &worker{b: newBuilder(&t.spec, chunkSize), find: newFinder(t)}
	}
	work := func(ctx context.Context, ch chunk, w *worker) (packed, error) {
		bad, err := sc.scanChunk(ctx, ch, t, w)
		unread.Add(bad)
		add(ch.end - ch.start)
		if err != nil {
			return packed{}, err
		}
		f := w.b.take()
		p := out.pack(f)
		w.b.recycle(f)
		return p, nil
	}
	if err := ordered(ctx, sc.workers(), newWorker, next, work, out.write); err != nil {
		return Result{}, err
	}
	return Result{Matches: out.matches(), Unread: unread.Load()}, nil
}

// Page states in a first scan's chunk.
const (
	pageNone = iota // not read: unreadable, or past what was streamed
	pageZero        // holds no data: zeros, not scanned
	pageData
)

// scanChunk streams a chunk, and the bytes after it that a match may
// reach into, into the worker's stage, then finds the matches of each
// page that holds data. It returns the bytes that could not be read.
func (sc *Scanner) scanChunk(ctx context.Context, ch chunk, t *test, w *worker) (uint64, error) {
	look := uint64(0)
	if t.spec.straddles() {
		look = uint64(t.spec.maxExtent() - 1)
	}
	base := ch.start &^ uint64(PageSize-1)
	streamEnd := min(ch.r.End, ch.end+look)
	// The stage is not cleared: a page is read only where the stream put
	// its bytes, or zeros (a hole, a page's part that holds no data).
	stage := grow(&w.stage, int(streamEnd-base))
	npages := (len(stage) + PageSize - 1) / PageSize
	if cap(w.status) < npages {
		w.status, w.runEnd = make([]uint8, npages), make([]int, npages+1)
	}
	status, runEnd := w.status[:npages], w.runEnd[:npages+1]
	clear(status)
	mark := func(addr, n uint64, st uint8) {
		for k := (addr - base) / uint64(PageSize); k < uint64(npages) && base+k*uint64(PageSize) < addr+n; k++ {
			status[k] = max(status[k], st)
		}
	}
	g := sc.Mem.Region(ch.r)
	defer g.Close()
	bad, err := g.Stream(ctx, ch.start, streamEnd, grow(&w.buf, streamBuf), memory.Sink{
		Data: func(addr uint64, data []byte) error {
			copy(stage[addr-base:], data)
			mark(addr, uint64(len(data)), pageData)
			return nil
		},
		Zeros: func(addr, n uint64) error { mark(addr, n, pageZero); return nil },
	})
	var unread uint64
	for _, u := range bad {
		unread += min(u.End, ch.end) - min(u.Start, ch.end)
	}
	if err != nil {
		return unread, err
	}
	// runEnd[k]: where the bytes known from page k on end (a page that
	// was not read ends them).
	runEnd[npages] = len(stage)
	for k := npages - 1; k >= 0; k-- {
		if status[k] == pageNone {
			runEnd[k] = k * PageSize
		} else {
			runEnd[k] = runEnd[k+1]
		}
	}
	pm := &w.pm
	for k := range npages {
		addr := base + uint64(k*PageSize)
		if status[k] != pageData || addr >= ch.end {
			continue
		}
		from := int(max(ch.start, addr) - addr)
		to := int(min(ch.end, addr+uint64(PageSize)) - addr)
		b := stage[k*PageSize : runEnd[k]]
		pm.reset()
		w.find.find(b, from, to, pm)
		w.b.add(addr, pm, b[from:], from)
	}
	return unread, nil
}
