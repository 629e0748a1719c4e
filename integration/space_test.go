//go:build linux

package integration

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMemAddressSpace: MOUNT/PID/mem, where the offset is the address:
// xxd -s ADDR shows the marker; a read across a region's end into a gap
// returns the data then zeros; SEEK_DATA from 0 finds the first region; a
// write into a writable region reaches the process, one running into a
// gap or a read-only region changes nothing; mem is not listed.
func TestMemAddressSpace(t *testing.T) {
	requireTool(t, "xxd")
	tg := startTarget(t, "", 1<<20)
	m := startMount(t)
	pid := itoa(tg.pid)
	mem := m.path(pid, "mem")

	xxd := run(t, "", "xxd", "-s", fmt.Sprintf("%#x", tg.addr["marker"]), "-l", "16", mem)
	mustSucceed(t, xxd, "xxd -s of mem")
	if !strings.HasPrefix(xxd.stdout, fmt.Sprintf("%08x:", tg.addr["marker"])) || !strings.Contains(xxd.stdout, tg.marker[:14]) {
		t.Errorf("xxd -s %#x -l 16 mem:\n%s\nwant the marker %q at its address", tg.addr["marker"], xxd.stdout, tg.marker)
	}

	entries, err := os.ReadDir(m.path(pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == "mem" {
			t.Errorf("mem is listed: recursive tools would read every byte twice")
		}
	}

	// The pattern's last two pages unmapped: a gap after its first pages.
	page := tg.addr["page"]
	pattern := tg.region(tg.addr["pattern"])
	if got := tg.ask("unmap %x %x", pattern.End-2*page, 2*page); got != "ok" {
		t.Fatalf("unmap: %q", got)
	}
	if r := tg.region(pattern.End - 3*page); r.End != pattern.End-2*page {
		t.Fatalf("the pattern region after the unmap: %s", r.Name())
	}
	f, err := os.OpenFile(mem, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	last := pattern.End - 3*page
	b := make([]byte, 3*page)
	n, err := f.ReadAt(b, int64(last))
	if err != nil || n != len(b) {
		t.Fatalf("read across the region's end into the gap: %d, %v", n, err)
	}
	if !bytes.Equal(b[:page], tg.pattern[last-pattern.Start:][:page]) || !bytes.Equal(b[page:], make([]byte, 2*page)) {
		t.Errorf("read across the region's end into the gap: want the last page of the pattern, then zeros")
	}

	regions, err := pinned(t, tg.pid).Maps()
	if err != nil {
		t.Fatal(err)
	}
	if off, err := syscall.Seek(int(f.Fd()), 0, 3); err != nil || uint64(off) != regions[0].Start { // SEEK_DATA
		t.Errorf("SEEK_DATA from 0: %#x, %v; want the first region, %#x", off, err, regions[0].Start)
	}
	if off, err := syscall.Seek(int(f.Fd()), int64(last), 4); err != nil || uint64(off) != last+page { // SEEK_HOLE
		t.Errorf("SEEK_HOLE in the pattern's last page: %#x, %v; want its end, %#x", off, err, last+page)
	}
	if st, err := f.Stat(); err != nil || uint64(st.Size()) != regions[len(regions)-2].End && uint64(st.Size()) != regions[len(regions)-1].End {
		t.Errorf("size of mem: %v, %v; want the end of the highest region below [vsyscall]", st.Size(), err)
	}

	// A write lands in the process; one that runs into the gap or into a
	// read-only region is refused and writes nothing.
	at := tg.addr["pattern"] + 100
	if _, err := f.WriteAt([]byte("THROUGH-MEM"), int64(at)); err != nil {
		t.Fatalf("write through mem: %v", err)
	}
	if got := tg.peek(at, 11); string(got) != "THROUGH-MEM" {
		t.Errorf("the process sees %q after a write through mem", got)
	}
	before := tg.peek(last, int(page))
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xEE}, int(2*page)), int64(last)); !errors.Is(err, syscall.EIO) {
		t.Errorf("write running into the gap: %v, want EIO", err)
	}
	if !bytes.Equal(tg.peek(last, int(page)), before) {
		t.Errorf("a write refused for running into the gap changed the mapped page")
	}
	rodata := tg.addr["rodata"]
	if _, err := f.WriteAt([]byte("X"), int64(rodata)); !errors.Is(err, syscall.EACCES) {
		t.Errorf("write into a read-only region: %v, want EACCES", err)
	}
	if got := tg.peek(rodata, 14); string(got) != "read-only page" {
		t.Errorf("the read-only page after a refused write: %q", got)
	}
}

