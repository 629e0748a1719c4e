package pointers

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/procmem/procmem/procfs"
)

// A pointer map file holds one Map, all integers little-endian:
//
//	"procmem pointer map 1\n"   what the file is, and the format's version
//	u64 H, H bytes              the header: JSON, see fileHeader
//	u64 N                       the pointers
//	u64 B                       their blocks: (N+31)/32
//	B × u64                     each block's first value
//	(B+1) × u64                 where each block starts in the data, and
//	                            the data's length last
//	the data                    the blocks, as index describes them
//	u64 K, K × (u64, u64)       the pointers in static bases (address,
//	                            value), by address
//	u32                         CRC-32C of everything before it
//
// Pointers are sorted by value, then address; the blocks are what the
// index in memory is, so a map is written and read without re-encoding.
// A reader checks everything before it trusts it: lengths against the
// file's, the checksum, and every block decoded once.

// fileMagic starts every pointer map file; the number is the format's
// version, and a reader refuses any other.
const fileMagic = "procmem pointer map 1\n"

// ErrMapFile is what every malformed pointer map file wraps.
var ErrMapFile = errors.New("not a procmem pointer map")

// fileHeader is the JSON header.
type fileHeader struct {
	PID     int          `json:"pid,omitempty"`
	Target  uint64       `json:"target,omitempty"`
	Regions []fileRegion `json:"regions"`
	Modules []Module     `json:"modules"`
	Stacks  []Stack      `json:"stacks"`
}

// fileRegion is a line of maps.
type fileRegion struct {
	Start  uint64 `json:"start"`
	End    uint64 `json:"end"`
	Perms  string `json:"perms"` // as maps writes them: rw-p
	Offset uint64 `json:"offset"`
	Dev    string `json:"dev,omitempty"`
	Inode  uint64 `json:"inode,omitempty"`
	Path   string `json:"path,omitempty"`
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// WriteMap writes m to w.
func WriteMap(w io.Writer, m *Map) error {
	h := fileHeader{PID: m.PID, Target: m.Target, Modules: m.Modules, Stacks: m.Stacks}
	for _, r := range m.Regions {
		h.Regions = append(h.Regions, fileRegion{r.Start, r.End, r.Perms.String(), r.Offset, r.Dev, r.Inode, r.Path})
	}
	hdr, err := json.Marshal(h)
	if err != nil {
		return err
	}
	crc := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 1<<20)
	u64 := func(v uint64) { bw.Write(binary.LittleEndian.AppendUint64(nil, v)) }
	bw.WriteString(fileMagic)
	u64(uint64(len(hdr)))
	bw.Write(hdr)
	u64(uint64(m.ix.count))
	u64(uint64(len(m.ix.first)))
	for _, v := range m.ix.first {
		u64(v)
	}
	for _, v := range m.ix.offset {
		u64(v)
	}
	bw.Write(m.ix.data)
	u64(uint64(len(m.bases)))
	for _, p := range m.bases {
		u64(p.Addr)
		u64(p.Value)
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err = w.Write(binary.LittleEndian.AppendUint32(nil, crc.Sum32()))
	return err
}

// ReadMap reads a map file held whole in b; the map keeps b for its
// blocks.
func ReadMap(b []byte) (*Map, error) {
	bad := func(format string, a ...any) (*Map, error) {
		return nil, fmt.Errorf("%w: %s", ErrMapFile, fmt.Sprintf(format, a...))
	}
	if len(b) < len(fileMagic) || string(b[:len(fileMagic)]) != fileMagic {
		if len(b) >= 20 && string(b[:20]) == fileMagic[:20] {
			return bad("a version this procmem does not read (%q)", firstLine(b))
		}
		return bad("it does not start with %q", fileMagic[:len(fileMagic)-1])
	}
	if len(b) < len(fileMagic)+4 {
		return bad("cut short")
	}
	body := b[:len(b)-4]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return bad("its checksum does not match: the file is damaged or cut short")
	}
	r := &fileReader{b: body, at: len(fileMagic)}
	hdr := r.bytes(r.u64())
	var h fileHeader
	if r.err == nil {
		if err := json.Unmarshal(hdr, &h); err != nil {
			return bad("header: %v", err)
		}
	}
	m := &Map{PID: h.PID, Target: h.Target, Modules: h.Modules, Stacks: h.Stacks}
	for _, fr := range h.Regions {
		perms, ok := parsePerms(fr.Perms)
		if !ok || fr.End <= fr.Start {
			return bad("header: region %x-%x %q", fr.Start, fr.End, fr.Perms)
		}
		m.Regions = append(m.Regions, procfs.Region{Start: fr.Start, End: fr.End, Perms: perms, Offset: fr.Offset, Dev: fr.Dev, Inode: fr.Inode, Path: fr.Path})
	}
	count, blocks := r.u64(), r.u64()
	if r.err == nil && (count > uint64(len(b)) || blocks != (count+blockLen-1)/blockLen) {
		return bad("%d pointers in %d blocks", count, blocks)
	}
	m.ix.count = int(count)
	m.ix.first = r.u64s(blocks)
	m.ix.offset = r.u64s(blocks + 1)
	if r.err == nil && len(m.ix.offset) > 0 {
		m.ix.data = r.bytes(m.ix.offset[len(m.ix.offset)-1])
	}
	nbases := r.u64()
	if r.err == nil && nbases > uint64(len(b))/16 {
		return bad("%d static pointers", nbases)
	}
	for range nbases {
		m.bases = append(m.bases, Pointer{r.u64(), r.u64()})
	}
	switch {
	case r.err != nil:
		return bad("%v", r.err)
	case r.at != len(body):
		return bad("%d bytes after the end", len(body)-r.at)
	}
	if err := m.ix.check(); err != nil {
		return bad("%v", err)
	}
	if err := m.checkHeader(); err != nil {
		return bad("%v", err)
	}
	return m, nil
}

