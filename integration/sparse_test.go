//go:build linux

package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fileByte is target.c's file_byte.
func fileByte(i uint64) byte { return byte(i*13 + i>>8) }

// reservationPage is the content target.c writes to touched page i.
func reservationPage(i int, page uint64) []byte {
	b := make([]byte, page)
	for j := range b {
		b[j] = byte('A' + i + j%7)
	}
	return b
}

// startSparseTarget starts a target with a reservation of the given size,
// a memfd with holes and a file mapping.
func startSparseTarget(t testing.TB, reservation uint64) (*target, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "mapped-file")
	tg := startTargetAs(t, nil, targetBin, 1<<20, "sparse", file, fmt.Sprintf("%#x", reservation))
	return tg, file
}

// memStatus reads the fields of /proc/PID/status that reads through
// /proc/PID/mem would grow.
func memStatus(t testing.TB, pid int) map[string]uint64 {
	t.Helper()
	st, err := pinned(t, pid).Status()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]uint64{"VmPTE": st.Sizes["VmPTE"], "RssAnon": st.Sizes["RssAnon"], "RssShmem": st.Sizes["RssShmem"]}
}

// dataSegments lists the [start, end) stretches of a file that SEEK_DATA
// and SEEK_HOLE call data.
func dataSegments(t *testing.T, path string) [][2]int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var segs [][2]int64
	for off := int64(0); ; {
		data, err := syscall.Seek(int(f.Fd()), off, 3) // SEEK_DATA
		if err == syscall.ENXIO {
			return segs
		}
		if err != nil {
			t.Fatalf("SEEK_DATA %s at %d: %v", path, off, err)
		}
		hole, err := syscall.Seek(int(f.Fd()), data, 4) // SEEK_HOLE
		if err != nil {
			t.Fatal(err)
		}
		segs = append(segs, [2]int64{data, hole})
		off = hole
	}
}

func TestSparseReservation(t *testing.T) {
	requireTool(t, "cp", "du", "dd")
	tg, _ := startSparseTarget(t, 64<<30)
	m := startMount(t)
	page, size := tg.addr["page"], tg.addr["reservation_size"]
	res := tg.region(tg.addr["reservation"])
	if res.Start != tg.addr["reservation"] || res.Size() != size {
		t.Fatalf("reservation region %s", res.Name())
	}
	file := m.path(itoa(tg.pid), res.Name())
	before := memStatus(t, tg.pid)

	// Only the three touched pages hold data.
	want := [][2]int64{{0, int64(page)}, {int64(size / 2), int64(size/2 + page)}, {int64(size - page), int64(size)}}
	if got := dataSegments(t, file); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("SEEK_DATA/SEEK_HOLE on the region: %v, want %v", got, want)
	}
	copyPath := filepath.Join(t.TempDir(), "copy")
	mustSucceed(t, run(t, "", "cp", "--sparse=always", file, copyPath), "cp --sparse=always")
	st, err := os.Stat(copyPath)
	if err != nil || uint64(st.Size()) != size {
		t.Fatalf("copy: %v, size %d", err, st.Size())
	}
	// The copy equals a full read: data where the three pages are, holes
	// (zeros) everywhere else.
	if got := dataSegments(t, copyPath); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the copy's data: %v, want %v", got, want)
	}
	f, _ := os.Open(copyPath)
	defer f.Close()
	for i, seg := range want {
		b := make([]byte, page)
		f.ReadAt(b, seg[0])
		if !bytes.Equal(b, reservationPage(i, page)) {
			t.Errorf("touched page %d differs in the copy", i)
		}
	}
	du := run(t, "", "du", "-k", copyPath)
	if kb, _ := strconv.Atoi(strings.Fields(du.stdout + " x")[0]); kb > 64 {
		t.Errorf("du of the copy: %s, want about three pages", du.stdout)
	}

	// Reading the whole region end to end through the mount must not build
	// page tables or allocate memory in the target.
	mustSucceed(t, run(t, "", "dd", "if="+file, "of=/dev/null", "bs=1M"), "dd of the whole reservation")
	after := memStatus(t, tg.pid)
	for k := range before {
		if after[k] > before[k]+1<<20 {
			t.Errorf("%s grew from %d to %d bytes while reading the reservation", k, before[k], after[k])
		}
	}
}

