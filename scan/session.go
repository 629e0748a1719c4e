package scan

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"

	"github.com/procmem/procmem/procfs"
)

// A session file holds the matches between commands: one line of JSON
// (the Header: whose matches, of what type, how many), then the set's
// arrays as they are in memory: its pages (32 bytes each, little-endian),
// the positions, the values. It is about as large as the set.

// Format names the file format in each header.
const Format = "procmem scan session 1"

// ErrSession is wrapped by every error about a session file's content.
var ErrSession = errors.New("not a procmem scan session")

// Header is the first line of a session file.
type Header struct {
	Format    string `json:"format"`
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"` // of the process, in clock ticks after boot (stat field 22)
	Comm      string `json:"comm"`
	// Image tells the process's image apart from the one it execs next
	// (stat's code, data, stack, argument and environment addresses).
	Image     procfs.Image `json:"image"`
	Type      string       `json:"type"`
	Endian    string       `json:"endian"`
	Unaligned bool         `json:"unaligned"`
	PageSize  int          `json:"page_size"`
	Scans     []string     `json:"scans"` // the scan commands since the first, as given
	Matches   uint64       `json:"matches"`
	Pages     uint64       `json:"pages"`
	PosBytes  uint64       `json:"pos_bytes"`
	ValBytes  uint64       `json:"val_bytes"`
}

const pageRecord = 32

