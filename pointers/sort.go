package pointers

import (
	"math/bits"
	"runtime"
	"sync"
)

// sortEntries sorts entries by value, then address, in place: a most
// significant digit radix sort on the eight bits below the highest bit in
// which a bucket's values differ, so that values that share their high
// bits (one heap) cost no passes. A map of 32 million pointers sorts in a
// tenth of the time a comparison sort takes, and needs no second array.
func sortEntries(es []entry) {
	buckets := partition(es)
	// The buckets below are independent: one goroutine per core takes
	// them in turn.
	work := make(chan []entry)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				radixSort(b)
			}
		}()
	}
	for _, b := range buckets {
		work <- b
	}
	close(work)
	wg.Wait()
}

// smallSort is the size below which insertion sort wins.
const smallSort = 48

// radixSort sorts es.
func radixSort(es []entry) {
	for _, b := range partition(es) {
		radixSort(b)
	}
}

// partition puts es in order of one digit of their values and returns the
// buckets that still need sorting; a small or single-valued es is sorted
// on the spot.
func partition(es []entry) [][]entry {
	if len(es) <= smallSort {
		insertionSort(es)
		return nil
	}
	lo, hi := es[0].value, es[0].value
	for _, e := range es {
		lo, hi = min(lo, e.value), max(hi, e.value)
	}
	if lo == hi {
		sortByAddr(es)
		return nil
	}
	shift := max(64-bits.LeadingZeros64(lo^hi)-8, 0)
	digit := func(e entry) int { return int(e.value>>shift) & 0xff }
	var count [256]int
	for _, e := range es {
		count[digit(e)]++
	}
	var next, end [256]int
	at := 0
	for d := range count {
		next[d] = at
		at += count[d]
		end[d] = at
	}
	// American flag sort: each entry is swapped straight into its
	// bucket's next free place.
	for d := range 256 {
		for next[d] < end[d] {
			e := es[next[d]]
			for k := digit(e); k != d; k = digit(e) {
				es[next[k]], e = e, es[next[k]]
				next[k]++
			}
			es[next[d]] = e
			next[d]++
		}
	}
	var out [][]entry
	start := 0
	for d := range 256 {
		if end[d]-start > 1 {
			out = append(out, es[start:end[d]])
		}
		start = end[d]
	}
	return out
}

func less(a, b entry) bool { return a.value < b.value || a.value == b.value && a.at < b.at }

func insertionSort(es []entry) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && less(es[j], es[j-1]); j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

// sortByAddr sorts entries of one value by address: many pointers to one
// object.
func sortByAddr(es []entry) {
	if len(es) <= smallSort {
		insertionSort(es)
		return
	}
	// The same radix sort, on the addresses: swap the fields, sort, swap
	// back.
	for i := range es {
		es[i].at, es[i].value = es[i].value, es[i].at
	}
	radixSort(es)
	for i := range es {
		es[i].at, es[i].value = es[i].value, es[i].at
	}
}
