package main

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/procmem/procmem/addrexpr"
	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/pointers"
	"github.com/procmem/procmem/procfs"
	"github.com/procmem/procmem/scan"
	"github.com/procmem/procmem/userfiles"
)

var pointersVerb = verb{
	name: "pointers",
	args: "ADDR [--depth N] [--max-offset OFF] [--stack N] [--also RUN=ADDR]... [--verify PID[=ADDR]] [--save-map FILE] [--limit N]\n" +
		"       procmem [global flags] pointers --save-map FILE [ADDR]\n" +
		"       procmem [global flags] pointers --rescan RESULTS (ADDR | --value V [-t TYPE])",
	short: "find chains of pointers from static data to ADDR that find it again after a restart",
	long: "A value on the heap moves every run; a chain of pointers from a module's static data does not. pointers prints\n" +
		"each chain as an address expression that read -r, write -a, freeze and the scan prompt's set take, the one a\n" +
		"human would pick first: the fewest pointers, a base in the program before one in a library before one on a stack,\n" +
		"then the smallest offsets. Pointers are aligned words of writable memory; a module's static data is what its ELF\n" +
		"program headers say (writable segments, .bss included); with --stack N the stacks of the first N threads count\n" +
		"too, counted in the order the threads started (0 the main thread), written [stack:N]-OFF below the stack's top.\n" +
		"The process is never stopped.\n\n" +
		"Chains that hold in one run are mostly accidents. Save a map of each run, then search keeping only the chains\n" +
		"that hold in every run: each candidate is checked against every run while searching, and what each run removed\n" +
		"is said on stderr:\n" +
		"  procmem -p 4242 pointers --save-map run1.map 55d0c0a012c0     (the game, health at 55d0c0a012c0)\n" +
		"  procmem -p 4301 pointers --save-map run2.map 5612f2e3e2c0     (restarted: health moved)\n" +
		"  procmem -p 4388 pointers 55f1a81b52c0 --also run1.map --also run2.map > chains.txt\n" +
		"RUN is a map file, whose own ADDR is used when none is given, or the PID of a live process. A chain file pasted\n" +
		"back with --rescan keeps the chains that still lead to ADDR (or to a value) in the process now.\n" +
		"The map format is in docs/design.md.\n\n" + exprHelp,
	setup:       setupPointers,
	captures:    true,
	needsTarget: true,
}

// pointersFlags are the pointers verb's flags.
type pointersFlags struct {
	depth              int
	maxOffset          string
	stacks             int
	stackSize          string
	limit              int
	also               []string
	verify, saveMap    string
	rescan             string
	typ, value, endian string
	lim                pointers.Limits
}

func setupPointers(flags *pflag.FlagSet) func(*env, []string) error {
	var f pointersFlags
	flags.IntVar(&f.depth, "depth", 4, "follow at most `N` pointers")
	flags.StringVar(&f.maxOffset, "max-offset", "1000", "add at most `OFF` (hex) after each pointer")
	flags.IntVar(&f.stacks, "stack", 0, "count the stacks of the first `N` threads as static bases")
	flags.StringVar(&f.stackSize, "stack-size", "4000", "with --stack: bases lie at most `SIZE` (hex) below a stack's top")
	flags.IntVar(&f.limit, "limit", 100, "print at most `N` chains")
	flags.StringArrayVar(&f.also, "also", nil, "keep the chains that also hold in `RUN=ADDR`: a map file or a PID, and the address there (repeatable)")
	flags.StringVar(&f.verify, "verify", "", "keep the chains that lead, in process `PID`, to ADDR there (or to the value the target holds now)")
	flags.StringVar(&f.saveMap, "save-map", "", "save this run's pointer map to `FILE`, for --also")
	flags.StringVar(&f.rescan, "rescan", "", "re-check the chains in `RESULTS` (pointers' output) against the process")
	flags.StringVarP(&f.typ, "type", "t", "int32", "`TYPE` of --value, and of the value --verify compares: int8 ... uint64, float, double")
	flags.StringVar(&f.value, "value", "", "with --rescan or --verify: keep the chains whose target holds `V`")
	flags.StringVarP(&f.endian, "endian", "e", "little", "byte `ORDER` of --value: little or big")
	return func(e *env, args []string) error {
		if err := f.check(args); err != nil {
			return err
		}
		if f.rescan != "" {
			return rescan(e, f, args)
		}
		return searchPointers(e, f, args)
	}
}

