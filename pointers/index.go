package pointers

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sort"
	"sync"
)

// Pointer is a word at Addr that holds Value, an address of the same run.
type Pointer struct{ Addr, Value uint64 }

// blockLen is how many pointers a block of the index holds: a lookup
// decodes at most two blocks, and the index of blocks costs half a byte a
// pointer.
const blockLen = 32

// index holds a run's pointers sorted by value (then address), in blocks
// of blockLen encoded as varints: for each pointer the value's distance
// from the one before it (the block's first value for the first), then the
// address as a distance from the value in words, zigzag-encoded, shifted
// left by one to make room for a flag: the pointer lies in a static base
// (a module's static data or a thread's stack). Sorted values are close
// together and pointers mostly point near themselves, so a pointer takes
// about six bytes instead of sixteen.
type index struct {
	count  int
	first  []uint64 // each block's first value
	offset []uint64 // where each block starts in data, and len(data) last
	data   []byte
}

// entry is one pointer as the scanner collects it and the index holds it:
// 16 bytes, its address's lowest bit (pointers are aligned) the flag.
type entry struct{ at, value uint64 }

// staticFlag marks an entry whose pointer lies in a static base.
const staticFlag = 1

func (e entry) addr() uint64   { return e.at &^ staticFlag }
func (e entry) isStatic() bool { return e.at&staticFlag != 0 }

// encodedSize is how many bytes e takes after a pointer of value prev.
func encodedSize(e entry, prev uint64) int {
	return uvarintLen(e.value-prev) + uvarintLen(addrField(e))
}

func addrField(e entry) uint64 {
	d := int64(e.addr()/8) - int64(e.value/8)
	return uint64(d<<1^d>>63)<<1 | e.at&staticFlag
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// buildIndex encodes entries sorted by value, on every core: the size of
// each block first, so that the data is allocated once, at its size; then
// the blocks, a stretch at a time, telling release after each stretch how
// many entries are encoded, so that their memory can go while the data
// grows.
func buildIndex(es []entry, release func(encoded int)) index {
	blocks := (len(es) + blockLen - 1) / blockLen
	ix := index{count: len(es), first: make([]uint64, blocks), offset: make([]uint64, blocks+1)}
	parallelBlocks(0, blocks, func(b int) {
		part := es[b*blockLen : min((b+1)*blockLen, len(es))]
		ix.first[b] = part[0].value
		n, prev := 0, part[0].value
		for _, e := range part {
			n += encodedSize(e, prev)
			prev = e.value
		}
		ix.offset[b+1] = uint64(n)
	})
	for b := range blocks {
		ix.offset[b+1] += ix.offset[b]
	}
	ix.data = make([]byte, ix.offset[blocks])
	const stretch = 1 << 16 // blocks: 32 MiB of entries
	for from := 0; from < blocks; from += stretch {
		to := min(from+stretch, blocks)
		parallelBlocks(from, to, func(b int) {
			part := es[b*blockLen : min((b+1)*blockLen, len(es))]
			out := ix.data[ix.offset[b]:ix.offset[b+1]]
			prev, n := part[0].value, 0
			for _, e := range part {
				n += binary.PutUvarint(out[n:], e.value-prev)
				n += binary.PutUvarint(out[n:], addrField(e))
				prev = e.value
			}
		})
		if release != nil {
			release(min(to*blockLen, len(es)))
		}
	}
	return ix
}

// parallelBlocks runs f for blocks [from, to), shared among the cores
// in contiguous shares.
func parallelBlocks(from, to int, f func(b int)) {
	n := runtime.GOMAXPROCS(0)
	blocks := to - from
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := from + w*blocks/n; b < from+(w+1)*blocks/n; b++ {
				f(b)
			}
		}()
	}
	wg.Wait()
}

