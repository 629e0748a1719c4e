//go:build linux

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// asNobody runs a command as uid and gid 65534 with no supplementary groups.
var asNobody = []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}

func runAs(t *testing.T, prefix []string, name string, args ...string) result {
	t.Helper()
	return run(t, "", prefix[0], append(append(append([]string(nil), prefix[1:]...), name), args...)...)
}

// openToAll makes dir and its parents up to the temp root traversable by
// other users, so an unprivileged caller can reach the mount and binaries.
func openToAll(t *testing.T, dir string) {
	t.Helper()
	for d := dir; d != "/" && d != os.TempDir() && d != "."; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// A region's name is its address range: only those who may read maps can
// learn it. The kernel caches a name root looked up (docs/security.md: a
// caller who already knows the name learns nothing from a stat of it), so
// the checks here look up names nobody has looked up: the caller must
// never learn one it could not read in maps.

// TestAccessControl compares, for an unprivileged caller, what the mount
// allows with what the kernel allows when the same caller opens
// /proc/PID/mem directly, for reading and for writing.
func TestAccessControl(t *testing.T) {
	requireRoot(t)
	requireTool(t, "setpriv", "unshare", "dd", "cat", "ls", "getfattr", "stat")
	openToAll(t, binDir)
	m := startMount(t, "--allow-other", "--xattrs")
	openToAll(t, filepath.Dir(m.dir))

	cases := []struct {
		name    string
		prefix  []string // how the target is started
		setup   string   // a command the target runs on itself first
		allowed bool
	}{
		{"own dumpable process", asNobody, "", true},
		{"own process after PR_SET_DUMPABLE 0", asNobody, "nodump", false},
		{"root process", nil, "", false},
		{"same uid, extra permitted capability", append(append([]string(nil), asNobody...), "--inh-caps=+net_raw", "--ambient-caps=+net_raw"), "", false},
		{"ruid differs from euid", []string{"setpriv", "--ruid=65533", "--euid=65534", "--regid=65534", "--clear-groups"}, "", false},
		{"in a user namespace owned by the caller", append(append([]string(nil), asNobody...), "unshare", "--user", "--map-root-user"), "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tg *target
			if c.prefix == nil {
				tg = startTargetAs(t, nil, targetBin, 1<<20, "mappings", "8")
			} else {
				tg = startTargetAs(t, c.prefix, targetBin, 1<<20, "mappings", "8")
			}
			if c.setup != "" {
				if got := tg.ask(c.setup); got != "ok" {
					t.Fatalf("%s: %s", c.setup, got)
				}
			}
			compareAccess(t, m, asNobody, tg, c.allowed)
		})
	}

	// The kernel lets every thread of the daemon read the daemon's own
	// files, whatever credentials the thread has taken: the daemon must
	// not lend that to anyone.
	t.Run("the daemon's own process", func(t *testing.T) {
		daemon := itoa(m.cmd.Process.Pid)
		direct := runAs(t, asNobody, "cat", "/proc/"+daemon+"/maps")
		if direct.code == 0 {
			t.Fatalf("nobody may read the root daemon's maps directly")
		}
		for _, r := range []result{runAs(t, asNobody, "cat", m.path(daemon, "info")), runAs(t, asNobody, "ls", m.path(daemon))} {
			if r.code == 0 || !strings.Contains(r.stderr, "Permission denied") {
				t.Errorf("the daemon's process as nobody: exit %d, %q; want permission denied", r.code, r.stderr)
			}
		}
	})
	t.Run("pid 1", func(t *testing.T) {
		direct := runAs(t, asNobody, "dd", "if=/proc/1/mem", "of=/dev/null", "bs=1", "count=1")
		for _, r := range []result{direct, runAs(t, asNobody, "cat", m.path("1", "info")), runAs(t, asNobody, "ls", m.path("1"))} {
			if r.code == 0 || !strings.Contains(r.stderr, "Permission denied") {
				t.Errorf("pid 1: exit %d, %q; want permission denied", r.code, r.stderr)
			}
		}
	})
	m.alive()
}

