//go:build linux

package integration

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// scanmemRun runs scanmem's commands on pid with a scan data type, and
// returns its matches (address: the flags it lists, as [I32 I16 I8 ]) and
// the regions it scans. Between commands it runs the functions given for
// them (by the command's index), as a game changes its values between a
// modder's scans.
func scanmemRun(t *testing.T, pid int, typ string, cmds []string, between ...func(int)) (matches map[uint64]string, regions [][2]uint64) {
	t.Helper()
	cmd := exec.Command("scanmem", "-p", itoa(pid))
	in, _ := cmd.StdinPipe()
	var stdout strings.Builder
	cmd.Stdout = &stdout
	errPipe, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	stderr := bufio.NewReader(errPipe)
	var errOut strings.Builder
	// waitScan reads scanmem's stderr until a scan says how many matches.
	waitScan := func() {
		for {
			line, err := stderr.ReadString('\n')
			errOut.WriteString(line)
			if err != nil {
				t.Fatalf("scanmem: %v\n%s", err, errOut.String())
			}
			if strings.Contains(line, "we currently have") {
				return
			}
		}
	}
	fmt.Fprintf(in, "option scan_data_type %s\n", typ)
	for i, c := range cmds {
		fmt.Fprintln(in, c)
		waitScan()
		if i < len(between) && between[i] != nil {
			between[i](i)
		}
	}
	io.WriteString(in, "list\nlregions\nexit\n")
	rest, _ := io.ReadAll(stderr)
	errOut.Write(rest)
	cmd.Wait()
	matches = map[uint64]string{}
	// scanmem 0.17 writes lregions to stderr.
	for _, line := range strings.Split(stdout.String()+"\n"+errOut.String(), "\n") {
		// [ 3] 5601b518a0ac,  0 +         30ac,   exe, 100, [I32 I16 I8 ]
		// [ 1] 55e1bb7a6000,  135168 bytes,  heap, 55e1bb7a6000, rw-, [heap]
		_, rest, ok := strings.Cut(line, "] ")
		f := strings.Split(rest, ",")
		if !ok || !strings.HasPrefix(line, "[") || len(f) < 4 {
			continue
		}
		a, err := strconv.ParseUint(strings.TrimSpace(f[0]), 16, 64)
		if err != nil {
			continue
		}
		if size, ok := strings.CutSuffix(strings.TrimSpace(f[1]), " bytes"); ok {
			n, _ := strconv.ParseUint(size, 10, 64)
			regions = append(regions, [2]uint64{a, a + n})
			continue
		}
		matches[a] = strings.TrimSpace(f[len(f)-1])
	}
	if len(regions) == 0 {
		t.Fatalf("scanmem listed no regions:\n%s\n%s", stdout.String(), errOut.String())
	}
	return matches, regions
}

// widths are the readings scanmem's flags name at an address that each
// is aligned to (procmem's anyint and anynumber align every width to its
// size; scanmem tries every byte offset): "int16,int32,float".
func widths(addr uint64, flags string) string {
	var out []string
	for _, w := range []struct{ flag, name string }{{"I8", "8"}, {"I16", "16"}, {"I32", "32"}, {"F32", "float"}, {"I64", "64"}, {"F64", "double"}} {
		size := map[string]uint64{"8": 1, "16": 2, "32": 4, "float": 4, "64": 8, "double": 8}[w.name]
		if addr%size == 0 && strings.Contains(" "+strings.Trim(flags, "[]"), " "+w.flag) {
			out = append(out, w.name)
		}
	}
	return strings.Join(out, ",")
}

// ourWidths is list's kind column as widths() writes them.
func ourWidths(kind string) string {
	var out []string
	for _, k := range strings.Split(kind, ",") {
		k = strings.TrimPrefix(strings.TrimPrefix(k, "u"), "int")
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b string) int {
		order := map[string]int{"8": 0, "16": 1, "32": 2, "float": 3, "64": 4, "double": 5}
		return order[a] - order[b]
	})
	return strings.Join(out, ",")
}

func inRegions(addr uint64, regions [][2]uint64) bool {
	for _, r := range regions {
		if r[0] <= addr && addr < r[1] {
			return true
		}
	}
	return false
}

// agree compares procmem's matches (address: list's line) with scanmem's
// in the regions scanmem scans, by the widths each keeps.
func agree(t *testing.T, what string, ours map[uint64]string, theirs map[uint64]string, regions [][2]uint64) {
	t.Helper()
	want := map[uint64]string{}
	for a, flags := range theirs {
		if w := widths(a, flags); w != "" {
			want[a] = w
		}
	}
	got := map[uint64]string{}
	for a, line := range ours {
		f := strings.Fields(line)
		if inRegions(a, regions) {
			got[a] = ourWidths(f[len(f)-1])
		}
	}
	if len(want) == 0 || fmt.Sprint(want) != fmt.Sprint(got) {
		t.Errorf("%s: procmem %d matches, scanmem %d (aligned):\nprocmem %v\nscanmem %v", what, len(got), len(want), got, want)
	}
}

