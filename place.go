package main

import (
	"fmt"

	"github.com/procmem/procmem/procfs"
)

// place is where addr lies, as procmem prints a match's address: the
// region's name and the offset in it.
func place(regions []procfs.Region, addr uint64) string {
	r, ok := procfs.RegionAt(regions, addr)
	if !ok {
		return fmt.Sprintf("0x%x", addr)
	}
	return fmt.Sprintf("%s+0x%x", label(r), addr-r.Start)
}
