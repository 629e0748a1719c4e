package procfs

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestParseBootTime(t *testing.T) {
	b, err := os.ReadFile("testdata/vm.procstat")
	if err != nil {
		t.Fatal(err)
	}
	bt, err := parseBootTime(string(b))
	if err != nil || bt.Before(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("parseBootTime = %v, %v", bt, err)
	}
	for _, in := range []string{"", "cpu 1 2 3\n", "btime x\n", "btime -5\n"} {
		if _, err := parseBootTime(in); !errors.Is(err, ErrParse) {
			t.Errorf("parseBootTime(%q) = %v, want ErrParse", in, err)
		}
	}
	if live, err := BootTime(); err != nil || time.Since(live) < 0 {
		t.Errorf("BootTime = %v, %v", live, err)
	}
}

// FuzzParseBootTime: a boot time found is the number on the btime line.
func FuzzParseBootTime(f *testing.F) {
	fuzzSeeds(f, "procstat")
	f.Fuzz(func(t *testing.T, b []byte) {
		bt, err := parseBootTime(string(b))
		if err != nil {
			if !errors.Is(err, ErrParse) {
				t.Fatalf("error does not wrap ErrParse: %v", err)
			}
			return
		}
		if bt.Unix() < 0 {
			t.Fatalf("negative boot time %v", bt)
		}
	})
}
