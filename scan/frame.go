package scan

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"os"
)

// PageSize is the unit matches are kept in.
var PageSize = os.Getpagesize()

// A frame is a run of pages of matches, in address order: the unit in
// which a set of matches is built, written, read and narrowed, so that no
// step holds more than a few frames per core in memory. For each page it
// keeps, in the cheapest of a few encodings:
//
//   - where the matches are: every position of the page (after a
//     snapshot), a bitmap of positions, or a list of 16-bit offsets;
//   - their flags (the readings that passed, for anyint and anynumber):
//     the ones every match at its offset may have, or one uint16 a match;
//   - a group's offsets: one uint16 a match for each value after the first;
//   - the values they held: packed one after the other, the bytes of the
//     page as read from the first match to the end of the last ("raw"; a
//     string or byte match may reach into the next page), or nothing when
//     all are zero.
//
// So a scan with tens of millions of matches costs a few bytes a match, a
// snapshot the pages that hold data, and narrowing walks the matches,
// never the memory between them.
type frame struct {
	pages []page
	pos   []byte // the pages' bitmaps and offset lists
	aux   []byte // the pages' flags and group offsets
	vals  []byte // the pages' values
	count uint64
	// block is the buffer vals were built in, after room for a frame
	// header (see pack); nil for a frame read.
	block []byte
}

// page is the matches in one page of memory; where its parts lie in the
// frame's arrays follows from the pages before it.
type page struct {
	addr    uint64 // of the page
	n       uint32 // matches in it
	enc     uint8  // pos | flags | vals encoding
	rawFrom uint16 // valRaw: the page offset where its bytes start
	pos     uint32 // where in frame.pos its positions are
	aux     uint32 // where in frame.aux its flags and offsets are
	val     uint32 // where in frame.vals its values are
	vlen    uint32 // bytes of values
}

const (
	posAll        = 0
	posBitmap     = 1
	posList       = 2
	posMask       = 3
	valPacked     = 0 << 2
	valRaw        = 1 << 2
	valZero       = 2 << 2
	valMask       = 3 << 2
	flagsUniform  = 0 << 4 // every match has the flags its offset allows
	flagsExplicit = 1 << 4 // one uint16 a match
	flagsMask     = 1 << 4
	encMask       = posMask | valMask | flagsMask
)

// positions is the number of positions in a page.
func positions(s *Spec) int { return (PageSize-1)/s.step() + 1 }

// bitmapBytes is the size of a page's bitmap: whole 64-bit words.
func bitmapBytes(s *Spec) int { return (positions(s) + 63) / 64 * 8 }

// pageMatches is the matches of one page as a scan finds them.
type pageMatches struct {
	offs  []uint16
	flags []uint16 // one per match; empty when each has the flags its offset allows
	goffs []uint16 // groups: the offsets of the values after the first, per match
}

func (m *pageMatches) reset() {
	m.offs, m.flags, m.goffs = m.offs[:0], m.flags[:0], m.goffs[:0]
}

// builder adds pages of matches to a frame, in address order.
type builder struct {
	spec   *Spec
	f      *frame
	spare  *frame // a frame packed already, whose arrays the next one reuses
	packed []byte
	hint   int // the bytes of values the next frame is likely to need
}

func newBuilder(s *Spec, hint int) *builder {
	b := &builder{spec: s, hint: hint}
	b.f = b.fresh(&frame{})
	return b
}

// fresh readies f for new pages: its values go into a buffer from the
// pool, after room for a frame header.
func (b *builder) fresh(f *frame) *frame {
	*f = frame{pages: f.pages[:0], pos: f.pos[:0], aux: f.aux[:0]}
	f.block = getBuf(frameHeaderLen + b.hint + 64<<10)
	f.vals = f.block[frameHeaderLen:frameHeaderLen]
	return f
}

// take returns the frame built, and starts a new one.
func (b *builder) take() *frame {
	f := b.f
	b.f, b.spare = b.spare, nil
	if b.f == nil {
		b.f = &frame{}
	}
	b.f = b.fresh(b.f)
	return f
}