// checkHeader checks what the search relies on: bases in order, stacks
// numbered by their place.
func (m *Map) checkHeader() error {
	for i := 1; i < len(m.bases); i++ {
		if m.bases[i].Addr <= m.bases[i-1].Addr {
			return fmt.Errorf("static pointers out of order")
		}
	}
	for i, s := range m.Stacks {
		if s.Thread != i || s.Known() && s.Top <= s.Start {
			return fmt.Errorf("stack %d: thread %d at %x-%x", i, s.Thread, s.Start, s.Top)
		}
	}
	for _, mod := range m.Modules {
		for _, s := range mod.Static {
			if s.End <= s.Start {
				return fmt.Errorf("module %s: static data %x-%x", mod.Path, s.Start, s.End)
			}
		}
	}
	return nil
}

func firstLine(b []byte) string {
	for i, c := range b[:min(len(b), 64)] {
		if c == '\n' {
			return string(b[:i])
		}
	}
	return string(b[:min(len(b), 64)])
}

// fileReader reads the fields of a map file, remembering the first error.
type fileReader struct {
	b   []byte
	at  int
	err error
}

func (r *fileReader) bytes(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)-r.at) {
		r.err = fmt.Errorf("cut short at byte %d: %d more wanted", r.at, n)
		return nil
	}
	out := r.b[r.at : r.at+int(n)]
	r.at += int(n)
	return out
}

func (r *fileReader) u64() uint64 {
	b := r.bytes(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

func (r *fileReader) u64s(n uint64) []uint64 {
	if n > uint64(len(r.b)-r.at)/8 {
		r.bytes(n * 8) // sets the error
		return nil
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = r.u64()
	}
	return out
}

// parsePerms reads permissions as maps writes them.
func parsePerms(s string) (procfs.Perms, bool) {
	if len(s) != 4 {
		return procfs.Perms{}, false
	}
	p := procfs.Perms{Read: s[0] == 'r', Write: s[1] == 'w', Exec: s[2] == 'x', Shared: s[3] == 's'}
	return p, p.String() == s
}

// ReadMapFile reads a map file, mapped into memory rather than copied:
// the blocks are used where the file's pages are, in the page cache. Close
// the map to unmap it.
func ReadMapFile(f *os.File) (*Map, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if size <= 0 || size != int64(int(size)) {
		return nil, fmt.Errorf("%w: %d bytes", ErrMapFile, size)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil { // a file system that cannot map: read it
		b = make([]byte, size)
		if _, err := io.ReadFull(f, b); err != nil {
			return nil, err
		}
		return ReadMap(b)
	}
	m, err := ReadMap(b)
	if err != nil {
		unix.Munmap(b)
		return nil, err
	}
	m.unmap = func() { unix.Munmap(b) }
	return m, nil
}

// Close lets go of the file a map was read from; the map is not used
// after.
func (m *Map) Close() {
	if m.unmap != nil {
		m.unmap()
		m.unmap = nil
	}
}
