package memory

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/procmem/procmem/procfs"
)

// The data of a file mapping is read from the file, not through the
// process: a read through the process maps the page into it. The file is
// opened through /proc/PID/map_files/START-END, and two things make sure
// its bytes are ones the caller may have:
//
//   - it is opened with the caller's credentials (the Opener, with the one
//     capability map_files needs added), so the kernel decides whether the
//     caller may reach the process as it is now and read that file;
//   - it must be the file the caller's own reading of maps names for the
//     region (device and inode): map_files looks the range up in the
//     address space the process has now, which after an exec is another one
//     than the caller's mem fd was opened on, even while a CLONE_VM child
//     keeps the old one alive.
//
// Where either fails, the region is read through the process, as the
// kernel would read it for the caller.

// maxMapFiles is how many mapped files a Reader keeps open: a region file
// needs one, and a copy of mem or core walks the mappings in order.
const maxMapFiles = 8

// mapFiles is a Reader's open mapped files, the least recently used
// closed once there are more than maxMapFiles and nothing reads it.
type mapFiles struct {
	rd *Reader

	mu      sync.Mutex
	entries []*mapFile // the most recently used last
}

// mapFile is the file of one region, or nil if it is not to be had.
type mapFile struct {
	key     mapKey
	f       *os.File
	users   int
	dropped bool // closed by the last user, if it has one
}

type mapKey struct {
	start, end, inode uint64
	dev               string
}

// get returns the file region r maps, opening it if it is not open yet;
// put gives it back.
func (m *mapFiles) get(r procfs.Region) *mapFile {
	key := mapKey{r.Start, r.End, r.Inode, r.Dev}
	if e := m.find(key); e != nil {
		return e
	}
	e := &mapFile{key: key, f: m.rd.openMapFile(r), users: 1}
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, old := range m.entries {
		if old.key == key { // opened meanwhile by another reader
			if e.f != nil {
				e.f.Close()
			}
			old.users++
			m.entries = append(append(m.entries[:i:i], m.entries[i+1:]...), old)
			return old
		}
	}
	m.entries = append(m.entries, e)
	m.evict()
	return e
}

// find returns the entry of key, in use once more, or nil.
func (m *mapFiles) find(key mapKey) *mapFile {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, e := range m.entries {
		if e.key == key {
			e.users++
			m.entries = append(append(m.entries[:i:i], m.entries[i+1:]...), e)
			return e
		}
	}
	return nil
}

// evict drops the least recently used entries beyond maxMapFiles; one in
// use is closed by its last user. m.mu must be held.
func (m *mapFiles) evict() {
	for len(m.entries) > maxMapFiles {
		e := m.entries[0]
		m.entries = m.entries[1:]
		e.dropped = true
		if e.users == 0 && e.f != nil {
			e.f.Close()
		}
	}
}

func (m *mapFiles) put(e *mapFile) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.users--; e.users == 0 && e.dropped && e.f != nil {
		e.f.Close()
	}
}

// close closes every file: the Reader is closed, nothing reads any more.
func (m *mapFiles) close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.entries {
		if e.f != nil {
			e.f.Close()
		}
	}
	m.entries = nil
}

// openMapFile opens the file region r maps with the Opener's credentials,
// if it is a regular file (reading a device could do anything) and the
// very file r names; nil otherwise. r may be part of a mapping (a core
// holds the first page of some): map_files names the whole.
func (rd *Reader) openMapFile(r procfs.Region) *os.File {
	whole := r
	if m, ok, err := rd.query.Find(r.Start); err == nil && ok && m.Start <= r.Start && r.End <= m.End && sameMapping(m, r, r.Start) {
		whole.Start, whole.End = m.Start, m.End
	}
	var f *os.File
	err := rd.as(func() error {
		var err error
		f, err = rd.proc.OpenMapFile(whole)
		return err
	}, true)
	if err != nil {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG ||
		st.Ino != r.Inode || deviceName(st.Dev) != r.Dev {
		f.Close()
		return nil
	}
	return f
}

// deviceName is a device number as maps writes it: major:minor in hex.
func deviceName(dev uint64) string {
	return fmt.Sprintf("%02x:%02x", unix.Major(dev), unix.Minor(dev))
}