// recycle gives back a frame that is packed (its values' buffer went
// with the packed frame) or not needed: its arrays serve the next.
func (b *builder) recycle(f *frame) {
	if f.block != nil {
		putBuf(f.block)
		f.block = nil
	}
	b.spare = f
}

// add adds the matches m of the page at addr, whose bytes from page
// offset from on are span: every match's value lies in it.
func (b *builder) add(addr uint64, m *pageMatches, span []byte, from int) {
	n := len(m.offs)
	if n == 0 {
		return
	}
	s, f := b.spec, b.f
	p := page{addr: addr, n: uint32(n), pos: uint32(len(f.pos)), aux: uint32(len(f.aux))}
	f.count += uint64(n)

	switch list, bitmap := 2*n, bitmapBytes(s); {
	case n == positions(s):
		p.enc = posAll
	case list <= bitmap:
		p.enc = posList
		for _, off := range m.offs {
			f.pos = binary.LittleEndian.AppendUint16(f.pos, off)
		}
	default:
		p.enc = posBitmap
		f.pos = append(f.pos, make([]byte, bitmap)...)
		words := f.pos[p.pos:]
		step := s.step()
		for _, off := range m.offs {
			i := int(off) / step
			words[i/8] |= 1 << (i % 8)
		}
	}

	explicit := len(m.flags) > 0 && !uniform(s, m)
	if explicit {
		p.enc |= flagsExplicit
		for _, fl := range m.flags {
			f.aux = binary.LittleEndian.AppendUint16(f.aux, fl)
		}
	}
	if s.Class == Group {
		for _, o := range m.goffs {
			f.aux = binary.LittleEndian.AppendUint16(f.aux, o)
		}
		b.addPacked(&p, m, span, from, explicit)
		return
	}

	// Values: the raw span from the first match to the end of the last,
	// or each match's own bytes, whichever is smaller. Extents are at most
	// 8 bytes, or all alike, so the last 8 matches end the span.
	first, end := int(m.offs[0]), 0
	for i := max(0, n-8); i < n; i++ {
		end = max(end, int(m.offs[i])+s.extent(flagsAt(s, m, i, explicit)))
	}
	if end-first > n && end-first > b.packedLen(m, explicit) {
		b.addPacked(&p, m, span, from, explicit)
		return
	}
	raw := span[first-from : end-from]
	if allZero(raw) {
		p.enc |= valZero
	} else {
		p.enc |= valRaw
		p.rawFrom, p.vlen, p.val = uint16(first), uint32(len(raw)), uint32(len(f.vals))
		f.vals = append(f.vals, raw...)
	}
	f.pages = append(f.pages, p)
}

// uniform reports whether every match has the flags its offset allows.
func uniform(s *Spec, m *pageMatches) bool {
	for i, fl := range m.flags {
		if fl != s.allowed(int(m.offs[i])) {
			return false
		}
	}
	return true
}

func flagsAt(s *Spec, m *pageMatches, i int, explicit bool) uint16 {
	if explicit {
		return m.flags[i]
	}
	return s.allowed(int(m.offs[i]))
}

// packedLen is the bytes of the matches' values packed.
func (b *builder) packedLen(m *pageMatches, explicit bool) int {
	s := b.spec
	if !s.numeric() || s.Class == Number {
		return len(m.offs) * s.packedLen(0)
	}
	n := 0
	for i := range m.offs {
		n += s.extent(flagsAt(s, m, i, explicit))
	}
	return n
}

// addPacked adds page p with its matches' values packed one after the
// other (a group's: each value's bytes, without what lies between).
func (b *builder) addPacked(p *page, m *pageMatches, span []byte, from int, explicit bool) {
	s, f := b.spec, b.f
	b.packed = b.packed[:0]
	k := len(s.Parts) - 1
	for i, off := range m.offs {
		at := int(off) - from
		if s.Class != Group {
			b.packed = append(b.packed, span[at:at+s.extent(flagsAt(s, m, i, explicit))]...)
			continue
		}
		for j, t := range s.Parts {
			o := 0
			if j > 0 {
				o = int(m.goffs[i*k+j-1])
			}
			b.packed = append(b.packed, span[at+o:at+o+t.Size]...)
		}
	}
	if allZero(b.packed) {
		p.enc |= valZero
	} else {
		p.enc |= valPacked
		p.vlen, p.val = uint32(len(b.packed)), uint32(len(f.vals))
		f.vals = append(f.vals, b.packed...)
	}
	f.pages = append(f.pages, *p)
}

