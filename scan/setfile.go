package scan

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync/atomic"

	"github.com/klauspost/compress/s2"

	"github.com/procmem/procmem/userfiles"
)

// A set file holds one set of matches, or a snapshot of memory: one line
// of JSON (setHeader), then its frames in address order, each behind a
// header of its own and compressed with S2 when the disk is slower than
// the cores (see pack), then an end record with the totals. It is written
// and read as a stream: a step never holds a whole set in memory.

// SetFormat names the set file format in each header.
const SetFormat = "procmem scan set 2"

// ErrSet is wrapped by every error about a set file's content.
var ErrSet = errors.New("not a procmem scan set")

// setHeader is the first line of a set file.
type setHeader struct {
	Format   string `json:"format"`
	PageSize int    `json:"page_size"`
	Spec     Spec   `json:"spec"`
	// Regions are the address ranges a snapshot of memory covers: a page
	// in them but not in the file held no data (zeros).
	Regions [][2]uint64 `json:"regions,omitempty"`
}

// frameHeader precedes each frame: its payload's length, the length it is
// stored in and how (codec), the payload's CRC-32C, its page and match
// counts and its first and last page, so that a reader can tell which
// frames it needs without decompressing them. A zero length: the end
// record, whose counts are the file's.
type frameHeader struct {
	raw, stored, crc, pages, codec uint32
	matches                        uint64
	first, last                    uint64
}

const frameHeaderLen = 48

// How a frame's payload is stored. A frame is compressed when frames wait
// to be written, that is when the disk is slower than the cores: on a
// fast disk a snapshot goes out as it is, and on a slow one the cores
// shrink what it must take.
const (
	codecNone = 0
	codecS2   = 1
)

// maxFrameRaw bounds a frame's payload: a chunk of 8 MiB of memory and
// what a match may reach past it, with its records.
const maxFrameRaw = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (h *frameHeader) marshal(b []byte) {
	le := binary.LittleEndian
	le.PutUint32(b, h.raw)
	le.PutUint32(b[4:], h.stored)
	le.PutUint32(b[8:], h.crc)
	le.PutUint32(b[12:], h.pages)
	le.PutUint32(b[16:], h.codec)
	le.PutUint32(b[20:], 0)
	le.PutUint64(b[24:], h.matches)
	le.PutUint64(b[32:], h.first)
	le.PutUint64(b[40:], h.last)
}

func (h *frameHeader) unmarshal(b []byte) bool {
	le := binary.LittleEndian
	*h = frameHeader{raw: le.Uint32(b), stored: le.Uint32(b[4:]), crc: le.Uint32(b[8:]), pages: le.Uint32(b[12:]),
		codec: le.Uint32(b[16:]), matches: le.Uint64(b[24:]), first: le.Uint64(b[32:]), last: le.Uint64(b[40:])}
	return le.Uint32(b[20:]) == 0
}

// packed is a frame ready to be written: its header and stored bytes.
type packed struct {
	h    frameHeader
	data []byte
}

// pack marshals a frame, and compresses it if asked to and it pays; an
// empty frame packs to nothing.
func pack(f *frame, compress bool) packed {
	if len(f.pages) == 0 {
		return packed{}
	}
	raw := f.marshal(getBuf(f.marshalLen())[:0])
	h := frameHeader{raw: uint32(len(raw)), stored: uint32(len(raw)), crc: crc32.Checksum(raw, castagnoli), pages: uint32(len(f.pages)),
		matches: f.count, first: f.pages[0].addr, last: f.pages[len(f.pages)-1].addr}
	if compress {
		data := s2.Encode(getBuf(s2.MaxEncodedLen(len(raw))), raw)
		if len(data) < len(raw)-len(raw)/8 {
			putBuf(raw)
			h.codec, h.stored = codecS2, uint32(len(data))
			return packed{h, data}
		}
		putBuf(data)
	}
	return packed{h, raw}
}

