package usage

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseCondition(t *testing.T) {
	for in, want := range map[string]string{
		"rss > 2G":                               "rss > 2G",
		"rss>2GiB":                               "rss > 2G",
		"heap grows 100M in 60s":                 "heap grows 100M in 1m0s",
		"heap.pss >= 1.5 GB":                     "heap.pss >= 1536M",
		"cpu > 90%":                              "cpu > 90% over 10s",
		"cpu > 90% over 5s":                      "cpu > 90% over 5s",
		"cgroup > 90%":                           "cgroup > 90%",
		"cgroup >= 512m":                         "cgroup >= 512M",
		"signal SIGUSR2":                         "signal USR2",
		"rss > 1G && (cpu > 50% || signal usr1)": "rss > 1G and (cpu > 50% over 10s or signal USR1)",
		"total.swap > 0":                         "swap > 0",
		"anon.dirty < 4096":                      "anon.dirty < 4K",
	} {
		c, err := ParseCondition(in)
		if err != nil {
			t.Errorf("ParseCondition(%q): %v", in, err)
			continue
		}
		if c.String() != want {
			t.Errorf("ParseCondition(%q) = %q, want %q", in, c.String(), want)
		}
	}
}

func TestParseConditionErrors(t *testing.T) {
	for _, in := range []string{"", "rss", "rss >", "rss > x", "rss = 2G", "bogus > 1G", "heap grows 1M", "heap grows 1M in",
		"heap grows 1M in 0s", "cpu > 2G", "cgroup >", "signal KILL", "(rss > 1G", "rss > 1G)", "rss > 1G and", "rss > 2Q",
		"rss > 1G # x", strings.Repeat("(", 100) + "rss > 1" + strings.Repeat(")", 100), "heap.bogus > 1", "rss > 99999999999T"} {
		if c, err := ParseCondition(in); err == nil {
			t.Errorf("ParseCondition(%q) = %q, want an error", in, c)
		} else if strings.Contains(err.Error(), "\n") {
			t.Errorf("error of %q has more than one line: %v", in, err)
		}
	}
}

func FuzzParseCondition(f *testing.F) {
	b, err := os.ReadFile("testdata/conditions")
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCondition(s)
		if err != nil {
			return
		}
		again, err := ParseCondition(c.String())
		if err != nil || again.String() != c.String() {
			t.Fatalf("%q parses as %q, which parses as %v, %v", s, c, again, err)
		}
	})
}

// hist makes a history of observations one second apart.
func hist(obs ...observation) *history {
	start := time.Unix(1000, 0)
	for i := range obs {
		obs[i].time = start.Add(time.Duration(i) * time.Second)
	}
	return &history{obs}
}

func TestEval(t *testing.T) {
	heap := func(rss uint64) observation {
		var o observation
		o.kinds[Heap].Rss, o.total.Rss = rss, rss
		return o
	}
	cpu := func(d time.Duration) observation { return observation{cpu: d} }
	for _, tc := range []struct {
		cond string
		h    *history
		want bool
	}{
		{"rss > 1K", hist(heap(2048)), true},
		{"rss > 1K", hist(heap(1024)), false},
		{"heap grows 1K in 2s", hist(heap(100), heap(2000), heap(1500)), true},
		{"heap grows 1K in 2s", hist(heap(100), heap(500), heap(900), heap(1200)), false}, // 100 is 3s back
		{"cpu > 90% over 2s", hist(cpu(0), cpu(time.Second), cpu(1950*time.Millisecond)), true},
		{"cpu > 90% over 2s", hist(cpu(0), cpu(1950*time.Millisecond)), false}, // not 2s of history yet
		{"cpu > 90% over 2s", hist(cpu(0), cpu(0), cpu(time.Second)), false},
		{"rss > 1K and cpu > 50% over 1s", hist(heap(2048), heap(2048)), false},
	} {
		c, err := ParseCondition(tc.cond)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := c.eval(tc.h); got != tc.want {
			t.Errorf("%s on %+v = %v, want %v", tc.cond, tc.h.obs, got, tc.want)
		}
	}
	c, _ := ParseCondition("signal USR2 or rss > 1T")
	o := heap(1)
	o.signals = []syscall.Signal{syscall.SIGUSR2}
	if ok, why := c.eval(hist(o)); !ok || len(why) != 1 || why[0].atom.slug() != "signal-USR2" {
		t.Errorf("signal: %v, %+v", ok, why)
	}
}

func TestCgroupEval(t *testing.T) {
	c, _ := ParseCondition("cgroup > 90%")
	o := observation{}
	o.cgroup.Current, o.cgroup.Max, o.cgroup.Limited = 95, 100, true
	if ok, _ := c.eval(hist(o)); !ok {
		t.Error("95 of 100 is not > 90%")
	}
	o.cgroup.Limited = false
	if ok, _ := c.eval(hist(o)); ok {
		t.Error("a cgroup without a limit is > 90% of it")
	}
}
