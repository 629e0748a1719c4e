//go:build linux

package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/procmem/procmem/pointers"
)

// The pointers verb against shuffled (testdata/shuffled.c), a game whose
// heap layout changes from run to run: its player behind a global pointer
// of the program and one of its library, its gold reached from a thread's
// stack alone.

var (
	shuffledOnce sync.Once
	shuffledBin  string
	shuffledErr  error
)

// buildShuffled builds shuffled and its library once: the program is
// linked with libshuffled.so, found beside it.
func buildShuffled(t testing.TB) string {
	shuffledOnce.Do(func() {
		dir := filepath.Join(binDir, "shuffled.d")
		os.Mkdir(dir, 0o755)
		lib := exec.Command("cc", "-O0", "-g", "-Wall", "-shared", "-fPIC", "-o", filepath.Join(dir, "libshuffled.so"), "testdata/libshuffled.c")
		bin := filepath.Join(dir, "shuffled")
		prog := exec.Command("cc", "-O0", "-g", "-Wall", "-pthread", "-o", bin, "testdata/shuffled.c", "-L"+dir, "-lshuffled", "-Wl,-rpath,$ORIGIN")
		for _, c := range []*exec.Cmd{lib, prog} {
			if out, err := c.CombinedOutput(); err != nil {
				shuffledErr = fmt.Errorf("%s: %v\n%s", c, err, out)
				return
			}
		}
		shuffledBin = bin
	})
	if shuffledErr != nil {
		t.Fatal(shuffledErr)
	}
	return shuffledBin
}

// shuffledRun is one run of shuffled.
type shuffledRun struct {
	pid          int
	health, gold uint64
}

func startShuffled(t testing.TB) shuffledRun {
	t.Helper()
	h := startHelper(t, buildShuffled(t))
	h.discardOutput()
	return shuffledRun{pid: h.pid, health: h.addr["health"], gold: h.addr["gold"]}
}

// symbol returns the offset of a symbol of a binary from its load base,
// as nm tells it (the binaries are position-independent: their first
// segment is at 0).
func symbol(t *testing.T, bin, name string) uint64 {
	t.Helper()
	requireTool(t, "nm")
	r := run(t, "", "nm", bin)
	mustSucceed(t, r, "nm "+bin)
	for _, line := range strings.Split(r.stdout, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[2] == name {
			v, _ := strconv.ParseUint(f[0], 16, 64)
			return v
		}
	}
	t.Fatalf("no %s in nm %s", name, bin)
	return 0
}

// resolve follows an address expression in process pid, as read -r does,
// and returns the address it leads to.
func resolve(t *testing.T, pid int, x string) (uint64, bool) {
	t.Helper()
	r := procmem(t, "-p", itoa(pid), "read", "-r", x+":+1")
	lines := strings.Split(r.stdout, "\n")
	if r.code != 0 || len(lines) < 2 {
		return 0, false
	}
	v, err := strconv.ParseUint(strings.Fields(lines[1] + " x")[0], 16, 64)
	return v, err == nil
}

// chainsOf runs pointers and returns the chains it printed, failing the
// test unless it succeeded.
func chainsOf(t *testing.T, args ...string) ([]string, string) {
	t.Helper()
	r := procmem(t, append([]string{"-p"}, args...)...)
	mustSucceed(t, r, "pointers "+strings.Join(args, " "))
	return strings.Fields(r.stdout), r.stderr
}

// removedRe reads what each run removed, as pointers says it.
var removedRe = regexp.MustCompile(`(\S+) removed (\d+)`)