// setWriter writes a set file, under a temporary name until commit.
type setWriter struct {
	f       *userfiles.File
	w       *directWriter
	hdr     [frameHeaderLen]byte
	total   frameHeader // the counts so far
	last    uint64
	written int64
	waiting atomic.Int64 // frames packed and not yet written
	workers int          // the workers packing frames for it
}

// pack packs a frame for this writer: compressed when a frame is waiting
// to be written for every worker, so the workers would wait for the disk
// anyway.
func (w *setWriter) pack(f *frame) packed {
	p := pack(f, w.waiting.Load() >= int64(w.workers))
	if p.h.pages > 0 {
		w.waiting.Add(1)
	}
	return p
}

// createSet starts a set file at path.
func createSet(path string, h setHeader) (*setWriter, error) {
	h.Format, h.PageSize = SetFormat, PageSize
	line, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	f, err := userfiles.Create(path, 0o600)
	if err != nil {
		return nil, err
	}
	w := &setWriter{f: f, w: newDirectWriter(f.File)}
	w.w.Write(append(line, '\n'))
	w.written = int64(len(line) + 1)
	return w, nil
}

// write adds a packed frame, which must lie after those before.
func (w *setWriter) write(p packed) error {
	if p.h.pages == 0 {
		return nil
	}
	if w.total.pages > 0 && p.h.first <= w.last {
		return fmt.Errorf("frames out of order: 0x%x after 0x%x", p.h.first, w.last)
	}
	w.last = p.h.last
	w.total.pages += p.h.pages
	w.total.matches += p.h.matches
	p.h.marshal(w.hdr[:])
	w.w.Write(w.hdr[:])
	_, err := w.w.Write(p.data)
	putBuf(p.data)
	w.waiting.Add(-1)
	w.written += frameHeaderLen + int64(len(p.data))
	return err
}

// matches is the number of matches written so far.
func (w *setWriter) matches() uint64 { return w.total.matches }

// commit writes the end record and puts the file in place; it returns the
// file's size.
func (w *setWriter) commit() (int64, error) {
	end := frameHeader{pages: w.total.pages, matches: w.total.matches}
	end.marshal(w.hdr[:])
	w.w.Write(w.hdr[:])
	w.written += frameHeaderLen
	if err := w.w.close(); err != nil {
		w.f.Abort()
		return 0, err
	}
	return w.written, w.f.Commit()
}

// abort removes what was written.
func (w *setWriter) abort() { w.f.Abort() }

// setReader reads a set file's frames in order.
type setReader struct {
	r      io.Reader
	closer io.Closer
	hdr    setHeader
	seen   frameHeader // the counts so far
	last   uint64
	done   bool
	buf    [frameHeaderLen]byte
}

// openSet opens the set file at path and reads its header.
func openSet(path string) (*setReader, error) {
	f, err := userfiles.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := newSetReader(newDirectReader(f))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r.closer = f
	return r, nil
}

func newSetReader(rd io.Reader) (*setReader, error) {
	br := bufio.NewReaderSize(rd, 64<<10)
	line, err := br.ReadSlice('\n')
	r := &setReader{r: br}
	if err != nil || json.Unmarshal(line, &r.hdr) != nil || r.hdr.Format != SetFormat {
		return nil, fmt.Errorf("%w: no header line", ErrSet)
	}
	if !r.hdr.Spec.valid() {
		return nil, fmt.Errorf("%w: no spec", ErrSet)
	}
	if r.hdr.PageSize != PageSize {
		return nil, fmt.Errorf("%w: made with %d-byte pages, this machine has %d", ErrSet, r.hdr.PageSize, PageSize)
	}
	for i, rg := range r.hdr.Regions {
		if rg[0] >= rg[1] || (i > 0 && rg[0] < r.hdr.Regions[i-1][1]) {
			return nil, fmt.Errorf("%w: regions out of order", ErrSet)
		}
	}
	return r, nil
}

func (r *setReader) close() {
	if r.closer != nil {
		r.closer.Close()
	}
}

