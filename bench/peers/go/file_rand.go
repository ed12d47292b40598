// file_rand.go: the Go peer of bench/file_rand.c: 4 KiB reads at random offsets of a cached
// 256 MiB file, at 1 and at 32 in flight, with os.File.ReadAt.
//
// Usage: file_rand [reads] [rounds]   (defaults: 200,000 reads at 32 in flight, a tenth of that
// at 1; 3 rounds, the median reported)
//
// At 1 in flight one goroutine reads; at 32, 32 goroutines read the same open file, each taking
// the next offset as it finishes a read. The offsets are the libactor program's: the same
// generator, the same seed, computed before the clock starts. The file is
// $BENCH_FILE_DIR/file_rand.dat (default /var/tmp), the one bench/file_rand makes; it is made
// here the same way if it is missing or of another size, and read once to cache it.
//
//	RESULT name=file_rand_read_4k_<depth> impl=go metric=reads_per_s value=... unit=1/s
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

const (
	fileBytes = 256 << 20
	block     = 4096
)

// cachedFile makes the file as bench/file_rand.c does (bytes 0, 1, ... 255 over and over) if it
// is not there at the right size, then reads it through once so that it is in the page cache.
func cachedFile(path string) {
	b := make([]byte, 1<<20)
	if st, err := os.Stat(path); err != nil || st.Size() != fileBytes {
		for i := range b {
			b[i] = byte(i)
		}
		f, err := os.Create(path)
		if err != nil {
			fail("file_rand: %v", err)
		}
		for i := 0; i < fileBytes/len(b); i++ {
			if _, err := f.Write(b); err != nil {
				fail("file_rand: write: %v", err)
			}
		}
		if err := f.Close(); err != nil {
			fail("file_rand: close: %v", err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		fail("file_rand: %v", err)
	}
	if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{f}, b); err != nil {
		fail("file_rand: read: %v", err)
	}
	f.Close()
}

// offsets are the libactor program's: its generator, seeded with 7, one step per read.
func offsets(n uint64) []int64 {
	off := make([]int64, n)
	rng := uint64(7)
	for i := range off {
		rng = rng*6364136223846793005 + 1442695040888963407
		off[i] = int64((rng >> 20) % (fileBytes / block) * block)
	}
	return off
}

func run(f *os.File, depth int, off []int64) float64 {
	var next int64 = -1
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(depth)
	for g := 0; g < depth; g++ {
		go func() {
			defer wg.Done()
			buf := make([]byte, block)
			for {
				i := atomic.AddInt64(&next, 1)
				if i >= int64(len(off)) {
					return
				}
				if n, err := f.ReadAt(buf, off[i]); n != block {
					fail("file_rand: read %d: %v", n, err)
				}
			}
		}()
	}
	wg.Wait()
	return float64(len(off)) / secs(time.Since(t0))
}

func main() {
	reads := argU64(1, 200000, 100000000)
	rounds := int(argU64(2, 3, 32))
	dir := os.Getenv("BENCH_FILE_DIR")
	if dir == "" {
		dir = "/var/tmp"
	}
	path := dir + "/file_rand.dat"
	cachedFile(path)
	f, err := os.Open(path)
	if err != nil {
		fail("file_rand: %v", err)
	}
	defer f.Close()
	for _, depth := range []int{1, 32} {
		n := reads
		if depth == 1 && reads >= 10 {
			n = reads / 10
		}
		off := offsets(n)
		v := make([]float64, rounds)
		for k := range v {
			v[k] = run(f, depth, off)
		}
		sort.Float64s(v)
		result(fmt.Sprintf("file_rand_read_4k_%d", depth), "reads_per_s", v[rounds/2], "1/s")
	}
}
