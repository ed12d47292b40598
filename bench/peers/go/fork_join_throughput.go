// fork_join_throughput.go: the Go peer of bench/fork_join_throughput.c: one goroutine feeding
// many.
//
// Usage: fork_join_throughput [messages] [goroutines]   (defaults 10,000 and 60)
//
// The main goroutine sends `messages` rounds of one message to each of `goroutines` goroutines,
// each reading its own channel. Each message costs its receiver Savina's small computation (the
// square of a sine); a goroutine finishes after its last message and reports how many it got
// and how many computations were not positive. Each channel holds `messages` messages, so the
// main goroutine never waits, as with a mailbox. Time runs from the first goroutine's start
// until the last one has finished.
package main

import (
	"math"
	"sync"
	"time"
)

const theta = 37.2 // Savina's argument to performComputation

type report struct{ processed, bad uint64 }

func worker(in <-chan struct{}, expected uint64, theta float64, out *report, wg *sync.WaitGroup) {
	defer wg.Done()
	for range in {
		if s := math.Sin(theta); s*s <= 0 {
			out.bad++
		}
		if out.processed++; out.processed == expected {
			return
		}
	}
}

func main() {
	messages := argU64(1, 10000, math.MaxUint64/2)
	n := int(argU64(2, 60, 1000000))
	reports := make([]report, n)
	var wg sync.WaitGroup
	th := theta

	t0 := time.Now()
	chans := make([]chan struct{}, n)
	wg.Add(n)
	for i := range chans {
		chans[i] = make(chan struct{}, messages)
		go worker(chans[i], messages, th, &reports[i], &wg)
	}
	for m := uint64(0); m < messages; m++ {
		for _, c := range chans {
			c <- struct{}{}
		}
	}
	wg.Wait()
	elapsed := time.Since(t0)

	for i, r := range reports {
		if r.processed != messages || r.bad != 0 {
			fail("fork_join_throughput: goroutine %d processed %d of %d messages, %d bad results",
				i, r.processed, messages, r.bad)
		}
	}
	result("fork_join_throughput", "time", ms(elapsed), "ms")
}