// copyPage adds page p of frame o as it is there: its matches, flags and
// values unchanged.
func (b *builder) copyPage(o *frame, p *page) {
	f := b.f
	q := *p
	q.pos, q.aux, q.val = uint32(len(f.pos)), uint32(len(f.aux)), uint32(len(f.vals))
	f.pos = append(f.pos, o.pos[p.pos:p.pos+posLen(b.spec, p)]...)
	f.aux = append(f.aux, o.aux[p.aux:p.aux+auxLen(b.spec, p)]...)
	f.vals = append(f.vals, o.vals[p.val:p.val+p.vlen]...)
	f.pages = append(f.pages, q)
	f.count += uint64(p.n)
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// match is one match as a frame holds it.
type match struct {
	off   uint16   // page offset
	flags uint16   // numeric specs: the readings that passed
	goffs []uint16 // groups: the offsets of the values after the first
	old   []byte   // its value at the last scan (a group's values packed)
}

// cursor walks the matches of one page of a frame.
type cursor struct {
	s     *Spec
	f     *frame
	p     *page
	offs  []uint16
	i     int
	at    int // packed values: where the next match's are
	zero  []byte
	m     match
	goffs []uint16
}

func newCursor(s *Spec) *cursor {
	return &cursor{s: s, zero: make([]byte, max(s.packedLen(0), s.maxExtent(), 8))}
}

// start begins the matches of page p of f.
func (c *cursor) start(f *frame, p *page) {
	c.f, c.p, c.i, c.at = f, p, 0, 0
	c.offs = offsets(c.s, f, p, c.offs[:0])
}

// next returns the next match of the page, or false after the last.
func (c *cursor) next() (*match, bool) {
	if c.i >= len(c.offs) {
		return nil, false
	}
	s, p, f, i := c.s, c.p, c.f, c.i
	c.i++
	m := &c.m
	m.off = c.offs[i]
	m.flags = s.allowed(int(m.off))
	aux := f.aux[p.aux:]
	if p.enc&flagsMask == flagsExplicit {
		m.flags = binary.LittleEndian.Uint16(aux[2*i:])
		aux = aux[2*int(p.n):]
	}
	if s.Class == Group {
		k := len(s.Parts) - 1
		c.goffs = c.goffs[:0]
		for j := range k {
			c.goffs = append(c.goffs, binary.LittleEndian.Uint16(aux[2*(i*k+j):]))
		}
		m.goffs = c.goffs
	}
	n := s.packedLen(m.flags)
	switch p.enc & valMask {
	case valRaw:
		at := p.val + uint32(m.off-p.rawFrom)
		m.old = f.vals[at : at+uint32(n)]
	case valZero:
		m.old = c.zero[:n]
	default:
		at := p.val + uint32(c.at)
		m.old = f.vals[at : at+uint32(n)]
		c.at += n
	}
	return m, true
}

// offsets appends the page offsets of p's matches to buf.
func offsets(s *Spec, f *frame, p *page, buf []uint16) []uint16 {
	step := s.step()
	switch p.enc & posMask {
	case posAll:
		for off := 0; off < PageSize; off += step {
			buf = append(buf, uint16(off))
		}
	case posBitmap:
		words := f.pos[p.pos : p.pos+uint32(bitmapBytes(s))]
		for w := 0; w < len(words); w += 8 {
			x := binary.LittleEndian.Uint64(words[w:])
			for x != 0 {
				i := w*8 + bits.TrailingZeros64(x)
				buf = append(buf, uint16(i*step))
				x &= x - 1
			}
		}
	case posList:
		list := f.pos[p.pos : p.pos+2*p.n]
		for i := 0; i < len(list); i += 2 {
			buf = append(buf, binary.LittleEndian.Uint16(list[i:]))
		}
	}
	return buf
}

// Frame payloads, as set files keep them: the values first, so that a
// frame's payload is built where its values are, then the positions, the
// flags and offsets, 16 bytes a page (address, count, encoding, raw start)
// and four uint32 lengths (pages, pos, aux, vals).
const (
	payloadTrailer = 16
	pageRecord     = 16
)

// marshal makes the frame's payload after its values, in their buffer
// when it has room (no copy of them), and returns it.
func (f *frame) marshal() []byte {
	le := binary.LittleEndian
	buf := append(f.vals, f.pos...)
	buf = append(buf, f.aux...)
	for _, p := range f.pages {
		buf = le.AppendUint64(buf, p.addr)
		buf = le.AppendUint32(buf, p.n)
		buf = append(buf, p.enc, 0)
		buf = le.AppendUint16(buf, p.rawFrom)
	}
	buf = le.AppendUint32(buf, uint32(len(f.pages)))
	buf = le.AppendUint32(buf, uint32(len(f.pos)))
	buf = le.AppendUint32(buf, uint32(len(f.aux)))
	return le.AppendUint32(buf, uint32(len(f.vals)))
}

// errFrame is wrapped by every error about a frame's content.
var errFrame = errors.New("damaged frame")

// unmarshalFrame reads a payload of spec s and checks all of it: a
// damaged or foreign payload is an error, never a panic or a frame that
// lies. The frame keeps slices of b.
func unmarshalFrame(s *Spec, b []byte) (*frame, error) {
	le := binary.LittleEndian
	if len(b) < payloadTrailer {
		return nil, errFrame
	}
	t := b[len(b)-payloadTrailer:]
	np, npos, naux, nvals := uint64(le.Uint32(t)), uint64(le.Uint32(t[4:])), uint64(le.Uint32(t[8:])), uint64(le.Uint32(t[12:]))
	if uint64(len(b)) != payloadTrailer+np*pageRecord+npos+naux+nvals {
		return nil, errFrame
	}
	f := &frame{pages: make([]page, np)}
	f.vals, b = b[:nvals], b[nvals:]
	f.pos, b = b[:npos], b[npos:]
	f.aux, b = b[:naux], b[naux:]
	recs := b[:np*pageRecord]
	var pos, aux, val uint32
	for i := range f.pages {
		r := recs[i*pageRecord:]
		p := &f.pages[i]
		*p = page{addr: le.Uint64(r), n: le.Uint32(r[8:]), enc: r[12], rawFrom: le.Uint16(r[14:]), pos: pos, aux: aux, val: val}
		if r[13] != 0 || (i > 0 && p.addr <= f.pages[i-1].addr) {
			return nil, errFrame
		}
		if err := f.check(s, p); err != nil {
			return nil, err
		}
		pos, aux, val = pos+posLen(s, p), aux+auxLen(s, p), val+p.vlen
		f.count += uint64(p.n)
	}
	if uint64(pos) != npos || uint64(aux) != naux || uint64(val) != nvals {
		return nil, errFrame
	}
	return f, nil
}

func posLen(s *Spec, p *page) uint32 {
	switch p.enc & posMask {
	case posBitmap:
		return uint32(bitmapBytes(s))
	case posList:
		return 2 * p.n
	}
	return 0
}

func auxLen(s *Spec, p *page) uint32 {
	n := uint32(0)
	if p.enc&flagsMask == flagsExplicit {
		n = 2 * p.n
	}
	if s.Class == Group {
		n += 2 * p.n * uint32(len(s.Parts)-1)
	}
	return n
}

// check verifies that page p of f is well formed, and sets the length of
// its values.
func (f *frame) check(s *Spec, p *page) error {
	step, npos := s.step(), positions(s)
	switch {
	case p.enc&^encMask != 0 || p.enc&posMask == posMask || p.enc&valMask == valMask:
		return errFrame
	case p.addr%uint64(PageSize) != 0 || p.addr > ^uint64(0)-2*uint64(PageSize)+1:
		return errFrame
	case p.n == 0 || p.n > uint32(npos):
		return errFrame
	case p.enc&flagsMask == flagsExplicit && !s.numeric():
		return errFrame
	case uint64(p.pos)+uint64(posLen(s, p)) > uint64(len(f.pos)) || uint64(p.aux)+uint64(auxLen(s, p)) > uint64(len(f.aux)):
		return errFrame
	}
	// The offsets: in order, on a position, each with the flags and group
	// offsets its spec allows.
	switch p.enc & posMask {
	case posAll:
		if p.n != uint32(npos) {
			return errFrame
		}
	case posList:
		prev := -1
		for k := range int(p.n) {
			off := int(binary.LittleEndian.Uint16(f.pos[p.pos+2*uint32(k):]))
			if off <= prev || off%step != 0 || off >= PageSize {
				return errFrame
			}
			prev = off
		}
	case posBitmap:
		count := 0
		bm := f.pos[p.pos : p.pos+uint32(bitmapBytes(s))]
		for w := 0; w < len(bm); w += 8 {
			x := binary.LittleEndian.Uint64(bm[w:])
			count += bits.OnesCount64(x)
			if x != 0 && w*8+63-bits.LeadingZeros64(x) >= npos {
				return errFrame
			}
		}
		if count != int(p.n) {
			return errFrame
		}
	}
	first, end, packed, err := f.extents(s, p)
	if err != nil {
		return err
	}
	if end > PageSize+s.maxExtent() || (s.Text() && s.Len < 1) {
		return errFrame
	}
	switch p.enc & valMask {
	case valPacked:
		p.vlen = uint32(packed)
	case valRaw:
		if int(p.rawFrom) != first || s.Class == Group {
			return errFrame
		}
		p.vlen = uint32(end - first)
	case valZero:
		p.vlen = 0
	}
	if uint64(p.val)+uint64(p.vlen) > uint64(len(f.vals)) {
		return errFrame
	}
	return nil
}

// extents checks the flags and group offsets of page p's matches, and
// returns its first offset, where its last match ends, and the bytes its
// values take packed. A page of every position with the flags each allows
// (a snapshot's) is told without a walk over its matches.
func (f *frame) extents(s *Spec, p *page) (first, end, packed int, err error) {
	explicit := p.enc&flagsMask == flagsExplicit
	if p.enc&posMask == posAll && !explicit && s.Class != Group && p.enc&valMask != valPacked {
		last := (positions(s) - 1) * s.step()
		for off := max(0, last-7); off <= last; off++ {
			end = max(end, off+s.extent(s.allowed(off)))
		}
		return 0, end, int(p.n) * s.extent(s.allowed(0)), nil // packed is no smaller than the raw page
	}
	offs := offsets(s, f, p, make([]uint16, 0, p.n))
	aux := f.aux[p.aux:]
	first = int(offs[0])
	for i, off := range offs {
		fl := s.allowed(int(off))
		if explicit {
			e := binary.LittleEndian.Uint16(aux[2*i:])
			if e == 0 || e&^fl != 0 {
				return 0, 0, 0, errFrame
			}
			fl = e
		}
		if s.Class == Group {
			if err := checkGroup(s, f.aux[p.aux+2*uint32(i*(len(s.Parts)-1)):]); err != nil {
				return 0, 0, 0, err
			}
		}
		end = max(end, int(off)+s.extent(fl))
		packed += s.packedLen(fl)
	}
	return first, end, packed, nil
}

// checkGroup checks one match's group offsets: each value after the one
// before, all within the window.
func checkGroup(s *Spec, aux []byte) error {
	end := s.Parts[0].Size
	for j, t := range s.Parts[1:] {
		o := int(binary.LittleEndian.Uint16(aux[2*j:]))
		if o < end || o+t.Size > s.Window || (!s.Unaligned && o%t.Size != 0) {
			return errFrame
		}
		end = o + t.Size
	}
	return nil
}
