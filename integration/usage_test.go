//go:build linux

package integration

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"image/png"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procmem/procmem/usage"
)

// usageTarget is a running testdata/usagetarget.c.
type usageTarget struct{ *helperProc }

func startUsageTarget(t testing.TB) *usageTarget {
	t.Helper()
	return &usageTarget{startHelper(t, usageBin)}
}

// do sends a command and waits for its "ok".
func (ut *usageTarget) do(format string, a ...any) {
	ut.t.Helper()
	fmt.Fprintf(ut.in, format+"\n", a...)
	if line, err := ut.out.ReadString('\n'); err != nil || line != "ok\n" {
		ut.t.Fatalf("usagetarget: %q, %v", line, err)
	}
}

type usageJSON struct {
	PID   int                      `json:"pid"`
	Kinds map[string]usage.Figures `json:"kinds"`
	Total usage.Figures            `json:"total"`
	Top   []struct {
		Addr  string `json:"addr"`
		Start string `json:"start"`
		End   string `json:"end"`
		Path  string `json:"path"`
		Kind  string `json:"kind"`
		usage.Figures
	} `json:"top"`
}

// TestUsageKinds: each kind holds what the target put there, and the sums
// agree with smaps_rollup, read right after.
func TestUsageKinds(t *testing.T) {
	ut := startUsageTarget(t)
	var got usageJSON
	var field func(string) uint64
	// Pss of a shared page (libc's text) changes whenever another process
	// on the machine maps or unmaps it, so the two readings agree only
	// when nothing else started or ended between them: take up to ten
	// pairs and keep the first that agrees. A wrong sum never agrees.
	for try := 0; ; try++ {
		r := procmem(t, "-p", itoa(ut.pid), "usage", "--json", "--top", "5")
		mustSucceed(t, r, "procmem usage --json")
		got = usageJSON{}
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("%v: %s", err, r.stdout)
		}
		rollup, err := pinned(t, ut.pid).SmapsRollup()
		if err != nil {
			t.Fatal(err)
		}
		field = func(name string) uint64 { v, _ := rollup.Field(name); return v }
		if pss, want := got.Total.Pss, field("Pss"); (pss <= want && want-pss < uint64(got.Total.Regions)<<10) || try == 9 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for name, pair := range map[string][2]uint64{
		"Rss": {got.Total.Rss, field("Rss")}, "Swap": {got.Total.Swap, field("Swap")},
		"Private_Dirty": {got.Total.PrivateDirty, field("Private_Dirty")}, "Pss_Shmem": {got.Kinds["shmem"].Pss, field("Pss_Shmem")},
	} {
		if pair[0] != pair[1] {
			t.Errorf("%s: usage says %d, smaps_rollup %d", name, pair[0], pair[1])
		}
	}
	// smaps rounds each mapping's pss down to a KiB; smaps_rollup rounds
	// the sum.
	if pss, want := got.Total.Pss, field("Pss"); pss > want || want-pss >= uint64(got.Total.Regions)<<10 {
		t.Errorf("Pss: usage says %d, smaps_rollup %d, more apart than a KiB per region", pss, want)
	}
	if anon := got.Kinds["heap"].Pss + got.Kinds["anon"].Pss + got.Kinds["stack"].Pss; anon > field("Pss_Anon") {
		t.Errorf("heap, anon and stack pss %d exceed smaps_rollup's Pss_Anon %d", anon, field("Pss_Anon"))
	}
	var sum usage.Figures
	for _, f := range got.Kinds {
		sum.Size, sum.Rss, sum.Regions = sum.Size+f.Size, sum.Rss+f.Rss, sum.Regions+f.Regions
	}
	if sum.Size != got.Total.Size || sum.Rss != got.Total.Rss || sum.Regions != got.Total.Regions {
		t.Errorf("kinds sum to %+v, total %+v", sum, got.Total)
	}
	const MiB = 1 << 20
	for kind, want := range map[string]uint64{"heap": 12 * MiB, "anon": 12 * MiB, "stack": 256 << 10, "file": 8 * MiB, "shmem": 6 * MiB, "code": 4096} {
		if rss := got.Kinds[kind].Rss; rss < want || rss > want+4*MiB {
			t.Errorf("%s rss %d, want %d to %d", kind, rss, want, want+4*MiB)
		}
	}
	if got.Kinds["heap"].Regions < 3 { // [heap], the arena and its reservation
		t.Errorf("heap has %d regions, want [heap] and an arena: %+v", got.Kinds["heap"].Regions, got.Top)
	}
	kindAt := func(addr uint64) string {
		for _, r := range got.Top {
			start, _ := strconv.ParseUint(strings.TrimPrefix(r.Start, "0x"), 16, 64)
			end, _ := strconv.ParseUint(strings.TrimPrefix(r.End, "0x"), 16, 64)
			if start <= addr && addr < end {
				return r.Kind + " " + r.Addr
			}
		}
		return "none"
	}
	for addr, kind := range map[uint64]string{ut.addr["memfd"]: "shmem", ut.addr["anon"]: "anon", ut.addr["file"]: "file"} {
		if got := kindAt(addr); !strings.HasPrefix(got, kind+" ") {
			t.Errorf("top regions: 0x%x is in %q, want %s: %+v", addr, got, kind, got)
		}
	}
	if got := kindAt(procfsRegionStart(t, ut.pid, "[heap]")); got != "heap [heap]+0" {
		t.Errorf("top regions: [heap] is %q", got)
	}
}

