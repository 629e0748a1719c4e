package core

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"

	"github.com/ulikunitz/xz/lzma"
)

// The xz container (https://tukaani.org/xz/xz-file-format.txt), read here
// rather than by github.com/ulikunitz/xz's own Reader, which allocates
// whatever dictionary a block header claims (up to 4 GiB, from a file of
// a few bytes) before it decodes anything. Here the dictionary is at most
// the block's uncompressed size when the header tells it, and never more
// than maxXZDict; the LZMA2 data is decoded by the same package's lzma
// Reader2. Streams, blocks of LZMA2 alone, every check type xz writes
// (none, CRC32, CRC64, SHA-256), the index and the footer are checked.

// maxXZDict is the largest dictionary allocated: xz -9's. A stream made
// with a larger one (xz --lzma2=dict=...) is refused.
const maxXZDict = 64 << 20

var errXZ = errors.New("xz: malformed stream")

// errUnsupported marks a stream procmem will not decompress (a filter it
// does not know, a dictionary larger than it allocates): not a stream cut
// short, so nothing of it is kept.
var errUnsupported = errors.New("not supported")

var xzMagic = []byte{0xfd, '7', 'z', 'X', 'Z', 0}

// xzReader decodes the concatenated xz streams of its source.
type xzReader struct {
	src     *bufio.Reader
	check   byte      // the check type of the current stream
	block   io.Reader // the current block's data; nil between blocks
	sum     hash.Hash // of the current block's data
	counted *countingReader
	header  uint64 // the current block header's size
	csize   int64  // the compressed size the header states, or -1
	usize   int64  // the uncompressed size the header states, or -1
	out     uint64 // the current block's data so far
	records [][2]uint64
	started bool // a stream header has been read
}

func newXZReader(r io.Reader) *xzReader {
	return &xzReader{src: bufio.NewReaderSize(r, 1<<16)}
}

