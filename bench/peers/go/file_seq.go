// file_seq.go: the Go peer of bench/file_seq.c: large sequential file transfers through the
// page cache, with os.File.
//
// Usage: file_seq [mib] [rounds]   (defaults: 1024 MiB, 5 rounds)
//
// Each round writes a file of `mib` MiB in 1 MiB Write calls (unlinked first, as the C program
// does, so that writing never waits for the last round's write-back) and reads it back in 1 MiB
// Read calls while it is cached; one call at a time, like the C program's plain loop. The
// libactor program's third argument, the operations in flight, has no counterpart here: an
// os.File call blocks its goroutine until it is done. The file lives in $BENCH_FILE_DIR
// (default /var/tmp) and is removed at the end. The median over the rounds:
//
//	RESULT name=file_seq_write impl=go metric=throughput value=<MiB/s> unit=MiB/s
//	RESULT name=file_seq_read impl=go metric=throughput value=<MiB/s> unit=MiB/s
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"time"
)

const chunk = 1 << 20

func writeFile(path string, mib uint64, buf []byte) float64 {
	os.Remove(path)
	t0 := time.Now()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0644)
	if err != nil {
		fail("file_seq: %v", err)
	}
	for i := uint64(0); i < mib; i++ {
		if n, err := f.Write(buf); err != nil || n != chunk {
			fail("file_seq: write: %d, %v", n, err)
		}
	}
	if err := f.Close(); err != nil {
		fail("file_seq: close: %v", err)
	}
	return float64(mib) / secs(time.Since(t0))
}

func readFile(path string, mib uint64, buf []byte) float64 {
	t0 := time.Now()
	f, err := os.Open(path)
	if err != nil {
		fail("file_seq: %v", err)
	}
	var got uint64
	for {
		n, err := f.Read(buf)
		got += uint64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			fail("file_seq: read: %v", err)
		}
	}
	f.Close()
	if got != mib*chunk {
		fail("file_seq: read %d bytes of %d", got, mib*chunk)
	}
	return float64(mib) / secs(time.Since(t0))
}

func median(v []float64) float64 {
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func main() {
	mib := argU64(1, 1024, 1<<20)
	rounds := int(argU64(2, 5, 64))
	dir := os.Getenv("BENCH_FILE_DIR")
	if dir == "" {
		dir = "/var/tmp"
	}
	path := fmt.Sprintf("%s/file_seq.%d", dir, os.Getpid())
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = 1
	}
	w := make([]float64, rounds)
	r := make([]float64, rounds)
	for k := 0; k < rounds; k++ {
		w[k] = writeFile(path, mib, buf)
		r[k] = readFile(path, mib, buf)
	}
	os.Remove(path)
	result("file_seq_write", "throughput", median(w), "MiB/s")
	result("file_seq_read", "throughput", median(r), "MiB/s")
}