// TestUsageLive: under tmux, the live table shows the target's growth
// since the start, and at Ctrl-C the region that appeared.
func TestUsageLive(t *testing.T) {
	requireTool(t, "tmux")
	ut := startUsageTarget(t)
	socket := fmt.Sprintf("procmem-usage-%d", ut.pid)
	tmux := func(args ...string) (string, error) {
		out, err := exec.Command("tmux", append([]string{"-L", socket}, args...)...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() { tmux("kill-server") })
	if out, err := tmux("new-session", "-d", "-s", "live", "-x", "160", "-y", "50", "env", "TERM=xterm",
		procmemBin, "-p", itoa(ut.pid), "usage", "-i", "200ms"); err != nil {
		t.Fatalf("tmux: %v: %s", err, out)
	}
	tmux("set-option", "-t", "live", "remain-on-exit", "on") // to read what it says at the end
	waitFor(t, "the live table", func() (string, bool) {
		out, _ := tmux("capture-pane", "-p", "-t", "live")
		return out, strings.Contains(out, "since start")
	})
	ut.do("grow 32")
	screen := waitFor(t, "anon +32MiB since the start", func() (string, bool) {
		out, _ := tmux("capture-pane", "-p", "-t", "live")
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 2 && f[0] == "anon" && f[2] == "+32.00MiB" {
				return out, true
			}
		}
		return out, false
	})
	if strings.Count(screen, "since start") != 1 {
		t.Errorf("the table is not redrawn in place:\n%s", screen)
	}
	tmux("send-keys", "-t", "live", "C-c")
	waitFor(t, "the regions that changed since the first sample", func() (string, bool) {
		out, _ := tmux("capture-pane", "-p", "-t", "live", "-S", "-50")
		return out, strings.Contains(out, "regions that changed since the first sample") && strings.Contains(out, "new    anon")
	})
}

// TestUsagePlot: --plot writes an SVG that parses as XML and a PNG that
// decodes, each with a band in the color of every kind that has memory.
func TestUsagePlot(t *testing.T) {
	ut := startUsageTarget(t)
	dir := t.TempDir()
	for _, name := range []string{"u.svg", "u.png"} {
		path := filepath.Join(dir, name)
		r := procmem(t, "-p", itoa(ut.pid), "usage", "-i", "100ms", "-n", "4", "--plot", path)
		mustSucceed(t, r, "procmem usage --plot "+name)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		kinds := []usage.Kind{usage.Heap, usage.Anon, usage.Stack, usage.Code, usage.File, usage.Shmem}
		if name == "u.svg" {
			d := xml.NewDecoder(bytes.NewReader(b))
			for {
				if _, err := d.Token(); err == io.EOF {
					break
				} else if err != nil {
					t.Fatalf("the SVG is not XML: %v", err)
				}
			}
			for _, k := range kinds {
				c := usage.KindColors[k]
				if fill := fmt.Sprintf("fill:#%02X%02X%02X", c.R, c.G, c.B); !strings.Contains(string(b), fill) || !strings.Contains(string(b), ">"+k.String()+" ") {
					t.Errorf("the SVG has no %s band (%s) or legend", k, fill)
				}
			}
			continue
		}
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("the PNG does not decode: %v", err)
		}
		seen := map[usage.Kind]int{}
		bounds := img.Bounds()
		for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
			for x := bounds.Min.X; x < bounds.Max.X; x++ {
				r, g, bl, _ := img.At(x, y).RGBA()
				for _, k := range kinds {
					c := usage.KindColors[k]
					if uint8(r>>8) == c.R && uint8(g>>8) == c.G && uint8(bl>>8) == c.B {
						seen[k]++
					}
				}
			}
		}
		for _, k := range kinds {
			if seen[k] < 20 {
				t.Errorf("the PNG has %d pixels of %s's color", seen[k], k)
			}
		}
	}
}

