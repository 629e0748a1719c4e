package procfs

import (
	"errors"
	"os"
	"strings"
	"testing"
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
	})
}
