package core

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/procmem/procmem/procfs"
)

// A core leaves out most of what a process mapped from files (the
// kernel's default coredump_filter keeps only the first page of each ELF
// file), since the files hold it. Those parts are read from the files
// when they are still there as they were; a file that may have changed
// since gives holes, never bytes that may not be what the process had.

// mappedFile is one file a capture's regions map: open if it may be read.
type mappedFile struct {
	file *os.File
	why  string // why it is not read
}

// mappedFile opens, once, the file at path for the regions that map it
// (their indices), if whoever owns the core may see it (it is readable
// by all, or theirs: a core anyone can write must not make a root
// daemon serve /etc/shadow) and it is as it was when the core was
// written:
//   - a regular file, modified no later than the core;
//   - long enough for every mapping of it to reach its last page;
//   - of the inode the core's smaps names, for procmem's cores (not under
//     a sysroot, whose files are copies);
//   - whose first page is the one the core holds, when the core holds
//     a read-only mapping of it (the ELF header the kernel keeps): a file
//     of the same name on another machine is told apart by it.
func (c *Capture) mappedFile(path string, regions []int, opts OpenOptions) *mappedFile {
	if mf, ok := c.files[path]; ok {
		return mf
	}
	mf := &mappedFile{}
	c.files[path] = mf
	if opts.NoMappedFiles {
		mf.why = "mapped files are not read"
		return mf
	}
	if strings.HasSuffix(path, " (deleted)") {
		mf.why = "the file was deleted before the core was written"
		return mf
	}
	f, err := openMapped(filepath.Join(cmp.Or(opts.Sysroot, "/"), path))
	if err != nil {
		mf.why = path + ": " + describe(err)
		return mf
	}
	if why := c.whyNot(f, regions); why != "" {
		f.Close()
		mf.why = path + ": " + why
		return mf
	}
	mf.file = f
	return mf
}

// openMapped opens a mapped file for reading, if it is a regular file.
func openMapped(path string) (*os.File, error) {
	// O_NONBLOCK: a FIFO must not hang the open.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), path)
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, errors.New("not a regular file")
	}
	return f, nil
}

// describe says briefly why a file could not be opened.
func describe(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "not found"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

// whyNot says why the file f may not stand for what the core's process
// mapped in the given regions: whose it is, or how it differs; "" if
// nothing shows it changed.
func (c *Capture) whyNot(f *os.File, regions []int) string {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return describe(err)
	}
	if st.Mode&0o004 == 0 && st.Uid != c.owner {
		return "not readable by all, nor the core owner's"
	}
	mtime := time.Unix(st.Mtim.Unix())
	if mtime.After(c.modTime) {
		return fmt.Sprintf("changed after the core was written (modified %s)", mtime.Format(time.DateTime))
	}
	for _, i := range regions {
		r := c.regions[i]
		if r.Inode != 0 && r.Inode != st.Ino && !c.sysroot {
			return fmt.Sprintf("another file now (inode %d, was %d)", st.Ino, r.Inode)
		}
		if uint64(st.Size)+pageSize <= r.Offset+r.Size() {
			return fmt.Sprintf("shorter (%d bytes) than its mapping at %#x", st.Size, r.Start)
		}
		if why := c.samePage(f, r, c.layouts[i].InCore, uint64(c.layouts[i].Offset)); why != "" {
			return why
		}
	}
	return ""
}

// samePage compares the first page of file f with the core's copy of it,
// when region r maps it read-only and the core holds it (inCore bytes at
// off).
func (c *Capture) samePage(f *os.File, r procfs.Region, inCore, off uint64) string {
	if r.Offset != 0 || r.Perms.Write || inCore < pageSize {
		return ""
	}
	var core, file [pageSize]byte
	if readFull(c.data, core[:], int64(off)) != nil {
		return ""
	}
	n, _ := f.ReadAt(file[:], 0)
	if !bytes.Equal(core[:n], file[:n]) {
		return "another file now (its first page differs from the core's)"
	}
	return ""
}
