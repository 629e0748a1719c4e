//go:build linux

package integration

import (
	"fmt"
	"os/exec"
	"sort"
	"testing"
	"time"
)

// BenchmarkDdRegion copies a 1 GiB filled region with dd bs=1M through the
// mount and, alternating in the same run, straight from /proc/PID/mem with
// the same dd, and reports both throughputs and their ratio (medians).
//
//	go test ./integration -run '^$' -bench DdRegion -benchtime 5x
func BenchmarkDdRegion(b *testing.B) {
	tg := startTarget(b, "", 1<<30)
	m := startMount(b)
	pat := tg.region(tg.addr["pattern"])
	file := m.path(itoa(tg.pid), pat.Name())
	viaMount := []string{"if=" + file, "of=/dev/null", "bs=1M"}
	direct := []string{fmt.Sprintf("if=/proc/%d/mem", tg.pid), "of=/dev/null", "bs=1M", "iflag=skip_bytes,count_bytes",
		fmt.Sprintf("skip=%d", pat.Start), fmt.Sprintf("count=%d", pat.Size())}
	timeDd := func(args []string) time.Duration {
		start := time.Now()
		if out, err := exec.Command("dd", args...).CombinedOutput(); err != nil {
			b.Fatalf("dd %q: %v\n%s", args, err, out)
		}
		return time.Since(start)
	}
	var mountTimes, directTimes []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		directTimes = append(directTimes, timeDd(direct))
		mountTimes = append(mountTimes, timeDd(viaMount))
	}
	gbps := func(d time.Duration) float64 { return float64(pat.Size()) / d.Seconds() / 1e9 }
	dm, mm := median(directTimes), median(mountTimes)
	b.ReportMetric(gbps(dm), "direct-GB/s")
	b.ReportMetric(gbps(mm), "mount-GB/s")
	b.ReportMetric(dm.Seconds()/mm.Seconds(), "ratio")
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