// TestMountWithoutAllowOther: another user cannot use the mount at all,
// not even to list it.
func TestMountWithoutAllowOther(t *testing.T) {
	requireRoot(t)
	requireTool(t, "setpriv", "ls")
	tg := startTargetAs(t, asNobody, targetBin, 1<<20)
	m := startMount(t)
	openToAll(t, filepath.Dir(m.dir))
	for _, args := range [][]string{{"ls", m.dir}, {"ls", m.path(itoa(tg.pid))}, {"cat", m.path(itoa(tg.pid), "info")}} {
		r := runAs(t, asNobody, args[0], args[1:]...)
		if r.code == 0 || !strings.Contains(r.stderr, "Permission denied") {
			t.Errorf("%q as another user: exit %d, %q; want permission denied", args, r.code, r.stderr)
		}
	}
	// The same user may open its own process through /proc directly.
	if r := runAs(t, asNobody, procmemBin, "-p", itoa(tg.pid), "statm"); r.code != 0 {
		t.Errorf("nobody's own process directly: %s", r.stderr)
	}
}

// compareAccess runs, as caller (a command prefix such as setpriv's), each
// way of reading or writing the target tg through the mount beside the
// same access through /proc, and fails where they disagree, or where the
// kernel's answer is not allowed. A refusal through the mount must be
// EACCES. Nothing may change the target's memory.
func compareAccess(t *testing.T, m *mount, caller []string, tg *target, allowed bool) {
	t.Helper()
	compareAccessMixed(t, m, caller, tg, allowed, allowed)
}

// compareAccessMixed is compareAccess for a caller whom the kernel lets
// read the layout (maps, smaps) but not memory, or the other way round:
// /proc/PID/mem is mode 0600, maps 0444, and capabilities pass one check
// and not the other.
func compareAccessMixed(t *testing.T, m *mount, caller []string, tg *target, memory, layout bool) {
	t.Helper()
	pid := itoa(tg.pid)
	pat := tg.region(tg.addr["pattern"])
	file := m.path(pid, pat.Name())
	byteFile := filepath.Join(binDir, "byte-"+pid)
	os.WriteFile(byteFile, tg.pattern[:1], 0o644)
	t.Cleanup(func() { os.Remove(byteFile) })
	as := func(name string, args ...string) result { return runAs(t, caller, name, args...) }
	checks := []struct {
		what            string
		direct, viaFUSE result
	}{
		{"read",
			as(procmemBin, "-p", pid, "read", "-r", fmt.Sprintf("%x:+10", pat.Start)),
			as("dd", "if="+file, "of=/dev/null", "bs=16", "count=1")},
		{"write",
			as(procmemBin, "-p", pid, "write", "-a", fmt.Sprintf("%x", pat.Start), "-b", fmt.Sprintf("%02x", tg.pattern[0])),
			as("dd", "if="+byteFile, "of="+file, "bs=1", "count=1", "conv=notrunc")},
		{"layout (maps vs info)",
			as("cat", "/proc/"+pid+"/maps"),
			as("cat", m.path(pid, "info"))},
		{"layout (maps vs listing)",
			as("cat", "/proc/"+pid+"/maps"),
			as("ls", m.path(pid))},
		{"statm",
			as("cat", "/proc/"+pid+"/maps"),
			as("cat", m.path(pid, "statm"))},
		{"a region's name nobody looked up (maps vs stat)",
			as("cat", "/proc/"+pid+"/maps"),
			as("stat", m.path(pid, tg.unlookedRegion()))},
		{"where heap points (maps vs readlink)",
			as("cat", "/proc/"+pid+"/maps"),
			as("readlink", "-v", m.path(pid, "heap"))},
		{"extended attributes",
			as("cat", "/proc/"+pid+"/smaps"),
			as("getfattr", "-n", "user.procmem.Rss", file)},
	}
	for i, ch := range checks {
		allowed := layout
		if i < 2 { // read and write
			allowed = memory
		}
		directOK, fuseOK := ch.direct.code == 0, ch.viaFUSE.code == 0
		if directOK != allowed {
			t.Errorf("%s: the kernel says allowed=%v, the test expected %v: %s", ch.what, directOK, allowed, ch.direct.stderr)
		}
		wantFUSE := directOK
		if i == len(checks)-1 {
			// A region file's attributes need read permission on the file
			// (the kernel's rule for user.* attributes), which follows
			// /proc/PID/mem's mode: stricter than smaps (0444).
			wantFUSE = directOK && memory
		}
		if fuseOK != wantFUSE {
			t.Errorf("%s: procmem's mount says allowed=%v, want %v (the kernel: %v)\nmount: %s\ndirect: %s", ch.what, fuseOK, wantFUSE, directOK, ch.viaFUSE.stderr, ch.direct.stderr)
		}
		if !fuseOK && !strings.Contains(ch.viaFUSE.stderr, "Permission denied") {
			t.Errorf("%s: denied with %q, want EACCES", ch.what, ch.viaFUSE.stderr)
		}
	}
	if got := tg.peek(pat.Start, 1); got[0] != tg.pattern[0] {
		t.Errorf("memory changed")
	}
}

