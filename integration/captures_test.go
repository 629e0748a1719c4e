//go:build linux

package integration

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// capturedCores are cores of one coretarget process written by each
// writer the tests know, and where its player's health (4242) lies.
type capturedCores struct {
	exe    string
	pid    int
	health uint64
	paths  map[string]string // by writer: kernel, gcore, procmem, procmem.zst, kernel.zst
}

// writeCores cores one coretarget process with procmem core -o and gcore
// while it runs, then has it crash (SIGSEGV, coredump_filter 0x33,
// core_pattern pointed at a file for the while), and compresses two of
// the cores as systemd-coredump does.
func writeCores(t *testing.T) *capturedCores {
	t.Helper()
	requireRoot(t) // core_pattern
	requireTool(t, "gcore", "zstd", "prlimit")
	dir := t.TempDir()
	c := &capturedCores{exe: filepath.Join(dir, "coretarget"), paths: map[string]string{}}
	// A copy of the program of its own, which stays as it was: the
	// cores' file mappings are read from it.
	b, err := os.ReadFile(coreBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	// prlimit execs the program: the helper's pid is its.
	h := startHelper(t, "prlimit", "--core=unlimited", c.exe)
	c.pid, c.health = h.pid, h.addr["health"]
	c.paths["procmem"] = filepath.Join(dir, "procmem.core")
	mustSucceed(t, procmem(t, "-p", itoa(c.pid), "core", "-o", c.paths["procmem"]), "procmem core")
	mustSucceed(t, run(t, "", "gcore", "-o", filepath.Join(dir, "gcore"), itoa(c.pid)), "gcore")
	c.paths["gcore"] = filepath.Join(dir, "gcore."+itoa(c.pid))

	pattern, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.WriteFile("/proc/sys/kernel/core_pattern", pattern, 0) })
	kernel := filepath.Join(dir, "kernel.core")
	if err := os.WriteFile("/proc/sys/kernel/core_pattern", []byte(kernel), 0); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(fmt.Sprintf("/proc/%d/coredump_filter", c.pid), []byte("0x33"), 0)
	syscall.Kill(c.pid, syscall.SIGSEGV)
	h.cmd.Wait()
	waitFor(t, "the kernel's core", func() (string, bool) {
		fi, err := os.Stat(kernel)
		return fmt.Sprint(err), err == nil && fi.Size() > 0
	})
	time.Sleep(200 * time.Millisecond) // the kernel writes it before the process is reaped; let it finish
	c.paths["kernel"] = kernel
	for _, w := range []string{"procmem", "kernel"} {
		mustSucceed(t, run(t, "", "zstd", "-q", c.paths[w], "-o", c.paths[w]+".zst"), "zstd")
		c.paths[w+".zst"] = c.paths[w] + ".zst"
	}
	return c
}

// TestCapturesMounted: cores written by the kernel, gdb and procmem, two
// of them compressed with zstd, served by one mount: each a directory of
// its process's regions, whose memory the tools read as of a live one.
func TestCapturesMounted(t *testing.T) {
	requireTool(t, "xxd", "grep", "yara", "gdb", "cp")
	c := writeCores(t)
	writers := []string{"kernel", "gcore", "procmem", "procmem.zst", "kernel.zst"}
	var flags []string
	for _, w := range writers {
		flags = append(flags, "--core", c.paths[w])
	}
	m := startMount(t, flags...)
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(writers) {
		t.Fatalf("the mount lists %d directories for %d cores", len(entries), len(writers))
	}
	want := make([]byte, 4)
	binary.LittleEndian.PutUint32(want, 4242)
	rule := filepath.Join(t.TempDir(), "global.yar")
	os.WriteFile(rule, []byte("rule coreglobal { strings: $a = \"procmem core global\" condition: $a }\n"), 0o644)
	for i, w := range writers {
		name := itoa(c.pid)
		if i > 0 {
			name += "." + itoa(i+1)
		}
		dir := m.path(name)
		t.Run(w, func(t *testing.T) {
			// The health through mem, where the offset is the address.
			r := run(t, "", "xxd", "-s", fmt.Sprintf("%#x", c.health), "-l", "4", "-p", filepath.Join(dir, "mem"))
			if strings.TrimSpace(r.stdout) != fmt.Sprintf("%x", want) {
				t.Errorf("xxd of mem at the health: %q %s", r.stdout, r.stderr)
			}
			// And through its region file.
			heap, err := os.Readlink(filepath.Join(dir, "heap"))
			if w == "kernel" || w == "kernel.zst" || w == "gcore" {
				if err == nil {
					t.Errorf("a %s core names a [heap]: %s", w, heap)
				}
			} else if err != nil {
				t.Errorf("no heap link in a procmem core: %v", err)
			}
			info, err := os.ReadFile(filepath.Join(dir, "info"))
			if err != nil || !strings.Contains(string(info), "coretarget") || !strings.Contains(string(info), "Captured: ") {
				t.Errorf("info: %v\n%s", err, info)
			}
			if g := run(t, "", "grep", "-r", "-l", "-a", "procmem core global", dir); g.code != 0 {
				t.Errorf("grep -r finds no global: %s", g.stderr)
			}
			if y := run(t, "", "yara", "-r", rule, dir); !strings.Contains(y.stdout, "coreglobal ") {
				t.Errorf("yara -r finds no global: %q %s", y.stdout, y.stderr)
			}
			dest := filepath.Join(t.TempDir(), "copy")
			mustSucceed(t, run(t, "", "cp", "-r", "--sparse=always", dir, dest), "cp -r --sparse=always")
			if w == "procmem.zst" || w == "kernel" {
				g := run(t, "", "gdb", "-nx", "-batch", "-ex", "print core_global", "-ex", "print core_player->health", "-ex", "bt",
					c.exe, filepath.Join(dir, "core"))
				if !strings.Contains(g.stdout, `"procmem core global"`) || !strings.Contains(g.stdout, "= 4242") || !strings.Contains(g.stdout, "#0 ") {
					t.Errorf("gdb through the mount:\n%s\n%s", g.stdout, g.stderr)
				}
			}
			// Nothing is written.
			if err := os.WriteFile(filepath.Join(dir, "mem"), []byte("x"), 0); err == nil {
				t.Errorf("a write to a capture succeeded")
			}
		})
	}
}

