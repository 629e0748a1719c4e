//go:build linux

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startCoreTarget runs testdata/coretarget.c: a global string, a heap
// struct behind a global pointer, main blocked in read(2), a thread in
// nanosleep inside sleeper_in_named_function.
func startCoreTarget(t *testing.T) int {
	pid, _ := startCoreTargetAt(t)
	return pid
}

// startCoreTargetAt is startCoreTarget, with the address of the player's
// health (4242) it announces.
func startCoreTargetAt(t *testing.T) (int, uint64) {
	t.Helper()
	h := startHelper(t, coreBin)
	h.discardOutput()
	return h.pid, h.addr["health"]
}

// watchStopped samples the target's status until stop is called, and
// reports whether it was ever stopped or traced.
func watchStopped(pid int) (stop func() string) {
	done := make(chan struct{})
	var mu sync.Mutex
	var seen []string
	go func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				continue
			}
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "TracerPid:"); ok && strings.TrimSpace(v) != "0" ||
					strings.HasPrefix(line, "State:") && (strings.Contains(line, "T (") || strings.Contains(line, "t (")) {
					mu.Lock()
					seen = append(seen, line)
					mu.Unlock()
				}
			}
		}
	}()
	return func() string {
		close(done)
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(seen, "; ")
	}
}

// gdbOnCore runs gdb on a core of process pid and checks what it shows.
func gdbOnCore(t *testing.T, pid int, corePath string) {
	t.Helper()
	r := run(t, "", "gdb", "-nx", "-batch",
		"-ex", "print core_global", "-ex", "print core_player->health", "-ex", "print core_player->name",
		"-ex", "info sharedlibrary", "-ex", "info threads", "-ex", "thread apply all bt",
		fmt.Sprintf("/proc/%d/exe", pid), corePath)
	for _, want := range []string{
		`$1 = "procmem core global"`, "$2 = 4242", `"hero"`,
		"libc.so.6", fmt.Sprintf("(LWP %d)", pid), "sleeper_in_named_function", " in main (",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("gdb on %s lacks %q:\n%s\n%s", corePath, want, r.stdout, r.stderr)
		}
	}
	if n := strings.Count(r.stdout, "(LWP "); n < 4 { // info threads and bt, two threads each
		t.Errorf("gdb on %s shows %d thread lines, want both threads:\n%s", corePath, n, r.stdout)
	}
	// The process was never stopped, and no signal ended it.
	if strings.Contains(r.stdout, "signal") {
		t.Errorf("gdb on %s speaks of a signal:\n%s", corePath, r.stdout)
	}
}

// TestCoreWithGdb: gdb opens the mount's core of a live process, and the
// core procmem core writes, and shows its globals, heap, libraries and
// both threads' stacks; the process is never stopped or traced meanwhile.
func TestCoreWithGdb(t *testing.T) {
	requireTool(t, "gdb", "lldb", "readelf", "eu-readelf")
	pid := startCoreTarget(t)
	m := startMount(t)
	mountCore := m.path(itoa(pid), "core")

	stopped := watchStopped(pid)
	gdbOnCore(t, pid, mountCore)
	file := filepath.Join(t.TempDir(), "core")
	r := procmem(t, "-p", itoa(pid), "core", "-o", file)
	mustSucceed(t, r, "procmem core")
	gdbOnCore(t, pid, file)
	if seen := stopped(); seen != "" {
		t.Errorf("the process was stopped or traced while its core was read: %s", seen)
	}

	var st syscall.Stat_t
	if err := syscall.Stat(file, &st); err != nil || st.Blocks*512 >= st.Size {
		t.Errorf("procmem core -o is not sparse: %d blocks for %d bytes (%v)", st.Blocks, st.Size, err)
	}
	if fi, err := os.Stat(mountCore); err != nil || fi.Size() != st.Size {
		t.Errorf("the mount's core is %v bytes (%v), the written one %d", fi, err, st.Size)
	}
	notes := run(t, "", "readelf", "-n", file)
	mustSucceed(t, notes, "readelf -n")
	for note, want := range map[string]int{"NT_PRSTATUS": 2, "NT_PRPSINFO": 1, "NT_SIGINFO": 1, "NT_AUXV": 1, "NT_FILE": 1, "NT_FPREGSET": 2} {
		if n := strings.Count(notes.stdout, note); n != want {
			t.Errorf("readelf -n shows %d %s, want %d:\n%s", n, note, want, notes.stdout)
		}
	}
	lldb := run(t, "", "lldb", "--batch", "-c", file, fmt.Sprintf("/proc/%d/exe", pid), "-o", "thread list", "-o", "p core_player->health")
	if !strings.Contains(lldb.stdout, fmt.Sprintf("tid = %d", pid)) || !strings.Contains(lldb.stdout, "= 4242") || !strings.Contains(lldb.stdout, "thread #2") {
		t.Errorf("lldb on the core:\n%s\n%s", lldb.stdout, lldb.stderr)
	}
	// lldb makes up SIGSTOP where no thread has a signal: the process was
	// never stopped.
	if strings.Contains(lldb.stdout, "SIGSTOP") {
		t.Errorf("lldb says the process was stopped:\n%s", lldb.stdout)
	}
	if eu := run(t, "", "eu-readelf", "-n", file); eu.code != 0 || !strings.Contains(eu.stdout, "PRPSINFO") || !strings.Contains(eu.stdout, "fname: coretarget") {
		t.Errorf("eu-readelf -n: exit %d\n%s\n%s", eu.code, eu.stdout, eu.stderr)
	}
	entries, _ := os.ReadDir(m.path(itoa(pid)))
	for _, e := range entries {
		if e.Name() == "core" {
			t.Errorf("core is listed: recursive tools would read the memory twice")
		}
	}
	// A process that exits while its core is open: reads end, never
	// another process's memory.
	f, err := os.Open(mountCore)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, "the target to exit", func() (string, bool) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return string(b), err != nil || strings.Contains(string(b), ") Z ")
	})
	b := make([]byte, 1<<20)
	if n, err := f.ReadAt(b, 1<<20); n > 0 && err == nil {
		t.Errorf("a core read %d bytes of memory after its process exited", n)
	}
}

