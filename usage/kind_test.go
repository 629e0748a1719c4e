package usage

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/procmem/procmem/procfs"
)

// mappings parses lines of "START-END PERMS PATH" into regions, each half
// resident.
func mappings(t *testing.T, lines ...string) []Region {
	var ms []Region
	for _, line := range lines {
		f := strings.Fields(line)
		var r procfs.Region
		var err error
		if r.Start, r.End, err = parseHexRange(f[0]); err != nil {
			t.Fatal(err)
		}
		r.Perms = procfs.Perms{Read: f[1][0] == 'r', Write: f[1][1] == 'w', Exec: f[1][2] == 'x', Shared: f[1][3] == 's'}
		if len(f) > 2 {
			r.Path = f[2]
			if !strings.HasPrefix(r.Path, "[") {
				r.Inode = 42
			}
		}
		ms = append(ms, Region{Region: r, Figures: Figures{Size: r.Size(), Rss: r.Size() / 2, Regions: 1}})
	}
	return ms
}

func parseHexRange(s string) (uint64, uint64, error) {
	var a, b uint64
	_, err := fmtSscanf(s, &a, &b)
	return a, b, err
}

func TestClassify(t *testing.T) {
	ms := mappings(t,
		"555555554000-555555556000 r-xp /usr/bin/prog",
		"555555556000-555555557000 rw-p /usr/bin/prog",
		"555555557000-555555578000 rw-p [heap]",
		"7ffff0000000-7ffff0021000 rw-p",             // arena
		"7ffff0021000-7ffff4000000 ---p",             // its reservation
		"7ffff5000000-7ffff5001000 ---p",             // a thread's guard
		"7ffff5001000-7ffff5801000 rw-p",             // its stack, by shape
		"7ffff5801000-7ffff5802000 ---p",             // a guard too large? no: 4K
		"7ffff5802000-7ffff6002000 rw-p",             // a stack by its SP
		"7ffff6002000-7ffff6102000 rw-p",             // plain anonymous
		"7ffff6200000-7ffff6300000 rw-s /memfd:pool", // shared memory
		"7ffff6300000-7ffff6400000 rw-s /dev/zero",
		"7ffff7000000-7ffff7200000 r-xp /usr/lib/libc.so.6",
		"7ffff7200000-7ffff7210000 r--p /usr/lib/libc.so.6",
		"7ffff7fc0000-7ffff7fc2000 r-xp [vdso]",
		"7ffffffde000-7ffffffff000 rw-p [stack]",
	)
	want := []Kind{Code, File, Heap, Heap, Heap, Stack, Stack, Stack, Stack, Anon, Shmem, Shmem, Code, File, Other, Stack}
	classify(ms, []uint64{0x7ffff5900000})
	for i := range want {
		if ms[i].Kind != want[i] {
			t.Errorf("%s %s: %s, want %s", ms[i].Name(), ms[i].Path, ms[i].Kind, want[i])
		}
	}
	s := sampleOf(ms, nil)
	var sum Figures
	for _, k := range Kinds {
		sum.add(s.Kinds[k])
	}
	if sum != s.Total || s.Total.Regions != len(ms) {
		t.Errorf("kinds sum to %+v, total %+v", sum, s.Total)
	}
	for addr, want := range map[uint64]string{
		0x555555557010: "[heap]+10",
		0x7ffff7200010: "libc.so.6+200010",
		0x555555556008: "prog+2008",
		0x7ffff6002000: "7ffff6002000",
		0x7ffff6200000: "7ffff6200000",
		0x1000:         "1000",
	} {
		if got := s.Addr(addr); got != want {
			t.Errorf("Addr(%#x) = %q, want %q", addr, got, want)
		}
	}
}

func TestDiff(t *testing.T) {
	before := sampleOf(mappings(t, "1000-3000 rw-p [heap]", "10000-20000 rw-p", "30000-31000 rw-p"), nil)
	after := sampleOf(mappings(t, "1000-9000 rw-p [heap]", "10000-20000 rw-p", "40000-80000 rw-p"), nil)
	changes := Diff(before, after)
	var got []string
	for _, c := range changes {
		got = append(got, c.What+" "+c.Addr)
	}
	want := "new 40000, grew [heap]+0, gone 30000"
	if strings.Join(got, ", ") != want {
		t.Errorf("Diff = %q, want %q", strings.Join(got, ", "), want)
	}
}

// sampleOf is a sample of the regions, taken now.
func sampleOf(regions []Region, sps []uint64) *Sample {
	s := &Sample{Time: time.Now(), PID: 1, Comm: "prog", Regions: regions}
	s.SmapsTime = s.Time
	s.sum(sps)
	return s
}

func fmtSscanf(s string, a, b *uint64) (int, error) { return fmt.Sscanf(s, "%x-%x", a, b) }

// TestTop: the regions Top keeps as it goes are those a stable sort of
// all of them puts first.
func TestTop(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	s := &Sample{}
	for i := range 500 {
		r := Region{Kind: Kind(rng.IntN(3))}
		r.Start = uint64(i) << 12
		r.Rss = uint64(rng.IntN(4)) << 12
		r.Figures.Size = uint64(rng.IntN(4)) << 12
		s.Regions = append(s.Regions, r)
	}
	for _, k := range []Kind{Heap, Anon, Stack, Code} {
		var want []Region
		for _, r := range s.Regions {
			if r.Kind == k {
				want = append(want, r)
			}
		}
		sort.SliceStable(want, func(i, j int) bool { return above(&want[i], &want[j]) })
		for _, n := range []int{0, 1, 5, 1000} {
			got := s.Top(k, n)
			if len(got) != min(n, len(want)) || !slices.Equal(got, want[:len(got)]) {
				t.Errorf("Top(%s, %d): %d regions, not the first of the sorted %d", k, n, len(got), len(want))
			}
		}
	}
}

// TestAddRuns: runs of pages are cut at the regions' bounds; the zero page
// is not resident, nor a guard marker swapped.
func TestAddRuns(t *testing.T) {
	rs := mappings(t, "1000-3000 rw-p", "3000-5000 rw-p", "8000-9000 rw-p")
	for i := range rs {
		rs[i].Rss = 0
	}
	addRuns(rs, []procfs.PageRange{
		{Start: 0x1000, End: 0x2000, Flags: procfs.PageSwapped | procfs.PageGuard},
		{Start: 0x2000, End: 0x4000, Flags: procfs.PagePresent},
		{Start: 0x4000, End: 0x5000, Flags: procfs.PageSwapped},
		{Start: 0x5000, End: 0x8000, Flags: procfs.PagePresent}, // between regions
		{Start: 0x8000, End: 0x9000, Flags: procfs.PagePresent | procfs.PageZero},
	})
	want := [][2]uint64{{0x1000, 0}, {0x1000, 0x1000}, {0, 0}}
	for i, w := range want {
		if rs[i].Rss != w[0] || rs[i].Swap != w[1] {
			t.Errorf("%s: rss %#x swap %#x, want %#x %#x", rs[i].Name(), rs[i].Rss, rs[i].Swap, w[0], w[1])
		}
	}
}
