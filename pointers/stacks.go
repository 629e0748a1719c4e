package pointers

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/procmem/procmem/procfs"
)

// Stack is one thread's stack. Threads are counted in the order they were
// started, the main thread 0, so that the same thread of a program has the
// same index in every run, which its ID does not.
type Stack struct {
	Thread int    `json:"thread"`
	TID    int    `json:"tid"`
	Start  uint64 `json:"start,omitempty"` // the region that holds the stack: [Start, Top)
	Top    uint64 `json:"top,omitempty"`   // 0: unknown (the thread never stopped running while asked)
}

// Known reports whether the stack was found.
func (s Stack) Known() bool { return s.Top != 0 }

// stackPatience is how long a running thread is asked for its stack
// pointer: /proc/PID/task/TID/syscall tells it only while the thread waits.
const stackPatience = 200 * time.Millisecond

// Stacks finds the stacks of the process's threads: the main thread's is
// [stack]; another's is the region that holds its stack pointer. The
// threads are not stopped; one that runs all the time is asked again for
// a while, and then its stack is unknown.
func Stacks(p *procfs.Process, regions []procfs.Region) ([]Stack, error) {
	tids, err := startOrder(p)
	if err != nil {
		return nil, err
	}
	stacks := make([]Stack, len(tids))
	for i, tid := range tids {
		stacks[i] = Stack{Thread: i, TID: tid}
	}
	for _, r := range regions {
		if r.Path == "[stack]" && len(stacks) > 0 {
			stacks[0].Start, stacks[0].Top = r.Start, r.End
		}
	}
	for deadline := time.Now().Add(stackPatience); ; time.Sleep(time.Millisecond) {
		waiting := false
		for i := range stacks {
			if !stacks[i].Known() {
				waiting = findStack(p, regions, &stacks[i]) || waiting
			}
		}
		if !waiting || time.Now().After(deadline) {
			return stacks, nil
		}
	}
}

// findStack looks for a thread's stack through its stack pointer; it
// reports whether the thread was running, so that asking again may tell.
func findStack(p *procfs.Process, regions []procfs.Region, s *Stack) (running bool) {
	st, err := p.ThreadState(s.TID)
	if err != nil {
		return false // gone, or not permitted: asking again will not help
	}
	if st.Running {
		return true
	}
	if r, ok := procfs.RegionAt(regions, st.SP); ok {
		s.Start, s.Top = r.Start, r.End
	}
	return false
}

// startOrder lists the threads by when they were started, the main thread
// first; thread IDs break ties of the clock's ticks.
func startOrder(p *procfs.Process) ([]int, error) {
	tids, err := p.Threads()
	if err != nil {
		return nil, err
	}
	started := map[int]uint64{}
	for _, tid := range tids[1:] {
		st, err := p.TaskStat(tid)
		if err != nil {
			continue // gone since listed
		}
		started[tid] = st.StartTime
	}
	others := slices.DeleteFunc(tids[1:], func(tid int) bool { _, ok := started[tid]; return !ok })
	slices.SortFunc(others, func(a, b int) int {
		if c := cmp.Compare(started[a], started[b]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return append([]int{p.PID}, others...), nil
}

// StackTop returns the top of thread n's stack, for [stack:N].
func StackTop(stacks []Stack, n int) (uint64, error) {
	switch {
	case n >= len(stacks):
		return 0, fmt.Errorf("the process has %d threads, none with index %d", len(stacks), n)
	case !stacks[n].Known():
		return 0, fmt.Errorf("thread %d (TID %d) kept running, so its stack pointer is not known", n, stacks[n].TID)
	}
	return stacks[n].Top, nil
}
