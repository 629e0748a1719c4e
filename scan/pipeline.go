package scan

import (
	"context"
	"sync"
)

// ordered runs work on each job next hands out, on workers goroutines
// (each with a state of its own, made by newWorker), and hands the results
// to emit in the order of the jobs: a set is written in address order
// while every core works on its frames. At most 2*workers jobs are in
// flight, so memory stays bounded however large the set. next and emit
// run on one goroutine each; the first error stops everything.
func ordered[J, R, W any](parent context.Context, workers int, newWorker func() W,
	next func() (J, bool, error), work func(context.Context, J, W) (R, error), emit func(R) error) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	type item struct {
		job  J
		res  R
		err  error
		done chan struct{}
	}
	jobs := make(chan *item)
	order := make(chan *item, 2*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newWorker()
			for it := range jobs {
				if it.err = ctx.Err(); it.err == nil {
					it.res, it.err = work(ctx, it.job, w)
				}
				close(it.done)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(order)
		defer close(jobs)
		for ctx.Err() == nil {
			j, ok, err := next()
			if !ok && err == nil {
				return
			}
			it := &item{job: j, err: err, done: make(chan struct{})}
			select {
			case order <- it:
			case <-ctx.Done():
				return
			}
			if err != nil {
				close(it.done)
				return
			}
			select {
			case jobs <- it:
			case <-ctx.Done():
				it.err = ctx.Err()
				close(it.done)
				return
			}
		}
	}()
	var first error
	for it := range order {
		<-it.done
		if it.err == nil {
			it.err = emit(it.res)
		}
		if it.err != nil {
			first = it.err
			break
		}
	}
	cancel()
	wg.Wait()
	if first == nil {
		first = parent.Err()
	}
	return first
}
