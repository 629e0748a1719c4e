package main

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"runtime"
	"sort"
	"sync"

	"github.com/spf13/pflag"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

var pointersVerb = verb{
	name:  "pointers",
	args:  "ADDR [--depth N] [--max-offset OFF] [--limit N] [--verify PID]",
	short: "find pointer chains from a module's globals to ADDR, to find it again after a restart",
	long: "Prints each chain as an address expression that read -r, write -a and watch -r take, shortest and lowest offsets\n" +
		"first. Pointers are looked for in writable memory, aligned; static bases are the writable data of the executable and\n" +
		"its libraries (.data, .bss). --verify keeps the chains that also resolve in another process, such as the same\n" +
		"program started again, which weeds out the accidental ones.\n" + exprHelp,
	setup:       setupPointers,
	needsTarget: true,
}

func setupPointers(flags *pflag.FlagSet) func(*env, []string) error {
	depth := flags.Int("depth", 4, "follow at most `N` pointers")
	maxOff := flags.String("max-offset", "1000", "add at most `OFF` (hex) after each pointer")
	limit := flags.Int("limit", 100, "print at most `N` chains")
	verify := flags.String("verify", "", "keep the chains that also resolve in process `PID`")
	return func(e *env, args []string) error {
		if len(args) != 1 {
			return usagef("pointers: want one ADDR")
		}
		off, err := parseAddr(*maxOff)
		if err != nil {
			return err
		}
		if *depth < 1 || *depth > 16 || *limit < 1 {
			return usagef("pointers: --depth takes 1 to 16, --limit a positive number")
		}
		var other int
		if *verify != "" {
			if other, err = resolvePID(*verify); err != nil {
				return err
			}
		}
		target, err := resolveAddr(e, args[0])
		if err != nil {
			return err
		}
		return pointers(e, target, searchLimits{depth: *depth, maxOffset: off, results: *limit, nodes: 1 << 20}, other)
	}
}

// pointers scans the target's writable memory for pointers, searches the
// chains to target and prints them (those that resolve in process other
// too, if other is not 0).
func pointers(e *env, target uint64, lim searchLimits, other int) error {
	regions, err := e.proc.Maps()
	if err != nil {
		return err
	}
	mem, err := openMemory(e, false)
	if err != nil {
		return err
	}
	defer mem.Close()
	m, err := scanPointers(e, mem, regions)
	if err != nil {
		return err
	}
	chains := findChains(m, staticBases(regions), target, searchLimits{depth: lim.depth, maxOffset: lim.maxOffset, results: lim.results * 10, nodes: lim.nodes})
	if other != 0 {
		if chains, err = verified(chains, other); err != nil {
			return err
		}
	}
	chains = chains[:min(len(chains), lim.results)]
	if len(chains) == 0 {
		return fmt.Errorf("no chain of at most %d pointers from a module's data reaches 0x%x in process %d", lim.depth, target, e.pid())
	}
	for _, c := range chains {
		fmt.Fprintln(e.stdout, c)
	}
	return nil
}

// scanPointers collects every aligned word of the writable regions that
// points into a mapped region, on every core, reading as the other verbs
// read: pages without data are not read.
func scanPointers(e *env, mem *memory.Reader, regions []procfs.Region) (pointerMap, error) {
	var scan []procfs.Region
	var total uint64
	for _, r := range regions {
		if r.Perms.Write && r.Perms.Read && !r.Unreadable() {
			scan = append(scan, r)
			total += r.Size()
		}
	}
	prog := newProgress(e, total, "scanning for pointers")
	defer prog.finish()
	mapped := func(v uint64) bool {
		i := sort.Search(len(regions), func(i int) bool { return regions[i].End > v })
		return i < len(regions) && regions[i].Start <= v
	}
	work := make(chan procfs.Region)
	var mu sync.Mutex
	var chunks [][]pointer // filled chunks of every worker: never copied to grow
	var firstErr error
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, chunkSize)
			var found []pointer
			keep := func() {
				mu.Lock()
				chunks = append(chunks, found)
				mu.Unlock()
				found = nil
			}
			for r := range work {
				g := mem.Region(r)
				_, err := g.Stream(e.ctx, r.Start, r.End, buf, memory.Sink{
					Data: func(addr uint64, b []byte) error {
						for i := (8 - addr%8) % 8; i+8 <= uint64(len(b)); i += 8 {
							if v := binary.LittleEndian.Uint64(b[i:]); v >= 0x10000 && mapped(v) {
								if found == nil {
									found = make([]pointer, 0, pointerChunk)
								}
								found = append(found, pointer{addr + i, v})
								if len(found) == pointerChunk {
									keep()
								}
							}
						}
						prog.add(uint64(len(b)))
						return nil
					},
					Zeros: func(addr, n uint64) error { prog.add(n); return nil },
				})
				g.Close()
				if err != nil && memory.Classify(err) == memory.Gone {
					mu.Lock()
					firstErr = err
					mu.Unlock()
				}
			}
			if len(found) > 0 {
				keep()
			}
		}()
	}
	for _, r := range scan {
		work <- r
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	// One slice of the exact size, each chunk let go once copied.
	n := 0
	for _, c := range chunks {
		n += len(c)
	}
	all := make([]pointer, 0, n)
	for i, c := range chunks {
		all = append(all, c...)
		chunks[i] = nil
	}
	return sortPointers(all), nil
}

// pointerChunk is how many pointers a worker collects before it hands the
// chunk over: a slice that grows by copying would hold twice the memory.
const pointerChunk = 1 << 16

// staticBases are the writable data of the modules: file-backed writable
// regions, and the anonymous one right after one of them (.bss past the
// file), each named after its file's base name, offset from the module's
// load base.
func staticBases(regions []procfs.Region) staticBase {
	type base struct {
		start, end uint64
		module     string
		loadBase   uint64
	}
	loads := map[string]uint64{}
	var bases []base
	for i, r := range regions {
		fileBacked := r.Inode != 0 && !r.Pseudo() && r.Path != ""
		if fileBacked {
			if _, ok := loads[r.Path]; !ok {
				loads[r.Path] = r.Start
			}
		}
		switch {
		case fileBacked && r.Perms.Write && !r.Perms.Shared:
			bases = append(bases, base{r.Start, r.End, filepath.Base(r.Path), loads[r.Path]})
		case r.Path == "" && r.Perms.Write && i > 0 && regions[i-1].End == r.Start &&
			regions[i-1].Inode != 0 && regions[i-1].Perms.Write && !regions[i-1].Pseudo():
			prev := regions[i-1]
			bases = append(bases, base{r.Start, r.End, filepath.Base(prev.Path), loads[prev.Path]})
		}
	}
	return func(addr uint64) (string, uint64, bool) {
		i := sort.Search(len(bases), func(i int) bool { return bases[i].end > addr })
		if i < len(bases) && bases[i].start <= addr && addr%8 == 0 {
			return bases[i].module, addr - bases[i].loadBase, true
		}
		return "", 0, false
	}
}

// verified keeps the chains that resolve in process pid.
func verified(chains []chain, pid int) ([]chain, error) {
	p, err := procfs.Open(pid)
	if err != nil {
		return nil, fmt.Errorf("--verify %d: %w", pid, err)
	}
	defer p.Close()
	r, err := newResolver(p)
	if err != nil {
		return nil, fmt.Errorf("--verify %d: %w", pid, err)
	}
	defer r.close()
	var kept []chain
	for _, c := range chains {
		x, err := parseExpr(c.String())
		if err != nil {
			continue
		}
		if _, err := r.eval(x); err == nil {
			kept = append(kept, c)
		}
	}
	return kept, nil
}
