// go_spawn.go - Go peer of bench_spawn: a goroutine that returns at once,
// waited for with a sync.WaitGroup, one at a time (Add(1), go, Wait) and
// in batches (Add(B), B goroutines, one Wait), B = 1,000 and 10,000.
// Prints each repetition and, last, "@go <one> <b1000> <b10000>": the best
// ns per goroutine of each mode, for bench_spawn to read.
//
// usage: go run go_spawn.go [-n N] [-reps R]   (N goroutines per mode)
package main

import (
	"flag"
	"fmt"
	"sync"
	"time"
)

func empty(wg *sync.WaitGroup) { wg.Done() }

// batches runs n goroutines in batches of b and returns ns per goroutine.
func batches(n, b int) float64 {
	var wg sync.WaitGroup
	rounds := n / b
	if rounds < 1 {
		rounds = 1
	}
	t0 := time.Now()
	for r := 0; r < rounds; r++ {
		wg.Add(b)
		for i := 0; i < b; i++ {
			go empty(&wg)
		}
		wg.Wait()
	}
	return float64(time.Since(t0).Nanoseconds()) / float64(rounds*b)
}

func main() {
	n := flag.Int("n", 1000000, "goroutines per mode and repetition")
	reps := flag.Int("reps", 5, "repetitions (the best is kept)")
	flag.Parse()
	sizes := []int{1, 1000, 10000}
	best := []float64{1e300, 1e300, 1e300}
	batches(10000, 10000) // warm-up: goroutine stacks pooled
	for r := 0; r < *reps; r++ {
		fmt.Printf("  go rep %d:", r+1)
		for i, b := range sizes {
			ns := batches(*n, b)
			fmt.Printf("  B=%d %.1f ns", b, ns)
			if ns < best[i] {
				best[i] = ns
			}
		}
		fmt.Println()
	}
	fmt.Printf("@go %.2f %.2f %.2f\n", best[0], best[1], best[2])
}