// TestMemSparseCopy: cp --sparse=always of mem is an image where offset =
// address, made from the pages with data only: quick for a process with a
// 64 GiB reservation, and small on disk.
func TestMemSparseCopy(t *testing.T) {
	requireRoot(t) // a tmpfs for the 128 TiB image: ext4 stops at 16 TiB
	requireTool(t, "cp", "du")
	tg, _ := startSparseTarget(t, 64<<30)
	m := startMount(t)
	dir := t.TempDir()
	mustSucceed(t, run(t, "", "mount", "-t", "tmpfs", "-o", "size=2g", "tmpfs", dir), "mount tmpfs")
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	image := filepath.Join(dir, "image")
	start := time.Now()
	mustSucceed(t, run(t, "", "cp", "--sparse=always", m.path(itoa(tg.pid), "mem"), image), "cp --sparse=always mem")
	took := time.Since(start)
	du := run(t, "", "du", "-k", image)
	kb, _ := strconv.Atoi(strings.Fields(du.stdout + " x")[0])
	t.Logf("cp --sparse=always of mem: %v, du %d kB", took, kb)
	if took > 20*time.Second {
		t.Errorf("cp --sparse=always of mem took %v", took)
	}
	if kb > 256<<10 {
		t.Errorf("du of the image: %d kB, want no more than the data the process holds", kb)
	}
	f, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, len(tg.marker))
	if _, err := f.ReadAt(b, int64(tg.addr["marker"])); err != nil || string(b) != tg.marker {
		t.Errorf("the image at the marker's address: %q, %v", b, err)
	}
	page := tg.addr["page"]
	res := tg.addr["reservation"]
	for i, off := range []uint64{0, tg.addr["reservation_size"] / 2, tg.addr["reservation_size"] - page} {
		got := make([]byte, page)
		f.ReadAt(got, int64(res+off))
		if !bytes.Equal(got, reservationPage(i, page)) {
			t.Errorf("touched page %d of the reservation differs in the image", i)
		}
	}
}

// TestMemImage32: 4 GiB of mem copied into a file is an image where
// offset = address, small on disk, that tools take as a file. Always on a
// 4 GiB window of a 64-bit process, copied with dd skip=, over a
// reservation whose layout the test made; and on the whole mem of a
// 32-bit process, copied with cp --sparse=always, where the kernel runs
// 32-bit programs (32-bit emulation may be off: ia32_emulation=off).
func TestMemImage32(t *testing.T) {
	requireTool(t, "strings", "cp", "dd", "xxd", "as", "ld")
	m := startMount(t)
	t.Run("4 GiB window of a 64-bit process", func(t *testing.T) { memWindowImage(t, m) })
	pid, marker, ok := start32(t)
	if !ok {
		t.Log("this kernel runs no 32-bit programs (32-bit emulation is off): the whole mem of a 32-bit process was not copied, the 4 GiB window was")
		return
	}
	t.Run("32-bit process", func(t *testing.T) {
		mem := m.path(itoa(pid), "mem")
		if st, err := os.Stat(mem); err != nil || st.Size() > 1<<32 {
			t.Fatalf("mem of a 32-bit process: %v, %v; want at most 4 GiB", st, err)
		}
		image := filepath.Join(t.TempDir(), "image")
		mustSucceed(t, run(t, "", "cp", "--sparse=always", mem, image), "cp --sparse=always mem")
		out := run(t, "", "strings", "-t", "x", image)
		mustSucceed(t, out, "strings -t x")
		if want := fmt.Sprintf("%x %s", marker, target32Marker); !strings.Contains(out.stdout, want) {
			t.Errorf("strings -t x of the image of mem lacks %q", want)
		}
	})
}

// memWindowImage copies the 4 GiB of mem that start at a 4 GiB
// reservation of a 64-bit target, whose first, middle and last pages hold
// text and into which the test writes a marker, with dd skip= (the way to
// take part of mem): the image has the text at the offsets where it lies
// in the reservation, and only its blocks on disk. (strings, which reads
// every byte, is left to the 32-bit image: 4 GiB of zeros take it 34 s
// here.)
func memWindowImage(t *testing.T, m *mount) {
	tg, _ := startSparseTarget(t, 4<<30)
	res, page := tg.addr["reservation"], tg.addr["page"]
	if tg.addr["reservation_size"] != 4<<30 {
		t.Fatalf("reservation of %#x bytes, want 4 GiB", tg.addr["reservation_size"])
	}
	marker := fmt.Sprintf("PMWINDOW-%08x", tg.pid)
	const markerAt = 0x76543210
	tg.poke(res+markerAt, []byte(marker))
	mem := m.path(itoa(tg.pid), "mem")

	// What cp --sparse=always would copy: the four pages with data.
	f, err := os.Open(mem)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var data []uint64
	for off := int64(res); off < int64(res+4<<30); {
		at, err := syscall.Seek(int(f.Fd()), off, 3) // SEEK_DATA
		if err != nil || at >= int64(res+4<<30) {
			break
		}
		data = append(data, uint64(at)-res)
		off = at + int64(page)
	}
	want := []uint64{0, markerAt &^ (page - 1), 2 << 30, 4<<30 - page}
	if fmt.Sprint(data) != fmt.Sprint(want) {
		t.Errorf("SEEK_DATA in the window finds data at offsets %x, want %x", data, want)
	}

	image := filepath.Join(t.TempDir(), "image")
	mustSucceed(t, run(t, "", "dd", "if="+mem, "of="+image, "bs=1M", "iflag=skip_bytes,count_bytes",
		fmt.Sprintf("skip=%d", res), fmt.Sprintf("count=%d", uint64(4<<30)), "conv=sparse"), "dd skip= of mem")
	if st, err := os.Stat(image); err != nil || st.Size() != 4<<30 {
		t.Fatalf("the image: %v, %v; want 4 GiB", st, err)
	}
	// Only the blocks with data are on disk (dd writes 1 MiB blocks, and
	// seeks over those that are all zeros), each at its address less the
	// window's start, which xxd -s finds.
	var blocks [][2]int64
	for _, off := range want {
		b := int64(off) &^ (1<<20 - 1)
		blocks = append(blocks, [2]int64{b, b + 1<<20})
	}
	if got := dataSegments(t, image); fmt.Sprint(got) != fmt.Sprint(blocks) {
		t.Errorf("the image has data at %x, want the blocks of the four pages, %x", got, blocks)
	}
	texts := map[uint64]string{markerAt: marker}
	for i, off := range []uint64{0, 2 << 30, 4<<30 - page} {
		texts[off] = string(reservationPage(i, page)[:16])
	}
	for off, text := range texts {
		out := run(t, "", "xxd", "-s", fmt.Sprintf("%#x", off), "-l", fmt.Sprint(len(text)), "-c", fmt.Sprint(len(text)), image)
		mustSucceed(t, out, "xxd -s of the image")
		if !strings.HasPrefix(out.stdout, fmt.Sprintf("%08x:", off)) || !strings.Contains(out.stdout, text) {
			t.Errorf("xxd -s %#x of the image: %q, want %q", off, out.stdout, text)
		}
	}
}

