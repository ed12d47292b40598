// fork_join_create.go: the Go peer of bench/fork_join_create.c: many short-lived goroutines,
// one message each.
//
// Usage: fork_join_create [goroutines]   (default 40,000)
//
// The main goroutine starts `goroutines` goroutines one after another, each with its own
// channel (its mailbox, holding one message), and sends each one message. A goroutine does
// Savina's small computation (the square of a sine), counts itself done and ends. The count must
// reach `goroutines`, with every computation positive. Time runs from the first start until the
// last goroutine has ended.
package main

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

const theta = 37.2 // Savina's argument to performComputation

func main() {
	n := argU64(1, 40000, 100000000)
	var done, bad atomic.Uint64
	var wg sync.WaitGroup
	th := theta

	t0 := time.Now()
	wg.Add(int(n))
	for i := uint64(0); i < n; i++ {
		mb := make(chan struct{}, 1)
		go func() {
			defer wg.Done()
			<-mb
			if s := math.Sin(th); s*s <= 0 {
				bad.Add(1)
			}
			done.Add(1)
		}()
		mb <- struct{}{}
	}
	wg.Wait()
	elapsed := time.Since(t0)

	if done.Load() != n || bad.Load() != 0 {
		fail("fork_join_create: %d of %d goroutines done, %d bad results", done.Load(), n, bad.Load())
	}
	result("fork_join_create", "time", ms(elapsed), "ms")
}
