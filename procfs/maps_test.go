package procfs

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseMapsFixture(t *testing.T) {
	f, err := os.Open("testdata/fixture.maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	regions, err := parseMaps(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(regions) != 28 {
		t.Fatalf("got %d regions, want 28", len(regions))
	}
	byPath := map[string]Region{}
	for _, r := range regions {
		byPath[r.Path] = r
	}
	spaces := byPath["/tmp/fx/file with spaces.bin"]
	want := Region{Start: 0x7f1761136000, End: 0x7f1761138000, Perms: Perms{Read: true, Shared: true},
		Dev: "fe:00", Inode: 9978545, Path: "/tmp/fx/file with spaces.bin"}
	if spaces != want {
		t.Errorf("path with spaces:\n got %+v\nwant %+v", spaces, want)
	}
	if r := byPath["/tmp/fx/gone.bin (deleted)"]; !r.Deleted() {
		t.Errorf("deleted file mapping not found or not Deleted(): %+v", r)
	}
	heap := byPath["[heap]"]
	if heap.Size() != 0x21000 || !heap.Pseudo() || heap.Perms.String() != "rw-p" {
		t.Errorf("heap: %+v", heap)
	}
	vsyscall := byPath["[vsyscall]"]
	if vsyscall.Start != 0xffffffffff600000 || vsyscall.Perms.String() != "--xp" {
		t.Errorf("vsyscall: %+v", vsyscall)
	}
	if r := regions[7]; r.Path != "" || r.Perms.String() != "rw-p" {
		t.Errorf("anonymous region: %+v", r)
	}
}

func TestParseMapsLine(t *testing.T) {
	tests := []struct {
		line string
		want Region
	}{
		{"7f00-7f10 rw-p 00000000 00:00 0                          [anon:my buffer]",
			Region{Start: 0x7f00, End: 0x7f10, Perms: Perms{Read: true, Write: true}, Dev: "00:00", Path: "[anon:my buffer]"}},
		{"7f00-7f10 rw-p 00000000 00:00 0                          [stack:1234]",
			Region{Start: 0x7f00, End: 0x7f10, Perms: Perms{Read: true, Write: true}, Dev: "00:00", Path: "[stack:1234]"}},
		{"1000-2000 r-xs 0000a000 fd:01 77 /a b/c (deleted)",
			Region{Start: 0x1000, End: 0x2000, Perms: Perms{Read: true, Exec: true, Shared: true}, Offset: 0xa000, Dev: "fd:01", Inode: 77, Path: "/a b/c (deleted)"}},
		{"1000-2000 r--s 00000000 fe:00 99                         /tmp/ends in a space ",
			Region{Start: 0x1000, End: 0x2000, Perms: Perms{Read: true, Shared: true}, Dev: "fe:00", Inode: 99, Path: "/tmp/ends in a space "}},
		{"1000-2000 ---p 00000000 00:00 0",
			Region{Start: 0x1000, End: 0x2000, Dev: "00:00"}},
	}
	for _, tt := range tests {
		got, err := parseMapsLine(tt.line)
		if err != nil {
			t.Errorf("parseMapsLine(%q): %v", tt.line, err)
			continue
		}
		if got != tt.want {
			t.Errorf("parseMapsLine(%q)\n got %+v\nwant %+v", tt.line, got, tt.want)
		}
	}
}

func TestParseMapsErrors(t *testing.T) {
	if regions, err := parseMaps(strings.NewReader("")); err != nil || len(regions) != 0 {
		t.Errorf("empty input: %v, %v", regions, err)
	}
	for _, line := range []string{
		"\t", "1000-2000", "2000-1000 rw-p 0 00:00 0", "1000-2000 rwzp 0 00:00 0",
		"1000-2000 rw-p 0 0000 0", "1000-2000 rw-p x 00:00 0", "1000-2000 rw-p 0 00:00 -1",
		"zz-2000 rw-p 0 00:00 0", "1000-2000 rw-q 0 00:00 0",
	} {
		_, err := parseMaps(strings.NewReader(line + "\n"))
		if !errors.Is(err, ErrParse) {
			t.Errorf("parseMaps(%q) = %v, want ErrParse", line, err)
		}
	}
}

