package fs

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/procmem/procmem/procfs"
)

// Extended attributes "user.procmem.*" describe a region (every smaps
// field, VmFlags, perms, pathname, bounds) and a process (name, command
// line, start time), so getfattr -d shows what info -v would. They reveal
// what /proc/PID/smaps does, so reading them takes the same permission.

const xattrPrefix = "user.procmem."

type xattr struct{ name, value string }

var (
	_ = (gofs.NodeGetxattrer)((*regionFile)(nil))
	_ = (gofs.NodeListxattrer)((*regionFile)(nil))
	_ = (gofs.NodeGetxattrer)((*procDir)(nil))
	_ = (gofs.NodeListxattrer)((*procDir)(nil))
)

func (n *regionFile) xattrs(ctx context.Context) ([]xattr, syscall.Errno) {
	mappings, err := n.dir.smaps(ctx)
	if err != nil {
		return nil, toErrno(err)
	}
	for _, m := range mappings {
		if m.Start != n.start || m.End != n.end {
			continue
		}
		attrs := []xattr{
			{"start", fmt.Sprintf("0x%x", m.Start)},
			{"end", fmt.Sprintf("0x%x", m.End)},
			{"perms", m.Perms.String()},
			{"pathname", m.Path},
			{"offset", fmt.Sprintf("0x%x", m.Offset)},
			{"dev", m.Dev},
			{"inode", strconv.FormatUint(m.Inode, 10)},
		}
		for _, f := range m.Fields {
			attrs = append(attrs, xattr{f.Name, strconv.FormatUint(f.Value, 10)})
		}
		return append(attrs, xattr{"VmFlags", strings.Join(m.VmFlags, " ")}), 0
	}
	return nil, syscall.ENOENT
}

func (n *regionFile) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return listXattrs(ctx, n.xattrs, dest)
}

func (n *regionFile) Getxattr(ctx context.Context, name string, dest []byte) (uint32, syscall.Errno) {
	return n.dir.getXattr(ctx, n.xattrs, name, dest)
}

func (d *procDir) xattrs(ctx context.Context) ([]xattr, syscall.Errno) {
	if d.capture != nil {
		return d.capture.xattrs(), 0
	}
	attrs, err := readProcess(ctx, d, func(p *procfs.Process) ([]xattr, error) {
		st, err := p.Stat()
		if err != nil {
			return nil, err
		}
		args, err := p.Cmdline()
		return []xattr{
			{"pid", strconv.Itoa(d.pid)},
			{"name", st.Comm},
			{"cmdline", strings.Join(args, " ")},
			{"starttime", d.fsys.startTime(d.start).UTC().Format(time.RFC3339Nano)},
		}, err
	})
	return attrs, toErrno(err)
}

func (d *procDir) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	return listXattrs(ctx, d.xattrs, dest)
}

func (d *procDir) Getxattr(ctx context.Context, name string, dest []byte) (uint32, syscall.Errno) {
	return d.getXattr(ctx, d.xattrs, name, dest)
}

// getXattr answers getxattr for a node of this process directory, to
// callers who may read the layout.
func (d *procDir) getXattr(ctx context.Context, attrs func(context.Context) ([]xattr, syscall.Errno), name string, dest []byte) (uint32, syscall.Errno) {
	if !strings.HasPrefix(name, xattrPrefix) {
		return 0, syscall.ENODATA
	}
	ctx, err := d.fsys.access.withCaller(ctx)
	if err != nil {
		return 0, toErrno(err)
	}
	if errno := d.checkLayoutAccess(ctx); errno != 0 {
		return 0, errno
	}
	list, errno := attrs(ctx)
	if errno != 0 {
		return 0, errno
	}
	return getReply(list, name, dest)
}

// listXattrs answers listxattr: NUL-terminated names, or the size needed.
func listXattrs(ctx context.Context, attrs func(context.Context) ([]xattr, syscall.Errno), dest []byte) (uint32, syscall.Errno) {
	list, errno := attrs(ctx)
	if errno != 0 {
		return 0, errno
	}
	var b []byte
	for _, a := range list {
		b = append(append(b, xattrPrefix+a.name...), 0)
	}
	if len(dest) < len(b) {
		return uint32(len(b)), syscall.ERANGE
	}
	return uint32(copy(dest, b)), 0
}

// getReply answers getxattr for one name, or the size needed.
func getReply(attrs []xattr, name string, dest []byte) (uint32, syscall.Errno) {
	for _, a := range attrs {
		if xattrPrefix+a.name != name {
			continue
		}
		if len(dest) < len(a.value) {
			return uint32(len(a.value)), syscall.ERANGE
		}
		return uint32(copy(dest, a.value)), 0
	}
	return 0, syscall.ENODATA
}
