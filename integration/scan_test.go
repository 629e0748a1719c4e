//go:build linux

package integration

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// game is a running testdata/game.c: a player whose health, speed and
// score change on command, and decoys holding the same values.
type game struct{ *helperProc }

func startGame(t testing.TB, args ...string) *game {
	t.Helper()
	return &game{startHelper(t, gameBin, args...)}
}

// do sends a command and returns the game's answer.
func (g *game) do(format string, a ...any) string {
	g.t.Helper()
	fmt.Fprintf(g.in, format+"\n", a...)
	line, err := g.out.ReadString('\n')
	if err != nil {
		g.t.Fatalf("game: %v", err)
	}
	return strings.TrimSpace(line)
}

// exit ends the game and waits for it: its PID names no process after.
func (g *game) exit() {
	fmt.Fprintln(g.in, "exit")
	g.cmd.Wait()
}

// health is the value the game itself sees.
func (g *game) health() int {
	g.t.Helper()
	v, err := strconv.Atoi(strings.TrimPrefix(g.do("health"), "health "))
	if err != nil {
		g.t.Fatal(err)
	}
	return v
}

// scanner runs procmem scan on the game with a session of the test's own.
type scanner struct {
	t       testing.TB
	g       *game
	session string
}

func newScanner(t testing.TB, g *game) *scanner {
	return &scanner{t: t, g: g, session: filepath.Join(t.TempDir(), "s")}
}

func (s *scanner) run(args ...string) result {
	s.t.Helper()
	return procmem(s.t, append([]string{"-p", itoa(s.g.pid), "scan", "--session", s.session}, args...)...)
}

// count runs a scan command that must succeed and returns its match count.
func (s *scanner) count(args ...string) int {
	s.t.Helper()
	r := s.run(args...)
	mustSucceed(s.t, r, "scan "+strings.Join(args, " "))
	var n int
	if _, err := fmt.Sscanf(r.stdout, "%d match", &n); err != nil {
		s.t.Fatalf("scan %s printed %q", strings.Join(args, " "), r.stdout)
	}
	return n
}

// listed returns the addresses list prints, each with its line.
func (s *scanner) listed(n int) map[uint64]string {
	s.t.Helper()
	r := s.run("list", itoa(n))
	mustSucceed(s.t, r, "list")
	out := map[uint64]string{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if a, err := strconv.ParseUint(strings.Fields(line)[0], 16, 64); err == nil {
			out[a] = line
		}
	}
	return out
}

