//go:build linux

package integration

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// BenchmarkUsageSample: one sample of a process with 60,000 mappings
// (procmem usage --json, the whole command) against reading its smaps with
// cat, the kernel's share; and --all of every process on the machine
// against cat of every smaps_rollup.
func BenchmarkUsageSample(b *testing.B) {
	tg := startTargetAs(b, nil, targetBin, 1<<20, "mappings", "60000")
	s := samples{}
	for b.Loop() {
		s["usage"] = append(s["usage"], timed(b, procmemBin, "-p", itoa(tg.pid), "usage", "--json"))
		s["cat-smaps"] = append(s["cat-smaps"], timed(b, "sh", "-c", "cat /proc/"+itoa(tg.pid)+"/smaps >/dev/null"))
	}
	s.report(b, [2]string{"usage", "cat-smaps"})
}

// BenchmarkUsageAll: --all over 1,000 processes (the helper's children
// and whatever else runs), by rss and by heap, against cat of every
// process's smaps_rollup.
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
		s["cat-rollups"] = append(s["cat-rollups"], timed(b, "sh", "-c", "cat /proc/[0-9]*/smaps_rollup >/dev/null 2>&1; true"))
	}
	s.report(b, [2]string{"all-rss", "cat-rollups"}, [2]string{"all-heap", "cat-rollups"})
}

// BenchmarkUsageCPU: procmem usage -i 1s on a typical process for 10 s,
// its own CPU time against the wall time.
func BenchmarkUsageCPU(b *testing.B) {
	ut := startUsageTarget(b)
	for b.Loop() {
		cmd := exec.Command(procmemBin, "-p", itoa(ut.pid), "usage", "-i", "1s", "-n", "11", "--csv")
		cmd.Stdout = nil
		start := time.Now()
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
		wall := time.Since(start)
		u := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		cpu := time.Duration(u.Utime.Nano() + u.Stime.Nano())
		b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%")
	}
}