// TestCapturesBad: a core cut short opens, its missing part a hole that
// info names; a file that is no core, and one with its notes garbled, fail
// with one line and leave no mount behind.
func TestCapturesBad(t *testing.T) {
	c := writeCores(t)
	dir := t.TempDir()
	b, err := os.ReadFile(c.paths["kernel"])
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.core")
	os.WriteFile(cut, b[:len(b)/2], 0o600)
	m := startMount(t, "--core", cut)
	info, err := os.ReadFile(m.path(itoa(c.pid), "info"))
	if err != nil || !strings.Contains(string(info), "cut short") {
		t.Errorf("info of a core cut short: %v\n%s", err, info)
	}
	r := run(t, "", "cp", "-r", "--sparse=always", m.path(itoa(c.pid)), filepath.Join(dir, "copy"))
	mustSucceed(t, r, "cp of a core cut short")

	garbled := append([]byte(nil), b...)
	for i := 64; i < len(garbled) && i < 64+56*64; i += 7 { // the program headers
		garbled[i] ^= 0xa5
	}
	text := filepath.Join(dir, "text")
	os.WriteFile(text, []byte("not a core at all\n"), 0o600)
	mnt := filepath.Join(dir, "mnt-text")
	r = procmem(t, "mount", "--core", text, mnt)
	if r.code != 1 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.HasPrefix(r.stderr, "procmem: ") {
		t.Errorf("mount of a text file: exit %d, %q", r.code, r.stderr)
	}
	if isMounted(mnt) {
		syscall.Unmount(mnt, syscall.MNT_DETACH)
		t.Errorf("mount of a text file left a mount behind")
	}
	// Headers that lie: refused in one line, or served with holes where
	// the data is not, the daemon reading all of it unharmed.
	path := filepath.Join(dir, "garbled")
	os.WriteFile(path, garbled, 0o600)
	if r := procmem(t, "core", "--help"); r.code != 0 {
		t.Fatal("procmem does not run")
	}
	cmd := exec.Command(procmemBin, "--core", path, "info")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 0 && (code != 1 || strings.Count(strings.TrimSpace(string(out)), "\n") != 0) {
		t.Errorf("info of garbled headers: exit %d (%v), %q", code, err, out)
	}
	if cmd.ProcessState.ExitCode() == 0 {
		g := startMount(t, "--core", path)
		r := run(t, "", "cp", "-r", "--sparse=always", g.dir, filepath.Join(dir, "garbled-copy"))
		t.Logf("garbled headers served: cp exit %d %s", r.code, r.stderr)
		g.alive()
	}
}

// TestCapturesCLI: the command line takes a core as its target (--core):
// info, read, search, scan and pointers read captured memory as they read
// a live process; what would write it is refused in one line.
func TestCapturesCLI(t *testing.T) {
	c := writeCores(t)
	health := fmt.Sprintf("%x", c.health)
	cache := t.TempDir()
	for _, w := range []string{"kernel", "procmem.zst"} {
		t.Run(w, func(t *testing.T) {
			f := c.paths[w]
			pm := func(args ...string) result {
				r := run(t, "", "env", append([]string{"XDG_CACHE_HOME=" + cache, procmemBin, "--core", f}, args...)...)
				return r
			}
			r := pm("read", "-r", health+":+4")
			mustSucceed(t, r, "read -r")
			if !strings.Contains(r.stdout, "92 10 00 00") {
				t.Errorf("read -r of the health:\n%s", r.stdout)
			}
			if r := pm("search", "-s", "procmem core global"); r.code != 0 || !strings.Contains(r.stdout, "coretarget+") {
				t.Errorf("search: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			mustSucceed(t, pm("scan", "-t", "int32", "4242"), "scan 4242")
			if r := pm("scan", "list"); !strings.Contains(r.stdout, fmt.Sprintf("%016x", c.health)) {
				t.Errorf("scan list lacks the health:\n%s%s", r.stdout, r.stderr)
			}
			if r := pm("scan", "set", "1"); r.code != 1 || !strings.Contains(r.stderr, "cannot be written") {
				t.Errorf("scan set on a capture: exit %d %s", r.code, r.stderr)
			}
			if r := pm("pointers", health); r.code != 0 || !strings.Contains(r.stdout, "[[coretarget+") {
				t.Errorf("pointers: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			for _, args := range [][]string{{"write", "-a", health, "-b", "00"}, {"freeze", health + "=1"}, {"watch", "-r", health + ":+4"}, {"statm"}} {
				r := pm(args...)
				if r.code != 1 || !strings.Contains(r.stderr, "needs a live process") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
					t.Errorf("%s on a capture: exit %d %q", args[0], r.code, r.stderr)
				}
			}
		})
	}
}