// TestScanNarrows: the value, then three changes of it narrow the matches
// to exactly its address; list shows it as search would with the value
// now and at the last scan; set changes it in the game.
func TestScanNarrows(t *testing.T) {
	g := startGame(t)
	s := newScanner(t, g)
	watch := watchStopped(g.pid)
	first := s.count("100")
	if first < 85 { // the health, and 84 decoys
		t.Fatalf("first scan: %d matches, want at least 85", first)
	}
	counts := []int{first}
	for _, v := range []string{"90", "= 80", "70"} {
		g.do("hit 10")
		counts = append(counts, s.count(v))
	}
	if seen := watch(); seen != "" {
		t.Errorf("the game was stopped or traced while scanned: %s", seen)
	}
	if counts[1] != 21 || counts[2] != 5 || counts[3] != 1 {
		t.Fatalf("matches after each scan: %v, want [%d 21 5 1]", counts, first)
	}
	list := s.listed(10)
	line, ok := list[g.addr["health"]]
	if len(list) != 1 || !ok {
		t.Fatalf("list: %v, want the health at %x", list, g.addr["health"])
	}
	if f := strings.Fields(line); len(f) != 5 || f[1] != "rw-p" || !strings.HasPrefix(f[2], "[heap]+") || f[3] != "70" || f[4] != "70" {
		t.Errorf("list line %q: want address, perms, [heap]+offset, value now, value before", line)
	}
	g.do("hit 5")
	if f := strings.Fields(s.listed(1)[g.addr["health"]]); f[3] != "65" || f[4] != "70" {
		t.Errorf("list after a change: %q, want 65 now and 70 before", f)
	}
	r := s.run("set", "1000")
	mustSucceed(t, r, "set")
	if r.stdout != "wrote 1000 to 1 match\n" || g.health() != 1000 {
		t.Errorf("set: %q, the game sees %d", r.stdout, g.health())
	}
	// unchanged compares with the value set, not the one before.
	if n := s.count("unchanged"); n != 1 {
		t.Errorf("unchanged after set: %d matches", n)
	}
	r = s.run("set", fmt.Sprintf("%x", g.addr["health"]), "lots")
	if r.code != 2 {
		t.Errorf("set ADDR with a malformed value: exit %d", r.code)
	}
	mustSucceed(t, s.run("set", fmt.Sprintf("0x%x", g.addr["health"]), "77"), "set ADDR")
	if h := g.health(); h != 77 {
		t.Errorf("set ADDR: the game sees %d", h)
	}

	// undo goes back one step, and undo again forward.
	if n := s.count("undo"); n != 1 {
		t.Errorf("undo: %d", n)
	}
	if n := s.count("undo"); n != 1 {
		t.Errorf("undo of undo: %d", n)
	}
	mustSucceed(t, s.run("reset"), "reset")
	if r := s.run("count"); r.code != 1 || r.stderr != "procmem: no scan yet: start with a value, or snapshot\n" {
		t.Errorf("count after reset: exit %d, %q", r.code, r.stderr)
	}
	if n := s.count("undo"); n != 1 {
		t.Errorf("undo of reset: %d matches", n)
	}
}

// TestScanSnapshot finds a value not known: snapshot, then decreased,
// unchanged, increased and "- 2" as the game changes it leave a handful of
// candidates, the health among them (a local variable on the game's stack
// that holds the last change may be one).
func TestScanSnapshot(t *testing.T) {
	g := startGame(t)
	s := newScanner(t, g)
	all := s.count("snapshot")
	g.do("hit 7")
	s.count("decreased")
	s.count("unchanged")
	g.do("heal 3")
	s.count("increased")
	s.count("unchanged")
	g.do("hit 2")
	s.count("decreased")
	g.do("hit 2")
	n := s.count("-", "2") // changed by exactly -2 again
	t.Logf("%d of %d candidates left", n, all)
	if n == 0 || n > 10 {
		t.Fatalf("snapshot, decreased, unchanged, increased: %d of %d candidates left, want a handful", n, all)
	}
	if line, ok := s.listed(20)[g.addr["health"]]; !ok || !strings.HasSuffix(line, "  92  92") {
		t.Errorf("the health is not among the candidates, or not as 92: %q", line)
	}
}

// TestScanFloats: = compares floats as precisely as the value was typed.
func TestScanFloats(t *testing.T) {
	g := startGame(t)
	s := newScanner(t, g)
	s.count("-t", "float", "1.5")
	g.do("speed 3.1400001")
	if n := s.count("3.14"); n != 1 {
		t.Errorf("= 3.14 after the speed became 3.1400001: %d matches", n)
	}
	if _, ok := s.listed(1)[g.addr["speed"]]; !ok {
		t.Errorf("the match is not the speed")
	}
	// A session keeps its type: another -t is refused, reset takes it.
	if r := s.run("-t", "double", "2.5"); r.code != 1 || !strings.Contains(r.stderr, "scans float") {
		t.Errorf("another type on a float session: exit %d, %s", r.code, r.stderr)
	}
	mustSucceed(t, s.run("-t", "double", "reset"), "reset")
	s.count("-t", "double", "2..3")
	g.do("score 7.25")
	if n := s.count("> 7.2"); n < 1 {
		t.Fatalf("> 7.2: %d", n)
	}
	if n := s.count("7.25"); n != 1 {
		t.Errorf("7.25: %d matches", n)
	}
	if _, ok := s.listed(1)[g.addr["score"]]; !ok {
		t.Errorf("the match is not the score")
	}
}

