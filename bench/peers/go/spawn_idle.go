// spawn_idle.go: the Go peer of bench/spawn_idle.c: what an idle goroutine costs, in memory and
// in start time.
//
// Usage: spawn_idle [goroutines]   (default 1,000,000)
//
// The main goroutine starts `goroutines` goroutines, each blocked receiving on its own channel
// (its mailbox) and never sent anything, then reads the growth of the resident set size.
// bytes_per_actor is that growth divided by the count: the goroutine, its stack and its channel.
// The slice holding the channels is allocated and touched before the first reading, so it is not
// counted, as counting.c does not count its refs. spawns_per_s times the starts. Then every
// channel is closed, which ends every goroutine.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

func main() {
	n := int(argU64(1, 1000000, 100000000))
	mailboxes := make([]chan struct{}, n)
	for i := range mailboxes {
		mailboxes[i] = nil // touch every page of the slice before the first reading
	}
	var wg sync.WaitGroup
	wg.Add(n)

	rss0 := rssBytes()
	t0 := time.Now()
	for i := range mailboxes {
		mb := make(chan struct{})
		mailboxes[i] = mb
		go func() {
			<-mb
			wg.Done()
		}()
	}
	t1 := time.Now()
	rss1 := rssBytes()

	// Every goroutine must still be alive (blocked on its mailbox).
	if g := runtime.NumGoroutine(); g < n+1 {
		fail("spawn_idle: %d goroutines alive, expected %d", g, n+1)
	}
	t2 := time.Now()
	for _, mb := range mailboxes {
		close(mb)
	}
	wg.Wait()
	fmt.Fprintf(os.Stderr, "spawn_idle: RSS %.1f MB -> %.1f MB; stop %.1f ms\n",
		float64(rss0)/1e6, float64(rss1)/1e6, ms(time.Since(t2)))

	name := fmt.Sprintf("spawn_idle_%d", n)
	if n == 1000000 {
		name = "spawn_idle_1m"
	}
	growth := 0.0
	if rss1 > rss0 {
		growth = float64(rss1 - rss0)
	}
	result(name, "bytes_per_actor", growth/float64(n), "B")
	result(name, "spawns_per_s", float64(n)/secs(t1.Sub(t0)), "1/s")
}
