package scan

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/procmem/procmem/userfiles"
)

// A set file holds one set of matches, or a snapshot of memory: one line
// of JSON (setHeader), then its frames in address order, each behind a
// header of its own, then an end record with the totals. It is written
// and read as a stream: a step never holds a whole set in memory. The
// header line is padded with spaces to a multiple of directBlock, and a
// pad record (zeros) goes before a frame that would start elsewhere, so
// that O_DIRECT writes each frame from the buffer it was built in.

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
// frames it needs without reading them. A zero length: the end record,
// whose counts are the file's.
type frameHeader struct {
	raw, stored, crc, pages, codec uint32
	matches                        uint64
	first, last                    uint64
}

const frameHeaderLen = 48

// How a frame's payload is stored: as it is; compressed with S2, once the
// disk has written slower than slowDisk (a fast disk takes a snapshot as
// it is sooner than the cores could shrink it); or in the set file of an
// earlier step of the session (a reference: that step's ID and where the
// frame's header lies in its file), when a narrowing kept a frame as it
// was read, so that unchanged after a snapshot of a GiB writes a few KiB.
const (
	codecNone = 0
	codecS2   = 1
	codecRef  = 2
	codecPad  = 3 // no frame: zeros up to where the next one starts
	refLen    = 12
)

// slowDisk is the write rate below which frames are compressed: about half
// what one core compresses with S2, so a disk that is slower gains more
// than the cores lose.
const slowDisk = 128 << 20

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

// sound reports whether a frame header may be one packing writes.
func (h *frameHeader) sound() bool {
	switch {
	case h.codec == codecPad:
		return h.raw == h.stored && h.stored < 2*directBlock && h.pages == 0 && h.matches == 0 && h.crc == 0 && h.first == 0 && h.last == 0
	case h.raw > maxFrameRaw || h.stored == 0 || h.pages == 0 || h.matches == 0 || h.first > h.last:
		return false
	case h.codec == codecNone:
		return h.stored == h.raw
	case h.codec == codecS2:
		return int(h.stored) <= s2.MaxEncodedLen(int(h.raw))
	}
	return h.codec == codecRef && h.stored == refLen
}

// padded is n rounded up to the alignment every frame starts at.
func padded(n int64) int64 { return (n + directBlock - 1) / directBlock * directBlock }

var zeros [directBlock]byte

// packed is a frame ready to be written: its header and stored bytes.
type packed struct {
	h    frameHeader
	data []byte
	at   frameLoc // where it was read from: a reference to it names that
	// block holds data after room for the header, from a directBlock
	// boundary: the frame is written from it, without a copy.
	block []byte
}

// frameLoc is where a frame lies: the ID of the step whose set file holds
// it (0: none that can be named) and the offset of its header there.
type frameLoc struct {
	step int
	off  int64
}

// pack marshals a frame, and compresses it if asked to and it pays; an
// empty frame packs to nothing. The packed frame takes the frame's block.
func pack(f *frame, compress bool) packed {
	if len(f.pages) == 0 {
		return packed{}
	}
	raw := f.marshal()
	block := f.block
	f.block = nil
	if &raw[0] != &block[frameHeaderLen] {
		// The values outgrew their buffer: a block of the right size.
		putBuf(block)
		block = getBuf(frameHeaderLen + len(raw))
		copy(block[frameHeaderLen:], raw)
		raw = block[frameHeaderLen : frameHeaderLen+len(raw)]
	}
	h := frameHeader{raw: uint32(len(raw)), stored: uint32(len(raw)), crc: crc32.Checksum(raw, castagnoli), pages: uint32(len(f.pages)),
		matches: f.count, first: f.pages[0].addr, last: f.pages[len(f.pages)-1].addr}
	if compress {
		out := getBuf(frameHeaderLen + s2.MaxEncodedLen(len(raw)))
		data := s2.Encode(out[frameHeaderLen:], raw)
		if len(data) < len(raw)-len(raw)/8 {
			putBuf(block)
			h.codec, h.stored = codecS2, uint32(len(data))
			return packed{h: h, data: data, block: out}
		}
		putBuf(out)
	}
	return packed{h: h, data: raw, block: block}
}

// setWriter writes a set file, under a temporary name until commit.
type setWriter struct {
	f       *userfiles.File
	w       *directWriter
	hdr     [frameHeaderLen]byte
	total   frameHeader // the counts so far
	last    uint64
	written int64
	refs    map[int]bool // the steps whose files its references name
	// The disk's write rate so far, which packing reads.
	wroteBytes, wroteNanos atomic.Int64
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
	w := &setWriter{f: f, w: newDirectWriter(f.File), refs: map[int]bool{}}
	head := append(line, bytes.Repeat([]byte{' '}, int(padded(int64(len(line)+1)))-len(line))...)
	head[len(head)-1] = '\n'
	w.w.Write(head)
	w.written = int64(len(head))
	return w, nil
}

// pack packs a frame for this writer: compressed once the disk has proved
// slow.
func (w *setWriter) pack(f *frame) packed {
	b, ns := w.wroteBytes.Load(), w.wroteNanos.Load()
	return pack(f, b >= 16<<20 && float64(b)/float64(ns)*1e9 < slowDisk)
}