func TestRegionName(t *testing.T) {
	r := Region{Start: 0x55f8a0b3d000, End: 0x55f8a0b5e000}
	if got := r.Name(); got != "55f8a0b3d000-55f8a0b5e000" {
		t.Errorf("Name() = %q", got)
	}
	start, end, ok := ParseRegionName(r.Name())
	if !ok || start != r.Start || end != r.End {
		t.Errorf("ParseRegionName round trip: %x %x %v", start, end, ok)
	}
	for _, bad := range []string{"1000-2000", "55F8A0B3D000-55F8A0B5E000", "0055f8a0b3d000-55f8a0b5e000", "heap", "000000002000-000000001000"} {
		if _, _, ok := ParseRegionName(bad); ok {
			t.Errorf("ParseRegionName(%q) accepted a non-canonical name", bad)
		}
	}
}

func TestMapsSelf(t *testing.T) {
	p, err := Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	regions, err := p.Maps()
	if err != nil {
		t.Fatal(err)
	}
	var stack bool
	for _, r := range regions {
		stack = stack || r.Path == "[stack]"
	}
	if !stack {
		t.Errorf("no [stack] in own maps: %v", regions)
	}
}

// fuzzSeeds adds every fixture whose name ends in suffix to the corpus.
func fuzzSeeds(f *testing.F, suffix string) {
	files, _ := filepath.Glob("testdata/*." + suffix)
	if len(files) == 0 {
		f.Fatalf("no testdata/*.%s fixtures", suffix)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParseMaps(f *testing.F) {
	fuzzSeeds(f, "maps")
	f.Fuzz(func(t *testing.T, b []byte) {
		regions, err := parseMaps(strings.NewReader(string(b)))
		if err != nil && !errors.Is(err, ErrParse) {
			t.Fatalf("error does not wrap ErrParse: %v", err)
		}
		for _, r := range regions {
			if r.Start >= r.End {
				t.Fatalf("empty or inverted region %+v", r)
			}
			again, err := parseMapsLine(strings.Join([]string{r.Name(), r.Perms.String(), "0", r.Dev, "0", r.Path}, " "))
			if err != nil || again.Start != r.Start || again.End != r.End || !reflect.DeepEqual(again.Perms, r.Perms) {
				t.Fatalf("region %+v does not round-trip: %+v %v", r, again, err)
			}
		}
	})
}

func FuzzParseRegionName(f *testing.F) {
	f.Add("55f8a0b3d000-55f8a0b5e000")
	f.Add("ffffffffff600000-ffffffffff601000")
	f.Fuzz(func(t *testing.T, name string) {
		start, end, ok := ParseRegionName(name)
		if ok && (start >= end || (Region{Start: start, End: end}).Name() != name) {
			t.Fatalf("ParseRegionName(%q) = %x, %x", name, start, end)
		}
	})
}

// BenchmarkParseMaps parses the maps of a process with 60,000 regions.
func BenchmarkParseMaps(b *testing.B) {
	var sb strings.Builder
	for i := uint64(0); i < 60000; i++ {
		fmt.Fprintf(&sb, "%x-%x rw-p 00000000 00:00 0 \n", 0x7f0000000000+i*4096, 0x7f0000001000+i*4096)
	}
	sb.WriteString("7ffd4b5e0000-7ffd4b601000 rw-p 00000000 00:00 0                          [stack]\n")
	text := sb.String()
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseMapsText(text); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRegionNameAsPrintf(t *testing.T) {
	for _, v := range [][2]uint64{{0, 0}, {0x400000, 0x401000}, {0x7ffd12345000, 0x7ffd12366000}, {0xffffffffff600000, 0xffffffffff601000}, {1 << 48, 1<<48 + 1}, {math.MaxUint64, math.MaxUint64}} {
		r := Region{Start: v[0], End: v[1]}
		if got, want := r.Name(), fmt.Sprintf("%012x-%012x", v[0], v[1]); got != want {
			t.Errorf("Name of %#x-%#x: %q, want %q", v[0], v[1], got, want)
		}
	}
}
