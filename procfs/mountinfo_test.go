package procfs

import (
	"errors"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseHidePID(t *testing.T) {
	b, err := os.ReadFile("testdata/vm.mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if hides, err := parseHidePID(string(b), "/proc"); err != nil || hides {
		t.Errorf("this machine's /proc: hides %v, %v", hides, err)
	}
	const base = "22 1 0:5 / /proc rw,nosuid - proc proc rw\n"
	for _, c := range []struct {
		text  string
		hides bool
	}{
		{base, false},
		{"22 1 0:5 / /proc rw shared:12 - proc proc rw,hidepid=invisible\n", true},
		{"22 1 0:5 / /proc rw - proc proc rw,hidepid=2,gid=5\n", true},
		{"22 1 0:5 / /proc rw - proc proc rw,hidepid=0\n", false},
		// The last mount on /proc is the one seen.
		{"22 1 0:5 / /proc rw - proc proc rw,hidepid=2\n" + base, false},
	} {
		if hides, err := parseHidePID(c.text, "/proc"); err != nil || hides != c.hides {
			t.Errorf("parseHidePID(%q) = %v, %v; want %v", c.text, hides, err, c.hides)
		}
	}
	for _, bad := range []string{"", "1 2 3\n", "22 1 0:5 / /sys rw - sysfs sysfs rw\n"} {
		if _, err := parseHidePID(bad, "/proc"); !errors.Is(err, ErrParse) {
			t.Errorf("parseHidePID(%q): %v, want ErrParse", bad, err)
		}
	}
	if _, err := HidesPIDs(); err != nil {
		t.Errorf("HidesPIDs: %v", err)
	}
}

func FuzzParseHidePID(f *testing.F) {
	fuzzSeeds(f, "mountinfo")
	f.Fuzz(func(t *testing.T, b []byte) {
		hides, err := parseHidePID(string(b), "/proc")
		if err != nil && !errors.Is(err, ErrParse) {
			t.Fatalf("error does not wrap ErrParse: %v", err)
		}
		if hides && !strings.Contains(string(b), "hidepid=") {
			t.Fatalf("hidepid found in text without the option: %q", b)
		}
		if mounts, err := parseMountinfo(string(b)); err == nil {
			for _, m := range mounts {
				if p := unescapeMountinfo(m.point); len(p) > len(m.point) {
					t.Fatalf("unescaping %q made it longer: %q", m.point, p)
				}
			}
			mountOfDevice(mounts, unix.Mkdev(0, 5))
		}
	})
}

func TestMountOfDevice(t *testing.T) {
	mounts, err := parseMountinfo("22 1 0:5 / /proc rw - proc proc rw\n" +
		"40 22 0:52 / /mnt/proc\\040mem rw,nosuid,nodev - fuse.procmem procmem rw,user_id=0\n" +
		"41 22 0:52 / /mnt/again rw - fuse.procmem procmem rw\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dev           uint64
		point, fsType string
	}{
		{unix.Mkdev(0, 5), "/proc", "proc"},
		{unix.Mkdev(0, 52), "/mnt/again", "fuse.procmem"}, // the last one
		{unix.Mkdev(8, 1), "", ""},
	} {
		if point, fsType := mountOfDevice(mounts, c.dev); point != c.point || fsType != c.fsType {
			t.Errorf("mountOfDevice(%d:%d) = %q, %q; want %q, %q", unix.Major(c.dev), unix.Minor(c.dev), point, fsType, c.point, c.fsType)
		}
	}
	if got := unescapeMountinfo(`/mnt/proc\040mem\134x\01`); got != `/mnt/proc mem\x\01` {
		t.Errorf("unescapeMountinfo: %q", got)
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/self", &st); err != nil {
		t.Fatal(err)
	}
	if _, fsType, err := MountOfDevice(st.Dev); err != nil || fsType != "proc" {
		t.Errorf("MountOfDevice of /proc/self: %q, %v", fsType, err)
	}
}
