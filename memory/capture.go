package memory

import (
	"os"

	"github.com/procmem/procmem/procfs"
)

// Capture is an address space that was captured, such as an ELF core
// file: the second source of memory a Reader reads, beside a live
// process. Package core implements it for core files; the memory layer
// decides holes, reads and errors for it as it does for a live process.
type Capture interface {
	// Regions are the captured mappings in address order, named as maps
	// names them as far as the capture tells (a kernel core has no
	// [heap] or [stack], and no permissions beyond r, w and x).
	Regions() []procfs.Region
	// Layout tells where the bytes of region r, one of Regions, are kept.
	Layout(r procfs.Region) CaptureLayout
	// Data holds the captured bytes: the core file itself, or where it
	// was decompressed to. Its holes (SEEK_DATA, SEEK_HOLE) are memory
	// without data.
	Data() *os.File
}

// CaptureLayout is where a captured region's bytes are kept: its first
// InCore bytes in the capture's Data at Offset, the rest in File at
// FileOffset (the file the region maps, when it is still there as it was
// when captured), or nowhere (File nil): a hole.
type CaptureLayout struct {
	InCore     uint64
	Offset     int64
	File       *os.File
	FileOffset int64 // the file offset of the region's first byte
}
