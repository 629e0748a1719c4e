package pointers

import (
	"math/bits"
	"runtime"
	"slices"
	"sync"
)

// radixSort sorts entries by value, then address, in place: a most
// significant digit radix sort on the eight bits below the highest bit in
// which the values differ, so that values that share their high bits (one
// heap) cost no passes. A map of 32 million pointers sorts in a tenth of
// the time a comparison sort takes, and needs no second array.
func radixSort(es []entry) {
	if len(es) <= smallSort {
		insertionSort(es)
		return
	}
	lo, hi := es[0].value, es[0].value
	for _, e := range es {
		lo, hi = min(lo, e.value), max(hi, e.value)
	}
	if lo == hi {
		sortByAddr(es)
		return
	}
	shift := max(64-bits.LeadingZeros64(lo^hi)-8, 0)
	var count [256]int
	for _, e := range es {
		count[int(e.value>>shift)&0xff]++
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
			for k := int(e.value>>shift) & 0xff; k != d; k = int(e.value>>shift) & 0xff {
				es[next[k]], e = e, es[next[k]]
				next[k]++
			}
			es[next[d]] = e
			next[d]++
		}
	}
	start := 0
	for d := range 256 {
		if end[d]-start > 1 {
			radixSort(es[start:end[d]])
		}
		start = end[d]
	}
}

// smallSort is the size below which insertion sort wins.
const smallSort = 48

// parallel runs f(0) ... f(n-1), one goroutine per core taking them in
// turn.
func parallel(n int, f func(i int)) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				f(i)
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
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
	if es[0].at == es[len(es)-1].at && !slices.ContainsFunc(es, func(e entry) bool { return e.at != es[0].at }) {
		return // all alike: the places the second pass left empty
	}
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
