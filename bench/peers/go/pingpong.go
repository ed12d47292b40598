// pingpong.go: the Go peer of bench/pingpong.c: round trips between two goroutines.
//
// Usage: pingpong [roundtrips]   (default 2,000,000)
//
// The main goroutine serves a counter to a pong goroutine over a channel and checks that it
// comes back one higher on another. `pingpong` runs with Go's default GOMAXPROCS; the scheduler,
// not the program, decides whether the two goroutines share a thread (Go cannot pin them).
// `pingpong_1core` runs the same game with GOMAXPROCS=1. Each channel holds one message: at most
// one is ever in flight, so a send never blocks, as with a mailbox.
package main

import (
	"math"
	"runtime"
	"time"
)

func play(name string, procs int, roundtrips uint64) {
	if procs > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	}
	serve := make(chan uint64, 1)
	ret := make(chan uint64, 1)
	go func() {
		for n := range serve {
			ret <- n + 1
		}
	}()

	t0 := time.Now()
	var returned uint64
	for returned < roundtrips {
		serve <- returned
		n := <-ret
		if n != returned+1 {
			fail("%s: ball %d came back as %d", name, returned+1, n)
		}
		returned = n
	}
	elapsed := time.Since(t0)
	close(serve)
	result(name, "roundtrips_per_s", float64(roundtrips)/secs(elapsed), "1/s")
}

func main() {
	roundtrips := argU64(1, 2000000, math.MaxUint64/2)
	play("pingpong", 0, roundtrips)
	play("pingpong_1core", 1, roundtrips)
}