// target32Marker is what testdata/target32.s writes at its symbol marker.
const target32Marker = "PMMARK32-written at run time"

// start32 builds and starts testdata/target32.s, a 32-bit program made
// with binutils alone, and returns its pid and the marker's address; ok is
// false where the kernel refuses to run it (ENOEXEC: no 32-bit emulation).
func start32(t *testing.T) (pid int, marker uint64, ok bool) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "target32")
	for _, c := range [][]string{{"as", "--32", "-o", bin + ".o", "testdata/target32.s"}, {"ld", "-m", "elf_i386", "-o", bin, bin + ".o"}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
	exe, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	syms, err := exe.Symbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		if s.Name == "marker" {
			marker = s.Value
		}
	}
	cmd := exec.Command(bin)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); errors.Is(err, syscall.ENOEXEC) {
		return 0, 0, false
	} else if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if line, err := bufio.NewReader(out).ReadString('\n'); line != "ready\n" {
		t.Fatalf("target32: %q, %v", line, err)
	}
	return cmd.Process.Pid, marker, true
}

// TestSharedMmapOfRegion: a region file mapped MAP_SHARED (as GHex and
// some scanners do) shows the region's memory.
func TestSharedMmapOfRegion(t *testing.T) {
	requireTool(t, "python3")
	tg := startTarget(t, "", 1<<20)
	m := startMount(t)
	heap := tg.region(tg.addr["marker"])
	script := `import mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
m = mmap.mmap(fd, int(sys.argv[2]), mmap.MAP_SHARED, mmap.PROT_READ)
off = int(sys.argv[3])
sys.stdout.write(m[off:off + int(sys.argv[4])].decode())
`
	out := run(t, "", "python3", "-c", script, m.path(itoa(tg.pid), heap.Name()), fmt.Sprint(heap.Size()),
		fmt.Sprint(tg.addr["marker"]-heap.Start), fmt.Sprint(len(tg.marker)))
	mustSucceed(t, out, "python3 mmap MAP_SHARED")
	if out.stdout != tg.marker {
		t.Errorf("MAP_SHARED mapping of the heap at the marker: %q, want %q", out.stdout, tg.marker)
	}
}

// TestToolsOnRegion: file and sha256sum read region files as files: the
// executable's first region is an ELF header, and the pattern region's
// digest is the digest of what the target wrote there.
func TestToolsOnRegion(t *testing.T) {
	requireTool(t, "file", "sha256sum")
	tg := startTarget(t, "", 1<<20)
	m := startMount(t)
	regions, err := pinned(t, tg.pid).Maps()
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, "", "file", "-b", m.path(itoa(tg.pid), regions[0].Name()))
	mustSucceed(t, out, "file")
	if !strings.HasPrefix(out.stdout, "ELF") {
		t.Errorf("file of the executable's first region (%s): %q, want an ELF header", regions[0].Path, out.stdout)
	}
	pattern := tg.region(tg.addr["pattern"])
	out = run(t, "", "sha256sum", m.path(itoa(tg.pid), pattern.Name()))
	mustSucceed(t, out, "sha256sum")
	if want := fmt.Sprintf("%x", sha256.Sum256(tg.pattern)); !strings.HasPrefix(out.stdout, want) {
		t.Errorf("sha256sum of the pattern region: %s, want %s", out.stdout, want)
	}
}