// TestPointerMapLive: --save-map writes a map of a live process without
// stopping it: its pointers (the program's global to the player among
// them), its modules with the program marked and the static data of each
// (the library's .bss too), its threads' stacks, and the address it was
// saved for. Nothing is left behind when it cannot be written.
func TestPointerMapLive(t *testing.T) {
	g := startShuffled(t)
	bin := buildShuffled(t)
	path := filepath.Join(t.TempDir(), "run.map")
	stopped := watchStopped(g.pid)
	_, stderr := chainsOf(t, itoa(g.pid), "pointers", "--save-map", path, fmt.Sprintf("%x", g.health))
	if s := stopped(); s != "" {
		t.Errorf("the process was stopped while its map was taken: %s", s)
	}
	if !strings.Contains(stderr, "saved the pointer map of process "+itoa(g.pid)) {
		t.Errorf("--save-map said %q", stderr)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := pointers.ReadMap(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.PID != g.pid || m.Target != g.health {
		t.Errorf("the map says process %d, target %#x; want %d, %#x", m.PID, m.Target, g.pid, g.health)
	}
	var program, lib pointers.Module
	for _, mod := range m.Modules {
		switch filepath.Base(mod.Path) {
		case "shuffled":
			program = mod
		case "libshuffled.so":
			lib = mod
		}
		if mod.Main && filepath.Base(mod.Path) != "shuffled" {
			t.Errorf("%s is marked as the program", mod.Path)
		}
	}
	inStatic := func(mod pointers.Module, off uint64) bool {
		return slices.ContainsFunc(mod.Static, func(r pointers.Range) bool { return off >= r.Start && off < r.End })
	}
	playerPtr := symbol(t, bin, "player_ptr")
	if !program.Main || !inStatic(program, playerPtr) || !inStatic(lib, symbol(t, filepath.Join(filepath.Dir(bin), "libshuffled.so"), "lib_cursor")) {
		t.Errorf("modules: the program %+v (player_ptr at %#x), the library %+v", program, playerPtr, lib)
	}
	found := false
	m.Each(func(p pointers.Pointer) {
		found = found || p.Addr == program.Base+playerPtr && p.Value == g.health-0x10
	})
	if !found {
		t.Errorf("the map has no pointer at player_ptr (%#x) to the player (%#x)", program.Base+playerPtr, g.health-0x10)
	}
	if len(m.Stacks) != 2 || !m.Stacks[0].Known() || !m.Stacks[1].Known() || m.Stacks[0].TID != g.pid {
		t.Errorf("stacks: %+v", m.Stacks)
	}

	dir := t.TempDir()
	for _, bad := range []string{filepath.Join(dir, "none", "run.map"), dir} {
		if r := procmem(t, "-p", itoa(g.pid), "pointers", "--save-map", bad); r.code != 1 || !strings.HasPrefix(r.stderr, "procmem: ") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("--save-map %s: exit %d, %q", bad, r.code, r.stderr)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a failed --save-map left %v", entries)
	}
	if r := procmem(t, "-p", itoa(g.pid), "pointers", "1000", "--also", path+".missing"); r.code != 1 {
		t.Errorf("--also a missing map: exit %d, %q", r.code, r.stderr)
	}
	os.WriteFile(path+".bad", []byte("procmem pointer map 1\ngarbage"), 0o644)
	if r := procmem(t, "-p", itoa(g.pid), "pointers", "1000", "--also", path+".bad"); r.code != 1 || !strings.Contains(r.stderr, "not a procmem pointer map") {
		t.Errorf("--also a damaged map: exit %d, %q", r.code, r.stderr)
	}
}

// TestPointersAcrossThreeRuns: maps of two runs of shuffled, then a search
// in a third keeping only the chains that hold in all three: the chain
// through the program's global comes first, before the library's and the
// longer one, every chain printed leads to the health in all three, and
// every chain one run found alone that fails in another is gone. Each run
// says how many candidates it removed; a live process given as --also does
// what its map does.
func TestPointersAcrossThreeRuns(t *testing.T) {
	bin := buildShuffled(t)
	runs := []shuffledRun{startShuffled(t), startShuffled(t), startShuffled(t)}
	dir := t.TempDir()
	var alone [][]string // what each run found by itself
	var maps []string
	for i, r := range runs[:2] {
		path := filepath.Join(dir, fmt.Sprintf("run%d.map", i+1))
		chains, _ := chainsOf(t, itoa(r.pid), "pointers", fmt.Sprintf("%x", r.health), "--save-map", path, "--limit", "1000")
		alone, maps = append(alone, chains), append(maps, path)
	}
	third := runs[2]
	single, _ := chainsOf(t, itoa(third.pid), "pointers", fmt.Sprintf("%x", third.health), "--limit", "1000")
	alone = append(alone, single)
	chains, stderr := chainsOf(t, itoa(third.pid), "pointers", fmt.Sprintf("%x", third.health), "--also", maps[0], "--also", maps[1], "--limit", "1000")

	want := []string{
		fmt.Sprintf("[shuffled+%x]+10", symbol(t, bin, "player_ptr")),
		fmt.Sprintf("[libshuffled.so+%x]+8", symbol(t, filepath.Join(filepath.Dir(bin), "libshuffled.so"), "lib_cursor")),
		fmt.Sprintf("[[shuffled+%x]+28]+10", symbol(t, bin, "world_ptr")),
	}
	if len(chains) < 3 || !slices.Equal(chains[:3], want) {
		t.Errorf("across three runs the first chains are %q, want %q", chains[:min(3, len(chains))], want)
	}
	holdsEverywhere := func(c string) bool {
		for _, r := range runs {
			if at, ok := resolve(t, r.pid, c); !ok || at != r.health {
				return false
			}
		}
		return true
	}
	for _, c := range chains {
		if !holdsEverywhere(c) {
			t.Errorf("%s does not lead to the health in all three runs", c)
		}
	}
	dropped := 0
	for i, found := range alone {
		for _, c := range found {
			if !slices.Contains(chains, c) && !holdsEverywhere(c) {
				dropped++
			} else if !slices.Contains(chains, c) {
				t.Errorf("%s (found in run %d alone) holds in all three runs, yet the search across them dropped it", c, i+1)
			}
		}
	}
	t.Logf("runs alone found %d, %d and %d chains; %d of them fail in another run; %d hold in all three", len(alone[0]), len(alone[1]), len(alone[2]), dropped, len(chains))
	removed := removedRe.FindAllStringSubmatch(stderr, -1)
	total := 0
	for _, m := range removed {
		n, _ := strconv.Atoi(m[2])
		total += n
	}
	if len(removed) != 2 || removed[0][1] != maps[0] || removed[1][1] != maps[1] || total == 0 {
		t.Errorf("what each run removed: %q", stderr)
	}

	live, _ := chainsOf(t, itoa(third.pid), "pointers", fmt.Sprintf("%x", third.health), "--also", fmt.Sprintf("%d=%x", runs[0].pid, runs[0].health), "--also", maps[1], "--limit", "1000")
	if !slices.Equal(live, chains) {
		t.Errorf("with the first run live: %q\nwith its map: %q", live, chains)
	}
	if r := procmem(t, "-p", itoa(third.pid), "pointers", "1000", "--also", itoa(runs[0].pid)); r.code != 2 {
		t.Errorf("--also a PID without its ADDR: exit %d, %q", r.code, r.stderr)
	}
}

// TestPointersPaste: the chains pointers prints, one from the program's
// data and one from a thread's stack ([stack:1]-OFF), paste into read -r,
// write -a, freeze and the scan prompt's set, and they all reach the
// value.
func TestPointersPaste(t *testing.T) {
	g := startShuffled(t)
	health, _ := chainsOf(t, itoa(g.pid), "pointers", fmt.Sprintf("%x", g.health), "--limit", "1")
	// The gold is reached from a thread's stack; a library's data may also
	// hold a pointer a little below it (malloc's own), which ranks first.
	golds, _ := chainsOf(t, itoa(g.pid), "pointers", fmt.Sprintf("%x", g.gold), "--stack", "2", "--depth", "1", "--limit", "100")
	var gold []string
	if i := slices.IndexFunc(golds, func(c string) bool { return strings.HasPrefix(c, "[[stack:1]-") }); i >= 0 {
		gold = golds[i : i+1]
	}
	if len(health) != 1 || len(gold) != 1 {
		t.Fatalf("pointers printed %q and %q", health, golds)
	}
	for i, c := range []string{health[0], gold[0]} {
		at := []uint64{g.health, g.gold}[i]
		value := func() int32 {
			b := directRead(t, g.pid, at, 4)
			return int32(b[0]) | int32(b[1])<<8 | int32(b[2])<<16 | int32(b[3])<<24
		}
		if got, ok := resolve(t, g.pid, c); !ok || got != at {
			t.Errorf("read -r %s: %#x, want %#x", c, got, at)
		}
		mustSucceed(t, procmem(t, "-p", itoa(g.pid), "write", "-a", c, "-b", "f4 01 00 00"), "write -a "+c)
		if v := value(); v != 500 {
			t.Errorf("after write -a %s the value is %d, want 500", c, v)
		}
		s := filepath.Join(t.TempDir(), "s")
		mustSucceed(t, procmem(t, "-p", itoa(g.pid), "scan", "--session", s, "500"), "scan 500")
		mustSucceed(t, procmem(t, "-p", itoa(g.pid), "scan", "--session", s, "set", c, "600"), "scan set "+c)
		if v := value(); v != 600 {
			t.Errorf("after the scan prompt's set %s 600 the value is %d", c, v)
		}
		cmd := exec.Command(procmemBin, "-p", itoa(g.pid), "freeze", "--interval", "5ms", c+"=700")
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		if want := fmt.Sprintf("holding %s = 700 (int32) at %016x\n", c, at); line != want {
			t.Errorf("freeze printed %q, want %q", line, want)
		}
		waitFor(t, "freeze to hold 700", func() (string, bool) { v := value(); return fmt.Sprint(v), v == 700 })
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// TestPointersRescan: the chains one run found, saved, re-checked against
// a second run by the health's address there and by its value: the true
// chain stays, the accidental ones go, and the count removed is said.
func TestPointersRescan(t *testing.T) {
	bin := buildShuffled(t)
	first, second := startShuffled(t), startShuffled(t)
	chains, _ := chainsOf(t, itoa(first.pid), "pointers", fmt.Sprintf("%x", first.health), "--limit", "1000")
	results := filepath.Join(t.TempDir(), "chains.txt")
	os.WriteFile(results, []byte("# found in the first run\n"+strings.Join(chains, "\n")+"\n"), 0o644)
	truth := fmt.Sprintf("[shuffled+%x]+10", symbol(t, bin, "player_ptr"))
	for _, by := range [][]string{{fmt.Sprintf("%x", second.health)}, {"--value", "31337"}, {"--value", "31337", "-t", "int32"}} {
		r := procmem(t, append([]string{"-p", itoa(second.pid), "pointers", "--rescan", results}, by...)...)
		mustSucceed(t, r, "rescan "+strings.Join(by, " "))
		kept := strings.Fields(r.stdout)
		if len(kept) == 0 || kept[0] != truth {
			t.Errorf("rescan %s kept %q, want %s first", by, kept, truth)
		}
		var n, of, removed int
		if _, err := fmt.Sscanf(r.stderr, "procmem: rescan: %d of %d chains lead to", &n, &of); err != nil || n != len(kept) || of != len(chains) {
			t.Errorf("rescan %s said %q (kept %d of %d)", by, r.stderr, len(kept), len(chains))
		}
		fmt.Sscanf(r.stderr[strings.LastIndex(r.stderr, ";")+1:], " %d removed", &removed)
		if removed != of-n {
			t.Errorf("rescan %s said %q: %d removed", by, r.stderr, removed)
		}
		for _, c := range kept {
			if at, ok := resolve(t, second.pid, c); !ok || at != second.health {
				t.Errorf("rescan %s kept %s, which leads to %#x, not the health %#x", by, c, at, second.health)
			}
		}
	}
	if r := procmem(t, "-p", itoa(second.pid), "pointers", "--rescan", results, "--value", "1234567"); r.code != 1 || r.stdout != "" {
		t.Errorf("rescan for a value nothing leads to: exit %d, %q", r.code, r.stdout)
	}
	os.WriteFile(results, []byte("[[shuffled+10]\n"), 0o644)
	if r := procmem(t, "-p", itoa(second.pid), "pointers", "--rescan", results, "10"); r.code != 2 || !strings.Contains(r.stderr, "line 1") {
		t.Errorf("rescan of a malformed file: exit %d, %q", r.code, r.stderr)
	}
}

// TestPointersStackBase: the gold is reached from the second thread's
// stack alone: without --stack no chain holds across three runs; with
// --stack 2 the one from [stack:1] does, written below the stack's top,
// and it pastes into read -r in every run.
func TestPointersStackBase(t *testing.T) {
	runs := []shuffledRun{startShuffled(t), startShuffled(t), startShuffled(t)}
	dir := t.TempDir()
	var also []string
	for i, r := range runs[:2] {
		path := filepath.Join(dir, fmt.Sprintf("run%d.map", i+1))
		mustSucceed(t, procmem(t, "-p", itoa(r.pid), "pointers", "--save-map", path, fmt.Sprintf("%x", r.gold), "--depth", "3"), "--save-map")
		also = append(also, "--also", path)
	}
	third := fmt.Sprintf("%x", runs[2].gold)
	args := append([]string{"-p", itoa(runs[2].pid), "pointers", third, "--depth", "3"}, also...)
	if r := procmem(t, args...); r.code != 1 || !strings.Contains(r.stderr, "no chain") {
		t.Errorf("without --stack: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	chains, _ := chainsOf(t, append(args[1:], "--stack", "2")...)
	if len(chains) == 0 || !regexp.MustCompile(`^\[\[stack:1\]-[0-9a-f]+\]\+8$`).MatchString(chains[0]) {
		t.Fatalf("with --stack 2: %q, want [[stack:1]-OFF]+8 first", chains)
	}
	for _, r := range runs {
		if at, ok := resolve(t, r.pid, chains[0]); !ok || at != r.gold {
			t.Errorf("%s in process %d leads to %#x, want the gold at %#x", chains[0], r.pid, at, r.gold)
		}
	}
}

// TestPointersRanking: in one run, the program's chain to the player comes
// before the library's, whose offset is smaller.
func TestPointersRanking(t *testing.T) {
	bin := buildShuffled(t)
	g := startShuffled(t)
	chains, _ := chainsOf(t, itoa(g.pid), "pointers", fmt.Sprintf("%x", g.health))
	program := fmt.Sprintf("[shuffled+%x]+10", symbol(t, bin, "player_ptr"))
	lib := fmt.Sprintf("[libshuffled.so+%x]+8", symbol(t, filepath.Join(filepath.Dir(bin), "libshuffled.so"), "lib_cursor"))
	if i := slices.Index(chains, lib); len(chains) < 2 || chains[0] != program || i < 0 || slices.ContainsFunc(chains[:i], func(c string) bool { return !strings.HasPrefix(c, "[shuffled+") }) {
		t.Errorf("ranked %q, want %s first, and %s after the program's chains only", chains[:min(len(chains), 5)], program, lib)
	}
}

// TestPointersVerifyAndLimit: --verify keeps the chains that lead, in the
// other process, to the address given (or to the value the target holds),
// and says how many it dropped; --limit says how many it cut.
func TestPointersVerifyAndLimit(t *testing.T) {
	first, second := startShuffled(t), startShuffled(t)
	h1 := fmt.Sprintf("%x", first.health)
	all, _ := chainsOf(t, itoa(first.pid), "pointers", h1, "--limit", "1000")
	for _, spec := range []string{fmt.Sprintf("%d=%x", second.pid, second.health), itoa(second.pid)} {
		kept, stderr := chainsOf(t, itoa(first.pid), "pointers", h1, "--verify", spec, "--limit", "1000")
		var dropped, of int
		if _, err := fmt.Sscanf(stderr[strings.Index(stderr, "dropped"):], "dropped %d of %d", &dropped, &of); err != nil || of != len(all) || dropped != len(all)-len(kept) {
			t.Errorf("--verify %s: %d of %d kept, and it said %q", spec, len(kept), len(all), stderr)
		}
		for _, c := range kept {
			if at, ok := resolve(t, second.pid, c); !ok || at != second.health {
				t.Errorf("--verify %s kept %s, which leads to %#x there, not %#x", spec, c, at, second.health)
			}
		}
	}
	if len(all) < 2 {
		t.Fatalf("pointers found %q", all)
	}
	r := procmem(t, "-p", itoa(first.pid), "pointers", h1, "--limit", "1")
	mustSucceed(t, r, "--limit 1")
	if want := fmt.Sprintf("procmem: %d chains; the best 1 printed (--limit 1)\n", len(all)); strings.Count(r.stdout, "\n") != 1 || r.stderr != want {
		t.Errorf("--limit 1: %q, said %q; want %q", r.stdout, r.stderr, want)
	}
}

// TestPythonPointers: python3 holding an int in a global: the chains found
// in two runs (the second searched with the first's map) resolve to the
// int's object in a third, restarted again; a rescan there keeps them.
func TestPythonPointers(t *testing.T) {
	requireTool(t, "python3")
	start := func() (int, uint64) {
		cmd := exec.Command("python3", "-c", "import sys\nhealth = 7340033\nprint(id(health), flush=True)\nsys.stdin.readline()\n")
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
		line, err := bufio.NewReader(out).ReadString('\n')
		id, perr := strconv.ParseUint(strings.TrimSpace(line), 10, 64)
		if err != nil || perr != nil {
			t.Fatalf("python3 said %q: %v", line, err)
		}
		return cmd.Process.Pid, id
	}
	pid1, id1 := start()
	path := filepath.Join(t.TempDir(), "py.map")
	mustSucceed(t, procmem(t, "-p", itoa(pid1), "pointers", "--save-map", path, fmt.Sprintf("%x", id1), "--depth", "3"), "--save-map")
	pid2, id2 := start()
	chains, stderr := chainsOf(t, itoa(pid2), "pointers", fmt.Sprintf("%x", id2), "--also", path, "--limit", "20", "--depth", "3")
	t.Logf("two runs: %s", stderr)
	pid3, id3 := start()
	results := filepath.Join(t.TempDir(), "chains.txt")
	os.WriteFile(results, []byte(strings.Join(chains, "\n")), 0o644)
	r := procmem(t, "-p", itoa(pid3), "pointers", "--rescan", results, fmt.Sprintf("%x", id3))
	mustSucceed(t, r, "rescan in the third run")
	kept := strings.Fields(r.stdout)
	if len(kept) == 0 || kept[0] != chains[0] {
		t.Errorf("of %q found in two runs, the third kept %q", chains, kept)
	}
	for _, c := range kept {
		if at, ok := resolve(t, pid3, c); !ok || at != id3 {
			t.Errorf("%s leads to %#x in the third run, not the int at %#x", c, at, id3)
		}
	}
	t.Logf("%s", r.stderr)
}

// TestPointersBadArguments: mistakes are usage errors that change
// nothing.
func TestPointersBadArguments(t *testing.T) {
	g := startShuffled(t)
	pid := itoa(g.pid)
	path := filepath.Join(t.TempDir(), "x.map")
	for _, args := range [][]string{
		{"pointers"},
		{"pointers", "1000", "2000"},
		{"pointers", "--rescan", path},
		{"pointers", "--rescan", path, "1000", "--value", "5"},
		{"pointers", "1000", "--value", "5"},
		{"pointers", "1000", "--depth", "0"},
		{"pointers", "1000", "--max-offset", "zz"},
		{"pointers", "--save-map", path, "[stack:x]"},
		{"pointers", "1000", "--verify", "abc"},
		{"pointers", "--rescan", path, "--value", "x1"},
	} {
		r := procmem(t, append([]string{"-p", pid}, args...)...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "procmem: ") {
			t.Errorf("%q: exit %d, %q", args, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(path); err == nil {
		t.Errorf("a refused command left %s", path)
	}
}
