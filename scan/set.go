package scan

import (
	"encoding/binary"
	"math/bits"
	"os"
)

// PageSize is the unit matches are kept in. A match never straddles two
// pages: with --unaligned the last Size-1 offsets of a page are not
// scanned.
var PageSize = os.Getpagesize()

// A Set is the matches of a scan: addresses, and the value each held when
// it was last read. It is kept per page of memory, each page in the
// cheapest of a few encodings:
//
//   - where the matches are: every position of the page (after a snapshot),
//     a bitmap of positions, or a list of 16-bit offsets, whichever is
//     smallest;
//   - their values: packed one after the other, or the page's bytes as
//     read (from the first match to the last), or nothing when those bytes
//     are all zero.
//
// So a scan with tens of millions of matches costs a few bytes a match, a
// snapshot the pages that hold data (no more), and narrowing walks the
// matches, never memory without them.
type Set struct {
	Type   Type
	Step   int // distance between positions: Type.Size, or 1 when unaligned
	pages  []page
	pos    []byte   // the pages' bitmaps and offset lists
	vals   [][]byte // the pages' values, in blocks: appending never copies what is kept
	valLen uint64   // bytes in vals
	count  uint64
}

// valBlock is the largest block of values: a snapshot of a GiB is 256 of
// them, and no page's values straddle two.
const valBlock = 4 << 20

// page is the matches in one page of memory.
type page struct {
	addr    uint64 // of the page
	n       uint32 // matches in it
	enc     uint8  // posAll, posBitmap or posList | valPacked, valRaw or valZero
	rawFrom uint16 // valRaw: the page offset where its bytes start
	vlen    uint32 // bytes of values
	pos     uint64 // where in Set.pos its positions are (bitmap, list)
	val     uint64 // where in Set.vals its values are: block<<32 | offset in the block
}

// appendVals keeps b, and returns where (as page.val).
func (s *Set) appendVals(b []byte) uint64 {
	ref := s.reserveVals(len(b))
	copy(s.valBytes(ref, uint64(len(b))), b)
	return ref
}

// reserveVals makes room for n bytes of values, and returns where.
func (s *Set) reserveVals(n int) uint64 {
	k := len(s.vals)
	if k == 0 || cap(s.vals[k-1])-len(s.vals[k-1]) < n {
		size := 4096
		if k > 0 {
			size = min(valBlock, 2*cap(s.vals[k-1]))
		}
		s.vals = append(s.vals, make([]byte, 0, max(size, n)))
		k++
	}
	blk := &s.vals[k-1]
	ref := uint64(k-1)<<32 | uint64(len(*blk))
	*blk = (*blk)[:len(*blk)+n]
	s.valLen += uint64(n)
	return ref
}

// valBytes returns n bytes of values at ref.
func (s *Set) valBytes(ref, n uint64) []byte {
	at := ref & (1<<32 - 1)
	return s.vals[ref>>32][at : at+n]
}

const (
	posAll    = 0
	posBitmap = 1
	posList   = 2
	posMask   = 3
	valPacked = 0 << 2
	valRaw    = 1 << 2
	valZero   = 2 << 2
	valMask   = 3 << 2
)

// NewSet returns an empty set of matches of type t, at positions a
// multiple of step.
func NewSet(t Type, step int) *Set { return &Set{Type: t, Step: step} }

// Count is the number of matches.
func (s *Set) Count() uint64 { return s.count }

// Pages is the number of pages that hold matches.
func (s *Set) Pages() int { return len(s.pages) }

// Bytes is how much memory the set takes, roughly.
func (s *Set) Bytes() uint64 {
	return uint64(len(s.pages))*uint64(40) + uint64(len(s.pos)) + s.valLen
}

// positions is the number of positions in a page.
func (s *Set) positions() int { return (PageSize-s.Type.Size)/s.Step + 1 }

// offsets appends the page offsets of p's matches to buf.
func (s *Set) offsets(p *page, buf []uint16) []uint16 {
	switch p.enc & posMask {
	case posAll:
		for off := 0; off+s.Type.Size <= PageSize; off += s.Step {
			buf = append(buf, uint16(off))
		}
	case posBitmap:
		words := s.pos[p.pos : p.pos+uint64(s.bitmapBytes())]
		for w := 0; w < len(words); w += 8 {
			x := binary.LittleEndian.Uint64(words[w:])
			for x != 0 {
				i := w*8 + bits.TrailingZeros64(x)
				buf = append(buf, uint16(i*s.Step))
				x &= x - 1
			}
		}
	case posList:
		list := s.pos[p.pos : p.pos+2*uint64(p.n)]
		for i := 0; i < len(list); i += 2 {
			buf = append(buf, binary.LittleEndian.Uint16(list[i:]))
		}
	}
	return buf
}

