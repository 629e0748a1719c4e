package core

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

// BenchmarkOpenZstd1GiB: a 1 GiB process's core, written by procmem and
// compressed with zstd at systemd-coredump's level, opened (one pass
// decompressing into a memfd) and then read whole, side by side with
// zstd -d to a file and reading that file: each iteration runs both,
// alternating. Run it alone:
//
//	go test ./core -run '^$' -bench OpenZstd1GiB -benchtime 5x
func BenchmarkOpenZstd1GiB(b *testing.B) {
	child := startChild(b, "heap=1073741824")
	im, rd, _ := build(b, child.pid)
	plain := writeImage(b, im, rd)
	dir := filepath.Dir(plain)
	zst := filepath.Join(dir, "core.zst")
	start := time.Now()
	if out, err := exec.Command("zstd", "-q", "-3", "-o", zst, plain).CombinedOutput(); err != nil {
		b.Fatalf("zstd: %v\n%s", err, out)
	}
	compressTime := time.Since(start)
	os.Remove(plain)
	out := filepath.Join(dir, "core")
	s := map[string][]time.Duration{}
	var memfdData, fileData int64
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		c, err := Open(zst, OpenOptions{})
		if err != nil {
			b.Fatal(err)
		}
		s["open"] = append(s["open"], time.Since(start))
		s["read"] = append(s["read"], readWhole(b, c.Data()))
		memfdData = dataBytes(b, c.Data())
		c.Close()

		start = time.Now()
		if out, err := exec.Command("zstd", "-q", "-d", "-f", "-o", out, zst).CombinedOutput(); err != nil {
			b.Fatalf("zstd -d: %v\n%s", err, out)
		}
		s["zstd-d"] = append(s["zstd-d"], time.Since(start))
		f, err := os.Open(out)
		if err != nil {
			b.Fatal(err)
		}
		s["read-file"] = append(s["read-file"], readWhole(b, f))
		fileData = dataBytes(b, f)
		f.Close()
		os.Remove(out)
	}
	b.StopTimer()
	med := func(name string) time.Duration {
		d := append([]time.Duration(nil), s[name]...)
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	for _, name := range []string{"open", "read", "zstd-d", "read-file"} {
		b.ReportMetric(float64(med(name).Milliseconds()), name+"-ms")
		b.Logf("%s: %v", name, s[name])
	}
	b.ReportMetric(med("open").Seconds()/med("zstd-d").Seconds(), "open/zstd-d")
	b.ReportMetric(med("read").Seconds()/med("read-file").Seconds(), "read/read-file")
	b.ReportMetric((med("open")+med("read")).Seconds()/(med("zstd-d")+med("read-file")).Seconds(), "open+read/zstd-d+read-file")
	b.ReportMetric(float64(memfdData)/(1<<20), "memfd-data-MiB")
	b.ReportMetric(float64(fileData)/(1<<20), "file-data-MiB")
	b.Logf("compressing the %d MiB core with zstd -3 took %v", im.Size()>>20, compressTime)
}

// readWhole reads f from start to end in 1 MiB preads.
func readWhole(b *testing.B, f *os.File) time.Duration {
	buf := make([]byte, 1<<20)
	start := time.Now()
	for off := int64(0); ; off += int64(len(buf)) {
		n, err := f.ReadAt(buf, off)
		if err == io.EOF || n < len(buf) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

// BenchmarkBuild60k: the core of a process with 60,000 mappings, built
// (what opening MOUNT/PID/core does before its first byte), side by side
// with the kernel's own cost for what Build must read: cat of its smaps.
//
//	go test ./core -run '^$' -bench Build60k -benchtime 5x
func BenchmarkBuild60k(b *testing.B) {
	child := startChild(b, "pages=60000")
	p, err := procfs.Open(child.pid)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	rd, err := memory.Open(p, memory.Self, false)
	if err != nil {
		b.Fatal(err)
	}
	defer rd.Close()
	smaps := fmt.Sprintf("/proc/%d/smaps", child.pid)
	var build, cat []time.Duration
	var head int
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		im, err := Build(p, rd)
		if err != nil {
			b.Fatal(err)
		}
		build = append(build, time.Since(start))
		head = len(im.head)
		start = time.Now()
		if out, err := exec.Command("cat", smaps).Output(); err != nil || len(out) == 0 {
			b.Fatalf("cat %s: %v", smaps, err)
		}
		cat = append(cat, time.Since(start))
	}
	b.StopTimer()
	med := func(d []time.Duration) time.Duration {
		d = slices.Clone(d)
		slices.Sort(d)
		return d[len(d)/2]
	}
	b.ReportMetric(float64(med(build).Milliseconds()), "build-ms")
	b.ReportMetric(float64(med(cat).Milliseconds()), "cat-smaps-ms")
	b.ReportMetric(med(build).Seconds()/med(cat).Seconds(), "build/cat-smaps")
	b.ReportMetric(float64(head)/(1<<20), "head-MiB")
	b.Logf("build %v; cat smaps %v", build, cat)
}
