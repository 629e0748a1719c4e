//go:build linux

package integration

import (
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkCaptureZstd: a zstd-compressed core of a process with 1 GiB of
// data, opened and read through a mount (procmem mount --core, which
// decompresses it once into memory, then cat of its core), against the
// way without procmem (zstd -d to a file on this disk, then cat of that
// file), side by side in one run.
func BenchmarkCaptureZstd(b *testing.B) {
	requireTool(b, "zstd", "cat")
	tg := startTarget(b, "", 1<<30)
	dir := b.TempDir()
	plain := filepath.Join(dir, "big.core")
	mustSucceed(b, procmem(b, "-p", itoa(tg.pid), "core", "-o", plain), "procmem core")
	tg.stop()
	zst := plain + ".zst"
	mustSucceed(b, run(b, "", "zstd", "-q", "-3", plain, "-o", zst), "zstd")
	out := filepath.Join(dir, "decompressed.core")
	s := samples{}
	for i := 0; i < b.N; i++ {
		// procmem: mounted (decompressed) until the mount is ready, then
		// the core read whole through it.
		start := time.Now()
		m := startMount(b, "--core", zst)
		s["open-procmem"] = append(s["open-procmem"], time.Since(start))
		core := m.path(itoa(tg.pid), "core")
		s["read-procmem"] = append(s["read-procmem"], timed(b, "sh", "-c", `cat "$1" >/dev/null`, "sh", core))
		s["both-procmem"] = append(s["both-procmem"], time.Since(start))
		m.stop()

		start = time.Now()
		if o, err := exec.Command("zstd", "-q", "-d", "-f", zst, "-o", out).CombinedOutput(); err != nil {
			b.Fatalf("zstd -d: %v %s", err, o)
		}
		s["open-zstd"] = append(s["open-zstd"], time.Since(start))
		s["read-file"] = append(s["read-file"], timed(b, "sh", "-c", `cat "$1" >/dev/null`, "sh", out))
		s["both-zstd"] = append(s["both-zstd"], time.Since(start))
	}
	s.report(b, [2]string{"open-procmem", "open-zstd"}, [2]string{"read-procmem", "read-file"}, [2]string{"both-procmem", "both-zstd"})
}