// check checks the flags together, and fills in the limits.
func (f *pointersFlags) check(args []string) error {
	maxOff, err := parseAddr(f.maxOffset)
	if err != nil {
		return err
	}
	stackSize, err := parseAddr(f.stackSize)
	if err != nil {
		return err
	}
	switch {
	case len(args) > 1:
		return usagef("pointers: want one ADDR, not %d arguments", len(args))
	case f.depth < 1 || f.depth > 16:
		return usagef("pointers: --depth takes 1 to 16")
	case f.limit < 1:
		return usagef("pointers: --limit takes a positive number")
	case f.stacks < 0:
		return usagef("pointers: --stack takes a number of threads")
	case maxOff > 1<<32:
		return usagef("pointers: --max-offset takes at most 100000000")
	case f.rescan != "" && (len(args) == 1) == (f.value != ""):
		return usagef("pointers: --rescan wants ADDR or --value, one of them")
	case f.rescan != "" && (len(f.also) > 0 || f.verify != "" || f.saveMap != ""):
		return usagef("pointers: --rescan goes alone, without --also, --verify or --save-map")
	case f.rescan == "" && len(args) == 0 && f.saveMap == "":
		return usagef("pointers: want ADDR (or --save-map FILE alone, or --rescan RESULTS)")
	case f.rescan == "" && f.value != "" && f.verify == "":
		return usagef("pointers: --value goes with --rescan or --verify")
	}
	if _, err := scan.ParseType(f.typ, f.endian); err != nil {
		return usagef("pointers: %s", syntaxMsg(err))
	}
	if f.value != "" {
		if _, err := f.valueBytes(); err != nil {
			return err
		}
	}
	if f.verify != "" { // before the long work, not after it
		pid, at, hasAt := strings.Cut(f.verify, "=")
		if _, err := resolvePID(pid); err != nil {
			return err
		}
		if _, err := parseExpr(at); hasAt && err != nil {
			return err
		}
	}
	f.lim = pointers.Limits{Depth: f.depth, MaxOffset: maxOff, Stacks: f.stacks, StackSize: stackSize, Nodes: 1 << 20, Chains: 1 << 20}
	return nil
}

// valueBytes is --value, encoded as --type.
func (f *pointersFlags) valueBytes() ([]byte, error) {
	t, err := scan.ParseType(f.typ, f.endian)
	if err != nil {
		return nil, usagef("pointers: %s", syntaxMsg(err))
	}
	v, err := t.ParseValue(f.value)
	if err != nil {
		return nil, usagef("pointers: --value: %s", syntaxMsg(err))
	}
	return t.Encode(v), nil
}

// searchPointers takes this run's map, reads the others, searches, and
// prints the chains; or saves the map.
func searchPointers(e *env, f pointersFlags, args []string) error {
	var target uint64
	if len(args) == 1 {
		var err error
		if target, err = resolveAddr(e, args[0]); err != nil {
			return err
		}
	}
	also, err := parseAlso(f.also)
	if err != nil {
		return err
	}
	mem, err := openMemory(e, false)
	if err != nil {
		return err
	}
	defer mem.Close()
	src, err := targetSource(e, mem)
	if err != nil {
		return err
	}
	m, err := takeMap(e, src, e.pid(), target, f.stacks)
	if err != nil {
		return err
	}
	if f.saveMap != "" {
		if err := saveMap(e, m, f.saveMap); err != nil {
			return err
		}
	}
	if len(args) == 0 {
		return nil
	}
	// The other runs are read after this one's map is taken: the memory
	// of taking it is given back by then.
	others, err := otherRuns(e, also, f.stacks)
	if err != nil {
		return err
	}
	defer func() {
		for _, r := range others {
			r.Map.Close()
		}
	}()
	runs := append([]pointers.Run{{Map: m, Target: target, Name: "this run"}}, others...)
	res := pointers.Search(runs, f.lim)
	namer := addrexpr.NewNamer(m.Regions)
	chains := make([]string, len(res.Chains))
	for i, c := range res.Chains {
		chains[i] = c.Expr(namer)
	}
	sayRemoved(e, runs, res, f.lim)
	if f.verify != "" {
		if chains, err = verify(e, f, mem, m.Regions, target, chains); err != nil {
			return err
		}
	}
	if len(chains) == 0 {
		err := fmt.Errorf("no chain of at most %d pointers from static data reaches 0x%x in process %d%s", f.depth, target, e.pid(), inEvery(runs))
		if f.saveMap != "" { // the map is what was asked for; the search came with it
			stderrf(e, "%s", message(err))
			return nil
		}
		return err
	}
	if len(chains) > f.limit {
		stderrf(e, "%d chains; the best %d printed (--limit %d)", len(chains), f.limit, f.limit)
		chains = chains[:f.limit]
	}
	for _, c := range chains {
		fmt.Fprintln(e.stdout, c)
	}
	return nil
}

