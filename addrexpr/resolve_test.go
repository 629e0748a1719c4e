package addrexpr

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

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

var (
	chainPlayer = &player{health: 4242}
	chainWorld  = &world{player: chainPlayer}
	chainRoot   = chainWorld
)

// ownResolver resolves in the test's own process.
func ownResolver(t *testing.T) *Resolver {
	p, err := procfs.Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	regions, err := p.Maps()
	if err != nil {
		t.Fatal(err)
	}
	mem, err := memory.Open(p, memory.Self, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mem.Close() })
	return &Resolver{Regions: regions, Memory: mem}
}

func TestEval(t *testing.T) {
	r := ownResolver(t)
	root := uint64(uintptr(unsafe.Pointer(&chainRoot)))
	health := uint64(uintptr(unsafe.Pointer(&chainPlayer.health)))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	base, ok := ModuleBase(r.Regions, filepath.Base(exe))
	if !ok {
		t.Fatalf("the test binary %s is not a module", exe)
	}
	heap, _ := RegionStart(r.Regions, "[heap]")
	var stackTop uint64
	for _, reg := range r.Regions {
		if reg.Path == "[stack]" {
			stackTop = reg.End
		}
	}
	cases := []struct {
		in   string
		want uint64
	}{
		{"10", 0x10},
		{"0x10+0x20-8", 0x28},
		{fmt.Sprintf("[[%x]+8]+0xc", root), health},
		{fmt.Sprintf("[[%s+%x]+8]+c", filepath.Base(exe), root-base), health},
		{fmt.Sprintf("[[%s+%x] + 8] + c", exe, root-base), health},
		{fmt.Sprintf("%s-10", filepath.Base(exe)), base - 0x10},
		{"-1+2", 1},
		{"[stack:0]-8", stackTop - 8},
		{"[stack]+0", 0}, // filled in below
	}
	for _, reg := range r.Regions {
		if reg.Path == "[stack]" {
			cases[len(cases)-1].want = reg.Start
		}
	}
	if heap != 0 { // a Go test binary may have no [heap]
		cases = append(cases, struct {
			in   string
			want uint64
		}{"[heap]+10", heap + 0x10})
	}
	for _, c := range cases {
		x, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if got, err := r.Eval(x); err != nil || got != c.want {
			t.Errorf("%q = %#x, %v; want %#x", c.in, got, err, c.want)
		}
	}
	for in, usage := range map[string]bool{"[0]": false, "no-such-module+4": true, "[uprobes]+1": true, "[stack:1]": true} {
		x, _ := Parse(in)
		_, err := r.Eval(x)
		if err == nil || errors.Is(err, ErrBadAddress) != usage {
			t.Errorf("%q: %v, want a failure, ErrBadAddress %v", in, err, usage)
		}
	}
	x, _ := Parse("[10]")
	if _, err := (&Resolver{}).Eval(x); !errors.Is(err, ErrBadAddress) {
		t.Errorf("a dereference without memory: %v, want ErrBadAddress", err)
	}
}

func TestStackHook(t *testing.T) {
	r := &Resolver{Stack: func(n int) (uint64, error) {
		if n == 2 {
			return 0x7000, nil
		}
		return 0, errors.New("no such thread")
	}}
	x, _ := Parse("[stack:2]-10")
	if v, err := r.Eval(x); err != nil || v != 0x6ff0 {
		t.Errorf("[stack:2]-10 = %#x, %v", v, err)
	}
	x, _ = Parse("[stack:3]")
	if _, err := r.Eval(x); err == nil {
		t.Error("[stack:3] resolved")
	}
}
