// SPDX-License-Identifier: MIT
// chan_spsc: one producer sends 0..N-1 through a buffered channel of
// capacity 128 and closes it; main receives until the close. Value: ns per
// item. Twin of bench/chan_spsc.c.
package main

import (
	"sync"
	"time"

	"weftbench/internal/bench"
)

func producer(n int, ch chan<- int, wg *sync.WaitGroup) {
	for v := 0; v < n; v++ {
		ch <- v
	}
	close(ch)
	wg.Done()
}

func main() {
	n := bench.N(10000000)
	ch := make(chan int, 128)
	var wg sync.WaitGroup
	wg.Add(1)
	next := 0
	t0 := time.Now()
	go producer(n, ch, &wg)
	for v := range ch {
		if v != next {
			bench.Fail("got %d, want %d", v, next)
		}
		next++
	}
	elapsed := time.Since(t0)
	wg.Wait()
	bench.Check(next == n, "wrong count")
	bench.Report("chan_spsc", n, bench.PerOp(elapsed, n), "")
}