// next returns the next frame, still compressed, or io.EOF after the last
// (once the end record agrees with what came before it).
func (r *setReader) next() (packed, error) {
	if r.done {
		return packed{}, io.EOF
	}
	cut := func() (packed, error) { return packed{}, fmt.Errorf("%w: it is cut short", ErrSet) }
	if _, err := io.ReadFull(r.r, r.buf[:]); err != nil {
		return cut()
	}
	var p packed
	if !p.h.unmarshal(r.buf[:]) {
		return packed{}, fmt.Errorf("%w: a damaged frame header", ErrSet)
	}
	if p.h.raw == 0 {
		r.done = true
		if p.h != (frameHeader{pages: r.seen.pages, matches: r.seen.matches}) {
			return packed{}, fmt.Errorf("%w: its end does not match its frames", ErrSet)
		}
		if n, _ := r.r.Read(r.buf[:1]); n > 0 {
			return packed{}, fmt.Errorf("%w: bytes after its end", ErrSet)
		}
		return packed{}, io.EOF
	}
	switch {
	case p.h.raw > maxFrameRaw || p.h.stored == 0 || p.h.codec > codecS2 || p.h.codec == codecNone && p.h.stored != p.h.raw ||
		int(p.h.stored) > s2.MaxEncodedLen(int(p.h.raw)),
		p.h.pages == 0 || p.h.matches == 0 || p.h.first > p.h.last,
		r.seen.pages > 0 && p.h.first <= r.last:
		return packed{}, fmt.Errorf("%w: a damaged frame header", ErrSet)
	}
	p.data = getBuf(int(p.h.stored))
	if _, err := io.ReadFull(r.r, p.data); err != nil {
		return cut()
	}
	r.last = p.h.last
	r.seen.pages += p.h.pages
	r.seen.matches += p.h.matches
	return p, nil
}

// unpack decompresses and checks a frame of spec s, using scratch for its
// payload if it is compressed (the frame keeps slices of its payload).
func (p *packed) unpack(s *Spec, scratch *[]byte) (*frame, error) {
	raw := p.data
	if p.h.codec == codecS2 {
		if n, err := s2.DecodedLen(p.data); err != nil || n != int(p.h.raw) {
			return nil, fmt.Errorf("%w: a damaged frame", ErrSet)
		}
		var err error
		if raw, err = s2.Decode(grow(scratch, int(p.h.raw)), p.data); err != nil || len(raw) != int(p.h.raw) {
			return nil, fmt.Errorf("%w: a damaged frame", ErrSet)
		}
	}
	if crc32.Checksum(raw, castagnoli) != p.h.crc {
		return nil, fmt.Errorf("%w: a damaged frame", ErrSet)
	}
	f, err := unmarshalFrame(s, raw)
	if err != nil || uint32(len(f.pages)) != p.h.pages || f.count != p.h.matches ||
		f.pages[0].addr != p.h.first || f.pages[len(f.pages)-1].addr != p.h.last {
		return nil, fmt.Errorf("%w: a damaged frame", ErrSet)
	}
	return f, nil
}

// grow returns the first n bytes of *scratch, made larger first if need
// be: a worker's buffer is allocated once, not for every piece of work.
func grow(scratch *[]byte, n int) []byte {
	if cap(*scratch) < n {
		*scratch = make([]byte, n)
	}
	return (*scratch)[:n]
}

// readSet reads and checks a whole set from r, calling fn with each frame:
// for tests and the fuzz target.
func readSet(rd io.Reader, fn func(*frame)) (setHeader, error) {
	r, err := newSetReader(rd)
	if err != nil {
		return setHeader{}, err
	}
	var scratch []byte
	for {
		p, err := r.next()
		if err == io.EOF {
			return r.hdr, nil
		}
		if err != nil {
			return setHeader{}, err
		}
		f, err := p.unpack(&r.hdr.Spec, &scratch)
		if err != nil {
			return setHeader{}, err
		}
		fn(f)
	}
}