// write adds a packed frame, which must lie after those before. A frame
// read from an earlier step's file is written as a reference to it.
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
	data, block := p.data, p.block
	if p.at.step != 0 {
		p.h.codec, p.h.stored = codecRef, refLen
		data = binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint32(make([]byte, 0, refLen), uint32(p.at.step)), uint64(p.at.off))
		w.refs[p.at.step] = true
		putBuf(p.data)
		block = nil
	}
	n := frameHeaderLen + int64(len(data))
	start := time.Now()
	var err error
	if block != nil && int64(cap(block)) >= padded(n) {
		// Written from its buffer, the header in the room before it, from
		// a block boundary: a pad record first if need be.
		if gap := padded(w.written) - w.written; gap > 0 {
			if gap < frameHeaderLen {
				gap += directBlock
			}
			pad := frameHeader{raw: uint32(gap - frameHeaderLen), stored: uint32(gap - frameHeaderLen), codec: codecPad}
			pad.marshal(w.hdr[:])
			w.w.Write(w.hdr[:])
			w.w.Write(zeros[:gap-frameHeaderLen])
			w.written += gap
		}
		block = block[:padded(n)]
		p.h.marshal(block)
		clear(block[n:])
		err = w.w.writeBlock(block, n)
	} else {
		p.h.marshal(w.hdr[:])
		w.w.Write(w.hdr[:])
		_, err = w.w.Write(data)
	}
	if p.at.step == 0 {
		w.wroteBytes.Add(int64(len(data)))
		w.wroteNanos.Add(int64(time.Since(start)))
		if block == nil {
			block = p.data
		}
		putBuf(block)
	}
	w.written += n
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
	step   int   // the step whose file it is (0: none)
	pos    int64 // where in the file the next frame's header lies
	// refs opens the set file of a step a reference names; nil: a
	// reference is an error.
	refs  func(step int) (*os.File, error)
	files map[int]*os.File
}

// openSet opens the set file at path, of step (0 for a snapshot), and
// reads its header; refs opens the files its references name.
func openSet(path string, step int, refs func(int) (*os.File, error)) (*setReader, error) {
	f, err := userfiles.Open(path)
	if err != nil {
		return nil, err
	}
	r, err := newSetReader(newDirectReader(f))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r.closer, r.step, r.refs = f, step, refs
	return r, nil
}

func newSetReader(rd io.Reader) (*setReader, error) {
	br := bufio.NewReaderSize(rd, 64<<10)
	line, err := br.ReadSlice('\n')
	r := &setReader{r: br, pos: int64(len(line)), files: map[int]*os.File{}}
	if err != nil || len(line)%directBlock != 0 || json.Unmarshal(line, &r.hdr) != nil || r.hdr.Format != SetFormat {
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
	for _, f := range r.files {
		f.Close()
	}
}

// next returns the next frame, still packed, or io.EOF after the last
// (once the end record agrees with what came before it). A reference is
// followed to the frame it names.
func (r *setReader) next() (packed, error) {
	for {
		p, err := r.record()
		if err != nil || p.h.codec != codecPad {
			return p, err
		}
	}
}

// record reads the next record: a frame, a pad record, or the end.
func (r *setReader) record() (packed, error) {
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
	p.at = frameLoc{r.step, r.pos}
	r.pos += frameHeaderLen + int64(p.h.stored)
	if p.h.raw == 0 && p.h.codec != codecPad {
		r.done = true
		if p.h != (frameHeader{pages: r.seen.pages, matches: r.seen.matches}) {
			return packed{}, fmt.Errorf("%w: its end does not match its frames", ErrSet)
		}
		if n, _ := r.r.Read(r.buf[:1]); n > 0 {
			return packed{}, fmt.Errorf("%w: bytes after its end", ErrSet)
		}
		return packed{}, io.EOF
	}
	if !p.h.sound() || p.h.codec != codecPad && r.seen.pages > 0 && p.h.first <= r.last {
		return packed{}, fmt.Errorf("%w: a damaged frame header", ErrSet)
	}
	if p.h.codec == codecPad {
		return p, r.skip(int64(p.h.stored))
	}
	p.data = getBuf(int(p.h.stored))
	if _, err := io.ReadFull(r.r, p.data); err != nil {
		return cut()
	}
	r.last = p.h.last
	r.seen.pages += p.h.pages
	r.seen.matches += p.h.matches
	if p.h.codec == codecRef {
		return r.follow(p)
	}
	return p, nil
}

// skip reads the zeros of a pad record.
func (r *setReader) skip(n int64) error {
	var pad [2 * directBlock]byte
	if _, err := io.ReadFull(r.r, pad[:n]); err != nil {
		return fmt.Errorf("%w: it is cut short", ErrSet)
	}
	if !allZero(pad[:n]) {
		return fmt.Errorf("%w: a damaged frame", ErrSet)
	}
	return nil
}

// follow reads the frame a reference names, in the set file of an earlier
// step: a frame as it is there, with the reference's header.
func (r *setReader) follow(ref packed) (packed, error) {
	step := int(binary.LittleEndian.Uint32(ref.data))
	off := int64(binary.LittleEndian.Uint64(ref.data[4:]))
	putBuf(ref.data)
	bad := func() (packed, error) {
		return packed{}, fmt.Errorf("%w: a reference to step %d that is not there", ErrSet, step)
	}
	f := r.files[step]
	if f == nil {
		if r.refs == nil || step <= 0 || step >= r.step {
			return bad()
		}
		var err error
		if f, err = r.refs(step); err != nil {
			return bad()
		}
		r.files[step] = f
	}
	var buf [frameHeaderLen]byte
	var p packed
	if _, err := f.ReadAt(buf[:], off); err != nil || !p.h.unmarshal(buf[:]) || !p.h.sound() || p.h.codec == codecRef {
		return bad()
	}
	if want := ref.h; p.h.raw != want.raw || p.h.crc != want.crc || p.h.pages != want.pages || p.h.matches != want.matches ||
		p.h.first != want.first || p.h.last != want.last {
		return bad()
	}
	p.data = getBuf(int(p.h.stored))
	if _, err := f.ReadAt(p.data, off+frameHeaderLen); err != nil {
		return bad()
	}
	p.at = frameLoc{step, off}
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
