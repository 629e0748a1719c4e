package fs

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/procmem/procmem/core"
	"github.com/procmem/procmem/memory"
	"github.com/procmem/procmem/procfs"
)

// A mount of captured memory (procmem mount --core FILE) serves each core
// as a process directory of the same tree: region files, mem, info, the
// heap and stack links where the core names them, and core, the core
// itself (decompressed). What a caller may read is decided as for the
// core file itself: the tree carries its owner and its read bits, and the
// kernel checks them (default_permissions). Nothing is ever written.

// captured is one core served as a process directory.
type captured struct {
	c       *core.Capture
	path    string
	name    string // its directory's name: the PID, made unique
	pid     int
	key     uint64 // stands for a process's start time in inode numbers and the bound
	uid     uint32
	gid     uint32
	mode    uint32 // the core file's read bits: every file of the directory has them
	mtime   int64
	regions []procfs.Region

	once sync.Once
	snap *mapsSnapshot
}

// CaptureOptions are how cores are opened for a mount.
type CaptureOptions = core.OpenOptions

// openCaptures opens the cores to serve, each named by the PID its notes
// give (or the file's name), the second of one PID as PID.2 and so on.
func openCaptures(paths []string, opts CaptureOptions) ([]*captured, error) {
	var out []*captured
	names := map[string]int{}
	for _, path := range paths {
		c, err := core.Open(path, opts)
		if err != nil {
			for _, o := range out {
				o.c.Close()
			}
			return nil, err
		}
		st, err := os.Stat(path)
		if err != nil {
			c.Close()
			return nil, err
		}
		sys := st.Sys().(*syscall.Stat_t)
		cp := &captured{c: c, path: path, uid: sys.Uid, gid: sys.Gid, mode: uint32(st.Mode().Perm()) & 0o444,
			mtime: st.ModTime().UnixNano(), regions: c.Regions()}
		name := filepath.Base(path)
		if p, ok := c.Process(); ok && p.PID > 0 {
			cp.pid = p.PID
			name = strconv.Itoa(p.PID)
		}
		if names[name]++; names[name] > 1 {
			name = fmt.Sprintf("%s.%d", name, names[name])
		}
		cp.name = name
		h := fnv.New64a()
		h.Write([]byte(path))
		cp.key = h.Sum64()
		out = append(out, cp)
	}
	return out, nil
}

// reader reads the capture's memory.
func (cp *captured) reader() *memory.Reader { return memory.OpenCapture(cp.c) }

// snapshot is the capture's one reading: its regions never change. How
// much of each is data (st_blocks) is told at the first question.
func (cp *captured) snapshot(d *procDir) *mapsSnapshot {
	cp.once.Do(func() {
		cp.snap = &mapsSnapshot{dir: d, regions: cp.regions}
		cp.snap.infoOnce.Do(func() { cp.snap.infoText = cp.info() })
	})
	return cp.snap
}

// info is the region table, then where the bytes of each region are that
// the core does not hold whole.
func (cp *captured) info() []byte {
	var b bytes.Buffer
	cp.c.Info(&b, cp.regions)
	return b.Bytes()
}

// resident tells how much of each region the capture holds data for.
func (cp *captured) resident() map[uint64]uint64 {
	rd := cp.reader()
	defer rd.Close()
	out := map[uint64]uint64{}
	for _, r := range cp.regions {
		g := rd.Region(r)
		for at := r.Start; at < r.End; {
			data, ok, err := g.Seek(at, false)
			if err != nil || !ok {
				break
			}
			hole, _, err := g.Seek(data, true)
			if err != nil {
				break
			}
			out[r.Start] += hole - data
			at = hole
		}
		g.Close()
	}
	return out
}

// xattrs of a capture's directory: what the core tells of its process.
func (cp *captured) xattrs() []xattr {
	attrs := []xattr{{"core", cp.path}, {"origin", cp.c.Origin()}}
	if p, ok := cp.c.Process(); ok {
		attrs = append(attrs, xattr{"pid", strconv.Itoa(p.PID)}, xattr{"name", p.Name}, xattr{"cmdline", p.Args})
	}
	return attrs
}

// newCaptureDir makes the directory of a capture.
func (fsys *FS) newCaptureDir(cp *captured) *procDir {
	d := &procDir{pid: cp.pid, start: cp.key, capture: cp}
	d.fsys = fsys
	d.owner.Store(uint64(cp.uid)<<32 | uint64(cp.gid))
	return d
}
