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

// statAfterRoot stats file as root, then at once as the unprivileged
// caller: a name the kernel has cached for root must not answer for
// someone who may not read the layout.
func statAfterRoot(t *testing.T, file string) result {
	t.Helper()
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
	return runAs(t, asNobody, "stat", file)
}

// TestAccessControl compares, for an unprivileged caller, what the mount
// allows with what the kernel allows when the same caller opens
// /proc/PID/mem directly, for reading and for writing.
func TestAccessControl(t *testing.T) {
	requireRoot(t)
	requireTool(t, "setpriv", "unshare", "dd", "cat", "ls", "getfattr", "stat")
	openToAll(t, binDir)
	m := startMount(t, "--allow-other")
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
				tg = startTarget(t, "", 1<<20)
			} else {
				tg = startTargetAs(t, c.prefix, targetBin, 1<<20)
			}
			if c.setup != "" {
				if got := tg.ask(c.setup); got != "ok" {
					t.Fatalf("%s: %s", c.setup, got)
				}
			}
			pid := itoa(tg.pid)
			pat := tg.region(tg.addr["pattern"])
			file := m.path(pid, pat.Name())
			byteFile := filepath.Join(binDir, "byte-"+pid)
			os.WriteFile(byteFile, tg.pattern[:1], 0o644)
			t.Cleanup(func() { os.Remove(byteFile) })

			checks := []struct {
				what            string
				direct, viaFUSE result
			}{
				{"read",
					runAs(t, asNobody, procmemBin, "-p", pid, "read", "-r", fmt.Sprintf("%x:+10", pat.Start)),
					runAs(t, asNobody, "dd", "if="+file, "of=/dev/null", "bs=16", "count=1")},
				{"write",
					runAs(t, asNobody, procmemBin, "-p", pid, "write", "-a", fmt.Sprintf("%x", pat.Start), "-b", fmt.Sprintf("%02x", tg.pattern[0])),
					runAs(t, asNobody, "dd", "if="+byteFile, "of="+file, "bs=1", "count=1", "conv=notrunc")},
				{"layout (maps vs info)",
					runAs(t, asNobody, "cat", "/proc/"+pid+"/maps"),
					runAs(t, asNobody, "cat", m.path(pid, "info"))},
				{"layout (maps vs listing)",
					runAs(t, asNobody, "cat", "/proc/"+pid+"/maps"),
					runAs(t, asNobody, "ls", m.path(pid))},
				{"statm",
					runAs(t, asNobody, "cat", "/proc/"+pid+"/maps"),
					runAs(t, asNobody, "cat", m.path(pid, "statm"))},
				{"a region's name, just looked up by root (maps vs stat)",
					runAs(t, asNobody, "cat", "/proc/"+pid+"/maps"),
					statAfterRoot(t, file)},
				{"where heap points (maps vs readlink)",
					runAs(t, asNobody, "cat", "/proc/"+pid+"/maps"),
					runAs(t, asNobody, "readlink", "-v", m.path(pid, "heap"))},
				{"extended attributes",
					runAs(t, asNobody, "cat", "/proc/"+pid+"/smaps"),
					runAs(t, asNobody, "getfattr", "-n", "user.procmem.Rss", file)},
			}
			for _, ch := range checks {
				directOK, fuseOK := ch.direct.code == 0, ch.viaFUSE.code == 0
				if directOK != c.allowed {
					t.Errorf("%s: the kernel says allowed=%v, the test expected %v: %s", ch.what, directOK, c.allowed, ch.direct.stderr)
				}
				if fuseOK != directOK {
					t.Errorf("%s: procmem's mount says allowed=%v, the kernel %v\nmount: %s\ndirect: %s", ch.what, fuseOK, directOK, ch.viaFUSE.stderr, ch.direct.stderr)
				}
				if !fuseOK && !strings.Contains(ch.viaFUSE.stderr, "Permission denied") {
					t.Errorf("%s: denied with %q, want EACCES", ch.what, ch.viaFUSE.stderr)
				}
			}
			if got := tg.peek(pat.Start, 1); got[0] != tg.pattern[0] {
				t.Errorf("memory changed")
			}
		})
	}

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
