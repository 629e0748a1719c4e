package procfs

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestParseStat(t *testing.T) {
	b, err := os.ReadFile("testdata/fixture.stat")
	if err != nil {
		t.Fatal(err)
	}
	s, err := parseStat(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if s.Comm != "fx" || s.PID != 3029 || s.State != 'S' || s.StartTime == 0 {
		t.Errorf("got %+v", s)
	}
	want := Image{
		StartCode: 94526037573632, EndCode: 94526037574621, StartStack: 140722023015056,
		StartData: 94526037585360, EndData: 94526037586032, StartBrk: 94526336389120,
		ArgStart: 140722023016986, ArgEnd: 140722023016991, EnvStart: 140722023016991, EnvEnd: 140722023018483,
	}
	if s.Image != want || !s.Image.Known() {
		t.Errorf("image %+v, want %+v", s.Image, want)
	}
	// A command name may contain spaces and parentheses.
	s, err = parseStat(strings.NewReader("42 (a) b (c)) R 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0\n"))
	if err != nil || s.Comm != "a) b (c)" || s.StartTime != 12345 || s.PPID != 1 || s.Image.Known() {
		t.Errorf("tricky comm: %+v, %v", s, err)
	}
}

func TestParseStatErrors(t *testing.T) {
	for _, in := range []string{"", "42 fx S 1", "42 (fx) S 1 2 3", "x (fx) S 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0", ")( (", "42 (fx) S 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -5 0",
		// A full line with a bad image field.
		"1 (x) S 0 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 10 0 0 18446744073709551615 x 1 1 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 1 1 1 1 1 1 1 0"} {
		if _, err := parseStat(strings.NewReader(in)); !errors.Is(err, ErrParse) {
			t.Errorf("parseStat(%q) = %v, want ErrParse", in, err)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	fuzzSeeds(f, "stat")
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := parseStat(strings.NewReader(string(b))); err != nil && !errors.Is(err, ErrParse) {
			t.Fatalf("error does not wrap ErrParse: %v", err)
		}
	})
}

func TestParseStatus(t *testing.T) {
	b, err := os.ReadFile("testdata/fixture.status")
	if err != nil {
		t.Fatal(err)
	}
	s, err := parseStatus(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "fx" || s.Tgid != 3029 || s.Uid != [4]uint32{} || s.Sizes["VmRSS"] == 0 || s.Sizes["VmPTE"]%1024 != 0 {
		t.Errorf("got %+v", s)
	}
	if s.CapEff != 0x1fffeffffff || s.CapPrm != 0x1fffeffffff || s.CapInh != 0 || len(s.Groups) != 0 {
		t.Errorf("capabilities and groups: %+v", s)
	}
	s, err = parseStatus(strings.NewReader("Tgid: 5\nUid: 1 2 3 4\nGid: 5 6 7 8\nGroups: 10 20 0\nCapEff: 0000000000080000\n"))
	if err != nil || len(s.Groups) != 3 || s.Groups[2] != 0 || s.CapEff != 1<<19 || s.Uid != [4]uint32{1, 2, 3, 4} {
		t.Errorf("groups and CapEff: %+v, %v", s, err)
	}
}

func TestParseStatusErrors(t *testing.T) {
	for _, in := range []string{"", "Tgid: 1\nUid: 0 0 0\nGid: 0 0 0 0\n", "Tgid: x\nUid: 0 0 0 0\nGid: 0 0 0 0\n", "Tgid: 1\nUid: 0 0 0 0\nGid: 0 0 0 0\nVmRSS: x kB\n", "Tgid: 1\nUid: 0 0 0 0\nGid: 0 0 0 0\nGroups: a\n", "Tgid: 1\nUid: 0 0 0 0\nGid: 0 0 0 0\nCapEff: xyz\n"} {
		if _, err := parseStatus(strings.NewReader(in)); !errors.Is(err, ErrParse) {
			t.Errorf("parseStatus(%q) = %v, want ErrParse", in, err)
		}
	}
}

func FuzzParseStatus(f *testing.F) {
	fuzzSeeds(f, "status")
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := parseStatus(strings.NewReader(string(b))); err != nil && !errors.Is(err, ErrParse) {
			t.Fatalf("error does not wrap ErrParse: %v", err)
		}
	})
}
