package main

import (
	"github.com/procmem/procmem/addrexpr"
	"github.com/procmem/procmem/procfs"
)

// place writes an address of a process (regions: all of its maps) in the
// one notation every address argument takes: game+4010, [heap]+2c0,
// [stack:0]-1f8, or plain hex in anonymous memory.
func place(regions []procfs.Region, addr uint64) string {
	return addrexpr.Format(regions, addr)
}

// placer is place for many addresses of one process: the names are worked
// out once.
func placer(regions []procfs.Region) func(addr uint64) string {
	return addrexpr.NewNamer(regions).Format
}
