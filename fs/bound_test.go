package fs

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// blocker is a call that waits until it is let go.
type blocker struct {
	release chan struct{}
	started chan struct{}
}

func newBlocker() *blocker {
	return &blocker{release: make(chan struct{}), started: make(chan struct{}, 256)}
}

func (b *blocker) call() (int, error) {
	b.started <- struct{}{}
	<-b.release
	return 42, nil
}

func TestBoundAnswersInTime(t *testing.T) {
	b := newCallBound(time.Second)
	v, err := do(context.Background(), b, procKey{1, 1}, func() (int, error) { return 7, nil }, nil)
	if v != 7 || err != nil {
		t.Fatalf("do = %d, %v; want 7, nil", v, err)
	}
	_, err = do(context.Background(), b, procKey{1, 1}, func() (int, error) { return 0, syscall.EACCES }, nil)
	if !errors.Is(err, syscall.EACCES) {
		t.Fatalf("the call's own error: %v", err)
	}
	if len(b.procs) != 0 || len(b.all) != 0 {
		t.Errorf("after the calls returned: %d processes, %d tokens held", len(b.procs), len(b.all))
	}
}

// A call that does not return: the request gets EIO at the bound, the
// process's next requests fail at once, another process is served, and
// once the call returns its result is discarded and the process answers.
func TestBoundAbandonsStuckCall(t *testing.T) {
	const limit = 100 * time.Millisecond
	b := newCallBound(limit)
	stuck, other := procKey{10, 1}, procKey{11, 1}
	bl := newBlocker()
	discarded := make(chan int, 1)
	begin := time.Now()
	_, err := do(context.Background(), b, stuck, bl.call, func(v int) { discarded <- v })
	if took := time.Since(begin); !errors.Is(err, syscall.EIO) || took < limit || took > limit+time.Second {
		t.Fatalf("stuck call: %v after %v; want EIO after %v", err, took, limit)
	}

	begin = time.Now()
	ran := false
	_, err = do(context.Background(), b, stuck, func() (int, error) { ran = true; return 0, nil }, nil)
	if !errors.Is(err, syscall.EIO) || ran || time.Since(begin) > limit/2 {
		t.Errorf("a request for the stuck process: %v after %v, ran %v; want EIO at once", err, time.Since(begin), ran)
	}
	if v, err := do(context.Background(), b, other, func() (int, error) { return 1, nil }, nil); v != 1 || err != nil {
		t.Errorf("another process while one is stuck: %d, %v", v, err)
	}

	close(bl.release)
	select {
	case v := <-discarded:
		if v != 42 {
			t.Errorf("discarded %d, want the call's result 42", v)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the abandoned call's result was never discarded")
	}
	if v, err := do(context.Background(), b, stuck, func() (int, error) { return 2, nil }, nil); v != 2 || err != nil {
		t.Errorf("the process once its call returned: %d, %v", v, err)
	}
	if len(b.procs) != 0 || len(b.all) != 0 {
		t.Errorf("after every call returned: %d processes, %d tokens held", len(b.procs), len(b.all))
	}
}

// An interrupted request gets EINTR, and does not mark the process stuck.
func TestBoundInterrupted(t *testing.T) {
	b := newCallBound(time.Hour)
	key := procKey{20, 1}
	bl := newBlocker()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-bl.started; cancel() }()
	_, err := do(ctx, b, key, bl.call, nil)
	if !errors.Is(err, syscall.EINTR) {
		t.Fatalf("interrupted request: %v, want EINTR", err)
	}
	if v, err := do(context.Background(), b, key, func() (int, error) { return 3, nil }, nil); v != 3 || err != nil {
		t.Errorf("after an interrupted request: %d, %v", v, err)
	}
	close(bl.release)

	// A signal the caller returns from interrupts a call that is about to
	// return: it answers, not EINTR.
	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	v, err := do(ctx, b, key, func() (int, error) { time.Sleep(interruptGrace / 4); return 4, nil }, nil)
	if v != 4 || err != nil {
		t.Errorf("a call that returns within the grace of an interrupt: %d, %v; want 4, nil", v, err)
	}
}

