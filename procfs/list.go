package procfs

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// Listed is one process as a listing of /proc tells it: enough to name its
// directory for good (PID and start time) and give its owner, read with
// two system calls and no descriptor held.
type Listed struct {
	PID       int
	StartTime uint64
	Zombie    bool
	UID, GID  uint32 // the owner of /proc/PID: the effective ids, or root if not dumpable
}

// List lists the processes of pids (as PIDs returns them) with their start
// times and owners; those that exit meanwhile are left out.
func List(pids []int) ([]Listed, error) {
	root, err := unix.Open(Root, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(root)
	out := make([]Listed, 0, len(pids))
	var buf [2048]byte
	for _, pid := range pids {
		name := strconv.Itoa(pid)
		var st unix.Stat_t
		if unix.Fstatat(root, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
			continue
		}
		fd, err := unix.Openat(root, name+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		n, err := unix.Pread(fd, buf[:], 0)
		unix.Close(fd)
		if err != nil || n <= 0 || n == len(buf) {
			continue
		}
		s, err := parseStatLine(string(buf[:n]))
		if err != nil || s.PID != pid {
			continue
		}
		out = append(out, Listed{PID: pid, StartTime: s.StartTime, Zombie: s.Exited(), UID: st.Uid, GID: st.Gid})
	}
	return out, nil
}
