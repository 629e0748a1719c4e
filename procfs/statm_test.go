package procfs

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestParseStatm(t *testing.T) {
	b, err := os.ReadFile("testdata/fixture.statm")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseStatm(strings.NewReader(string(b)), 4096)
	if err != nil {
		t.Fatal(err)
	}
	want := Statm{Size: 895 * 4096, Resident: 355 * 4096, Shared: 328 * 4096, Text: 4096, Data: 345 * 4096}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// The page size is the machine's, not a constant.
	got, _ = parseStatm(strings.NewReader("1 2 3 4 0 5 0\n"), 65536)
	if got.Size != 65536 || got.Data != 5*65536 {
		t.Errorf("64 KiB pages: %+v", got)
	}
}

func TestParseStatmErrors(t *testing.T) {
	for _, in := range []string{"", "1 2 3", "1 2 3 4 5 6 x", "1 2 3 4 5 6 7 8", "-1 2 3 4 5 6 7", "18446744073709551615 0 0 0 0 0 0"} {
		if _, err := parseStatm(strings.NewReader(in), 4096); !errors.Is(err, ErrParse) {
			t.Errorf("parseStatm(%q) = %v, want ErrParse", in, err)
		}
	}
}

func TestReadStatmSelf(t *testing.T) {
	p, err := Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	s, err := p.Statm()
	if err != nil {
		t.Fatal(err)
	}
	if s.Size == 0 || s.Resident == 0 || s.Size%uint64(os.Getpagesize()) != 0 {
		t.Errorf("implausible statm of self: %+v", s)
	}
}

func FuzzParseStatm(f *testing.F) {
	fuzzSeeds(f, "statm")
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := parseStatm(strings.NewReader(string(b)), 4096); err != nil && !errors.Is(err, ErrParse) {
			t.Fatalf("error does not wrap ErrParse: %v", err)
		}
	})
}