// TestAddressExpressionAcrossRestart: an address written as a pointer
// chain from a module (the global core_player of coretarget, then 16
// bytes into the struct it points to) reads the same value in two runs
// whose addresses differ, and write takes it too.
func TestAddressExpressionAcrossRestart(t *testing.T) {
	requireTool(t, "nm")
	nm := run(t, "", "nm", coreBin)
	mustSucceed(t, nm, "nm")
	var off string
	for _, line := range strings.Split(nm.stdout, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[2] == "core_player" {
			off = f[0]
		}
	}
	if off == "" {
		t.Fatalf("no core_player in nm's output:\n%s", nm.stdout)
	}
	health := fmt.Sprintf("[coretarget+%s]+10", off)
	var heaps []string
	for run := 0; run < 2; run++ {
		pid := itoa(startCoreTarget(t))
		r := procmem(t, "-p", pid, "read", "-r", health+":+4")
		mustSucceed(t, r, "read -r "+health)
		if !strings.Contains(r.stdout, "92 10 00 00") {
			t.Errorf("run %d: read -r %s:+4 does not show 4242:\n%s", run, health, r.stdout)
		}
		heaps = append(heaps, strings.SplitN(r.stdout, " ", 2)[0])
		if r := procmem(t, "-p", pid, "search", "-r", health+":+4", "-t", "int32", "4242"); r.code != 0 || strings.Count(r.stdout, "\n  ") != 1 {
			t.Errorf("run %d: search -r %s:+4 -t int32 4242: exit %d\n%s%s", run, health, r.code, r.stdout, r.stderr)
		}
		mustSucceed(t, procmem(t, "-p", pid, "write", "-a", health, "-b", "39 05 00 00"), "write -a "+health)
		if r := procmem(t, "-p", pid, "read", "-r", health+":+4"); !strings.Contains(r.stdout, "39 05 00 00") {
			t.Errorf("run %d: after write -a %s, read shows:\n%s", run, health, r.stdout)
		}
	}
	if heaps[0] == heaps[1] {
		t.Logf("both runs had the heap at %s: the test shows less than it could (address randomization off?)", heaps[0])
	}
}

// TestPointersAcrossRestart: pointers finds the chains from coretarget's
// globals to the player's health (one through core_player, two through
// core_world), and each printed chain from the program's own data reads
// the health in a second run, whose addresses differ; --verify with the
// second run keeps them.
func TestPointersAcrossRestart(t *testing.T) {
	pid, health := startCoreTargetAt(t)
	r := procmem(t, "-p", itoa(pid), "pointers", fmt.Sprintf("%x", health), "--depth", "3")
	mustSucceed(t, r, "pointers")
	chains := strings.Fields(r.stdout)
	var own []string
	for _, c := range chains {
		if strings.HasPrefix(strings.TrimLeft(c, "["), "coretarget+") {
			own = append(own, c)
		}
	}
	if len(own) < 2 || strings.Count(own[0], "[") != 1 || !slices.ContainsFunc(own, func(c string) bool { return strings.Count(c, "[") == 2 && strings.HasSuffix(c, "]+8]+10") }) {
		t.Fatalf("pointers to the health found %q; want the one-level chain first and a two-level one through core_world", own)
	}
	pid2, health2 := startCoreTargetAt(t)
	if health2 == health {
		t.Logf("both runs have the health at %#x (address randomization off?)", health)
	}
	for _, c := range own {
		r := procmem(t, "-p", itoa(pid2), "read", "-r", c+":+4")
		if r.code != 0 || !strings.Contains(r.stdout, "92 10 00 00") {
			t.Errorf("%s in the second run: exit %d\n%s%s", c, r.code, r.stdout, r.stderr)
		}
	}
	v := procmem(t, "-p", itoa(pid), "pointers", fmt.Sprintf("%x", health), "--depth", "3", "--verify", itoa(pid2))
	mustSucceed(t, v, "pointers --verify")
	for _, c := range own {
		if !slices.Contains(strings.Fields(v.stdout), c) {
			t.Errorf("--verify dropped %s, which resolves in the second run", c)
		}
	}
}
