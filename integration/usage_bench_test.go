//go:build linux

package integration

import (
	"encoding/csv"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkUsageSample: a process with 60,000 mappings (43 MB of smaps).
// The whole command once (procmem usage --json: start, one sample read
// from smaps, output) against reading its smaps with cat, the kernel's
// share; procmem's own startup (procmem help); and one sample within a
// run of -i, as the gap between consecutive samples' times: read from
// smaps (--exact), and read from maps, pagemap and smaps_rollup (the
// samples between two smaps reads), against cat of its maps and
// smaps_rollup, the text those samples read.
func BenchmarkUsageSample(b *testing.B) {
	tg := startTargetAs(b, nil, targetBin, 1<<20, "mappings", "60000")
	pid := itoa(tg.pid)
	s := samples{}
	for b.Loop() {
		s["usage"] = append(s["usage"], timed(b, procmemBin, "-p", pid, "usage", "--json"))
		s["cat-smaps"] = append(s["cat-smaps"], timed(b, "sh", "-c", "cat /proc/"+pid+"/smaps >/dev/null"))
		s["startup"] = append(s["startup"], timed(b, procmemBin, "help"))
		s["sample-smaps"] = append(s["sample-smaps"], sampleGap(b, pid, "--exact"))
		s["sample-pages"] = append(s["sample-pages"], sampleGap(b, pid))
		s["cat-maps-rollup"] = append(s["cat-maps-rollup"], timed(b, "sh", "-c", "cat /proc/"+pid+"/maps /proc/"+pid+"/smaps_rollup >/dev/null"))
	}
	s.report(b, [2]string{"usage", "cat-smaps"}, [2]string{"sample-smaps", "cat-smaps"},
		[2]string{"sample-pages", "cat-smaps"}, [2]string{"sample-pages", "cat-maps-rollup"})
}

// sampleGap runs procmem usage -i 10ms -n 11 --csv on pid and returns the
// median time between consecutive samples: with samples taking longer
// than the interval, how long one takes. All but the first read maps,
// pagemap and smaps_rollup (the first smaps read of a process this size
// takes far more than 2% of the next second), unless args say --exact.
func sampleGap(b *testing.B, pid string, args ...string) time.Duration {
	b.Helper()
	out, err := exec.Command(procmemBin, append([]string{"-p", pid, "usage", "-i", "10ms", "-n", "11", "--csv"}, args...)...).Output()
	if err != nil {
		b.Fatalf("procmem usage -i: %v", err)
	}
	rows, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil {
		b.Fatal(err)
	}
	var elapsed []float64
	for _, row := range rows[1:] {
		if row[3] == "total" {
			e, _ := strconv.ParseFloat(row[1], 64)
			elapsed = append(elapsed, e)
		}
	}
	var gaps []time.Duration
	for i := 1; i < len(elapsed); i++ {
		gaps = append(gaps, time.Duration((elapsed[i]-elapsed[i-1])*float64(time.Second)))
	}
	if len(gaps) == 0 {
		b.Fatalf("no samples:\n%s", out)
	}
	slices.Sort(gaps)
	return gaps[len(gaps)/2]
}

// BenchmarkUsageAll: --all over 1,000 processes (the benchmark's sleeping
// children and whatever else runs): by rss (smaps_rollup of each), by heap
// (maps and pagemap of each) and by heap.pss (smaps of each), against cat
// of every process's smaps_rollup and of every maps.
func BenchmarkUsageAll(b *testing.B) {
	var kids []*exec.Cmd
	for range 1000 {
		c := exec.Command("sleep", "600")
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
		kids = append(kids, c)
	}
	b.Cleanup(func() {
		for _, c := range kids {
			c.Process.Signal(syscall.SIGKILL)
			c.Wait()
		}
	})
	s := samples{}
	for b.Loop() {
		s["all-rss"] = append(s["all-rss"], timed(b, procmemBin, "usage", "--all"))
		s["all-heap"] = append(s["all-heap"], timed(b, procmemBin, "usage", "--all", "--by", "heap"))
		s["all-heap-pss"] = append(s["all-heap-pss"], timed(b, procmemBin, "usage", "--all", "--by", "heap.pss"))
		s["cat-rollups"] = append(s["cat-rollups"], timed(b, "sh", "-c", "cat /proc/[0-9]*/smaps_rollup >/dev/null 2>&1; true"))
		s["cat-maps"] = append(s["cat-maps"], timed(b, "sh", "-c", "cat /proc/[0-9]*/maps >/dev/null 2>&1; true"))
	}
	s.report(b, [2]string{"all-rss", "cat-rollups"}, [2]string{"all-heap", "cat-maps"}, [2]string{"all-heap-pss", "cat-rollups"})
}

// BenchmarkUsageCPU: procmem usage -i 1s for 10 s, its own CPU time
// against the wall time: on a typical process (usagetarget, some 40
// mappings, smaps read at every sample) and on one with 60,000 (smaps
// read when that costs at most 2% of the time, maps and pagemap between).
func BenchmarkUsageCPU(b *testing.B) {
	ut := startUsageTarget(b)
	big := startTargetAs(b, nil, targetBin, 1<<20, "mappings", "60000")
	for b.Loop() {
		b.ReportMetric(sampleCPU(b, ut.pid), "cpu-%")
		b.ReportMetric(sampleCPU(b, big.pid), "cpu-%-60000")
	}
}

// sampleCPU runs procmem usage -i 1s -n 11 on pid and returns its CPU
// time as a share of its wall time, in percent.
func sampleCPU(b *testing.B, pid int) float64 {
	b.Helper()
	cmd := exec.Command(procmemBin, "-p", itoa(pid), "usage", "-i", "1s", "-n", "11", "--csv")
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatal(err)
	}
	wall := time.Since(start)
	u := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(u.Utime.Nano() + u.Stime.Nano())
	return 100 * cpu.Seconds() / wall.Seconds()
}
