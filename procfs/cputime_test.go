package procfs

import (
	"errors"
	"os"
	"testing"
	"time"
)

func TestParseCPUTime(t *testing.T) {
	b, err := os.ReadFile("testdata/busy.stat")
	if err != nil {
		t.Fatal(err)
	}
	if d, err := parseCPUTime(string(b)); err != nil || d != 3250*time.Millisecond {
		t.Errorf("busy.stat: %v, %v; want 3.25s (utime 250 + stime 75 ticks)", d, err)
	}
	for _, in := range []string{"", "1 (x) R 1 2", "1 (x) R 1 1 1 0 -1 0 0 0 0 0 x 0"} {
		if _, err := parseCPUTime(in); !errors.Is(err, ErrParse) {
			t.Errorf("parseCPUTime(%q) = %v, want ErrParse", in, err)
		}
	}
}

func TestCPUTimeSelf(t *testing.T) {
	p, err := Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for start := time.Now(); time.Since(start) < 50*time.Millisecond; {
	}
	if d, err := p.CPUTime(); err != nil || d == 0 {
		t.Errorf("CPU time of this busy process: %v, %v", d, err)
	}
}

func FuzzParseCPUTime(f *testing.F) {
	fuzzSeeds(f, "stat")
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := parseCPUTime(string(b)); err != nil && !errors.Is(err, ErrParse) || d < 0 {
			t.Fatalf("parseCPUTime = %v, %v", d, err)
		}
	})
}
