// SPDX-License-Identifier: MIT
// yield: two goroutines call runtime.Gosched, N times in total (N/2 each).
// Value: ns per yield. Twin of bench/yield.c.
package main

import (
	"runtime"
	"sync"
	"time"

	"weftbench/internal/bench"
)

func yielder(n int, done *int, wg *sync.WaitGroup) {
	i := 0
	for ; i < n; i++ {
		runtime.Gosched()
	}
	*done = i
	wg.Done()
}

func main() {
	n := bench.N(5000000)
	var wg sync.WaitGroup
	var done [2]int
	t0 := time.Now()
	wg.Add(2)
	go yielder(n/2, &done[0], &wg)
	go yielder(n-n/2, &done[1], &wg)
	wg.Wait()
	elapsed := time.Since(t0)
	bench.Check(done[0]+done[1] == n, "yields made != N")
	bench.Report("yield", n, bench.PerOp(elapsed, n), "")
}
