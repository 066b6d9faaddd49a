// SPDX-License-Identifier: MIT
// chan_mpmc: 4 producers send 0..N-1 (a contiguous quarter each) through
// one buffered channel of capacity 128; 4 consumers receive until main
// closes it after the producers are done. Value: ns per item. Twin of
// bench/chan_mpmc.c.
package main

import (
	"sync"
	"time"

	"weftbench/internal/bench"
)

const side = 4

type tally struct{ sum, count int }

func producer(lo, hi int, ch chan<- int, wg *sync.WaitGroup) {
	for v := lo; v < hi; v++ {
		ch <- v
	}
	wg.Done()
}

func consumer(ch <-chan int, t *tally, wg *sync.WaitGroup) {
	for v := range ch {
		t.sum += v
		t.count++
	}
	wg.Done()
}

func main() {
	n := bench.N(10000000)
	ch := make(chan int, 128)
	var producers, consumers sync.WaitGroup
	var tallies [side]tally
	producers.Add(side)
	consumers.Add(side)
	t0 := time.Now()
	for i := 0; i < side; i++ {
		go producer(n*i/side, n*(i+1)/side, ch, &producers)
		go consumer(ch, &tallies[i], &consumers)
	}
	producers.Wait()
	close(ch)
	consumers.Wait()
	elapsed := time.Since(t0)
	var total tally
	for _, t := range tallies {
		total.sum += t.sum
		total.count += t.count
	}
	bench.Check(total.count == n, "wrong count")
	bench.Check(total.sum == n*(n-1)/2, "wrong sum")
	bench.Report("chan_mpmc", n, bench.PerOp(elapsed, n), "")
}
