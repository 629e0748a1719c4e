package report

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/procmem/procmem/procfs"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/NAME.golden.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s (-want +got):\n%s", name, path, lineDiff(string(want), string(got)))
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("-" + wl + "\n+" + gl + "\n")
		}
	}
	return b.String()
}

func fixture(t *testing.T, name string) []byte {
	b, err := os.ReadFile(filepath.Join("..", "procfs", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSize(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0B", 999: "999B", 1000: "0.98KiB", 4096: "4.00KiB", 20480: "20.00KiB",
		3543040: "3.38MiB", 1023 * 1024: "1.00MiB", 1022 * 1000: "998.05KiB", 1000 * 1024: "0.98MiB", 1 << 30: "1.00GiB", 64 << 30: "64.00GiB",
		1<<64 - 1: "16.00EiB",
	} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestRegionLineSeed(t *testing.T) {
	// Lines from the original procmem's README.
	r := procfs.Region{Start: 0x563f263fd000, End: 0x563f2643d000, Perms: procfs.Perms{Read: true, Write: true}, Path: "[heap]"}
	if got, want := RegionLine(r), "563f263fd000-563f2643d000   256.00KiB  rw-p  [heap]"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	r = procfs.Region{Start: 0x563f260a5000, End: 0x563f260a6000, Perms: procfs.Perms{Read: true, Write: true}}
	if got, want := RegionLine(r), "563f260a5000-563f260a6000     4.00KiB  rw-p"; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	// A pathname is kept exactly, a trailing space too.
	r.Path = "/tmp/ends in a space "
	if got, want := RegionLine(r), "563f260a5000-563f260a6000     4.00KiB  rw-p  /tmp/ends in a space "; got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// fixtureProcess pins a process whose /proc files are procfs's fixtures.
func fixtureProcess(t *testing.T) *procfs.Process {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "3029")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"stat", "maps", "smaps"} {
		if err := os.WriteFile(filepath.Join(dir, name), fixture(t, "fixture."+name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p, err := procfs.OpenIn(root, 3029)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestInfoGolden(t *testing.T) {
	regions, err := fixtureProcess(t).Maps()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Info(&b, regions); err != nil {
		t.Fatal(err)
	}
	golden(t, "info", b.Bytes())
}

func TestInfoVerboseGolden(t *testing.T) {
	mappings, err := fixtureProcess(t).Smaps()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := InfoVerbose(&b, mappings[:3]); err != nil {
		t.Fatal(err)
	}
	golden(t, "info-verbose", b.Bytes())
}

func TestVmFlagMeanings(t *testing.T) {
	mappings, err := fixtureProcess(t).Smaps()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mappings {
		for _, flag := range m.VmFlags {
			if vmFlagMeaning[flag] == "" {
				t.Errorf("no meaning for VmFlag %q", flag)
			}
		}
	}
}

func TestStatmGolden(t *testing.T) {
	// The original README's xeyes figures, in pages of 4 KiB.
	s := procfs.Statm{Size: 12621 * 4096, Resident: 1162 * 4096, Shared: 1042 * 4096, Text: 5 * 4096, Data: 154 * 4096}
	var b bytes.Buffer
	if err := Statm(&b, s); err != nil {
		t.Fatal(err)
	}
	golden(t, "statm", b.Bytes())
}

func TestHexdumpGolden(t *testing.T) {
	data := make([]byte, 200)
	copy(data[8:], "Q\x02\x00\x00")
	copy(data[16:], "hello, procmem!\x7f")
	data[150] = 0xff
	for _, width := range []int{16, 8, 20} {
		var b bytes.Buffer
		h := NewHexdump(&b, width)
		// Split across writes at odd places; the result must not depend on it.
		h.Write(0x1c39000, data[:7])
		h.Write(0x1c39007, data[7:133])
		h.Write(0x1c39085, data[133:])
		// A hole: the next piece starts a new row at its own address.
		h.Write(0x1c3a000, []byte("after the hole"))
		if err := h.Flush(); err != nil {
			t.Fatal(err)
		}
		golden(t, fmt.Sprintf("hexdump-w%d", width), b.Bytes())
	}
}

func TestHexdumpSplitInvariance(t *testing.T) {
	data := bytes.Repeat([]byte("ab\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"), 50)
	var whole bytes.Buffer
	h := NewHexdump(&whole, 16)
	h.Write(0x1000, data)
	h.Flush()
	for step := 1; step < 40; step += 3 {
		var b bytes.Buffer
		h := NewHexdump(&b, 16)
		for off := 0; off < len(data); off += step {
			h.Write(0x1000+uint64(off), data[off:min(off+step, len(data))])
		}
		h.Flush()
		if b.String() != whole.String() {
			t.Fatalf("step %d:\n%s", step, lineDiff(whole.String(), b.String()))
		}
	}
}

// TestHexdumpZeros: a stretch given as Zeros prints as if it had been
// written out as zero bytes.
func TestHexdumpZeros(t *testing.T) {
	for _, c := range []struct{ before, zeros, after int }{{0, 4096, 3}, {5, 100, 0}, {16, 1 << 20, 16}, {7, 9, 1}, {0, 0, 5}} {
		for _, width := range []int{16, 20} {
			var want, got bytes.Buffer
			data := append(append(bytes.Repeat([]byte{1}, c.before), make([]byte, c.zeros)...), bytes.Repeat([]byte{2}, c.after)...)
			h := NewHexdump(&want, width)
			h.Write(0x1000, data)
			h.Flush()
			h = NewHexdump(&got, width)
			h.Write(0x1000, data[:c.before])
			h.Zeros(0x1000+uint64(c.before), uint64(c.zeros))
			h.Write(0x1000+uint64(c.before+c.zeros), data[c.before+c.zeros:])
			h.Flush()
			if got.String() != want.String() {
				t.Errorf("%+v width %d:\n%s", c, width, lineDiff(want.String(), got.String()))
			}
		}
	}
}
