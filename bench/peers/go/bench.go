// bench.go: what every Go peer shares, as bench/bench.h does for the libactor benchmarks: the
// one RESULT line format, argument parsing, and the resident set size.
//
// Each peer is one main package built from its own file plus this one:
//
//	go build -o pingpong bench.go pingpong.go
//
// Go's defaults throughout: GOMAXPROCS is the number of CPUs unless the environment sets it.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// result prints one RESULT line, with the precision bench_result() uses.
func result(name, metric string, value float64, unit string) {
	prec := 3
	if value >= 10000 {
		prec = 0
	}
	fmt.Printf("RESULT name=%s impl=go metric=%s value=%.*f unit=%s\n", name, metric, prec, value, unit)
}

// argU64 is os.Args[i] as a whole number in [1, max], or def when absent; anything else exits.
func argU64(i int, def, max uint64) uint64 {
	if i >= len(os.Args) {
		return def
	}
	v, err := strconv.ParseUint(os.Args[i], 10, 64)
	if err != nil || v < 1 || v > max {
		fmt.Fprintf(os.Stderr, "%s: argument %d: expected a whole number in [1, %d], got '%s'\n",
			os.Args[0], i, max, os.Args[i])
		os.Exit(2)
	}
	return v
}

// fail reports a wrong result and exits non-zero: a benchmark that did not check out reports
// nothing.
func fail(format string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, format+"\n", a...)
	os.Exit(1)
}

func ms(d time.Duration) float64   { return float64(d.Nanoseconds()) / 1e6 }
func secs(d time.Duration) float64 { return d.Seconds() }

// rssBytes is the resident set size, from /proc/self/statm, or 0 without /proc.
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, resident uint64
	if _, err := fmt.Sscan(string(b), &size, &resident); err != nil {
		return 0
	}
	return resident * uint64(os.Getpagesize())
}
