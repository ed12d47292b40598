// skynet.go: the Go peer of bench/skynet.c: a tree of 1,111,111 goroutines summing their
// numbers back up to the root.
//
// Usage: skynet [leaves]   (default 1,000,000; a power of ten, at least 10)
//
// The skynet benchmark as its Go original writes it: each goroutine starts 10 children, each
// with its part of the number range, and adds up what they send back on its channel; a leaf
// sends its number. The root's total must be leaves*(leaves-1)/2. A parent's channel holds its
// ten replies, so no child ever waits to reply, as with a mailbox.
//
// Each run is timed from the root's start to its total. first_run_time is the first of three
// runs, best_time the fastest.
package main

import (
	"fmt"
	"os"
	"time"
)

const fanout = 10
const runs = 3

func skynet(parent chan<- uint64, num, size uint64) {
	if size == 1 {
		parent <- num
		return
	}
	child := size / fanout
	replies := make(chan uint64, fanout)
	for i := uint64(0); i < fanout; i++ {
		go skynet(replies, num+i*child, child)
	}
	var sum uint64
	for i := 0; i < fanout; i++ {
		sum += <-replies
	}
	parent <- sum
}

func runOnce(leaves uint64) float64 {
	total := make(chan uint64, 1)
	t0 := time.Now()
	go skynet(total, 0, leaves)
	sum := <-total
	elapsed := time.Since(t0)
	if want := leaves * (leaves - 1) / 2; sum != want {
		fail("skynet: sum %d, expected %d", sum, want)
	}
	fmt.Fprintf(os.Stderr, "skynet: sum %d in %.1f ms\n", sum, ms(elapsed))
	return ms(elapsed)
}

func main() {
	leaves := argU64(1, 1000000, 100000000)
	p := uint64(1)
	for p < leaves {
		p *= fanout
	}
	if p != leaves || leaves < fanout {
		fmt.Fprintf(os.Stderr, "%s: leaves must be a power of %d, at least %d\n", os.Args[0], fanout, fanout)
		os.Exit(2)
	}
	name := fmt.Sprintf("skynet_%d", leaves)
	if leaves == 1000000 {
		name = "skynet_1m"
	}

	var first, best float64
	for r := 0; r < runs; r++ {
		t := runOnce(leaves)
		if r == 0 || t < best {
			best = t
		}
		if r == 0 {
			first = t
		}
	}
	result(name, "first_run_time", first, "ms")
	result(name, "best_time", best, "ms")
}