func TestSparseMemfdAndFile(t *testing.T) {
	requireTool(t, "dd", "cmp")
	tg, mappedFile := startSparseTarget(t, 1<<30)
	m := startMount(t)
	page := tg.addr["page"]
	memfd := tg.region(tg.addr["memfd"])
	if !memfd.Perms.Shared || memfd.Size() != tg.addr["memfd_size"] {
		t.Fatalf("memfd region %+v", memfd)
	}
	file := m.path(itoa(tg.pid), memfd.Name())
	before := memStatus(t, tg.pid)
	// The page written through the fd and the page written through the
	// mapping hold data; everything else is a hole of the shmem file.
	want := [][2]int64{{1 << 20, 1<<20 + int64(page)}, {8 << 20, 8<<20 + int64(page)}}
	if got := dataSegments(t, file); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("memfd data: %v, want %v", got, want)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		off  int
		fill byte
	}{{1 << 20, 'W'}, {8 << 20, 'M'}, {0, 0}, {4 << 20, 0}} {
		if !bytes.Equal(b[c.off:c.off+int(page)], bytes.Repeat([]byte{c.fill}, int(page))) {
			t.Errorf("memfd at %#x does not hold %q", c.off, c.fill)
		}
	}
	after := memStatus(t, tg.pid)
	if after["RssShmem"] > before["RssShmem"]+1<<20 {
		t.Errorf("RssShmem grew from %d to %d reading the memfd", before["RssShmem"], after["RssShmem"])
	}

	// A private file mapping never touched: its real contents.
	fm := tg.region(tg.addr["filemap"])
	if fm.Path != mappedFile {
		t.Fatalf("file mapping %+v", fm)
	}
	mustSucceed(t, run(t, "", "cmp", m.path(itoa(tg.pid), fm.Name()), mappedFile), "cmp of the file mapping with the file")
	got, _ := os.ReadFile(m.path(itoa(tg.pid), fm.Name()))
	for i := range got {
		if got[i] != fileByte(uint64(i)) {
			t.Fatalf("file mapping byte %d = %d, want %d", i, got[i], fileByte(uint64(i)))
		}
	}
}

// TestDuAndXattrs: du of region files is smaps Rss; getfattr -d shows the
// smaps fields.
func TestDuAndXattrs(t *testing.T) {
	requireTool(t, "du", "getfattr")
	tg, _ := startSparseTarget(t, 1<<30)
	m := startMount(t, "--xattrs")
	mappings, err := pinned(t, tg.pid).Smaps()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-k"}
	rss := map[string]uint64{}
	for _, mp := range mappings {
		if mp.End > 1<<63 { // [vsyscall]
			continue
		}
		args = append(args, m.path(itoa(tg.pid), mp.Name()))
		v, _ := mp.Field("Rss")
		rss[mp.Name()] = v
	}
	du := run(t, "", "du", args...)
	mustSucceed(t, du, "du")
	for _, line := range strings.Split(strings.TrimSpace(du.stdout), "\n") {
		f := strings.Fields(line)
		kb, _ := strconv.ParseUint(f[0], 10, 64)
		name := filepath.Base(f[1])
		if kb*1024 != rss[name] {
			t.Errorf("du %s = %d KiB, smaps Rss %d KiB", name, kb, rss[name]/1024)
		}
	}

	heap := tg.regionByPath("[heap]")
	r := run(t, "", "getfattr", "-d", m.path(itoa(tg.pid), heap.Name()))
	mustSucceed(t, r, "getfattr -d")
	for _, want := range []string{`user.procmem.Rss="`, `user.procmem.Private_Dirty="`, `user.procmem.VmFlags="rd wr`, `user.procmem.perms="rw-p"`,
		`user.procmem.pathname="[heap]"`, fmt.Sprintf(`user.procmem.start="0x%x"`, heap.Start), fmt.Sprintf(`user.procmem.end="0x%x"`, heap.End)} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("getfattr -d lacks %s:\n%s", want, r.stdout)
		}
	}
	r = run(t, "", "getfattr", "-d", m.path(itoa(tg.pid)))
	for _, want := range []string{`user.procmem.name="target"`, `user.procmem.pid="` + itoa(tg.pid) + `"`, `user.procmem.cmdline="` + targetBin, `user.procmem.starttime="`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("getfattr -d of the process lacks %s:\n%s", want, r.stdout)
		}
	}
	if r := run(t, "", "getfattr", "-n", "user.procmem.nothing", m.path(itoa(tg.pid), heap.Name())); r.code == 0 || !strings.Contains(r.stderr, "No such attribute") {
		t.Errorf("unknown attribute: %d %s", r.code, r.stderr)
	}
}

// TestNoXattrs: without --xattrs the mount has no extended attributes at
// all (the kernel is told once and stops asking), and everything else
// works as before.
func TestNoXattrs(t *testing.T) {
	requireTool(t, "getfattr")
	tg := startTarget(t, "", 1<<20)
	m := startMount(t)
	heap := m.path(itoa(tg.pid), tg.regionByPath("[heap]").Name())
	for _, path := range []string{heap, m.path(itoa(tg.pid))} {
		for _, args := range [][]string{{"-n", "user.procmem.start"}, {"-d"}} {
			r := run(t, "", "getfattr", append(args, path)...)
			if r.code == 0 || r.stdout != "" || !strings.Contains(r.stderr, "Operation not supported") {
				t.Errorf("getfattr %s %s: exit %d, %q %q; want 'Operation not supported'", args, path, r.code, r.stdout, r.stderr)
			}
		}
	}
	if r := run(t, "", "grep", "-c", "-a", tg.marker, heap); strings.TrimSpace(r.stdout) != "1" {
		t.Errorf("grep of the heap: %q %q", r.stdout, r.stderr)
	}
}

