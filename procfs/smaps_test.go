package procfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"
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
		if !strings.Contains(string(b), "\r") { // bufio drops \r only before \n
			want, wantErr := parseSmapsBufio(strings.NewReader(string(b)))
			if (err == nil) != (wantErr == nil) || !sameMappings(mappings, want) {
				t.Fatalf("parseSmaps = %+v, %v; the bufio parser it replaced: %+v, %v", mappings, err, want, wantErr)
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

// TestParseSmapsAsBefore: the fast parser gives what the bufio parser it
// replaced gave, on every fixture.
func TestParseSmapsAsBefore(t *testing.T) {
	for _, name := range []string{"testdata/fixture.smaps", "testdata/sleep.smaps"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseSmaps(strings.NewReader(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		want, err := parseSmapsBufio(strings.NewReader(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		if !sameMappings(got, want) {
			t.Errorf("%s: the fast parser differs from the bufio one", name)
		}
	}
}

// TestParseSmapsFieldsIndependent: appending to one mapping's fields or
// flags never changes another's, though they share arenas.
func TestParseSmapsFieldsIndependent(t *testing.T) {
	in := "1000-2000 rw-p 0 00:00 0\nRss: 4 kB\nVmFlags: rd wr\n2000-3000 rw-p 0 00:00 0\nRss: 8 kB\nVmFlags: rd wr\n"
	m, err := parseSmaps(strings.NewReader(in))
	if err != nil || len(m) != 2 {
		t.Fatal(m, err)
	}
	_ = append(m[0].Fields, SmapsField{Name: "X"})
	_ = append(m[0].VmFlags, "zz")
	if m[1].Fields[0].Name != "Rss" || m[1].Fields[0].Value != 8192 || len(m[1].VmFlags) != 2 {
		t.Errorf("second mapping changed: %+v", m[1])
	}
}

func sameMappings(a, b []Mapping) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Region != b[i].Region || len(a[i].Fields) != len(b[i].Fields) || !reflect.DeepEqual(a[i].VmFlags, b[i].VmFlags) {
			return false
		}
		for j := range a[i].Fields {
			if a[i].Fields[j] != b[i].Fields[j] {
				return false
			}
		}
	}
	return true
}

// smapsOf60000 is the smaps text of 60,000 one-page mappings, as the
// kernel writes them (43 MB, as a process with that many mappings has).
func smapsOf60000() string { return smapsOf(60000) }

// smapsOf is the smaps text of n one-page mappings.
func smapsOf(n uint64) string {
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, "%x-%x rw-p 00000000 00:00 0 \n", 0x7f0000000000+i*4096, 0x7f0000001000+i*4096)
		for _, name := range []string{"Size", "KernelPageSize", "MMUPageSize", "Rss", "Pss", "Pss_Dirty", "Shared_Clean",
			"Shared_Dirty", "Private_Clean", "Private_Dirty", "Referenced", "Anonymous", "KSM", "LazyFree", "AnonHugePages",
			"ShmemPmdMapped", "FilePmdMapped", "Shared_Hugetlb", "Private_Hugetlb", "Swap", "SwapPss", "Locked"} {
			fmt.Fprintf(&sb, "%-16s%8d kB\n", name+":", 4*(i%3))
		}
		sb.WriteString("THPeligible:           0\nProtectionKey:         0\nVmFlags: rd wr mr mw me ac sd \n")
	}
	return sb.String()
}

// BenchmarkParseSmaps parses the smaps of a process with 60,000 mappings,
// with the parser and with the bufio parser it replaced.
func BenchmarkParseSmaps(b *testing.B) {
	text := smapsOf60000()
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parseSmapsText([]byte(text)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reused", func(b *testing.B) {
		// As SmapsScanner parses: the text and the parser's slices kept.
		var p smapsParser
		buf := []byte(text)
		b.SetBytes(int64(len(text)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.parse(buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bufio", func(b *testing.B) {
		b.SetBytes(int64(len(text)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := parseSmapsBufio(strings.NewReader(text)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The parser before it was rewritten for speed (a bufio.Scanner and a
// string per line), kept to check the new one against.

func parseSmapsBufio(r io.Reader) ([]Mapping, error) {
	var mappings []Mapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		name, value, isField := smapsFieldLineBufio(line)
		if !isField {
			region, err := parseMapsLine(line)
			if err != nil {
				return nil, fmt.Errorf("%w: smaps line %d: %v", ErrParse, n, err)
			}
			mappings = append(mappings, Mapping{Region: region})
			continue
		}
		if len(mappings) == 0 {
			return nil, fmt.Errorf("%w: smaps line %d: field before any mapping: %q", ErrParse, n, line)
		}
		m := &mappings[len(mappings)-1]
		if name == "VmFlags" {
			m.VmFlags = strings.Fields(value)
			continue
		}
		f, err := parseSmapsValueBufio(name, value)
		if err != nil {
			return nil, fmt.Errorf("%w: smaps line %d: %q: %v", ErrParse, n, line, err)
		}
		m.Fields = append(m.Fields, f)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: smaps: %v", ErrParse, err)
	}
	return mappings, nil
}

// smapsFieldLineBufio tells a "Name: value" line from a maps line. A field name
// is a single word ending in a colon; a maps line starts with a hex range.
func smapsFieldLineBufio(line string) (name, value string, ok bool) {
	name, value, found := strings.Cut(line, ":")
	if !found || name == "" || strings.ContainsAny(name, " -") {
		return "", "", false
	}
	return name, strings.TrimSpace(value), true
}

func parseSmapsValueBufio(name, value string) (SmapsField, error) {
	num, unit, _ := strings.Cut(value, " ")
	v, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return SmapsField{}, err
	}
	switch strings.TrimSpace(unit) {
	case "":
		return SmapsField{Name: name, Value: v}, nil
	case "kB":
		if v > (1<<64-1)/1024 {
			return SmapsField{}, fmt.Errorf("value overflows")
		}
		return SmapsField{Name: name, Value: v * 1024, Bytes: true}, nil
	default:
		return SmapsField{}, fmt.Errorf("unknown unit %q", unit)
	}
}