func inEvery(runs []pointers.Run) string {
	if len(runs) == 1 {
		return ""
	}
	return fmt.Sprintf(" that holds in all %d runs", len(runs))
}

// targetSource is what a map of the target is taken from: the live
// process, or the captured one (its modules' program headers from its
// memory, its threads' stacks from their registers).
func targetSource(e *env, mem *memory.Reader) (pointers.Source, error) {
	c := e.capture
	if c == nil {
		return pointers.LiveSource(e.proc, mem)
	}
	regions := c.Regions()
	mods := pointers.FindModules(regions, c.Executable(), mem, nil)
	return pointers.Source{Memory: mem, Regions: regions, Modules: mods, Stacks: capturedStacks(c, regions)}, nil
}

// takeMap takes the pointer map of process pid from src, showing its
// progress, and says which of the first stacks threads' stacks are
// unknown.
func takeMap(e *env, src pointers.Source, pid int, target uint64, stacks int) (*pointers.Map, error) {
	if r, ok := procfs.RegionAt(src.Regions, target); ok && !r.Perms.Write {
		src.Also = pointers.Range{Start: r.Start, End: r.End}
	}
	var total uint64
	for _, r := range src.Regions {
		if r.Perms.Read && r.Perms.Write && !r.Unreadable() {
			total += 2 * r.Size() // read twice: counted, then collected
		}
	}
	prog := newProgress(e, total, fmt.Sprintf("pointers of process %d", pid))
	src.Progress = prog.add
	m, err := pointers.Take(e.ctx, src)
	prog.finish()
	if err != nil {
		return nil, err
	}
	m.PID, m.Target = pid, target
	for _, s := range m.Stacks[:min(stacks, len(m.Stacks))] {
		if !s.Known() {
			stderrf(e, "process %d: thread %d (TID %d) kept running: its stack is not known", pid, s.Thread, s.TID)
		}
	}
	return m, nil
}

// saveMap writes the map to path, whole or not at all.
func saveMap(e *env, m *pointers.Map, path string) error {
	out, err := userfiles.Create(path, 0o600) // a process's addresses: for whoever took them
	if err != nil {
		return err
	}
	defer out.Abort()
	if err := pointers.WriteMap(out, m); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := out.Commit(); err != nil {
		return err
	}
	stderrf(e, "saved the pointer map of process %d to %s: %d pointers, %d in static data", m.PID, path, m.Count(), len(m.Bases()))
	for _, s := range m.Stacks {
		if !s.Known() {
			stderrf(e, "%s: thread %d (TID %d) kept running: chains from [stack:%d] cannot be checked against it", path, s.Thread, s.TID, s.Thread)
		}
	}
	return nil
}

// alsoRun is one --also RUN[=ADDR] as given: a PID or a map file, and
// the target's address there, an expression of that run.
type alsoRun struct {
	spec, where, at string
	hasAt           bool
	pid             int // 0 for a map file
}