// At most callsPerProcess calls of one process are in flight: one more
// waits for a slot, and gets EIO if none frees up within the bound; the
// calls never exceed the bound.
func TestBoundSlotsPerProcess(t *testing.T) {
	const limit = 300 * time.Millisecond
	b := newCallBound(limit)
	key := procKey{30, 1}
	bl := newBlocker()
	var wg sync.WaitGroup
	for range callsPerProcess {
		wg.Add(1)
		go func() { defer wg.Done(); do(context.Background(), b, key, bl.call, nil) }()
	}
	for range callsPerProcess {
		<-bl.started
	}
	begin := time.Now()
	ran := false
	_, err := do(context.Background(), b, key, func() (int, error) { ran = true; return 0, nil }, nil)
	if !errors.Is(err, syscall.EIO) || ran {
		t.Errorf("a call past the process's slots: %v, ran %v; want EIO without running", err, ran)
	}
	if took := time.Since(begin); took > limit+time.Second {
		t.Errorf("a call past the process's slots waited %v, past the bound %v", took, limit)
	}
	wg.Wait()
	close(bl.release)
	if !poll(5*time.Second, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.procs) == 0 && len(b.all) == 0 }) {
		t.Errorf("slots held after every call returned")
	}
}

// One user's calls take at most its share of all: with that share held
// by calls into processes that do not answer, its next request fails at
// once, while another user is served at once.
func TestBoundSharePerUser(t *testing.T) {
	const limit = 200 * time.Millisecond
	b := newCallBound(limit)
	as := func(uid uint32) context.Context {
		return fuse.NewContext(context.Background(), &fuse.Caller{Owner: fuse.Owner{Uid: uid}, Pid: 1})
	}
	bl := newBlocker()
	var wg sync.WaitGroup
	for i := range callsPerUser {
		wg.Add(1)
		go func() { defer wg.Done(); do(as(1000), b, procKey{100 + i/callsPerProcess, 1}, bl.call, nil) }()
	}
	for range callsPerUser {
		<-bl.started
	}
	// Another user is served at once, the share of the first one held.
	begin := time.Now()
	if v, err := do(as(2000), b, procKey{5000, 1}, func() (int, error) { return 5, nil }, nil); v != 5 || err != nil || time.Since(begin) > limit/2 {
		t.Errorf("another user while one holds its share: %d, %v after %v", v, err, time.Since(begin))
	}
	wg.Wait() // the first user's requests gave up: its calls are overdue
	begin = time.Now()
	ran := false
	_, err := do(as(1000), b, procKey{999, 1}, func() (int, error) { ran = true; return 0, nil }, nil)
	if !errors.Is(err, syscall.EIO) || ran || time.Since(begin) > limit/2 {
		t.Errorf("the stuck user past its share: %v after %v, ran %v; want EIO at once", err, time.Since(begin), ran)
	}
	if v, err := do(as(2000), b, procKey{5001, 1}, func() (int, error) { return 6, nil }, nil); v != 6 || err != nil {
		t.Errorf("another user while the first is stuck: %d, %v", v, err)
	}
	if n := len(b.all); n != callsPerUser {
		t.Errorf("%d of all slots held, want the stuck user's %d", n, callsPerUser)
	}
	close(bl.release)
	if !poll(5*time.Second, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.users) == 0 && len(b.all) == 0 }) {
		t.Errorf("slots held after every call returned")
	}
}

func poll(timeout time.Duration, cond func() bool) bool {
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

func TestBufferClass(t *testing.T) {
	for _, c := range []struct{ n, size int }{{1, 4096}, {4096, 4096}, {4097, 8192}, {1 << 20, 1 << 20}, {1<<20 + 1, 2 << 20}} {
		b := getBuffer(c.n)
		if len(*b) != c.size {
			t.Errorf("getBuffer(%d) has %d bytes, want %d", c.n, len(*b), c.size)
		}
		putBuffer(b)
	}
}