// bitmapBytes is the size of a page's bitmap: whole 64-bit words.
func (s *Set) bitmapBytes() int { return (s.positions() + 63) / 64 * 8 }

// value returns the value the i-th match of p held, at page offset off.
func (s *Set) value(p *page, i int, off uint16, zero []byte) []byte {
	size := uint64(s.Type.Size)
	switch p.enc & valMask {
	case valRaw:
		return s.valBytes(p.val+uint64(off-p.rawFrom), size)
	case valZero:
		return zero
	}
	return s.valBytes(p.val+uint64(i)*size, size)
}

// builder adds pages of matches to a set, in address order.
type builder struct {
	s      *Set
	packed []byte
}

// add adds the matches at the page offsets offs (ascending) of the page at
// addr, whose bytes from page offset from on are span: every match's
// value lies in it.
func (b *builder) add(addr uint64, offs []uint16, span []byte, from int) {
	if len(offs) == 0 {
		return
	}
	s := b.s
	size := s.Type.Size
	p := page{addr: addr, n: uint32(len(offs))}
	s.count += uint64(len(offs))

	switch list, bitmap := 2*len(offs), s.bitmapBytes(); {
	case len(offs) == s.positions():
		p.enc = posAll
	case list <= bitmap:
		p.enc, p.pos = posList, uint64(len(s.pos))
		for _, off := range offs {
			s.pos = binary.LittleEndian.AppendUint16(s.pos, off)
		}
	default:
		p.enc, p.pos = posBitmap, uint64(len(s.pos))
		s.pos = append(s.pos, make([]byte, bitmap)...)
		words := s.pos[p.pos:]
		for _, off := range offs {
			i := int(off) / s.Step
			words[i/8] |= 1 << (i % 8)
		}
	}

	first, last := int(offs[0]), int(offs[len(offs)-1])+size
	raw := span[first-from : last-from]
	switch {
	case len(raw) <= len(offs)*size:
		if allZero(raw) {
			p.enc |= valZero
			break
		}
		p.enc |= valRaw
		p.rawFrom, p.vlen = uint16(first), uint32(len(raw))
		p.val = s.appendVals(raw)
	default:
		b.packed = b.packed[:0]
		for _, off := range offs {
			b.packed = append(b.packed, span[int(off)-from:int(off)-from+size]...)
		}
		if allZero(b.packed) {
			p.enc |= valZero
			break
		}
		p.enc |= valPacked
		p.vlen = uint32(len(b.packed))
		p.val = s.appendVals(b.packed)
	}
	s.pages = append(s.pages, p)
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

// appendSet adds the pages of o, which all lie after s's, to s.
func (s *Set) appendSet(o *Set) {
	pos, blocks := uint64(len(s.pos)), uint64(len(s.vals))
	s.pos = append(s.pos, o.pos...)
	s.vals = append(s.vals, o.vals...)
	for _, p := range o.pages {
		p.pos += pos
		p.val += blocks << 32
		s.pages = append(s.pages, p)
	}
	s.count += o.count
	s.valLen += o.valLen
}

// Match is one match: its address and the value it held at the last scan.
type Match struct {
	Addr uint64
	Old  []byte
}

// First returns up to n matches, the lowest addresses first.
func (s *Set) First(n int) []Match {
	var out []Match
	if n > 0 {
		s.Each(func(m Match) bool { out = append(out, m); return len(out) < n })
	}
	return out
}

// Each calls fn for every match in address order, until fn returns false.
func (s *Set) Each(fn func(Match) bool) {
	var offs []uint16
	zero := make([]byte, s.Type.Size)
	for pi := range s.pages {
		p := &s.pages[pi]
		offs = s.offsets(p, offs[:0])
		for i, off := range offs {
			if !fn(Match{p.addr + uint64(off), s.value(p, i, off, zero)}) {
				return
			}
		}
	}
}