// parseAlso checks the --also arguments before the long work starts: a
// PID needs its ADDR, a map file must open.
func parseAlso(specs []string) ([]alsoRun, error) {
	var runs []alsoRun
	for _, spec := range specs {
		a := alsoRun{spec: spec, where: spec}
		if i := strings.LastIndexByte(spec, '='); i >= 0 {
			a.where, a.at, a.hasAt = spec[:i], spec[i+1:], true
			if _, err := parseExpr(a.at); err != nil {
				return nil, err
			}
		}
		if _, err := strconv.Atoi(a.where); err == nil {
			if !a.hasAt {
				return nil, usagef("pointers: --also %s: a live process needs its ADDR: --also %s=ADDR", spec, a.where)
			}
			if a.pid, err = resolvePID(a.where); err != nil {
				return nil, err
			}
		} else if f, err := userfiles.Open(a.where); err != nil {
			return nil, err
		} else {
			f.Close()
		}
		runs = append(runs, a)
	}
	return runs, nil
}

// otherRuns reads the runs of --also: map files, or live processes whose
// maps are taken.
func otherRuns(e *env, also []alsoRun, stacks int) ([]pointers.Run, error) {
	var runs []pointers.Run
	for _, a := range also {
		run, err := otherRun(e, a, stacks)
		if err != nil {
			return nil, err
		}
		runs = append(runs, run)
	}
	return runs, nil
}

// otherRun reads one --also run; a map's ADDR is taken from the map when
// not given.
func otherRun(e *env, a alsoRun, stacks int) (pointers.Run, error) {
	if a.pid != 0 {
		return liveRun(e, a.pid, a.at, stacks)
	}
	m, err := readMap(a.where)
	if err != nil {
		return pointers.Run{}, err
	}
	run := pointers.Run{Map: m, Target: m.Target, Name: a.where}
	if a.hasAt {
		x, _ := parseExpr(a.at) // checked
		r := &addrexpr.Resolver{Regions: m.Regions, Stack: func(n int) (uint64, error) { return pointers.StackTop(m.Stacks, n) }}
		if run.Target, err = r.Eval(x[0].x); err != nil {
			return pointers.Run{}, usageOf(fmt.Errorf("--also %s: %w", a.spec, err))
		}
	}
	if run.Target == 0 {
		return pointers.Run{}, usagef("pointers: --also %s: the map was saved without an ADDR: give it, --also %s=ADDR", a.spec, a.where)
	}
	return run, nil
}

// liveRun takes the map of another live process.
func liveRun(e *env, pid int, at string, stacks int) (pointers.Run, error) {
	p, err := procfs.Open(pid)
	if err != nil {
		return pointers.Run{}, err
	}
	defer p.Close()
	target, err := resolveAddr(&env{proc: p}, at)
	if err != nil {
		return pointers.Run{}, err
	}
	mem, err := memory.Open(p, memory.Self, false)
	if err != nil {
		return pointers.Run{}, err
	}
	defer mem.Close()
	src, err := pointers.LiveSource(p, mem)
	if err != nil {
		return pointers.Run{}, err
	}
	m, err := takeMap(e, src, p.PID, target, stacks)
	if err != nil {
		return pointers.Run{}, err
	}
	return pointers.Run{Map: m, Target: target, Name: fmt.Sprintf("process %d", pid)}, nil
}