// startFreeze runs procmem freeze on the game, writing every 5 ms, and
// returns it with its standard output; it is killed when the test ends.
func startFreeze(t *testing.T, g *game, holds ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(procmemBin, append([]string{"-p", itoa(g.pid), "freeze", "--interval", "5ms"}, holds...)...)
	_, out := startPiped(t, cmd)
	return cmd, out
}

// TestFreeze: freeze holds the health while the game writes another value,
// prints what it holds, and lets go on SIGINT.
func TestFreeze(t *testing.T) {
	g := startGame(t)
	cmd, lines := startFreeze(t, g, fmt.Sprintf("%x=500", g.addr["health"]))
	first, _ := lines.ReadString('\n')
	if want := fmt.Sprintf("holding %x = 500 (int32) at %016x\n", g.addr["health"], g.addr["health"]); first != want {
		t.Errorf("freeze printed %q, want %q", first, want)
	}
	for i := 0; i < 5; i++ {
		g.do("hit 10") // the game writes 490
		time.Sleep(50 * time.Millisecond)
		if h := g.health(); h != 500 {
			t.Errorf("the game sees %d 50 ms after it wrote 490 under freeze", h)
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	rest, _ := io.ReadAll(lines)
	if err := cmd.Wait(); err != nil || string(rest) != "released\n" {
		t.Errorf("freeze after SIGINT: %v, %q", err, rest)
	}
	g.do("hit 10")
	time.Sleep(50 * time.Millisecond)
	if h := g.health(); h != 490 {
		t.Errorf("after freeze ended the game sees %d, want its own 490", h)
	}
	// Nothing mapped there: an error at once, not a freeze that holds nothing.
	if r := procmem(t, "-p", itoa(g.pid), "freeze", "10=1"); r.code != 1 || !strings.HasPrefix(r.stderr, "procmem: 10: ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("freeze of address 0x10: exit %d, %q", r.code, r.stderr)
	}
}

// TestFreezeUntilExit: freeze ends by itself when the process does.
func TestFreezeUntilExit(t *testing.T) {
	g := startGame(t)
	done := make(chan result, 1)
	go func() {
		done <- procmem(t, "-p", itoa(g.pid), "freeze", "-t", "double", fmt.Sprintf("%x=9.5", g.addr["score"]))
	}()
	time.Sleep(200 * time.Millisecond)
	fmt.Fprintln(g.in, "exit")
	select {
	case r := <-done:
		if r.code != 0 || !strings.Contains(r.stderr, "exited") {
			t.Errorf("freeze after the process exited: exit %d, %q", r.code, r.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("freeze still runs 10 s after the process exited")
	}
}

// TestScanPrompt drives the prompt from a pipe: the same commands, errors
// on one line each, and freeze/unfreeze beside the scans.
func TestScanPrompt(t *testing.T) {
	g := startGame(t)
	s := newScanner(t, g)
	s.count("100")
	g.do("hit 10")
	s.count("90")
	g.do("hit 10")
	s.count("80")
	g.do("hit 10")
	script := "70\nbogus\n= 1 2\nset\ncount\nfreeze 250\n"
	cmd := exec.Command(procmemBin, "-p", itoa(g.pid), "scan", "--session", s.session, "--interval", "5ms")
	in, _ := cmd.StdinPipe()
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	io.WriteString(in, script)
	waitFor(t, "the freeze", func() (string, bool) { return stdout.String(), strings.Contains(stdout.String(), "holding 250") })
	g.do("hit 10")
	time.Sleep(50 * time.Millisecond)
	if h := g.health(); h != 250 {
		t.Errorf("freeze at the prompt: the game sees %d", h)
	}
	// The prompt holds the session: another procmem that would change it
	// is told so; one that reads it reads it.
	if r := s.run("70"); r.code != 1 || !strings.Contains(r.stderr, "in use by another procmem scan") {
		t.Errorf("a second procmem on the session: exit %d, %q", r.code, r.stderr)
	}
	if n := s.count("count"); n != 1 {
		t.Errorf("count beside the prompt: %d", n)
	}
	io.WriteString(in, "unfreeze\nquit\n")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("prompt: %v\n%s", err, stderr.String())
	}
	wantOut := "1 match\n1 match\nholding 250 at 1 match every 5ms: unfreeze stops\nreleased\n"
	if stdout.String() != wantOut {
		t.Errorf("prompt printed %q, want %q", stdout.String(), wantOut)
	}
	errs := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(errs) != 4 || !strings.Contains(errs[1], `"bogus"`) || !strings.Contains(errs[2], "takes one value") || !strings.Contains(errs[3], "set takes") {
		t.Errorf("prompt errors: %q", errs)
	}
	g.do("hit 10")
	if h := g.health(); h != 240 {
		t.Errorf("after unfreeze the game sees %d", h)
	}
	// The session was saved on quit.
	if n := s.count("count"); n != 1 {
		t.Errorf("count after the prompt: %d", n)
	}
}

// TestScanBadInput: malformed commands, values and flags are usage errors;
// a narrowing with nothing to narrow is an error; nothing is saved.
func TestScanBadInput(t *testing.T) {
	g := startGame(t)
	s := newScanner(t, g)
	for _, args := range [][]string{
		{"bogus"}, {"=", "1", "2"}, {"-t", "int8", "300"}, {"-t", "uint8", "--", "-1"}, {"-t", "nosuch", "1"},
		{"-e", "middle", "1"}, {"list", "0"}, {"5..1"}, {"--interval", "0s", "1"}, {"freeze", "1"},
	} {
		r := s.run(args...)
		if r.code != 2 || !strings.HasPrefix(r.stderr, "procmem: ") || strings.Count(r.stderr, "\n") != 2 {
			t.Errorf("scan %q: exit %d, %q; want a usage error", args, r.code, r.stderr)
		}
	}
	for _, args := range [][]string{{"changed"}, {"list"}, {"set", "5"}, {"-", "1"}, {"count"}} {
		if r := s.run(args...); r.code != 1 || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("scan %q before any scan: exit %d, %q", args, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(s.session); !os.IsNotExist(err) {
		t.Errorf("a session file after failed commands: %v", err)
	}
	// set and freeze refuse matches that are not narrowed down.
	s.count("-t", "uint8", "0..255")
	if r := s.run("set", "1"); r.code != 1 || !strings.Contains(r.stderr, "narrow them first") {
		t.Errorf("set on every byte: exit %d, %q", r.code, r.stderr)
	}
}

// TestScanLeavesHolesAlone: a snapshot of a process with a 4 GiB
// reservation of which three pages were touched reads only those, and
// faults nothing in: its RSS and page tables stay as they were.
func TestScanLeavesHolesAlone(t *testing.T) {
	tg, _ := startSparseTarget(t, 4<<30)
	session := filepath.Join(t.TempDir(), "s")
	before := memStatus(t, tg.pid)
	res := tg.region(tg.addr["reservation"])
	start := time.Now()
	r := procmem(t, "-p", itoa(tg.pid), "scan", "--session", session, "-r", fmt.Sprintf("%x:%x", res.Start, res.End), "snapshot")
	mustSucceed(t, r, "snapshot of the reservation")
	if want := fmt.Sprintf("%d matches\n", 3*tg.addr["page"]/4); r.stdout != want {
		t.Errorf("snapshot: %q, want %q (the three touched pages)", r.stdout, want)
	}
	took := time.Since(start)
	mustSucceed(t, procmem(t, "-p", itoa(tg.pid), "scan", "--session", session, "unchanged"), "unchanged")
	mustSucceed(t, procmem(t, "-p", itoa(tg.pid), "scan", "--session", session, "-w", "snapshot"), "snapshot of every writable region")
	after := memStatus(t, tg.pid)
	for k := range before {
		if after[k] > before[k]+1<<20 {
			t.Errorf("%s grew from %d to %d bytes", k, before[k], after[k])
		}
	}
	if st, err := os.Stat(session); err != nil || st.Size() > 256<<20 {
		t.Errorf("session of a snapshot: %v", err)
	}
	t.Logf("snapshot of a 4 GiB reservation with 3 pages of data: %v", took)
}

// TestScanPromptTerminal: on a terminal the prompt shows the match count,
// edits the line and recalls the last command with the up arrow.
func TestScanPromptTerminal(t *testing.T) {
	requireTool(t, "tmux")
	g := startGame(t)
	s := newScanner(t, g)
	socket := fmt.Sprintf("procmem-scan-%d", g.pid)
	tmux := func(a ...string) (string, error) {
		b, err := exec.Command("tmux", append([]string{"-L", socket}, a...)...).CombinedOutput()
		return string(b), err
	}
	t.Cleanup(func() { tmux("kill-server") })
	script := fmt.Sprintf("XDG_CACHE_HOME=%s %s -p %d scan --session %s; echo DONE $?; sleep 60", t.TempDir(), procmemBin, g.pid, s.session)
	if b, err := tmux("new-session", "-d", "-s", "p", "-x", "150", "-y", "30", "sh", "-c", script); err != nil {
		t.Fatalf("tmux: %v: %s", err, b)
	}
	screen := func() string { out, _ := tmux("capture-pane", "-p", "-t", "p"); return out }
	waitFor(t, "the prompt", func() (string, bool) {
		return screen(), strings.Contains(screen(), fmt.Sprintf("[%d int32: no scan yet]>", g.pid))
	})
	// 1009, two backspaces, 0: "100".
	tmux("send-keys", "-t", "p", "1009", "BSpace", "BSpace", "0", "Enter")
	waitFor(t, "the first scan", func() (string, bool) {
		return screen(), strings.Contains(screen(), "matches]>")
	})
	g.do("hit 10")
	tmux("send-keys", "-t", "p", "90", "Enter")
	waitFor(t, "the narrowing", func() (string, bool) { return screen(), strings.Contains(screen(), ": 21 matches]>") })
	// Up recalls "90"; Ctrl-A (home) and "= " make it "= 90", unchanged.
	tmux("send-keys", "-t", "p", "Up", "C-a", "=", " ", "Enter")
	waitFor(t, "the recalled command", func() (string, bool) {
		return screen(), strings.Count(screen(), "21 matches\n") == 2
	})
	tmux("send-keys", "-t", "p", "q", "Enter")
	waitFor(t, "quit", func() (string, bool) { return screen(), strings.Contains(screen(), "DONE 0") })
}

// TestScanAgreesWithScanmem: a first scan finds, in the game's heap and
// its own image, exactly the addresses scanmem finds there.
func TestScanAgreesWithScanmem(t *testing.T) {
	requireTool(t, "scanmem")
	g := startGame(t)
	s := newScanner(t, g)
	n := s.count("100")
	inScope := func(region string) bool {
		return strings.HasPrefix(region, "[heap]+") || strings.HasPrefix(region, filepath.Base(gameBin)+"+")
	}
	ours := map[uint64]bool{}
	for a, line := range s.listed(n) {
		if inScope(strings.Fields(line)[2]) {
			ours[a] = true
		}
	}
	r := run(t, "", "scanmem", "-p", itoa(g.pid), "-c", "option scan_data_type int32;100;list;exit")
	theirs := map[uint64]bool{}
	for _, line := range strings.Split(r.stdout, "\n") {
		// [ 3] 5601b518a0ac,  0 +         30ac,   exe, 100, [I32 ]
		_, rest, ok := strings.Cut(line, "] ")
		f := strings.Split(rest, ",")
		if !ok || !strings.HasPrefix(line, "[") || len(f) < 4 {
			continue
		}
		kind := strings.TrimSpace(f[2])
		if a, err := strconv.ParseUint(strings.TrimSpace(f[0]), 16, 64); err == nil && (kind == "heap" || kind == "exe") {
			theirs[a] = true
		}
	}
	if len(theirs) < 85 || fmt.Sprint(sortedKeys(ours)) != fmt.Sprint(sortedKeys(theirs)) {
		t.Errorf("procmem found %d in the heap and the image, scanmem %d:\nprocmem %x\nscanmem %x\n%s", len(ours), len(theirs), sortedKeys(ours), sortedKeys(theirs), r.stdout)
	}
}

func sortedKeys(m map[uint64]bool) []uint64 {
	var out []uint64
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestScanAfterExec: matches found before an exec are refused after it,
// where their addresses mean nothing; reset starts over.
func TestScanAfterExec(t *testing.T) {
	tg := startTarget(t, "", 1<<20)
	session := filepath.Join(t.TempDir(), "s")
	scanArgs := func(a ...string) []string {
		return append([]string{"-p", itoa(tg.pid), "scan", "--session", session}, a...)
	}
	const marker = "0x414d4d50" // "PMMA", the start of the heap's marker, as an int32
	mustSucceed(t, procmem(t, scanArgs(marker)...), "scan for the marker")
	tg.execAgain()
	for _, cmd := range []string{"count", "list", "set 5", marker} {
		r := procmem(t, scanArgs(cmd)...)
		if r.code != 1 || !strings.Contains(r.stderr, "before an exec") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%s after an exec: exit %d, %q", cmd, r.code, r.stderr)
		}
	}
	mustSucceed(t, procmem(t, scanArgs("reset")...), "reset after an exec")
	mustSucceed(t, procmem(t, scanArgs(marker)...), "a new scan after reset")
}

// TestFreezeFollowsPointers: an address that reads a pointer is followed
// anew before each write, so when the game moves its player (a level
// load), freeze holds the new health and then leaves the old block alone.
// A write already on its way when the game moved may still land in the
// old block (the chain was followed just before): no freezer can avoid
// that race, so the test lets those pass and checks that nothing is
// written there afterwards.
func TestFreezeFollowsPointers(t *testing.T) {
	g := startGame(t)
	chain := fmt.Sprintf("[%x]+10", g.addr["player_ptr"]) // player_ptr -> player; health is 16 bytes in
	_, lines := startFreeze(t, g, chain+"=321")
	first, _ := lines.ReadString('\n')
	if want := fmt.Sprintf("holding %s = 321 (int32) at %016x\n", chain, g.addr["health"]); first != want {
		t.Errorf("freeze printed %q, want %q", first, want)
	}
	old := g.addr["health"]
	moved, err := strconv.ParseUint(strings.TrimPrefix(g.do("move"), "0x"), 16, 64)
	if err != nil || moved == old {
		t.Fatalf("move: %x, %v", moved, err)
	}
	g.do("hit 10") // the game writes 311 in the new block
	time.Sleep(100 * time.Millisecond)
	if h := g.health(); h != 321 {
		t.Errorf("after the move the game sees %d, want the 321 freeze holds", h)
	}
	// 20 intervals after the move: mark the old block, and see that it
	// keeps the mark for 20 more.
	mem := procMem(t, g.pid, true)
	var mark int32 = -7
	if _, err := mem.WriteAt(binary.LittleEndian.AppendUint32(nil, uint32(mark)), int64(old)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if b := directRead(t, g.pid, old, 4); int32(binary.LittleEndian.Uint32(b)) != mark {
		t.Errorf("the old block holds %d 100 ms after the move, not the %d the test wrote there: freeze still writes to it", int32(binary.LittleEndian.Uint32(b)), mark)
	}
}
