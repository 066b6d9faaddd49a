// SPDX-License-Identifier: MIT
// select: main receives N values with a select over 4 unbuffered channels,
// each fed by its own producer (producer p sends the i < N with
// i mod 4 == p). Value: ns per select. Twin of bench/select.c.
package main

import (
	"sync"
	"time"

	"weftbench/internal/bench"
)

const feeds = 4

func producer(first, n int, out chan<- int, wg *sync.WaitGroup) {
	for v := first; v < n; v += feeds {
		out <- v
	}
	wg.Done()
}

func main() {
	n := bench.N(4000000)
	var c [feeds]chan int
	var wg sync.WaitGroup
	wg.Add(feeds)
	for p := range c {
		c[p] = make(chan int)
		go producer(p, n, c[p], &wg)
	}
	var got [feeds]int
	sum := 0
	t0 := time.Now()
	for i := 0; i < n; i++ {
		var v, k int
		select {
		case v = <-c[0]:
			k = 0
		case v = <-c[1]:
			k = 1
		case v = <-c[2]:
			k = 2
		case v = <-c[3]:
			k = 3
		}
		sum += v
		got[k]++
	}
	elapsed := time.Since(t0)
	wg.Wait()
	bench.Check(sum == n*(n-1)/2, "wrong sum")
	for p := range got {
		bench.Check(got[p] == (n-p+feeds-1)/feeds, "wrong count on a channel")
	}
	bench.Report("select", n, bench.PerOp(elapsed, n), "")
}
