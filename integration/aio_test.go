//go:build linux

package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// aioRead reads length bytes of path from off with O_DIRECT and native
// AIO (testdata/aioread.c), block bytes a request, depth in flight; extra
// files become fds 3 and up.
func aioRead(t *testing.T, path string, off, length, block uint64, depth int, extra ...*os.File) ([]byte, string) {
	t.Helper()
	cmd := exec.Command(aioBin, path, fmt.Sprint(off), fmt.Sprint(length), fmt.Sprint(block), fmt.Sprint(depth))
	cmd.ExtraFiles = extra
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("aioread %s: %v: %s", path, err, stderr.String())
	}
	return stdout.Bytes(), stderr.String()
}

// TestAsyncDirectIO: asynchronous direct reads, eight of 4 MiB in flight
// (each cut by the kernel into requests sent at once: CAP_ASYNC_DIO), read
// a region exactly; one that runs into a page unmapped meanwhile comes
// back short at that page, the bytes before it right. With --no-async-dio
// the same bytes come, a request at a time.
func TestAsyncDirectIO(t *testing.T) {
	tg := startTarget(t, "", 64<<20)
	pattern := tg.region(tg.addr["pattern"])
	page := tg.addr["page"]
	for _, flags := range [][]string{nil, {"--no-async-dio"}} {
		m := startMount(t, flags...)
		path := m.path(itoa(tg.pid), pattern.Name())
		most := waitingRequests(t, m)
		got, msg := aioRead(t, path, 0, pattern.Size(), 4<<20, 8)
		inFlight := most()
		if !bytes.Equal(got, tg.pattern) || msg != "" {
			t.Errorf("mount %q: async direct read of the region: %d bytes, equal %v, %q", flags, len(got), bytes.Equal(got, tg.pattern), msg)
		}
		// Eight reads of four requests each at once, or one at a time; a
		// lookup or release of another file may be waiting beside them.
		if async := flags == nil; async && inFlight < 5 || !async && inFlight > 3 {
			t.Errorf("mount %q: at most %d requests in flight at once", flags, inFlight)
		}
		t.Logf("mount %q: at most %d requests in flight", flags, inFlight)
	}

	m := startMount(t)
	f, err := os.Open(m.path(itoa(tg.pid), pattern.Name()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got := tg.ask("unmap %x %x", pattern.End-page, page); got != "ok" {
		t.Fatalf("unmap: %q", got)
	}
	got, msg := aioRead(t, "/dev/fd/3", 0, pattern.Size(), 4<<20, 8, f)
	want := tg.pattern[:pattern.Size()-page]
	if !bytes.Equal(got, want) || !strings.HasPrefix(msg, fmt.Sprintf("short at %d: %d", pattern.Size()-4<<20, 4<<20-page)) {
		t.Errorf("async direct read into an unmapped page: %d bytes (want %d), equal %v, %q", len(got), len(want), bytes.Equal(got, want), msg)
	}
}

// waitingRequests samples how many requests of m's FUSE connection are
// waiting for an answer (fusectl's "waiting") until the returned function
// is called, which returns the most seen.
func waitingRequests(t *testing.T, m *mount) func() int {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(m.dir, &st); err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/sys/fs/fuse/connections/%d/waiting", unix.Minor(st.Dev))
	if _, err := os.Stat(path); err != nil {
		skipOrFail(t, "no fusectl (mount -t fusectl none /sys/fs/fuse/connections): %v", err)
	}
	done := make(chan struct{})
	result := make(chan int)
	go func() {
		most := 0
		for {
			select {
			case <-done:
				result <- most
				return
			default:
			}
			if b, err := os.ReadFile(path); err == nil {
				if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
					most = max(most, n)
				}
			}
		}
	}()
	return func() int { close(done); return <-result }
}
