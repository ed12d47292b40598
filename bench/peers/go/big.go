// big.go: the Go peer of bench/big.c: many goroutines each pinging random others, one at a time.
//
// Usage: big [pings] [goroutines]   (defaults 20,000 and 120)
//
// The same protocol as big.c, with a goroutine and a channel per actor: PING a neighbour picked
// by Savina's pseudo-random generator, wait for its PONG (checking who sent it), `pings` times,
// then tell the sink DONE; answer every PING meanwhile. Once all are done the sink sends EXIT to
// each, and each replies with a TALLY of pings answered and wrong pongs. The answered pings must
// add up to goroutines * pings with no wrong pong. Each channel holds as many messages as can be
// in flight to it (one PING from every actor, a PONG and an EXIT), so no send ever blocks, as
// with a mailbox. Time runs from the first goroutine's start to the sink's last tally.
package main

import (
	"math"
	"time"
)

const (
	msgPing = iota
	msgPong
	msgExit
	msgDone
	msgTally
)

const nobody = -1

type msg struct {
	kind     int
	from     int
	answered uint64
	wrong    uint64
}

type total struct {
	tallied         int
	answered, wrong uint64
	t1              time.Time
}

func sink(in chan msg, actors []chan msg, done chan<- total) {
	var finished int
	var t total
	for m := range in {
		switch m.kind {
		case msgDone:
			if finished++; finished == len(actors) {
				for _, a := range actors {
					a <- msg{kind: msgExit}
				}
			}
		case msgTally:
			t.answered += m.answered
			t.wrong += m.wrong
			if t.tallied++; t.tallied == len(actors) {
				t.t1 = time.Now()
				done <- t
				return
			}
		}
	}
}

func big(id int, in chan msg, actors []chan msg, sink chan<- msg, pings uint64) {
	rand := uint64(id) // Savina's PseudoRandom, seeded with the id
	expected := nobody
	var answered, wrong uint64
	for m := range in {
		switch m.kind {
		case msgPing:
			answered++
			actors[m.from] <- msg{kind: msgPong, from: id}
		case msgPong:
			if m.from != expected {
				wrong++
			}
			if pings == 0 {
				sink <- msg{kind: msgDone}
				break
			}
			pings--
			rand = (rand*1309 + 13849) & 65535
			expected = int(rand % uint64(len(actors)))
			actors[expected] <- msg{kind: msgPing, from: id}
		case msgExit:
			sink <- msg{kind: msgTally, answered: answered, wrong: wrong}
			return
		}
	}
}

func main() {
	pings := argU64(1, 20000, math.MaxUint64/1000000)
	n := int(argU64(2, 120, 1000000))
	done := make(chan total)

	t0 := time.Now()
	sinkIn := make(chan msg, 2*n)
	actors := make([]chan msg, n)
	for i := range actors {
		actors[i] = make(chan msg, n+2)
	}
	go sink(sinkIn, actors, done)
	for i := range actors {
		go big(i, actors[i], actors, sinkIn, pings)
	}
	for _, a := range actors {
		a <- msg{kind: msgPong, from: nobody}
	}
	t := <-done
	if t.tallied != n || t.answered != uint64(n)*pings || t.wrong != 0 {
		fail("big: %d of %d tallies, %d pings answered (expected %d), %d pongs from the wrong actor",
			t.tallied, n, t.answered, uint64(n)*pings, t.wrong)
	}
	result("big", "time", ms(t.t1.Sub(t0)), "ms")
}
