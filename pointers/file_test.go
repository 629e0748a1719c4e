package pointers

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// smallMap is a map of synthetic pointers with a module and two stacks.
func smallMap() *Map {
	stacks := []Stack{{Thread: 0, TID: 100, Start: 0x7ff0_0000, Top: 0x7ff1_0000}, {Thread: 1, TID: 102}}
	var ps []Pointer
	for i := range uint64(100) {
		ps = append(ps, Pointer{0x1000 + 8*i, 0x5000_0000 + 0x40*(i%30)}, Pointer{0x5000_0000 + 8*i, 0x5000_1000 - i})
	}
	ps = append(ps, Pointer{0x7ff0_fff8, 0x5000_0010})
	m := testMap(0x1000, Range{0, 0x1000}, stacks, ps)
	m.PID, m.Target = 4242, 0x5000_000c
	return m
}

func TestMapFile(t *testing.T) {
	m := smallMap()
	var b bytes.Buffer
	if err := WriteMap(&b, m); err != nil {
		t.Fatal(err)
	}
	got, err := ReadMap(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var want, read []Pointer
	m.Each(func(p Pointer) { want = append(want, p) })
	got.Each(func(p Pointer) { read = append(read, p) })
	if !slices.Equal(want, read) || !slices.Equal(m.Bases(), got.Bases()) || got.PID != 4242 || got.Target != m.Target ||
		!slices.Equal(got.Regions, m.Regions) || len(got.Modules) != 1 || !slices.Equal(got.Modules[0].Static, m.Modules[0].Static) ||
		!slices.Equal(got.Stacks, m.Stacks) {
		t.Errorf("read back %+v\nwrote %+v", got, m)
	}
	// The committed sample reads as well: a map written by this version
	// stays readable.
	sample, err := os.ReadFile(filepath.Join("testdata", "small.map"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sample, b.Bytes()) {
		t.Errorf("testdata/small.map differs from what WriteMap writes now: the format changed (write it anew with -update, and raise the version)")
	}
}

func TestMapFileDamaged(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMap(&b, smallMap()); err != nil {
		t.Fatal(err)
	}
	good := b.Bytes()
	for _, bad := range [][]byte{
		nil,
		[]byte("procmem pointer map 2\n"),
		good[:len(good)-1],
		append(slices.Clone(good), 0),
		append([]byte("procmem pointer map 9\n"), good[len(fileMagic):]...),
	} {
		if _, err := ReadMap(bad); !errors.Is(err, ErrMapFile) {
			t.Errorf("%d bytes: %v, want ErrMapFile", len(bad), err)
		}
	}
	for i := len(fileMagic); i < len(good); i += 17 {
		bad := slices.Clone(good)
		bad[i] ^= 0x40
		if _, err := ReadMap(bad); !errors.Is(err, ErrMapFile) {
			t.Errorf("byte %d flipped: %v, want ErrMapFile", i, err)
		}
	}
}

// FuzzReadMap: a damaged map file never panics, and one that reads gives
// back the pointers it says it holds. The checksum is made to match, so
// the fuzzer reaches the parser behind it.
func FuzzReadMap(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "small.map")); err == nil {
		f.Add(b[:len(b)-4])
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		b := append(slices.Clone(body), 0, 0, 0, 0)
		putCRC(b)
		m, err := ReadMap(b)
		if err != nil {
			return
		}
		n := 0
		m.Each(func(Pointer) { n++ })
		if n != m.Count() {
			t.Fatalf("a map of %d pointers gives %d", m.Count(), n)
		}
		Search([]Run{{Map: m, Target: 0x5000_000c}}, Limits{Depth: 3, MaxOffset: 0x100, Stacks: 2, StackSize: 0x1000, Nodes: 100, Chains: 100})
	})
}
