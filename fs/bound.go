package fs

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// A request that reads a process's memory or its /proc files can wait on
// the process: on its mmap_lock while another of its threads holds it, on
// a page of a file on a hung filesystem, on a userfaultfd page nobody
// answers. A reader blocked in a FUSE request cannot be killed until the
// daemon answers, so no request may wait on a process for ever. Each such
// call runs on a goroutine of its own (do, run); the request waits
// for it at most the bound and is then answered EIO (EINTR if the kernel
// interrupted it), while the call stays on its thread until the kernel
// lets it go and its result is dropped. A process with a call overdue is
// stuck: its requests fail at once until that call returns. Calls in
// flight are bounded per process, per user and in all, so a stuck process
// costs a few threads, never thousands, and never another process's
// requests; and one user whose processes are stuck holds at most a share
// of all, never another user's.

// Bounds on the calls in flight: each may hold a thread while it waits.
const (
	callsPerProcess = 4
	callsPerUser    = callsInAll / 4
	callsInAll      = 256
)

// DefaultTimeout is how long a request waits for a process by default.
const DefaultTimeout = 5 * time.Second

// callBound keeps the calls into processes within a time and a count.
type callBound struct {
	limit time.Duration
	all   chan struct{} // a token per call in flight, of every process

	mu    sync.Mutex
	procs map[procKey]*procCalls
	users map[uint32]*procCalls // the calls of each user (the caller's uid), all processes
}

// procKey names a process for good: a reused PID is another process.
type procKey struct {
	pid   int
	start uint64
}

// procCalls are one process's, or one user's, calls in flight.
type procCalls struct {
	slots     chan struct{} // a token per call in flight
	deadlines []time.Time   // when each call in flight is overdue
	waiting   int           // requests waiting for a slot
	stuck     bool          // said in the log that it does not answer
}

func newCallBound(limit time.Duration) *callBound {
	return &callBound{limit: limit, all: make(chan struct{}, callsInAll), procs: map[procKey]*procCalls{}, users: map[uint32]*procCalls{}}
}

// overdue reports whether a call in flight is past its deadline.
func (pc *procCalls) overdue(now time.Time) bool {
	return slices.ContainsFunc(pc.deadlines, func(d time.Time) bool { return !now.Before(d) })
}

// errInterrupted answers a request that the kernel interrupted (the caller
// got a signal) while a call of it was in flight.
var errInterrupted = fmt.Errorf("interrupted: %w", syscall.EINTR)

// stalled is the error of a request that waited the whole bound.
func (b *callBound) stalled(key procKey) error {
	return fmt.Errorf("process %d does not answer: a call into it has not returned in %v: %w", key.pid, b.limit, syscall.EIO)
}

// ticket is a call let in: its process's, its user's and the global slot
// are taken, its deadline set.
type ticket struct {
	b        *callBound
	key      procKey
	uid      uint32
	pc, uc   *procCalls // the process's calls, the user's
	deadline time.Time
	timer    *time.Timer // fires no earlier than the deadline
}

// userStalled is the error of a request past its user's share of the
// calls while a call of that user's is overdue.
func userStalled(uid uint32) error {
	return fmt.Errorf("user %d has %d calls in flight, some into processes that do not answer: %w", uid, callsPerUser, syscall.EIO)
}

