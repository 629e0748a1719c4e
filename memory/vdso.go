package memory

import (
	"os"
	"sync"

	"github.com/procmem/procmem/procfs"
)

// A page of [vdso] that the process never touched is not in its page
// tables, and reading it through the process maps it there (its Rss grows
// by a page). Its bytes are the kernel's vDSO image, the same in every
// process of one kind: so such pages are copied from the daemon's own
// [vdso] instead, where the process is a 64-bit one like the daemon and
// its vDSO the same size. A page the process has touched (or written, a
// copy of its own) is present, and read from it.

var (
	vdsoOnce sync.Once
	vdsoSelf []byte // the daemon's own [vdso], nil if it has none
)

// selfVDSO returns a copy of the daemon's [vdso], read once from its own
// memory.
func selfVDSO() []byte {
	vdsoOnce.Do(func() {
		p, err := procfs.Open(os.Getpid())
		if err != nil {
			return
		}
		defer p.Close()
		regions, err := p.Maps()
		if err != nil {
			return
		}
		f, err := p.OpenFile("mem", os.O_RDONLY)
		if err != nil {
			return
		}
		defer f.Close()
		for _, r := range regions {
			if r.Path == "[vdso]" && r.Perms.Read {
				b := make([]byte, r.Size())
				if _, err := f.ReadAt(b, int64(r.Start)); err == nil {
					vdsoSelf = b
				}
			}
		}
	})
	return vdsoSelf
}

// atSysinfoEHDR is AT_SYSINFO_EHDR, the auxiliary vector's entry that
// tells where the vDSO is.
const atSysinfoEHDR = 33

// ownVDSO returns the daemon's vDSO if it is what region r, the target's
// [vdso], maps: the same size, and the target's auxiliary vector, read as
// 64-bit entries, points there (a 32-bit process has 32-bit entries and
// another vDSO). nil otherwise: r is read through the process.
func (rd *Reader) ownVDSO(r procfs.Region) []byte {
	rd.vdsoOnce.Do(func() { rd.vdso = rd.sameVDSO(r) })
	if uint64(len(rd.vdso)) != r.Size() {
		return nil
	}
	return rd.vdso
}

// sameVDSO decides ownVDSO, once for a Reader.
func (rd *Reader) sameVDSO(r procfs.Region) []byte {
	own := selfVDSO()
	if own == nil || uint64(len(own)) != r.Size() {
		return nil
	}
	auxv, err := rd.proc.Auxv()
	if err != nil {
		return nil
	}
	if at, ok := auxv.Value(atSysinfoEHDR); ok && at == r.Start {
		return own
	}
	return nil
}