// TestUsageAllRanksGrower: --all by growth puts the process that grew
// first.
func TestUsageAllRanksGrower(t *testing.T) {
	ut := startUsageTarget(t)
	// By shared memory, which the other tests on a shared machine do not
	// grow by the hundred MiB.
	cmd := exec.Command(procmemBin, "usage", "--all", "--by", "shmem", "-i", "4s", "-n", "2")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	ut.do("share 128")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("procmem usage --all: %v\n%s", err, out.String())
	}
	lines := strings.Split(out.String(), "\n")
	if len(lines) < 3 || !strings.Contains(lines[0], "by growth of shmem") {
		t.Fatalf("no ranking:\n%s", out.String())
	}
	if f := strings.Fields(lines[2]); len(f) < 4 || f[0] != itoa(ut.pid) || !strings.HasPrefix(f[3], "+") {
		t.Errorf("the target (pid %d, grown by 128 MiB) is not first:\n%s", ut.pid, out.String())
	}
}

// coreFiles lists the files in dir.
func coreFiles(t *testing.T, dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// TestCoreWhen: core --when writes a core once the target grows past the
// line, within an interval (and the time to write it), without stopping
// it; a second no sooner than the spacing; each named for when and why.
func TestCoreWhen(t *testing.T) {
	requireTool(t, "readelf")
	ut := startUsageTarget(t)
	dir := t.TempDir()
	prefix := filepath.Join(dir, "c")
	cmd := exec.Command(procmemBin, "-p", itoa(ut.pid), "core", "--when", "anon > 40M", "-i", "100ms",
		"--count", "2", "--spacing", "2s", "-o", prefix)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	stopped := watchStopped(ut.pid)
	time.Sleep(500 * time.Millisecond)
	if names := coreFiles(t, dir); len(names) != 0 {
		t.Fatalf("cores before the line was crossed: %v", names)
	}
	ut.do("grow 48")
	crossed := time.Now()
	var first time.Time
	waitFor(t, "the first core", func() (string, bool) {
		names := coreFiles(t, dir)
		if len(names) > 0 && first.IsZero() {
			first = time.Now()
		}
		return strings.Join(names, " ") + "\n" + stderr.String(), len(names) == 1 && !strings.HasPrefix(names[0], ".")
	})
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("procmem core --when: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("procmem core --when did not end after two cores:\n%s", stderr.String())
	}
	if seen := stopped(); seen != "" {
		t.Errorf("the process was stopped or traced while watched: %s", seen)
	}
	names := coreFiles(t, dir)
	if len(names) != 2 {
		t.Fatalf("cores: %v, want 2\n%s", names, stderr.String())
	}
	var times []time.Time
	for _, name := range names {
		// c.20261205-080555.anon-gt-40M
		parts := strings.SplitN(name, ".", 3)
		if len(parts) != 3 || parts[2] != "anon-gt-40M" && !strings.HasPrefix(parts[2], "anon-gt-40M-") {
			t.Errorf("core %q is not named PREFIX.TIME.anon-gt-40M", name)
			continue
		}
		at, err := time.ParseInLocation("20060102-150405", parts[1], time.Local)
		if err != nil {
			t.Errorf("core %q: %v", name, err)
		}
		times = append(times, at)
		mustSucceed(t, run(t, "", "readelf", "-h", filepath.Join(dir, name)), "readelf -h "+name)
	}
	if len(times) == 2 && times[1].Sub(times[0]) < time.Second { // names have whole seconds; spacing 2s
		t.Errorf("second core %v after the first, want no sooner than the spacing", times[1].Sub(times[0]))
	}
	if d := first.Sub(crossed); d > 5*time.Second {
		t.Errorf("the first core appeared %v after the line was crossed", d)
	}
	if !strings.Contains(stderr.String(), "anon is ") {
		t.Errorf("procmem did not say why:\n%s", stderr.String())
	}
}

// TestCoreWhenSignal: SIGUSR2 to procmem writes a core at once.
func TestCoreWhenSignal(t *testing.T) {
	ut := startUsageTarget(t)
	dir := t.TempDir()
	cmd := exec.Command(procmemBin, "-p", itoa(ut.pid), "core", "--when", "signal USR2", "-i", "10s", "-o", filepath.Join(dir, "c"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, "procmem to watch", func() (string, bool) { return stderr.String(), strings.Contains(stderr.String(), "watching") })
	cmd.Process.Signal(syscall.SIGUSR2)
	waitWithin(t, 5*time.Second, "a core after SIGUSR2", func() (string, bool) {
		names := coreFiles(t, dir)
		return strings.Join(names, " "), len(names) == 1 && strings.HasSuffix(names[0], ".signal-USR2")
	})
}

// TestCoreNoRoom: a core that would not fit on its disk is not written,
// by core and by core --when, and nothing is left behind.
func TestCoreNoRoom(t *testing.T) {
	requireRoot(t)
	ut := startUsageTarget(t)
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		skipOrFail(t, "mount tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	r := procmem(t, "-p", itoa(ut.pid), "core", "-o", filepath.Join(dir, "core"))
	if r.code != 1 || !strings.Contains(r.stderr, "would not fit") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("core on a full disk: exit %d, %q", r.code, r.stderr)
	}
	cmd := exec.Command(procmemBin, "-p", itoa(ut.pid), "core", "--when", "rss > 1M", "-i", "100ms", "-o", filepath.Join(dir, "c"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "core --when to refuse", func() (string, bool) {
		return stderr.String(), strings.Contains(stderr.String(), "would not fit")
	})
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Errorf("core --when after Ctrl-C: %v\n%s", err, stderr.String())
	}
	if names := coreFiles(t, dir); len(names) != 0 {
		t.Errorf("left behind: %v", names)
	}
}

// TestCoreWhenBad: a malformed condition or flag is a usage error, said
// in one line.
func TestCoreWhenBad(t *testing.T) {
	ut := startUsageTarget(t)
	for _, args := range [][]string{
		{"--when", "rss >"}, {"--when", "rss > 2Q"}, {"--when", "bogus > 1G"}, {"--when", "heap grows 1M"},
		{"--when", "signal KILL"}, {"--when", "(rss > 1G"}, {"--when", "rss > 1G", "--count", "0"},
		{"--count", "2"}, {"--when", "rss > 1G", "-i", "1ms"},
	} {
		r := procmem(t, append([]string{"-p", itoa(ut.pid), "core"}, args...)...)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		if r.code != 2 || len(lines) != 2 || !strings.HasPrefix(lines[0], "procmem: core: ") {
			t.Errorf("core %q: exit %d, stderr %q; want 2 and one line", args, r.code, r.stderr)
		}
	}
	if r := procmem(t, "-p", itoa(ut.pid), "-S", "core", "--when", "rss > 1G"); r.code != 2 {
		t.Errorf("-S with --when: exit %d, %q", r.code, r.stderr)
	}
}

// TestCoreWhenCgroup: cgroup > N% fires when the target's cgroup nears
// its limit (cgroup v1's memory controller or v2, whichever is mounted).
func TestCoreWhenCgroup(t *testing.T) {
	requireRoot(t)
	ut := startUsageTarget(t)
	dir := makeMemoryCgroup(t, 256<<20)
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(itoa(ut.pid)), 0); err != nil {
		skipOrFail(t, "move the target into %s: %v", dir, err)
	}
	out := t.TempDir()
	cmd := exec.Command(procmemBin, "-p", itoa(ut.pid), "core", "--when", "cgroup > 30%", "-i", "100ms", "-o", filepath.Join(out, "c"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	time.Sleep(500 * time.Millisecond)
	if names := coreFiles(t, out); len(names) != 0 {
		t.Fatalf("a core before the cgroup filled: %v\n%s", names, stderr.String())
	}
	ut.do("grow 96")
	waitFor(t, "a core once the cgroup is over 30% of 256 MiB", func() (string, bool) {
		names := coreFiles(t, out)
		return strings.Join(names, " ") + "\n" + stderr.String(), len(names) == 1 && strings.HasSuffix(names[0], ".cgroup-gt-30pct")
	})
}

// makeMemoryCgroup makes a cgroup with a memory limit, removed when the
// test ends (its processes moved out first).
func makeMemoryCgroup(t *testing.T, limit uint64) string {
	t.Helper()
	var dir, limitFile, parentProcs string
	switch {
	case isDir("/sys/fs/cgroup/memory"):
		dir, limitFile, parentProcs = "/sys/fs/cgroup/memory", "memory.limit_in_bytes", "/sys/fs/cgroup/memory/cgroup.procs"
	case fileExists("/sys/fs/cgroup/cgroup.controllers"):
		os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+memory"), 0)
		dir, limitFile, parentProcs = "/sys/fs/cgroup", "memory.max", "/sys/fs/cgroup/cgroup.procs"
	default:
		skipOrFail(t, "no cgroup memory controller mounted")
	}
	dir = filepath.Join(dir, fmt.Sprintf("procmem-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		skipOrFail(t, "make a cgroup: %v", err)
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
			for _, pid := range strings.Fields(string(b)) {
				os.WriteFile(parentProcs, []byte(pid), 0)
			}
		}
		os.Remove(dir)
	})
	if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(strconv.FormatUint(limit, 10)), 0); err != nil {
		skipOrFail(t, "limit the cgroup: %v", err)
	}
	return dir
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// procfsRegionStart is where the region of process pid with the given path
// starts.
func procfsRegionStart(t *testing.T, pid int, path string) uint64 {
	regions, err := pinned(t, pid).Maps()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regions {
		if r.Path == path {
			return r.Start
		}
	}
	t.Fatalf("no %s in process %d", path, pid)
	return 0
}
