// SPDX-License-Identifier: MIT
// ring: 1,000 goroutines in a ring of unbuffered channels; a token holding
// N is passed on less one per hop, the node that receives 0 reports its
// index and the ring winds down by closing. Value: ns per hop. Twin of
// bench/ring.c.
package main

import (
	"sync"
	"time"

	"weftbench/internal/bench"
)

const ring = 1000

func node(id int, in <-chan int, out chan<- int, done chan<- int, wg *sync.WaitGroup) {
	for t := range in {
		if t == 0 {
			done <- id
			break
		}
		out <- t - 1
	}
	close(out)
	wg.Done()
}

func main() {
	n := bench.N(1000000)
	var ch [ring]chan int
	for i := range ch {
		ch[i] = make(chan int)
	}
	done := make(chan int, 1)
	var wg sync.WaitGroup
	wg.Add(ring)
	for i := 0; i < ring; i++ {
		go node(i, ch[i], ch[(i+1)%ring], done, &wg)
	}
	t0 := time.Now()
	ch[0] <- n
	last := <-done
	elapsed := time.Since(t0)
	wg.Wait()
	bench.Check(last == n%ring, "token ended at the wrong node")
	bench.Report("ring", n, bench.PerOp(elapsed, n), "")
}