// TestAccessControlRootCallers: callers with uid 0 but not all of root's
// rights (no capabilities, one capability, another group) get from the
// mount what they get from /proc, on the default mount (which lets only
// uid 0 and gid 0 in) and under --allow-other.
func TestAccessControlRootCallers(t *testing.T) {
	requireRoot(t)
	requireTool(t, "setpriv", "dd", "cat", "ls", "getfattr", "stat", "readlink")
	openToAll(t, binDir)
	noCaps := []string{"setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all"}
	only := func(capability string) []string {
		return []string{"setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all,+" + capability}
	}
	// What the kernel allows, by the target's owner: memory, then layout.
	// CAP_SYS_PTRACE passes the ptrace check, but nobody's mem file is mode
	// 0600 and needs CAP_DAC_OVERRIDE as well; CAP_DAC_OVERRIDE alone
	// passes the mode and not the ptrace check.
	type rights struct{ memory, layout bool }
	callers := []struct {
		name       string
		prefix     []string
		allOptions bool // let in by the default mount, which takes only uid and gid 0
		allowed    map[string]rights
	}{
		{"uid 0 without capabilities", noCaps, true, map[string]rights{"root": {false, false}, "nobody": {false, false}}},
		{"uid 0 with only CAP_DAC_OVERRIDE", only("dac_override"), true, map[string]rights{"root": {false, false}, "nobody": {false, false}}},
		{"uid 0 with only CAP_SYS_PTRACE", only("sys_ptrace"), true, map[string]rights{"root": {true, true}, "nobody": {false, true}}},
		{"uid 0 in another group", []string{"setpriv", "--regid=65534", "--clear-groups"}, false, map[string]rights{"root": {true, true}, "nobody": {true, true}}},
		{"uid 0 without capabilities in another group", append(append([]string(nil), noCaps...), "--regid=65534", "--clear-groups"), false, map[string]rights{"root": {false, false}, "nobody": {false, false}}},
	}
	targets := map[string]*target{
		"root":   startTargetAs(t, nil, targetBin, 1<<20, "mappings", "64"),
		"nobody": startTargetAs(t, asNobody, targetBin, 1<<20, "mappings", "64"),
	}
	for _, flags := range [][]string{{"--xattrs"}, {"--allow-other", "--xattrs"}} {
		m := startMount(t, flags...)
		openToAll(t, filepath.Dir(m.dir))
		for _, c := range callers {
			for owner, tg := range targets {
				t.Run(fmt.Sprintf("%v/%s/%s's process", flags, c.name, owner), func(t *testing.T) {
					if len(flags) == 1 && !c.allOptions {
						// FUSE itself refuses every caller but the mounter's ids.
						r := runAs(t, c.prefix, "ls", m.dir)
						if r.code == 0 || !strings.Contains(r.stderr, "Permission denied") {
							t.Errorf("the default mount let %s in: exit %d, %q", c.name, r.code, r.stderr)
						}
						return
					}
					compareAccessMixed(t, m, c.prefix, tg, c.allowed[owner].memory, c.allowed[owner].layout)
				})
			}
		}
		m.alive()
	}
}
