//go:build linux

package integration

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/procmem/procmem/usage"
)

// pagesJSON is one sample of usage --json with what tells how it was read.
type pagesJSON struct {
	usageJSON
	PssAge float64 `json:"pss_age"`
}

// usageSamples runs procmem usage with args and parses its JSON lines.
func usageSamples(t *testing.T, pid int, args ...string) []pagesJSON {
	t.Helper()
	r := procmem(t, append([]string{"-p", itoa(pid), "usage", "--json"}, args...)...)
	mustSucceed(t, r, "procmem usage --json "+strings.Join(args, " "))
	var samples []pagesJSON
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var s pagesJSON
		if err := json.Unmarshal([]byte(line), &s); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		samples = append(samples, s)
	}
	return samples
}

// TestUsagePagesAgree: samples taken between two reads of smaps (from
// maps and pagemap) give an idle process's every region and kind the
// size, rss and swap smaps gave it, carry its pss and private dirty
// bytes, and say how old those are. The target has 3,000 regions more,
// so that reading its smaps costs more than 2% of a 20 ms interval, and a
// memfd, a file mapped privately and shared, a reservation with pages
// touched.
func TestUsagePagesAgree(t *testing.T) {
	file := filepath.Join(t.TempDir(), "mapped-file")
	tg := startTargetAs(t, nil, targetBin, 1<<20, "sparse", file, fmt.Sprintf("%#x", uint64(1<<30)), "mappings", "3000")
	samples := usageSamples(t, tg.pid, "-i", "20ms", "-n", "6", "--top", "100")
	first := samples[0]
	if first.PssAge != 0 {
		t.Fatalf("the first sample's pss is %gs old: it reads smaps", first.PssAge)
	}
	pages := 0
	for i, s := range samples[1:] {
		if s.PssAge == 0 {
			continue
		}
		pages++
		for kind, want := range first.Kinds {
			if got := s.Kinds[kind]; got != want {
				t.Errorf("sample %d (pss %gs old), %s: %+v, smaps said %+v", i+1, s.PssAge, kind, got, want)
			}
		}
		if s.Total != first.Total {
			t.Errorf("sample %d: total %+v, smaps said %+v", i+1, s.Total, first.Total)
		}
		regions := map[string]usage.Figures{}
		for _, r := range first.Top {
			regions[r.Start] = r.Figures
		}
		for _, r := range s.Top {
			if want, ok := regions[r.Start]; ok && r.Figures != want {
				t.Errorf("sample %d, region %s %s: %+v, smaps said %+v", i+1, r.Addr, r.Path, r.Figures, want)
			}
		}
	}
	if pages == 0 {
		t.Fatalf("all %d samples read smaps (pss_age 0)", len(samples))
	}
	for i, s := range usageSamples(t, tg.pid, "-i", "20ms", "-n", "3", "--exact") {
		if s.PssAge != 0 {
			t.Errorf("--exact: sample %d's pss is %gs old", i, s.PssAge)
		}
	}
}