// TestCommandLineLeavesHolesAlone: read and search of a process with a
// large mostly empty reservation do not allocate memory in it.
func TestCommandLineLeavesHolesAlone(t *testing.T) {
	const size = 4 << 30
	tg, _ := startSparseTarget(t, size)
	pid := itoa(tg.pid)
	page := tg.addr["page"]
	res := tg.region(tg.addr["reservation"])
	before := memStatus(t, tg.pid)

	if r := procmem(t, "-p", pid, "search", "-s", "nowhere to be found 4711"); r.code != 1 || !strings.Contains(r.stderr, "no match") {
		t.Errorf("search: exit %d, %s", r.code, r.stderr)
	}
	r := procmem(t, "-p", pid, "search", "-s", string(reservationPage(1, page)[:64]))
	if !strings.HasPrefix(r.stdout, fmt.Sprintf("%016x", res.Start+size/2)) {
		t.Errorf("search for the middle page: %s%s", r.stdout, r.stderr)
	}
	out := filepath.Join(t.TempDir(), "res")
	mustSucceed(t, procmem(t, "-p", pid, "read", "-r", fmt.Sprintf("%x:%x", res.Start, res.End), "-o", out), "read -o of the reservation")
	want := [][2]int64{{0, int64(page)}, {size / 2, size/2 + int64(page)}, {size - int64(page), size}}
	if got := dataSegments(t, out); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("read -o: data at %v, want %v", got, want)
	}
	if st, err := os.Stat(out); err != nil || st.Size() != size {
		t.Errorf("read -o: %v", err)
	}
	dump := procmem(t, "-p", pid, "read", "-r", fmt.Sprintf("%x:+%x", res.Start, 3*page))
	if !strings.Contains(dump.stdout, fmt.Sprintf("  -- skipped zeroes: %d\n", 2*page/16)) {
		t.Errorf("hexdump of a touched page and two holes:\n%s", dump.stdout)
	}
	after := memStatus(t, tg.pid)
	for k := range before {
		if after[k] > before[k]+1<<20 {
			t.Errorf("%s grew from %d to %d bytes", k, before[k], after[k])
		}
	}
}

// TestFileMappingsNotFaultedIn: reading a 64 MiB shared file mapping and a
// private one, neither touched by the target, through the mount and with
// procmem search, gives the file's bytes and maps none of its pages into
// the target: RssFile, RssShmem and VmPTE stay where they were. (Read
// through /proc/PID/mem, every page would be mapped in.)
func TestFileMappingsNotFaultedIn(t *testing.T) {
	requireRoot(t) // map_files, to read the files themselves
	requireTool(t, "cmp")
	tg, mappedFile := startSparseTarget(t, 1<<20)
	m := startMount(t)
	shared := tg.region(tg.addr["sharedmap"])
	private := tg.region(tg.addr["filemap"])
	if !shared.Perms.Shared || shared.Size() != tg.addr["sharedmap_size"] || private.Perms.Shared {
		t.Fatalf("mappings %+v, %+v", shared, private)
	}
	status := func() map[string]uint64 {
		st, err := pinned(t, tg.pid).Status()
		if err != nil {
			t.Fatal(err)
		}
		return map[string]uint64{"RssFile": st.Sizes["RssFile"], "RssShmem": st.Sizes["RssShmem"], "VmPTE": st.Sizes["VmPTE"]}
	}
	before := status()
	mustSucceed(t, run(t, "", "cmp", m.path(itoa(tg.pid), shared.Name()), mappedFile+".shared"), "cmp of the shared mapping with its file")
	mustSucceed(t, run(t, "", "cmp", m.path(itoa(tg.pid), private.Name()), mappedFile), "cmp of the private mapping with its file")
	// A string the shared file holds at 40 MiB, found by search.
	needle := make([]byte, 16)
	for i := range needle {
		needle[i] = fileByte(40<<20 + uint64(i))
	}
	r := procmem(t, "-p", itoa(tg.pid), "search", "-b", fmt.Sprintf("%x", needle), "-P", shared.Path)
	if want := fmt.Sprintf("%016x", shared.Start+40<<20); !strings.Contains(r.stdout, want) {
		t.Errorf("search in the shared mapping did not report %s:\n%s%s", want, r.stdout, r.stderr)
	}
	after := status()
	for k := range before {
		if after[k] > before[k]+256<<10 {
			t.Errorf("%s grew from %d to %d bytes while the file mappings were read", k, before[k], after[k])
		}
	}
}
