// chameneos.go: the Go peer of bench/chameneos.c: creatures meet in pairs through one broker.
//
// Usage: chameneos [meetings] [creatures]   (defaults 200,000 and 100)
//
// The same protocol as chameneos.c, with a goroutine per creature and one for the mall, each
// reading its own channel: MEET (colour, reply channel) to the mall, which holds the first and
// forwards the second to the holder; the holder takes the complement colour and sends CHANGE to
// the other; after `meetings` meetings the mall answers every MEET with EXIT and each creature
// replies with its meeting count. The sum must be twice `meetings`. Each channel holds as many
// messages as can be in flight to it (the mall: one per creature; a creature: one), so no send
// ever blocks, as with a mailbox. Time runs from the first goroutine's start to the mall's
// receipt of the last count.
package main

import (
	"math"
	"time"
)

const (
	msgMeet = iota
	msgChange
	msgExit
	msgCount
)

const (
	red = iota
	yellow
	blue
	faded
)

type msg struct {
	kind   int
	colour int
	who    chan msg // the creature a MEET is from; the mall for EXIT
	count  uint64
}

func complement(a, b int) int {
	if a == b {
		return a
	}
	return 3 - a - b
}

type tally struct {
	faded int
	sum   uint64
	t1    time.Time
}

func mall(in chan msg, meetings uint64, creatures int, done chan<- tally) {
	var waiting chan msg
	var t tally
	for m := range in {
		switch {
		case m.kind == msgCount:
			t.faded++
			t.sum += m.count
			if t.faded == creatures {
				t.t1 = time.Now()
				done <- t
				return
			}
		case meetings == 0:
			m.who <- msg{kind: msgExit, who: in}
		case waiting == nil:
			waiting = m.who
		default:
			meetings--
			waiting <- m
			waiting = nil
		}
	}
}

func chameneo(in chan msg, mall chan<- msg, colour int) {
	var meetings uint64
	mall <- msg{kind: msgMeet, colour: colour, who: in}
	for m := range in {
		switch m.kind {
		case msgMeet: // the mall paired us with m.who
			colour = complement(colour, m.colour)
			meetings++
			m.who <- msg{kind: msgChange, colour: colour}
			mall <- msg{kind: msgMeet, colour: colour, who: in}
		case msgChange:
			colour = m.colour
			meetings++
			mall <- msg{kind: msgMeet, colour: colour, who: in}
		case msgExit:
			colour = faded
			m.who <- msg{kind: msgCount, count: meetings}
			return
		}
	}
}

func main() {
	meetings := argU64(1, 200000, math.MaxUint64/4)
	creatures := int(argU64(2, 100, 1000000))
	if creatures < 2 {
		fail("chameneos: need at least 2 creatures")
	}
	done := make(chan tally)

	t0 := time.Now()
	in := make(chan msg, creatures)
	go mall(in, meetings, creatures, done)
	for i := 0; i < creatures; i++ {
		go chameneo(make(chan msg, 1), in, i%3)
	}
	t := <-done
	if t.faded != creatures || t.sum != 2*meetings {
		fail("chameneos: %d of %d creatures reported %d meetings, expected %d", t.faded,
			creatures, t.sum, 2*meetings)
	}
	result("chameneos", "time", ms(t.t1.Sub(t0)), "ms")
}