// decode fills buf with block b and returns the part filled. It checks
// everything it reads, so that a corrupt block read from a file never
// panics; its error says what is wrong.
func (ix *index) decode(b int, buf *[blockLen]entry) ([]entry, error) {
	data := ix.data[ix.offset[b]:ix.offset[b+1]]
	n := min(blockLen, ix.count-b*blockLen)
	prev := ix.first[b]
	for i := range n {
		dv, k := binary.Uvarint(data)
		if k <= 0 {
			return nil, fmt.Errorf("block %d: entry %d cut short", b, i)
		}
		data = data[k:]
		af, k := binary.Uvarint(data)
		if k <= 0 {
			return nil, fmt.Errorf("block %d: entry %d cut short", b, i)
		}
		data = data[k:]
		v := prev + dv
		if v < prev || i == 0 && dv != 0 {
			return nil, fmt.Errorf("block %d: entry %d out of order", b, i)
		}
		z := af >> 1
		d := int64(z>>1) ^ -int64(z&1)
		buf[i] = entry{at: uint64(int64(v/8)+d)*8 | af&staticFlag, value: v}
		prev = v
	}
	if len(data) != 0 {
		return nil, fmt.Errorf("block %d: %d bytes left over", b, len(data))
	}
	return buf[:n], nil
}

// block decodes block b of an index known to be sound (built here, or
// checked when read).
func (ix *index) block(b int, buf *[blockLen]entry) []entry {
	es, err := ix.decode(b, buf)
	if err != nil {
		panic("pointers: a checked index does not decode: " + err.Error())
	}
	return es
}

// down calls f for the pointers whose value lies in [lo, hi], highest
// value first, until f returns false.
func (ix *index) down(lo, hi uint64, f func(entry) bool) {
	var buf [blockLen]entry
	for b := sort.Search(len(ix.first), func(i int) bool { return ix.first[i] > hi }) - 1; b >= 0; b-- {
		es := ix.block(b, &buf)
		for i := len(es) - 1; i >= 0; i-- {
			switch v := es[i].value; {
			case v > hi:
			case v < lo:
				return
			default:
				if !f(es[i]) {
					return
				}
			}
		}
		if ix.first[b] < lo {
			return
		}
	}
}

// equal calls f for the pointers whose value is v, lowest address first.
func (ix *index) equal(v uint64, f func(entry)) {
	more := true
	for b := max(sort.Search(len(ix.first), func(i int) bool { return ix.first[i] >= v })-1, 0); more && b < len(ix.first); b++ {
		ix.scan(b, func(e entry) bool {
			if e.value == v {
				f(e)
			}
			more = e.value <= v
			return more
		})
	}
}

// scan decodes block b of a sound index entry by entry, for f, until f
// returns false: a lookup of one value stops at the first one past it.
func (ix *index) scan(b int, f func(entry) bool) {
	data := ix.data[ix.offset[b]:ix.offset[b+1]]
	prev := ix.first[b]
	for range min(blockLen, ix.count-b*blockLen) {
		dv, k := binary.Uvarint(data)
		data = data[k:]
		af, k := binary.Uvarint(data)
		data = data[k:]
		v := prev + dv
		z := af >> 1
		if !f(entry{at: uint64(int64(v/8)+(int64(z>>1)^-int64(z&1)))*8 | af&staticFlag, value: v}) {
			return
		}
		prev = v
	}
}

// all calls f for every pointer, by value.
func (ix *index) all(f func(entry)) {
	var buf [blockLen]entry
	for b := range ix.first {
		for _, e := range ix.block(b, &buf) {
			f(e)
		}
	}
}

// check decodes every block, on every core, and checks that the values
// ascend across blocks: an index read from a file is checked once, and
// every later decode of it then succeeds.
func (ix *index) check() error {
	blocks := len(ix.first)
	if blocks != (ix.count+blockLen-1)/blockLen || len(ix.offset) != blocks+1 || ix.offset[0] != 0 || ix.offset[blocks] != uint64(len(ix.data)) {
		return fmt.Errorf("%d pointers in %d blocks of %d bytes do not add up", ix.count, blocks, len(ix.data))
	}
	for b := range blocks {
		if ix.offset[b] > ix.offset[b+1] || b > 0 && ix.first[b] < ix.first[b-1] {
			return fmt.Errorf("block %d out of order", b)
		}
	}
	errs := make([]error, blocks)
	parallelBlocks(0, blocks, func(b int) {
		var buf [blockLen]entry
		es, err := ix.decode(b, &buf)
		if err == nil && b+1 < blocks && es[len(es)-1].value > ix.first[b+1] {
			err = fmt.Errorf("block %d: values past the next block's first", b)
		}
		errs[b] = err
	})
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
