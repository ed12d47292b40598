// counting.go: the Go peer of bench/counting.c: message throughput into one goroutine, from one
// sender and from four.
//
// Usage: counting [messages] [window]   (defaults 10,000,000 and 65536)
//
// Sender goroutines send their share of `messages` on one channel to a counting goroutine, which
// checks that every message arrives exactly once and in order per sender, and reports when the
// total is reached. A message is the sender's index in the top byte and its sequence number
// below, as in counting.c. The channel's capacity is `window`: the channel is Go's flow
// control, doing what the credit protocol does for actors (a sender blocks while `window`
// messages wait), so there is no CONTINUE or CREDIT message here.
package main

import (
	"math"
	"time"
)

const seqBits = 56
const seqMask = uint64(1)<<seqBits - 1

func count(name string, senders int, messages, window uint64) {
	ch := make(chan uint64, window)
	done := make(chan time.Time)

	go func() {
		next := make([]uint64, senders)
		for c := uint64(0); c < messages; c++ {
			v := <-ch
			idx, seq := int(v>>seqBits), v&seqMask
			if idx >= senders || seq != next[idx] {
				fail("counting: sender %d: got message %d, expected %d", idx, seq, next[idx%senders])
			}
			next[idx] = seq + 1
		}
		done <- time.Now()
	}()

	t0 := time.Now()
	for i := 0; i < senders; i++ {
		share := messages / uint64(senders)
		if uint64(i) < messages%uint64(senders) {
			share++
		}
		go func(idx uint64, share uint64) {
			for seq := uint64(0); seq < share; seq++ {
				ch <- idx<<seqBits | seq
			}
		}(uint64(i), share)
	}
	t1 := <-done
	result(name, "msgs_per_s", float64(messages)/secs(t1.Sub(t0)), "1/s")
}

func main() {
	messages := argU64(1, 10000000, seqMask)
	window := argU64(2, 65536, math.MaxUint32)
	if messages < 4 {
		fail("counting: need at least 4 messages")
	}
	count("counting_1to1", 1, messages, window)
	count("counting_4to1", 4, messages, window)
}