// readMap reads a pointer map file.
func readMap(path string) (*pointers.Map, error) {
	in, err := userfiles.Open(path)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	m, err := pointers.ReadMapFile(in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// sayRemoved says what each run removed, and what the limits cut.
func sayRemoved(e *env, runs []pointers.Run, res pointers.Result, lim pointers.Limits) {
	if len(runs) > 1 {
		parts := []string{fmt.Sprintf("%d candidates in this run", res.Candidates)}
		for i, r := range runs[1:] {
			parts = append(parts, fmt.Sprintf("%s removed %d", r.Name, res.Removed[i+1]))
		}
		stderrf(e, "%s; %d chains hold in all %d runs", strings.Join(parts, ", "), len(res.Chains), len(runs))
	}
	for _, level := range res.Full {
		stderrf(e, "%d addresses %d pointers from the target were searched, no more: chains through others are missing", lim.Nodes, level)
	}
	if res.ChainsCut {
		stderrf(e, "more than %d chains: the search stopped there", lim.Chains)
	}
	if res.PlacesCut > 0 {
		stderrf(e, "%d addresses had more than 64 places in another run: chains through the rest are missing", res.PlacesCut)
	}
}

// verify keeps the chains that lead, in process --verify, to its ADDR or
// to the value the target holds (--value, or what it holds now here).
func verify(e *env, f pointersFlags, mem *memory.Reader, regions []procfs.Region, target uint64, chains []string) ([]string, error) {
	pidSpec, at, hasAt := strings.Cut(f.verify, "=")
	pid, err := resolvePID(pidSpec)
	if err != nil {
		return nil, err
	}
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
	var leads pointers.Leads
	switch {
	case hasAt:
		want, err := resolveAddr(&env{proc: p}, at)
		if err != nil {
			return nil, err
		}
		leads = leadsTo(r, want)
	default:
		want, err := f.valueBytes()
		if f.value == "" {
			want, err = f.heldAt(mem, regions, target)
		}
		if err != nil {
			return nil, err
		}
		leads = holding(r, want)
	}
	saved, err := pointers.ParseResults(strings.Join(chains, "\n"))
	if err != nil {
		return nil, err
	}
	kept, dropped := pointers.Filter(saved, leads)
	stderrf(e, "--verify %d dropped %d of %d chains", pid, dropped, len(saved))
	out := make([]string, len(kept))
	for i, c := range kept {
		out[i] = c.Text
	}
	return out, nil
}

// heldAt reads the value of --type the target holds now.
func (f *pointersFlags) heldAt(mem *memory.Reader, regions []procfs.Region, target uint64) ([]byte, error) {
	t, err := scan.ParseType(f.typ, f.endian)
	if err != nil {
		return nil, usagef("pointers: %s", syntaxMsg(err))
	}
	b := make([]byte, t.Size)
	if err := mem.ReadRange(b, target, regions); err != nil {
		return nil, fmt.Errorf("reading the target's value at 0x%x: %w", target, err)
	}
	return b, nil
}

// leadsTo tells the chains that lead to want, followed in r's process.
func leadsTo(r *resolver, want uint64) pointers.Leads {
	ar := r.addrexpr()
	return func(x addrexpr.Expr) bool {
		v, err := ar.Eval(x)
		return err == nil && v == want
	}
}

// holding tells the chains that lead to where value lies, in r's process.
func holding(r *resolver, value []byte) pointers.Leads {
	ar := r.addrexpr()
	got := make([]byte, len(value))
	return func(x addrexpr.Expr) bool {
		v, err := ar.Eval(x)
		return err == nil && r.mem.ReadRange(got, v, r.regions) == nil && bytes.Equal(got, value)
	}
}

// rescan re-checks saved chains against the process: those that lead to
// ADDR, or to where the value lies, are printed again.
func rescan(e *env, f pointersFlags, args []string) error {
	in, err := userfiles.Open(f.rescan)
	if err != nil {
		return err
	}
	text, err := io.ReadAll(in)
	in.Close()
	if err != nil {
		return err
	}
	saved, err := pointers.ParseResults(string(text))
	if err != nil {
		return usagef("pointers: --rescan %s: %s", f.rescan, err)
	}
	r, err := targetResolver(e)
	if err != nil {
		return err
	}
	defer r.close()
	var leads pointers.Leads
	what := ""
	if len(args) == 1 {
		want, err := resolveAddr(e, args[0])
		if err != nil {
			return err
		}
		leads, what = leadsTo(r, want), fmt.Sprintf("0x%x", want)
	} else {
		value, _ := f.valueBytes() // checked
		leads, what = holding(r, value), fmt.Sprintf("%s %s", f.typ, f.value)
	}
	kept, dropped := pointers.Filter(saved, leads)
	stderrf(e, "rescan: %d of %d chains lead to %s in process %d; %d removed", len(kept), len(saved), what, e.pid(), dropped)
	if len(kept) == 0 {
		return errSilent
	}
	for _, c := range kept {
		fmt.Fprintln(e.stdout, c.Text)
	}
	return nil
}
