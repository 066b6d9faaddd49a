// SPDX-License-Identifier: MIT
// spawn: start N goroutines that each only call wg.Done, then wait for them
// all. Value: ns per goroutine. Twin of bench/spawn.c.
package main

import (
	"sync"
	"time"

	"weftbench/internal/bench"
)

func main() {
	n := bench.N(1000000)
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
	bench.Report("spawn", n, bench.PerOp(time.Since(t0), n), "")
}
