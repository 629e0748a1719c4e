package procfs

import (
	"errors"
	"os"
	"testing"
)

func TestParseSmapsRollupFixture(t *testing.T) {
	b, err := os.ReadFile("testdata/sleep.smaps_rollup")
	if err != nil {
		t.Fatal(err)
	}
	m, err := parseSmapsRollup(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Path != "[rollup]" {
		t.Errorf("path %q, want [rollup]", m.Path)
	}
	for name, want := range map[string]uint64{"Rss": 1812 << 10, "Pss": 212 << 10, "Pss_Anon": 112 << 10, "Pss_File": 100 << 10, "Private_Dirty": 112 << 10, "Swap": 0} {
		if got, ok := m.Field(name); !ok || got != want {
			t.Errorf("%s = %d, %v; want %d", name, got, ok, want)
		}
	}
}

func TestSmapsRollupSelf(t *testing.T) {
	p, err := Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	m, err := p.SmapsRollup()
	if err != nil {
		t.Fatal(err)
	}
	if rss, _ := m.Field("Rss"); rss == 0 {
		t.Errorf("no Rss in the rollup of this process: %+v", m)
	}
}

func TestParseSmapsRollupErrors(t *testing.T) {
	if m, err := parseSmapsRollup(nil); err != nil || m.Fields != nil {
		t.Errorf("empty rollup (a zombie's) = %+v, %v", m, err)
	}
	for _, in := range []string{
		"Rss: 4 kB\n",
		"1000-2000 ---p 0 00:00 0 [rollup]\nRss: 4 kB\n3000-4000 ---p 0 00:00 0 [rollup]\n",
	} {
		if _, err := parseSmapsRollup([]byte(in)); !errors.Is(err, ErrParse) {
			t.Errorf("parseSmapsRollup(%q) = %v, want ErrParse", in, err)
		}
	}
}

func FuzzParseSmapsRollup(f *testing.F) {
	fuzzSeeds(f, "smaps_rollup")
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := parseSmapsRollup(b); err != nil && !errors.Is(err, ErrParse) {
			t.Fatalf("error does not wrap ErrParse: %v", err)
		}
	})
}
