package procfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseCgroupFixtures(t *testing.T) {
	for name, want := range map[string]string{"testdata/v1.cgroup": "/sys/fs/cgroup/memory", "testdata/v2.cgroup": "/sys/fs/cgroup/user.slice/user-1000.slice/session-2.scope"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		entries, err := parseCgroup(string(b))
		if err != nil {
			t.Fatal(err)
		}
		mounts := []mount{{point: "/sys/fs/cgroup", fsType: "cgroup2", superOptions: "rw"}}
		if name == "testdata/v1.cgroup" {
			mounts = append(mounts, mount{point: "/sys/fs/cgroup/memory", fsType: "cgroup", superOptions: "rw,memory"})
		}
		dir, _, _, ok := cgroupMemoryDir(entries, mounts)
		if !ok || !strings.HasPrefix(dir, want) {
			t.Errorf("%s: memory cgroup %q, %v; want under %q", name, dir, ok, want)
		}
	}
}

// TestReadCgroupMemory: the tightest limit of the cgroup and its
// ancestors counts, "max" and v1's huge numbers are none.
func TestReadCgroupMemory(t *testing.T) {
	root := t.TempDir()
	leaf := filepath.Join(root, "a", "b")
	os.MkdirAll(leaf, 0o755)
	write := func(dir, name, v string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(leaf, "memory.current", "1048576")
	write(leaf, "memory.max", "max")
	write(filepath.Join(root, "a"), "memory.max", "4194304")
	write(root, "memory.max", "9223372036854771712")
	cm, err := readCgroupMemory(leaf, "memory.current", "memory.max")
	if err != nil {
		t.Fatal(err)
	}
	if cm.Current != 1<<20 || !cm.Limited || cm.Max != 4<<20 || cm.LimitDir != filepath.Join(root, "a") {
		t.Errorf("got %+v", cm)
	}
}

func TestParseCgroupErrors(t *testing.T) {
	for _, in := range []string{"x::/", "0:/", "0::relative", "-1::/"} {
		if _, err := parseCgroup(in); !errors.Is(err, ErrParse) {
			t.Errorf("parseCgroup(%q) = %v, want ErrParse", in, err)
		}
	}
	for _, in := range []string{"", "-1", "12 kB", "maxx"} {
		if _, _, err := parseCgroupBytes(in); !errors.Is(err, ErrParse) {
			t.Errorf("parseCgroupBytes(%q) = %v, want ErrParse", in, err)
		}
	}
}

func FuzzParseCgroup(f *testing.F) {
	fuzzSeeds(f, "cgroup")
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := parseCgroup(string(b))
		if err != nil && !errors.Is(err, ErrParse) {
			t.Fatalf("error does not wrap ErrParse: %v", err)
		}
		for _, e := range entries {
			if !filepath.IsAbs(e.path) {
				t.Fatalf("relative cgroup path %q", e.path)
			}
		}
	})
}

func FuzzParseCgroupBytes(f *testing.F) {
	for _, s := range []string{"max\n", "1048576\n", "9223372036854771712\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, _, err := parseCgroupBytes(s); err != nil && !errors.Is(err, ErrParse) {
			t.Fatalf("error does not wrap ErrParse: %v", err)
		}
	})
}
