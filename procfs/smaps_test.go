package procfs

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestParseSmapsFixture(t *testing.T) {
	f, err := os.Open("testdata/fixture.smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mappings, err := parseSmaps(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(mappings) != 28 {
		t.Fatalf("got %d mappings, want 28 (as in fixture.maps)", len(mappings))
	}
	var heap *Mapping
	for i := range mappings {
		if mappings[i].Path == "[heap]" {
			heap = &mappings[i]
		}
	}
	if heap == nil {
		t.Fatal("no [heap]")
	}
	if size, _ := heap.Field("Size"); size != heap.Size() {
		t.Errorf("Size field %d, want region size %d", size, heap.Size())
	}
	for _, name := range []string{"Rss", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty",
		"Referenced", "Anonymous", "LazyFree", "AnonHugePages", "Swap", "SwapPss", "Locked"} {
		v, ok := heap.Field(name)
		if !ok {
			t.Errorf("field %s missing", name)
		}
		if v%1024 != 0 {
			t.Errorf("field %s = %d, not converted from kB to bytes", name, v)
		}
	}
	if thp, ok := heap.Field("THPeligible"); !ok || thp > 1 {
		t.Errorf("THPeligible = %d, %v: want a plain flag", thp, ok)
	}
	if strings.Join(heap.VmFlags, " ") != "rd wr mr mw me ac" {
		t.Errorf("VmFlags = %q", heap.VmFlags)
	}
}

func TestParseSmapsKeepsUnknownFields(t *testing.T) {
	in := "1000-3000 rw-p 00000000 00:00 0 \nSize:                  8 kB\nFutureField:   3 kB\nOtherCount: 7\nVmFlags: rd wr \n"
	m, err := parseSmaps(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []SmapsField{{"Size", 8192, true}, {"FutureField", 3072, true}, {"OtherCount", 7, false}}
	if len(m) != 1 || len(m[0].Fields) != 3 {
		t.Fatalf("got %+v", m)
	}
	for i := range want {
		if m[0].Fields[i] != want[i] {
			t.Errorf("field %d: got %+v, want %+v", i, m[0].Fields[i], want[i])
		}
	}
}

func TestParseSmapsErrors(t *testing.T) {
	for _, in := range []string{
		"Rss: 4 kB\n",
		"1000-2000 rw-p 0 00:00 0\nRss: x kB\n",
		"1000-2000 rw-p 0 00:00 0\nRss: 4 MB\n",
		"1000-2000 rw-p 0 00:00 0\nRss: 99999999999999999999 kB\n",
		"1000-2000 rw-p 0 00:00 0\nRss: 18014398509481984 kB\n",
	} {
		if _, err := parseSmaps(strings.NewReader(in)); !errors.Is(err, ErrParse) {
			t.Errorf("parseSmaps(%q) = %v, want ErrParse", in, err)
		}
	}
}

func FuzzParseSmaps(f *testing.F) {
	fuzzSeeds(f, "smaps")
	f.Fuzz(func(t *testing.T, b []byte) {
		mappings, err := parseSmaps(strings.NewReader(string(b)))
		if err != nil && !errors.Is(err, ErrParse) {
			t.Fatalf("error does not wrap ErrParse: %v", err)
		}
		for _, m := range mappings {
			if m.Start >= m.End {
				t.Fatalf("empty or inverted mapping %+v", m.Region)
			}
		}
		withBlocks, blocks, err := SmapsBlocks(b)
		if err != nil && !errors.Is(err, ErrParse) {
			t.Fatalf("SmapsBlocks error does not wrap ErrParse: %v", err)
		}
		if err == nil && (len(withBlocks) != len(blocks) || strings.Join(blocks, "") != string(b)) {
			t.Fatalf("SmapsBlocks: %d mappings, %d blocks, blocks joined differ from the text", len(withBlocks), len(blocks))
		}
	})
}
