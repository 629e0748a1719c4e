package memory

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/procmem/procmem/procfs"
)

// Reading a process's [vdso] faults none of it in: its Rss stays, and the
// bytes are the vDSO's.
func TestReadVDSO(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Once it sleeps, the child touches nothing more of its own accord.
	sleeping := func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/syscall", cmd.Process.Pid))
		return strings.HasPrefix(string(b), "230 ") // clock_nanosleep
	}
	for end := time.Now().Add(5 * time.Second); !sleeping(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("sleep does not sleep")
		}
	}
	p, rd := openReader(t, cmd.Process.Pid, false)
	rss := func() uint64 {
		mappings, err := p.Smaps()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mappings {
			if m.Path == "[vdso]" {
				v, _ := m.Field("Rss")
				return v
			}
		}
		t.Fatal("no [vdso]")
		return 0
	}
	var vdso procfs.Region
	regions, _ := p.Maps()
	for _, r := range regions {
		if r.Path == "[vdso]" {
			vdso = r
		}
	}
	before := rss()
	if before == vdso.Size() {
		t.Logf("every page of the child's [vdso] is present already: nothing to fault in")
	}
	g := rd.Region(vdso)
	defer g.Close()
	got := make([]byte, vdso.Size())
	if n, err := g.ReadAt(got, vdso.Start); err != nil || n != len(got) {
		t.Fatalf("ReadAt: %d, %v", n, err)
	}
	if after := rss(); after != before {
		t.Errorf("reading [vdso] changed its Rss: %d to %d bytes", before, after)
	}
	if !bytes.Equal(got, selfVDSO()) || !bytes.HasPrefix(got, []byte("\x7fELF")) {
		t.Errorf("[vdso] read %q..., want the vDSO image", got[:16])
	}
}
