package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

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

func TestAddressExpressions(t *testing.T) {
	p, err := procfs.Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r, err := newResolver(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	root := uint64(uintptr(unsafe.Pointer(&chainRoot)))
	health := uint64(uintptr(unsafe.Pointer(&chainPlayer.health)))
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	base, ok := r.module(filepath.Base(exe))
	if !ok {
		t.Fatalf("the test binary %s is not a module", exe)
	}
	for _, c := range []struct {
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
	} {
		x, err := parseExpr(c.in)
		if err != nil {
			t.Errorf("parseExpr(%q): %v", c.in, err)
			continue
		}
		if got, err := r.eval(x); err != nil || got != c.want {
			t.Errorf("%q = %#x, %v; want %#x", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "[", "[10", "10]", "+", "1++2", "[]", "a b", "1:2"} {
		if _, err := parseExpr(bad); !errors.As(err, new(usageError)) {
			t.Errorf("parseExpr(%q): %v, want a usage error", bad, err)
		}
	}
	x, _ := parseExpr("[0]+4")
	if _, err := r.eval(x); err == nil || errors.As(err, new(usageError)) {
		t.Errorf("a chain through address 0: %v, want a failure that says which step", err)
	}
	x, _ = parseExpr("no-such-module+4")
	if _, err := r.eval(x); !errors.As(err, new(usageError)) {
		t.Errorf("an unknown module: %v, want a usage error", err)
	}
}

func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{"10", "[[game+0x4010]+0x8]+0xc", "libc.so.6-10", "[ [1] - 2 ]", "-5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		x, err := parseExpr(s)
		if err != nil {
			return
		}
		again, err := parseExpr(x.String())
		if err != nil || again.String() != x.String() {
			t.Fatalf("%q prints as %q, which parses as %q (%v)", s, x.String(), again.String(), err)
		}
		(&resolver{}).eval(x) // numbers only: never panics
	})
}
