package pointers

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/procmem/procmem/addrexpr"
	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

// A chain as a game keeps one: a global points to a struct, which points
// 8 bytes in to the player, whose health is 12 bytes in.
type player struct {
	_      [3]int32
	health int32
}

type world struct {
	_      uint64
	player *player
}

// chainRoot is set at run time, so that the world and the player are on
// the heap (Go lays out what a package's variables start with as static
// data).
var chainRoot *world

func makeChain() *player {
	p := &player{health: 4242}
	chainRoot = &world{player: p}
	return p
}

// TestTakeOwn takes a map of the test's own process and finds the chain
// from the global chainRoot to the player's health through it, named from
// the test binary; the map written and read back finds it too.
func TestTakeOwn(t *testing.T) {
	p, err := procfs.Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	mem, err := memory.Open(p, memory.Self, false)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	src, err := LiveSource(p, mem)
	if err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	i := slices.IndexFunc(src.Modules, func(m Module) bool { return m.Main })
	if i < 0 || filepath.Base(src.Modules[i].Path) != filepath.Base(exe) || len(src.Modules[i].Static) == 0 {
		t.Fatalf("the program's module: %+v", src.Modules)
	}
	var scanned uint64
	var mu sync.Mutex
	src.Progress = func(n uint64) { mu.Lock(); scanned += n; mu.Unlock() }
	health := uint64(uintptr(unsafe.Pointer(&makeChain().health)))
	m, err := Take(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if m.Count() == 0 || len(m.Bases()) == 0 || scanned == 0 {
		t.Fatalf("%d pointers, %d in static bases, %d bytes scanned", m.Count(), len(m.Bases()), scanned)
	}
	root := uint64(uintptr(unsafe.Pointer(&chainRoot)))
	want := "[[" + filepath.Base(exe) + "+" + strings.TrimPrefix(addrexpr.Format(src.Regions, root), filepath.Base(exe)+"+") + "]+8]+c"
	lim := Limits{Depth: 2, MaxOffset: 0x100, Nodes: 1 << 16, Chains: 1 << 16}
	find := func(m *Map) bool {
		res := Search([]Run{{Map: m, Target: health}}, lim)
		n := addrexpr.NewNamer(src.Regions)
		for _, c := range res.Chains {
			if c.Expr(n) == want {
				return true
			}
		}
		t.Logf("%d chains, none %s", len(res.Chains), want)
		return false
	}
	if !find(m) {
		t.Errorf("no chain %s", want)
	}
	var b bytes.Buffer
	if err := WriteMap(&b, m); err != nil {
		t.Fatal(err)
	}
	read, err := ReadMap(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !find(read) {
		t.Errorf("no chain %s in the map read back", want)
	}
	t.Logf("%d pointers, %d bytes a pointer in the file", m.Count(), b.Len()/m.Count())
}
