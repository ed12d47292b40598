// threadring.go: the Go peer of bench/threadring.c: a token passed around a ring of goroutines.
//
// Usage: threadring [hops] [goroutines]   (defaults 10,000,000 and 503)
//
// The benchmarks-game shape: goroutine 1 gets the token holding `hops`; each passes it on to
// the next one lower, and the one that receives 0 holds it at the end, which must be goroutine
// (hops mod goroutines) + 1. Each goroutine reads its own channel, of capacity one: only one
// token is ever in flight.
package main

import (
	"fmt"
	"math"
	"time"
)

type holder struct {
	id int
	t1 time.Time
}

func node(id int, in <-chan uint64, next chan<- uint64, done chan<- holder) {
	for v := range in {
		if v == 0 {
			done <- holder{id, time.Now()}
			return
		}
		next <- v - 1
	}
}

func main() {
	hops := argU64(1, 10000000, math.MaxUint64/2)
	n := int(argU64(2, 503, 10000000))
	chans := make([]chan uint64, n)
	for i := range chans {
		chans[i] = make(chan uint64, 1)
	}
	done := make(chan holder)
	for i := 0; i < n; i++ {
		go node(i+1, chans[i], chans[(i+1)%n], done)
	}

	t0 := time.Now()
	chans[0] <- hops
	h := <-done
	if want := int(hops%uint64(n)) + 1; h.id != want {
		fail("threadring: token ended at goroutine %d, expected %d", h.id, want)
	}
	result(fmt.Sprintf("threadring_%d", n), "hops_per_s", float64(hops)/secs(h.t1.Sub(t0)), "1/s")
}
