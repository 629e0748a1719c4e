package pointers

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// randomEntries makes n pointers around a heap, many to the same values.
func randomEntries(n int, seed uint64) []entry {
	r := rand.New(rand.NewPCG(seed, 1))
	es := make([]entry, n)
	for i := range es {
		v := 0x5555_0000_0000 + r.Uint64N(1<<16)*8 + r.Uint64N(3) // some unaligned
		if i%7 == 0 {
			v = 0x7fff_1234_0000 // one object many point to
		}
		es[i] = entry{at: 0x5555_0000_0000 + uint64(i)*8, value: v}
		if i%5 == 0 {
			es[i].at |= staticFlag
		}
	}
	r.Shuffle(len(es), func(i, j int) { es[i], es[j] = es[j], es[i] })
	return es
}

func TestSortEntries(t *testing.T) {
	for _, n := range []int{0, 1, 47, 48, 49, 1000, 100_000} {
		es := randomEntries(n, uint64(n))
		want := slices.Clone(es)
		slices.SortFunc(want, func(a, b entry) int {
			if less(a, b) {
				return -1
			}
			if less(b, a) {
				return 1
			}
			return 0
		})
		radixSort(es)
		if !slices.Equal(es, want) {
			t.Errorf("%d entries: not sorted as a comparison sort sorts them", n)
		}
	}
}

func TestIndex(t *testing.T) {
	es := randomEntries(20_000, 7)
	radixSort(es)
	ix := buildIndex(es, nil)
	if err := ix.check(); err != nil {
		t.Fatal(err)
	}
	var all []entry
	ix.all(func(e entry) { all = append(all, e) })
	if !slices.Equal(all, es) {
		t.Fatal("the index does not give back what it was built of")
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		hi := es[r.IntN(len(es))].value + r.Uint64N(16)
		lo := hi - r.Uint64N(0x400)
		var want, got []entry
		for i := len(es) - 1; i >= 0; i-- {
			if es[i].value >= lo && es[i].value <= hi {
				want = append(want, es[i])
			}
		}
		ix.down(lo, hi, func(e entry) bool { got = append(got, e); return true })
		if !slices.Equal(got, want) {
			t.Fatalf("down(%x, %x): %d pointers, want %d", lo, hi, len(got), len(want))
		}
		v := es[r.IntN(len(es))].value
		want, got = nil, nil
		for _, e := range es {
			if e.value == v {
				want = append(want, e)
			}
		}
		ix.equal(v, func(e entry) { got = append(got, e) })
		if !slices.Equal(got, want) {
			t.Fatalf("equal(%x): %d pointers, want %d", v, len(got), len(want))
		}
	}
	var n int
	ix.down(0, 1<<64-1, func(entry) bool { n++; return n < 10 })
	if n != 10 {
		t.Errorf("down went on after being told to stop: %d", n)
	}
}

// TestIndexCorrupt: a damaged index fails its check, without panicking.
func TestIndexCorrupt(t *testing.T) {
	es := randomEntries(1000, 3)
	radixSort(es)
	for i := range 200 {
		ix := buildIndex(es, nil)
		ix.data = slices.Clone(ix.data)
		ix.data[(i*7919)%len(ix.data)] ^= byte(1 << (i % 8))
		if err := ix.check(); err == nil {
			// A flipped bit may still decode in order: then the index
			// must still be read without fault.
			ix.all(func(entry) {})
		}
	}
}