// Save writes the session to path, atomically: a reader sees the old file
// or the new one, never a part.
func Save(path string, h Header, s *Set) error {
	h.Format, h.PageSize = Format, PageSize
	h.Type, h.Endian, h.Unaligned = s.Type.Name, s.Type.Endian(), s.Step != s.Type.Size
	h.Matches, h.Pages, h.PosBytes, h.ValBytes = s.count, uint64(len(s.pages)), uint64(len(s.pos)), s.valLen
	line, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after the rename, there is none
	w := bufio.NewWriterSize(f, 1<<20)
	w.Write(append(line, '\n'))
	// The values go out block after block: that is every page's in page
	// order, so in the file a page's values start where the last page's
	// end.
	var rec [pageRecord]byte
	val := uint64(0)
	for _, p := range s.pages {
		binary.LittleEndian.PutUint64(rec[0:], p.addr)
		binary.LittleEndian.PutUint32(rec[8:], p.n)
		rec[12], rec[13] = p.enc, 0
		binary.LittleEndian.PutUint16(rec[14:], p.rawFrom)
		binary.LittleEndian.PutUint64(rec[16:], p.pos)
		binary.LittleEndian.PutUint64(rec[24:], val)
		w.Write(rec[:])
		val += uint64(p.vlen)
	}
	w.Write(s.pos)
	for _, blk := range s.vals {
		w.Write(blk)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// Load reads the session file at path.
func Load(path string) (Header, *Set, error) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Header{}, nil, err
	}
	h, s, err := Decode(bufio.NewReaderSize(f, 1<<20), st.Size())
	if err != nil {
		return Header{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, s, nil
}

// ReadHeader reads only the header of the session file at path.
func ReadHeader(path string) (Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, err
	}
	defer f.Close()
	line, err := bufio.NewReader(io.LimitReader(f, 1<<16)).ReadSlice('\n')
	var h Header
	if err != nil || json.Unmarshal(line, &h) != nil || h.Format != Format {
		return Header{}, fmt.Errorf("%s: %w: no header line", path, ErrSession)
	}
	if _, err := ParseType(h.Type, h.Endian); err != nil {
		return Header{}, fmt.Errorf("%s: %w: %v", path, ErrSession, err)
	}
	return h, nil
}

// Decode reads a session of size bytes from r, and checks all of it: a
// damaged or foreign file is an error, never a panic or a set that lies.
func Decode(r io.Reader, size int64) (Header, *Set, error) {
	bad := func(format string, a ...any) (Header, *Set, error) {
		return Header{}, nil, fmt.Errorf("%w: %s", ErrSession, fmt.Sprintf(format, a...))
	}
	br := bufio.NewReader(io.LimitReader(r, size))
	line, err := br.ReadSlice('\n')
	if err != nil {
		return bad("no header line")
	}
	var h Header
	if err := json.Unmarshal(line, &h); err != nil || h.Format != Format {
		return bad("no header line")
	}
	t, err := ParseType(h.Type, h.Endian)
	if err != nil {
		return bad("%v", err)
	}
	if h.PageSize != PageSize {
		return bad("made with %d-byte pages, this machine has %d", h.PageSize, PageSize)
	}
	rest := uint64(size) - uint64(len(line))
	if h.Pages > rest/pageRecord || h.PosBytes > rest || h.ValBytes > rest ||
		h.Pages*pageRecord+h.PosBytes+h.ValBytes != rest {
		return bad("its size does not match its header")
	}
	step := t.Size
	if h.Unaligned {
		step = 1
	}
	s := NewSet(t, step)
	recs := make([]byte, h.Pages*pageRecord)
	s.pos = make([]byte, h.PosBytes)
	for _, b := range [][]byte{recs, s.pos} {
		if _, err := io.ReadFull(br, b); err != nil {
			return bad("it is cut short")
		}
	}
	s.pages = make([]page, h.Pages)
	val := uint64(0) // where the next page's values are in the file
	for i := range s.pages {
		rec := recs[i*pageRecord:]
		s.pages[i] = page{
			addr: binary.LittleEndian.Uint64(rec[0:]), n: binary.LittleEndian.Uint32(rec[8:]), enc: rec[12],
			rawFrom: binary.LittleEndian.Uint16(rec[14:]),
			pos:     binary.LittleEndian.Uint64(rec[16:]),
		}
		p := &s.pages[i]
		if err := s.check(i); err != nil {
			return bad("page %d: %v", i, err)
		}
		if binary.LittleEndian.Uint64(rec[24:]) != val || uint64(p.vlen) > h.ValBytes-val {
			return bad("page %d: values out of place", i)
		}
		val += uint64(p.vlen)
		p.val = s.reserveVals(int(p.vlen))
		if _, err := io.ReadFull(br, s.valBytes(p.val, uint64(p.vlen))); err != nil {
			return bad("it is cut short")
		}
		s.count += uint64(p.n)
	}
	if val != h.ValBytes {
		return bad("its values do not match its header")
	}
	if s.count != h.Matches {
		return bad("it holds %d matches, its header says %d", s.count, h.Matches)
	}
	return h, s, nil
}

// check verifies that page i of s is well formed and lies after page i-1,
// and sets the length of its values.
func (s *Set) check(i int) error {
	p := &s.pages[i]
	size := s.Type.Size
	switch {
	case p.addr%uint64(PageSize) != 0 || p.addr > ^uint64(0)-uint64(PageSize)+1:
		return errors.New("not a page address")
	case i > 0 && p.addr <= s.pages[i-1].addr:
		return errors.New("out of order")
	case p.n == 0 || p.n > uint32(s.positions()):
		return errors.New("bad match count")
	}
	var first, last int
	switch p.enc & posMask {
	case posAll:
		if p.n != uint32(s.positions()) {
			return errors.New("all positions, but not as many matches")
		}
		first, last = 0, (s.positions()-1)*s.Step
	case posList:
		if p.pos > uint64(len(s.pos)) || 2*uint64(p.n) > uint64(len(s.pos))-p.pos {
			return errors.New("offsets out of bounds")
		}
		prev := -1
		for k := range int(p.n) {
			off := int(binary.LittleEndian.Uint16(s.pos[p.pos+2*uint64(k):]))
			if off <= prev || off%s.Step != 0 || off+size > PageSize {
				return errors.New("bad offset")
			}
			prev = off
		}
		first, last = int(binary.LittleEndian.Uint16(s.pos[p.pos:])), prev
	case posBitmap:
		n := uint64(s.bitmapBytes())
		if p.pos > uint64(len(s.pos)) || n > uint64(len(s.pos))-p.pos {
			return errors.New("bitmap out of bounds")
		}
		bm := s.pos[p.pos : p.pos+n]
		count, hi := 0, -1
		for w := 0; w < len(bm); w += 8 {
			x := binary.LittleEndian.Uint64(bm[w:])
			count += bits.OnesCount64(x)
			if x != 0 {
				hi = w*8 + 63 - bits.LeadingZeros64(x)
				if count == bits.OnesCount64(x) {
					first = (w*8 + bits.TrailingZeros64(x)) * s.Step
				}
			}
		}
		if count != int(p.n) || hi >= s.positions() {
			return errors.New("bitmap does not match its count")
		}
		last = hi * s.Step
	default:
		return errors.New("unknown encoding")
	}
	switch p.enc & valMask {
	case valPacked:
		p.vlen = p.n * uint32(size)
	case valRaw:
		if int(p.rawFrom) > first {
			return errors.New("values out of bounds")
		}
		p.vlen = uint32(last + size - int(p.rawFrom))
	case valZero:
		p.vlen = 0
	default:
		return errors.New("unknown encoding")
	}
	return nil
}