// sameAddresses compares the addresses of procmem's matches with
// scanmem's in the regions scanmem scans.
func sameAddresses(t *testing.T, what string, ours map[uint64]string, theirs map[uint64]string, regions [][2]uint64) {
	t.Helper()
	var want, got []uint64
	for a := range theirs {
		want = append(want, a)
	}
	for a := range ours {
		if inRegions(a, regions) {
			got = append(got, a)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if len(want) == 0 || !slices.Equal(want, got) {
		t.Errorf("%s: procmem %x, scanmem %x", what, got, want)
	}
}

// TestScanAnyIntAgreesWithScanmem: anyint finds at each address the widths
// scanmem's int finds there aligned, on the game's first scan and after a
// narrowing; anynumber agrees with scanmem's number.
func TestScanAnyIntAgreesWithScanmem(t *testing.T) {
	requireTool(t, "scanmem")
	g := startGame(t)
	s := newScanner(t, g)
	n := s.count("-t", "anyint", "100")
	theirs, regions := scanmemRun(t, g.pid, "int", []string{"100"})
	agree(t, "anyint 100", s.listed(n), theirs, regions)
	// The game's health drops between the scans, both scanmem's and ours.
	theirs, regions = scanmemRun(t, g.pid, "int", []string{"100", "90"}, func(int) {
		g.do("hit 10")
		n = s.count("90")
	})
	agree(t, "anyint 100, then 90", s.listed(n), theirs, regions)
	if line, ok := s.listed(n)[g.addr["health"]]; !ok || !strings.HasSuffix(line, "90  90  int8,int16,int32") {
		t.Errorf("the health in list: %q", line)
	}
	// set writes the widest width each match has: the health as an int32.
	mustSucceed(t, s.run("set", "1000"), "set 1000")
	if h := g.health(); h != 1000 {
		t.Errorf("set 1000 on anyint: the game sees %d", h)
	}

	mustSucceed(t, s.run("-t", "anynumber", "reset"), "reset")
	n = s.count("100")
	theirs, regions = scanmemRun(t, g.pid, "number", []string{"100"})
	agree(t, "anynumber 100", s.listed(n), theirs, regions)
	// 2.5 is the score, a double: anynumber finds it as one.
	mustSucceed(t, s.run("reset"), "reset")
	s.count("2.5")
	if line := s.listed(100)[g.addr["score"]]; !strings.HasSuffix(line, "  double") {
		t.Errorf("anynumber 2.5: the score is listed as %q", line)
	}
}

// pyheld is a running testdata/pyheld.py.
type pyheld struct{ *helperProc }

func startPython(t *testing.T, args ...string) *pyheld {
	t.Helper()
	requireTool(t, "python3")
	return &pyheld{startHelper(t, "python3", append([]string{"testdata/pyheld.py"}, args...)...)}
}

func (p *pyheld) do(format string, a ...any) {
	p.t.Helper()
	fmt.Fprintf(p.in, format+"\n", a...)
	if line, err := p.out.ReadString('\n'); err != nil || line != "ok\n" {
		p.t.Fatalf("python: %q, %v", line, err)
	}
}

// TestScanPython: in a python3 process, anyint finds an int where CPython
// keeps its digit, agreeing with scanmem's int; string finds a str
// (scanmem agrees), narrows it as it changes in place and sets it;
// string --utf16 finds a str CPython keeps in UCS-2.
func TestScanPython(t *testing.T) {
	requireTool(t, "scanmem", "python3")
	value := 100000000 + rand.IntN(900000000) // below 2**30: one digit
	text := fmt.Sprintf("procmem-%08d", rand.IntN(100000000))
	p := startPython(t, strconv.Itoa(value), text, "Ωmega-"+text)
	s := &scanner{t: t, g: &game{&helperProc{t: t, pid: p.pid}}, session: t.TempDir() + "/s"}

	n := s.count("-t", "anyint", strconv.Itoa(value))
	ours := s.listed(n)
	if line, ok := ours[p.addr["int"]]; !ok || !strings.Contains(line, "int32") {
		t.Fatalf("anyint %d: the int's digit at %x is not among %d matches: %q", value, p.addr["int"], n, line)
	}
	theirs, regions := scanmemRun(t, p.pid, "int", []string{strconv.Itoa(value)})
	agree(t, "anyint in python", ours, theirs, regions)

	mustSucceed(t, s.run("-t", "string", "reset"), "reset")
	n = s.count(text)
	ours = s.listed(n)
	if _, ok := ours[p.addr["text"]]; !ok {
		t.Fatalf("string %q: not at %x: %v", text, p.addr["text"], ours)
	}
	theirs, regions = scanmemRun(t, p.pid, "string", []string{`" ` + text})
	sameAddresses(t, "string", ours, theirs, regions)
	// The game renames the hero: changed keeps the str, = the new name
	// keeps it; the old name is gone.
	renamed := "PROCMEM" + text[7:]
	p.do("text %s", renamed)
	if n := s.count("changed"); n < 1 {
		t.Fatalf("changed after the rename: %d", n)
	}
	if n := s.count(renamed); n != 1 {
		t.Fatalf("= %s: %d matches", renamed, n)
	}
	line := s.listed(1)[p.addr["text"]]
	if !strings.Contains(line, strconv.Quote(renamed)) {
		t.Errorf("list: %q", line)
	}
	if r := s.run("set", "short"); r.code != 2 || !strings.Contains(r.stderr, "as long as the matches") {
		t.Errorf("set of another length: exit %d, %q", r.code, r.stderr)
	}
	mustSucceed(t, s.run("set", "x"+renamed[1:]), "set")
	if b := directRead(t, p.pid, p.addr["text"], len(text)); string(b) != "x"+renamed[1:] {
		t.Errorf("after set, python's str holds %q", b)
	}

	mustSucceed(t, s.run("-t", "string", "--utf16", "reset"), "reset")
	if n := s.count("Ωmega-" + text); n < 1 {
		t.Fatalf("string --utf16: %d", n)
	}
	if _, ok := s.listed(10)[p.addr["wide"]]; !ok {
		t.Errorf("string --utf16: the UCS-2 str at %x is not among the matches", p.addr["wide"])
	}
}

// TestScanBytes: a byte pattern with ?? finds what scanmem's bytearray
// finds; nibble wildcards narrow it; = narrows by bytes; set writes them.
func TestScanBytes(t *testing.T) {
	requireTool(t, "scanmem")
	g := startGame(t)
	s := newScanner(t, g)
	// The player: "hero" in 16 bytes, then health 100 (64 00 00 00).
	const pattern = "68 65 72 6f 00 ?? ?? ??"
	n := s.count("-t", "bytes", pattern)
	ours := s.listed(n)
	theirs, regions := scanmemRun(t, g.pid, "bytearray", []string{pattern})
	sameAddresses(t, "bytes", ours, theirs, regions)
	hero := g.addr["health"] - 16
	if _, ok := ours[hero]; !ok {
		t.Fatalf("the player's name is not among %v", ours)
	}
	mustSucceed(t, s.run("reset"), "reset")
	if n := s.count("-t", "bytes", "6? 65 ?2 6f"); n < 1 {
		t.Fatalf("nibble wildcards: %d", n)
	}
	if _, ok := s.listed(50)[hero]; !ok {
		t.Errorf("nibble wildcards miss the name")
	}
	if n := s.count("=", "68 65 72 6f"); n < 1 {
		t.Errorf("= narrowing: %d", n)
	}
	mustSucceed(t, s.run("set", "56 69 6c 65"), "set bytes") // "Vile"
	if b := directRead(t, g.pid, hero, 4); string(b) != "Vile" {
		t.Errorf("after set the name is %q", b)
	}
}

// TestScanGroup: values close together, each of its type, found at the
// first one's address with the others' offsets, and narrowed value by
// value.
func TestScanGroup(t *testing.T) {
	g := startGame(t)
	s := newScanner(t, g)
	// The player: health (int32 100), speed (float 1.5), score (double 2.5).
	if n := s.count("group", "100", "1.5:float", "2.5:double", "within", "16"); n != 1 {
		t.Fatalf("group: %d matches", n)
	}
	line, ok := s.listed(5)[g.addr["health"]]
	if f := strings.Fields(line); !ok || f[3] != "100,1.5,2.5" || f[5] != "+0x4,+0x8" {
		t.Fatalf("group match: %q", line)
	}
	g.do("hit 10")
	g.do("speed 2.5")
	if n := s.count("group", "90", "changed", "*"); n != 1 {
		t.Errorf("group 90 changed *: %d", n)
	}
	if n := s.count("decreased"); n != 0 {
		t.Errorf("decreased (the first value, unchanged since): %d", n)
	}
	mustSucceed(t, s.run("undo"), "undo")
	mustSucceed(t, s.run("set", "500"), "set")
	if h := g.health(); h != 500 {
		t.Errorf("set on a group writes its first value: the game sees %d", h)
	}
	if r := s.run("group", "1", "2"); r.code != 2 || !strings.Contains(r.stderr, "groups of 3 values, not 2") {
		t.Errorf("a group of another shape: exit %d, %q", r.code, r.stderr)
	}
}
