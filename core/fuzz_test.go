package core

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzOpen opens any bytes as a core, plain or compressed, and reads all
// it tells: it must fail with an error or give a capture whose regions
// are ordered, whose layouts lie inside its data, and whose every
// accessor answers; never panic or read past what it holds.
func FuzzOpen(f *testing.F) {
	for _, name := range []string{"kernel.core", "gcore.core", "procmem.core"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 16<<10)]) // the headers and notes, the first pages of data
	}
	for _, name := range []string{"kernel.core.zst", "kernel.core.lz4", "kernel.core.xz"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	prpsinfo := make([]byte, 136)
	copy(prpsinfo[40:], "fuzz")
	f.Add(synthCore([]synthLoad{
		{vaddr: 0x20000, memsz: 2 * pageSize, data: []byte("data")},
		{vaddr: 0x10000, memsz: pageSize},
	}, []synthNote{
		{"CORE", ntPrpsinfo, prpsinfo},
		{"CORE", ntPrstatus, make([]byte, 336)},
		{"CORE", ntSiginfo, make([]byte, 128)},
		{"CORE", ntAuxv, binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, 3), 0x20010)},
		{"CORE", ntFile, fileNoteOf(MappedFile{0x20000, 0x22000, 0x1000, "/lib"}, MappedFile{0x30000, 0x31000, 0, "/other"})},
		{procmemName, ntProcmemSmaps, []byte("00010000-00011000 rw-p 00000000 00:00 0 [heap]\nRss: 4 kB\n")},
	}))
	f.Fuzz(func(t *testing.T, b []byte) {
		fd, err := unix.MemfdCreate("fuzz-core", unix.MFD_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		file := os.NewFile(uintptr(fd), "fuzz-core")
		defer file.Close()
		if _, err := file.Write(b); err != nil {
			t.Fatal(err)
		}
		c, err := Open(fmt.Sprintf("/proc/self/fd/%d", fd), OpenOptions{MemoryLimit: 4 << 20, MaxSize: 8 << 20, NoMappedFiles: true})
		if err != nil {
			return
		}
		defer c.Close()
		checkCapture(t, c)
	})
}

// checkCapture asks a capture everything, and checks that its regions
// are ordered and its layouts inside its data.
func checkCapture(t *testing.T, c *Capture) {
	st, err := c.Data().Stat()
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for i, r := range c.Regions() {
		if r.Start >= r.End || i > 0 && r.Start < last {
			t.Fatalf("region %d %#x-%#x after %#x", i, r.Start, r.End, last)
		}
		last = r.End
		l := c.Layout(r)
		if l.InCore > r.Size() || l.Offset < 0 || l.InCore > 0 && uint64(l.Offset)+l.InCore > uint64(st.Size()) {
			t.Fatalf("region %#x-%#x: %d bytes at %#x of %d", r.Start, r.End, l.InCore, l.Offset, st.Size())
		}
		if l.InCore > 0 {
			b := make([]byte, min(l.InCore, 64))
			if _, err := c.Data().ReadAt(b, l.Offset); err != nil && err != io.EOF {
				t.Fatalf("reading region %#x-%#x: %v", r.Start, r.End, err)
			}
		}
		_ = c.Source(r).String()
	}
	c.Process()
	c.Signal()
	_ = c.Threads()
	_ = c.RegisterNames()
	_ = c.Auxv()
	_ = c.Files()
	_ = c.Executable()
	_ = c.Warnings()
	_ = c.Truncated()
	_ = c.Origin()
}

// FuzzXZ decodes any bytes as xz: an error or data, never a panic or an
// allocation beyond the dictionary bound.
func FuzzXZ(f *testing.F) {
	b, err := os.ReadFile("testdata/kernel.core.xz")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:200])
	f.Add(append(bytes.Clone(b), 0, 0, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		io.Copy(io.Discard, io.LimitReader(newXZReader(bytes.NewReader(b)), 64<<20))
	})
}
