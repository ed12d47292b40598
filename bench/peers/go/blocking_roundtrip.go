// blocking_roundtrip.go: the Go peer of bench/blocking_roundtrip.c: a job that does nothing, run
// off the coordinating goroutine and back, with 1 and with 64 jobs in flight.
//
// Usage: blocking_roundtrip [jobs]   (default 200,000 at 64 in flight; a fifth of that at 1)
//
// The main goroutine keeps `inFlight` jobs running and starts the next as each result arrives;
// it checks that every result comes back once, with its own tag. Time runs from the first job's
// start to the last result:
//
//	RESULT name=blocking_roundtrip_<in_flight> impl=go metric=jobs_per_s value=... unit=1/s
//
// Each job is a goroutine of its own, not one of a fixed pool of 4 fed through a channel. A
// goroutine is how Go runs work that may block: when one blocks in a system call the runtime
// hands its processor to another thread, which is what libactor's pool and libuv's do by hand.
// A pool of 4 goroutines would not match libactor's 4 threads either: goroutines share the
// GOMAXPROCS processors (one per CPU) whatever their number, so 4 of them are 4 queues, not 4
// threads, and the pool would only add a channel hop to every job.
package main

import (
	"fmt"
	"math"
	"time"
)

type done struct {
	tag    uint64
	result uint64
}

func noop(tag uint64) uint64 { return tag }

func run(jobs, inFlight uint64) {
	name := fmt.Sprintf("blocking_roundtrip_%d", inFlight)
	// Room for every job in flight, so that no job waits to hand in its result.
	results := make(chan done, inFlight)
	seen := make([]bool, jobs)
	submit := func(tag uint64) {
		go func() { results <- done{tag, noop(tag)} }()
	}

	t0 := time.Now()
	var submitted uint64
	for ; submitted < inFlight && submitted < jobs; submitted++ {
		submit(submitted)
	}
	for finished := uint64(0); finished < jobs; finished++ {
		d := <-results
		if d.tag >= jobs || seen[d.tag] || d.result != d.tag {
			fail("%s: bad result %d for tag %d", name, d.result, d.tag)
		}
		seen[d.tag] = true
		if submitted < jobs {
			submit(submitted)
			submitted++
		}
	}
	elapsed := time.Since(t0)
	result(name, "jobs_per_s", float64(jobs)/secs(elapsed), "1/s")
}

func main() {
	jobs := argU64(1, 200000, math.MaxUint64/2)
	atOne := jobs / 5
	if atOne == 0 {
		atOne = 1
	}
	run(atOne, 1)
	run(jobs, 64)
}