// enter lets a call of user uid into process key in: it waits for a slot
// of the process, one of the user's share and one of all for at most the
// bound. It fails at once if the process is stuck, or if the user's share
// is taken while one of its calls is overdue: a user whose processes hang
// is told so at once, and never waits in everyone's way.
func (b *callBound) enter(ctx context.Context, key procKey, uid uint32) (*ticket, error) {
	t := &ticket{b: b, key: key, uid: uid, deadline: time.Now().Add(b.limit)}
	b.mu.Lock()
	pc := b.procs[key]
	if pc == nil {
		pc = &procCalls{slots: make(chan struct{}, callsPerProcess)}
		b.procs[key] = pc
	}
	uc := b.users[uid]
	if uc == nil {
		uc = &procCalls{slots: make(chan struct{}, callsPerUser)}
		b.users[uid] = uc
	}
	now := time.Now()
	if pc.overdue(now) {
		b.markStuck(key, pc)
		b.mu.Unlock()
		return nil, b.stalled(key)
	}
	if len(uc.slots) == cap(uc.slots) && uc.overdue(now) {
		b.mu.Unlock()
		return nil, userStalled(uid)
	}
	pc.waiting++
	uc.waiting++
	b.mu.Unlock()

	t.timer = time.NewTimer(b.limit)
	err := acquire(ctx, pc.slots, t.timer.C)
	if err == nil {
		if err = acquire(ctx, uc.slots, t.timer.C); err != nil {
			<-pc.slots
		}
	}
	if err == nil {
		if err = acquire(ctx, b.all, t.timer.C); err != nil {
			<-uc.slots
			<-pc.slots
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	pc.waiting--
	uc.waiting--
	if err != nil {
		t.timer.Stop()
		b.drop(key, pc)
		b.dropUser(uid, uc)
		if err == errExpired {
			err = b.stalled(key)
		}
		return nil, err
	}
	t.pc, t.uc = pc, uc
	pc.deadlines = append(pc.deadlines, t.deadline)
	uc.deadlines = append(uc.deadlines, t.deadline)
	return t, nil
}

// errExpired: the bound passed while waiting for a slot.
var errExpired = errors.New("no slot within the bound")

// acquire takes a token of sem, waiting until expired fires or the request
// is interrupted.
func acquire(ctx context.Context, sem chan struct{}, expired <-chan time.Time) error {
	select {
	case sem <- struct{}{}:
		return nil
	default:
	}
	select {
	case sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return errInterrupted
	case <-expired:
		return errExpired
	}
}

// leave ends the call of ticket t, and says in the log when a stuck
// process answers again.
func (b *callBound) leave(t *ticket) {
	b.mu.Lock()
	defer b.mu.Unlock()
	pc, uc := t.pc, t.uc
	for _, c := range []*procCalls{pc, uc} {
		if i := slices.Index(c.deadlines, t.deadline); i >= 0 {
			c.deadlines = slices.Delete(c.deadlines, i, i+1)
		}
		<-c.slots
	}
	<-b.all
	if pc.stuck && !pc.overdue(time.Now()) {
		pc.stuck = false
		log.Printf("procmem: process %d answers again, %v after a call was due", t.key.pid, time.Since(t.deadline).Round(time.Millisecond))
	}
	b.drop(t.key, pc)
	b.dropUser(t.uid, uc)
}

// drop forgets a process with nothing in flight. b.mu must be held.
func (b *callBound) drop(key procKey, pc *procCalls) {
	if len(pc.deadlines) == 0 && pc.waiting == 0 && b.procs[key] == pc {
		delete(b.procs, key)
	}
}

// dropUser forgets a user with nothing in flight. b.mu must be held.
func (b *callBound) dropUser(uid uint32, uc *procCalls) {
	if len(uc.deadlines) == 0 && uc.waiting == 0 && b.users[uid] == uc {
		delete(b.users, uid)
	}
}

// abandoned notes that a request gave up on a call of process key that
// has been in flight for the whole bound.
func (b *callBound) abandoned(key procKey, pc *procCalls) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if pc.overdue(time.Now()) { // else it returned just now
		b.markStuck(key, pc)
	}
}

// markStuck says once in the log that a process does not answer. b.mu
// must be held.
func (b *callBound) markStuck(key procKey, pc *procCalls) {
	if !pc.stuck {
		pc.stuck = true
		log.Printf("procmem: %v; its requests fail with EIO until it returns", b.stalled(key))
	}
}

// call is one call in flight: the goroutine that makes it and the request
// that waits for it agree through state who has its result.
type call[T any] struct {
	state atomic.Int32 // running, then finished or abandoned
	done  chan struct{}
	val   T
	err   error
}

// interruptGrace is how long an interrupted request still waits for its
// call. The kernel interrupts a request on any signal to the caller, most
// often one it handles and carries on from (Go's preemption, SIGCHLD, a
// progress signal): a call that returns within the grace answers, so that
// only a call that hangs turns into EINTR.
const interruptGrace = 100 * time.Millisecond

// interrupted waits for c, whose request the kernel interrupted, for the
// grace at most, and returns nil if it returned meanwhile.
func (c *call[T]) interrupted(t *ticket) error {
	grace := time.NewTimer(interruptGrace)
	defer grace.Stop()
	select {
	case <-c.done:
		return nil
	case <-grace.C:
		return errInterrupted
	case <-t.timer.C:
		return t.b.stalled(t.key)
	}
}

const (
	running int32 = iota
	finished
	abandoned
)

// do runs fn, a call into process key for the request's caller, within
// b's bound (see run).
func do[T any](ctx context.Context, b *callBound, key procKey, fn func() (T, error), discard func(T)) (T, error) {
	t, err := b.enter(ctx, key, callerUID(ctx))
	if err != nil {
		var zero T
		return zero, err
	}
	return run(ctx, t, fn, discard)
}

// run runs fn, the call t let in, on a goroutine of its own, and waits
// for it until t's deadline. If the request gives up first (the deadline
// passed, or the kernel interrupted it), fn goes on on its own and its
// result is handed to discard (if not nil) when it returns: whatever fn
// opens or fills must belong to its result, never to the request.
func run[T any](ctx context.Context, t *ticket, fn func() (T, error), discard func(T)) (T, error) {
	defer t.timer.Stop()
	c := &call[T]{done: make(chan struct{})}
	go func() {
		v, err := fn()
		c.val, c.err = v, err
		kept := c.state.CompareAndSwap(running, finished)
		t.b.leave(t)
		if kept {
			close(c.done)
		} else if discard != nil {
			discard(v)
		}
	}()
	var err error
	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		if err = c.interrupted(t); err == nil {
			return c.val, c.err
		}
	case <-t.timer.C:
		err = t.b.stalled(t.key)
	}
	if !c.state.CompareAndSwap(running, abandoned) {
		<-c.done // it returned meanwhile
		return c.val, c.err
	}
	if err != errInterrupted {
		t.b.abandoned(t.key, t.pc)
	}
	var zero T
	return zero, err
}

// callerUID is the filesystem uid of the request's caller, whose share of
// the calls it takes; the kernel's own requests count as root's.
func callerUID(ctx context.Context) uint32 {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Uid
	}
	return 0
}