type countingReader struct {
	r *bufio.Reader
	n uint64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += uint64(n)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

func (x *xzReader) Read(p []byte) (int, error) {
	for {
		if x.block != nil {
			n, err := x.block.Read(p)
			x.out += uint64(n)
			if x.usize >= 0 && x.out > uint64(x.usize) {
				return n, fmt.Errorf("%w: a block longer than its header says", errXZ)
			}
			if err == io.EOF {
				err = x.endBlock()
			}
			if n > 0 || err != nil {
				return n, err
			}
			continue
		}
		more, err := x.next()
		if err != nil {
			return 0, err
		}
		if !more {
			return 0, io.EOF
		}
	}
}

// next reads up to the next block's data: a stream header, or the next
// block header, or an index and footer and what follows them. It reports
// false at the end of the input.
func (x *xzReader) next() (bool, error) {
	if !x.started {
		if err := x.streamHeader(); err != nil {
			return false, err
		}
	}
	size, err := x.src.ReadByte()
	if err != nil {
		return false, unexpected(err)
	}
	if size == 0 {
		if err := x.index(); err != nil {
			return false, err
		}
		return x.padding()
	}
	return true, x.blockHeader((uint64(size) + 1) * 4)
}

// streamHeader reads the 12 bytes that start a stream.
func (x *xzReader) streamHeader() error {
	var h [12]byte
	if _, err := io.ReadFull(x.src, h[:]); err != nil {
		return unexpected(err)
	}
	if !bytes.Equal(h[:6], xzMagic) || h[6] != 0 || h[7] > 0x0f || crc32.ChecksumIEEE(h[6:8]) != binary.LittleEndian.Uint32(h[8:]) {
		return fmt.Errorf("%w: a bad stream header", errXZ)
	}
	if _, ok := checkSize(h[7]); !ok {
		return fmt.Errorf("xz: check type %d: %w", h[7], errUnsupported)
	}
	x.check, x.started, x.records = h[7], true, nil
	return nil
}

// blockHeader reads the rest of a block header of size bytes, whose size
// byte was read, and starts decoding its data.
func (x *xzReader) blockHeader(size uint64) error {
	h := make([]byte, size)
	h[0] = byte(size/4 - 1)
	if _, err := io.ReadFull(x.src, h[1:]); err != nil {
		return unexpected(err)
	}
	if crc32.ChecksumIEEE(h[:size-4]) != binary.LittleEndian.Uint32(h[size-4:]) {
		return fmt.Errorf("%w: a block header's CRC32 is wrong", errXZ)
	}
	flags := h[1]
	r := bytes.NewReader(h[2 : size-4])
	x.csize, x.usize = -1, -1
	if flags&0x3c != 0 || flags&3 != 0 {
		return fmt.Errorf("xz: a block with %d filters (only LZMA2 alone): %w", flags&3+1, errUnsupported)
	}
	for _, field := range []struct {
		flag byte
		size *int64
	}{{0x40, &x.csize}, {0x80, &x.usize}} {
		if flags&field.flag == 0 {
			continue
		}
		n, err := varint(r)
		if err != nil || n > 1<<62 {
			return fmt.Errorf("%w: a bad size in a block header", errXZ)
		}
		*field.size = int64(n)
	}
	id, err1 := varint(r)
	propsSize, err2 := varint(r)
	prop, err3 := r.ReadByte()
	if err1 != nil || err2 != nil || err3 != nil || id != 0x21 || propsSize != 1 {
		return fmt.Errorf("xz: filter %#x (only LZMA2): %w", id, errUnsupported)
	}
	for r.Len() > 0 {
		if b, _ := r.ReadByte(); b != 0 {
			return fmt.Errorf("%w: block header padding", errXZ)
		}
	}
	dict, err := lzma2Dict(prop)
	if err != nil {
		return err
	}
	if x.usize >= 0 {
		dict = min(dict, uint64(max(x.usize, lzma.MinDictCap)))
	} else if size, known := x.blockSizeAhead(); known {
		dict = min(dict, max(size, lzma.MinDictCap))
	}
	if dict > maxXZDict {
		return fmt.Errorf("xz: a dictionary of %d MiB, more than procmem allocates (%d MiB): %w; decompress it with xz -d", dict>>20, maxXZDict>>20, errUnsupported)
	}
	x.counted = &countingReader{r: x.src}
	lz, err := lzma.Reader2Config{DictCap: int(dict)}.NewReader2(x.counted)
	if err != nil {
		return fmt.Errorf("xz: %w", err)
	}
	x.sum = newCheck(x.check)
	x.block, x.header, x.out = io.TeeReader(lz, x.sum), size, 0
	return nil
}

// blockSizeAhead tells the uncompressed size of a block whose LZMA2 data
// ends within the input buffered ahead, from its chunks' headers (0 for
// data that is no LZMA2, which will not decode). A dictionary needs no
// more: without this, a few bytes of block header would make the
// dictionary's whole allocation.
func (x *xzReader) blockSizeAhead() (uint64, bool) {
	b, _ := x.src.Peek(x.src.Size())
	var size uint64
	for at := 0; at < len(b); {
		c := b[at]
		switch {
		case c == 0: // the end
			return size, true
		case c == 1 || c == 2: // uncompressed
			if at+3 > len(b) {
				return 0, false
			}
			n := int(binary.BigEndian.Uint16(b[at+1:])) + 1
			size += uint64(n)
			at += 3 + n
		case c >= 0x80: // LZMA
			if at+5 > len(b) {
				return 0, false
			}
			size += uint64(c&0x1f)<<16 + uint64(binary.BigEndian.Uint16(b[at+1:])) + 1
			at += 5 + int(binary.BigEndian.Uint16(b[at+3:])) + 1
			if c >= 0xc0 { // a properties byte
				at++
			}
		default:
			return 0, true
		}
	}
	return 0, false
}

// endBlock checks the end of a block's data: the sizes its header gave,
// the padding and the check.
func (x *xzReader) endBlock() error {
	x.block = nil
	csize := x.counted.n
	if x.csize >= 0 && csize != uint64(x.csize) || x.usize >= 0 && x.out != uint64(x.usize) {
		return fmt.Errorf("%w: a block's sizes differ from its header's", errXZ)
	}
	pad := make([]byte, (4-(x.header+csize)%4)%4)
	if _, err := io.ReadFull(x.src, pad); err != nil {
		return unexpected(err)
	}
	if !allZero(pad) {
		return fmt.Errorf("%w: block padding", errXZ)
	}
	n, _ := checkSize(x.check)
	check := make([]byte, n)
	if _, err := io.ReadFull(x.src, check); err != nil {
		return unexpected(err)
	}
	if !bytes.Equal(check, x.sum.Sum(nil)) {
		return fmt.Errorf("xz: a block's check fails: the data is corrupt")
	}
	x.records = append(x.records, [2]uint64{x.header + csize + uint64(n), x.out})
	return nil
}

// index reads the index, whose indicator was read, and the stream footer,
// and checks them against the blocks read.
func (x *xzReader) index() error {
	var b bytes.Buffer
	b.WriteByte(0)
	r := io.TeeReader(x.src, &b)
	byteReader := &teeByteReader{r}
	count, err := varint(byteReader)
	if err != nil || count != uint64(len(x.records)) {
		return fmt.Errorf("%w: the index counts %d blocks, the stream has %d", errXZ, count, len(x.records))
	}
	for _, rec := range x.records {
		unpadded, err1 := varint(byteReader)
		uncompressed, err2 := varint(byteReader)
		if err1 != nil || err2 != nil || unpadded != rec[0] || uncompressed != rec[1] {
			return fmt.Errorf("%w: the index does not match the blocks", errXZ)
		}
	}
	pad := make([]byte, (4-b.Len()%4)%4)
	if _, err := io.ReadFull(r, pad); err != nil || !allZero(pad) {
		return fmt.Errorf("%w: index padding", errXZ)
	}
	var tail [16]byte // the index's CRC32, then the footer
	if _, err := io.ReadFull(x.src, tail[:]); err != nil {
		return unexpected(err)
	}
	le := binary.LittleEndian
	foot := tail[4:]
	switch {
	case crc32.ChecksumIEEE(b.Bytes()) != le.Uint32(tail[:]):
		return fmt.Errorf("%w: the index's CRC32 is wrong", errXZ)
	case string(foot[10:]) != "YZ" || crc32.ChecksumIEEE(foot[4:10]) != le.Uint32(foot[:]):
		return fmt.Errorf("%w: a bad stream footer", errXZ)
	case (uint64(le.Uint32(foot[4:]))+1)*4 != uint64(b.Len())+4 || foot[8] != 0 || foot[9] != x.check:
		return fmt.Errorf("%w: the stream footer does not match its index or header", errXZ)
	}
	return nil
}

// padding reads stream padding after a stream: zeros in fours, then the
// end of the input or another stream. It reports whether one follows.
func (x *xzReader) padding() (bool, error) {
	for {
		b, err := x.src.Peek(4)
		if len(b) == 0 && err == io.EOF {
			return false, nil
		}
		if len(b) < 4 {
			return false, fmt.Errorf("%w: %d bytes after a stream", errXZ, len(b))
		}
		if !allZero(b) {
			x.started = false
			return true, nil
		}
		x.src.Discard(4)
	}
}

// lzma2Dict decodes the LZMA2 dictionary size property.
func lzma2Dict(p byte) (uint64, error) {
	switch {
	case p > 40:
		return 0, fmt.Errorf("%w: LZMA2 dictionary property %d", errXZ, p)
	case p == 40:
		return 1<<32 - 1, nil
	}
	return uint64(2|p&1) << (p/2 + 11), nil
}

// checkSize is the size of a check type's value, for the types xz writes.
func checkSize(t byte) (int, bool) {
	switch t {
	case 0:
		return 0, true
	case 1:
		return 4, true
	case 4:
		return 8, true
	case 10:
		return 32, true
	}
	return 0, false
}

var crc64Table = crc64.MakeTable(crc64.ECMA)

// newCheck returns the hash of a check type, its sum in xz's byte order.
func newCheck(t byte) hash.Hash {
	switch t {
	case 1:
		return &littleEndian{crc32.NewIEEE()}
	case 4:
		return &littleEndian{crc64.New(crc64Table)}
	case 10:
		return sha256.New()
	}
	return &littleEndian{nil}
}

// littleEndian turns a CRC's big-endian Sum into xz's little-endian one;
// with no hash, it is the empty check.
type littleEndian struct{ h hash.Hash }

func (l *littleEndian) Write(p []byte) (int, error) {
	if l.h == nil {
		return len(p), nil
	}
	return l.h.Write(p)
}

func (l *littleEndian) Sum(b []byte) []byte {
	if l.h == nil {
		return b
	}
	s := l.h.Sum(nil)
	for i := len(s) - 1; i >= 0; i-- {
		b = append(b, s[i])
	}
	return b
}

func (l *littleEndian) Reset() {
	if l.h != nil {
		l.h.Reset()
	}
}

func (l *littleEndian) Size() int {
	if l.h == nil {
		return 0
	}
	return l.h.Size()
}

func (l *littleEndian) BlockSize() int { return 1 }

type teeByteReader struct{ r io.Reader }

func (t *teeByteReader) ReadByte() (byte, error) {
	var b [1]byte
	_, err := io.ReadFull(t.r, b[:])
	return b[0], err
}

// varint reads xz's variable-length integer: 7 bits a byte, low first,
// at most 9 bytes, without a needless zero byte at the end.
func varint(r io.ByteReader) (uint64, error) {
	var v uint64
	for i := range 9 {
		b, err := r.ReadByte()
		if err != nil {
			return 0, unexpected(err)
		}
		v |= uint64(b&0x7f) << (7 * i)
		if b&0x80 == 0 {
			if b == 0 && i > 0 {
				return 0, fmt.Errorf("%w: a varint ends in a zero byte", errXZ)
			}
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w: a varint of more than 9 bytes", errXZ)
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// unexpected turns the end of the input inside a structure into
// io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
