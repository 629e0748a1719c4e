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
// flight are bounded per process and in all, so a stuck process costs a
// few threads, never thousands, and never another process's requests.

// Bounds on the calls in flight: each may hold a thread while it waits.
const (
	callsPerProcess = 4
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
}

// procKey names a process for good: a reused PID is another process.
type procKey struct {
	pid   int
	start uint64
}

// procCalls are one process's calls in flight.
type procCalls struct {
	slots     chan struct{} // a token per call in flight
	deadlines []time.Time   // when each call in flight is overdue
	waiting   int           // requests waiting for a slot
	stuck     bool          // said in the log that it does not answer
}

func newCallBound(limit time.Duration) *callBound {
	return &callBound{limit: limit, all: make(chan struct{}, callsInAll), procs: map[procKey]*procCalls{}}
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

// ticket is a call let in: its process's and the global slot are taken,
// its deadline set.
type ticket struct {
	b        *callBound
	key      procKey
	pc       *procCalls
	deadline time.Time
	timer    *time.Timer // fires no earlier than the deadline
}

// enter lets a call into process key in: it waits for a slot of the
// process and one of all for at most the bound. It fails at once if the
// process is stuck.
func (b *callBound) enter(ctx context.Context, key procKey) (*ticket, error) {
	t := &ticket{b: b, key: key, deadline: time.Now().Add(b.limit)}
	b.mu.Lock()
	pc := b.procs[key]
	if pc == nil {
		pc = &procCalls{slots: make(chan struct{}, callsPerProcess)}
		b.procs[key] = pc
	}
	if pc.overdue(time.Now()) {
		b.markStuck(key, pc)
		b.mu.Unlock()
		return nil, b.stalled(key)
	}
	pc.waiting++
	b.mu.Unlock()

	t.timer = time.NewTimer(b.limit)
	err := acquire(ctx, pc.slots, t.timer.C)
	if err == nil {
		if err = acquire(ctx, b.all, t.timer.C); err != nil {
			<-pc.slots
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	pc.waiting--
	if err != nil {
		t.timer.Stop()
		b.drop(key, pc)
		if err == errExpired {
			err = b.stalled(key)
		}
		return nil, err
	}
	t.pc = pc
	pc.deadlines = append(pc.deadlines, t.deadline)
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

// leave ends the call due by deadline, and says in the log when a stuck
// process answers again.
func (b *callBound) leave(key procKey, pc *procCalls, deadline time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i := slices.Index(pc.deadlines, deadline); i >= 0 {
		pc.deadlines = slices.Delete(pc.deadlines, i, i+1)
	}
	<-pc.slots
	<-b.all
	if pc.stuck && !pc.overdue(time.Now()) {
		pc.stuck = false
		log.Printf("procmem: process %d answers again, %v after a call was due", key.pid, time.Since(deadline).Round(time.Millisecond))
	}
	b.drop(key, pc)
}

// drop forgets a process with nothing in flight. b.mu must be held.
func (b *callBound) drop(key procKey, pc *procCalls) {
	if len(pc.deadlines) == 0 && pc.waiting == 0 && b.procs[key] == pc {
		delete(b.procs, key)
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

// do runs fn, a call into process key, within b's bound (see run).
func do[T any](ctx context.Context, b *callBound, key procKey, fn func() (T, error), discard func(T)) (T, error) {
	t, err := b.enter(ctx, key)
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
		t.b.leave(t.key, t.pc, t.deadline)
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
