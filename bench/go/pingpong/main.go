// SPDX-License-Identifier: MIT
// pingpong: two goroutines, two unbuffered channels; main sends i on ping,
// the echo goroutine answers i + 1 on pong. N round trips. Value: ns per
// round trip. Twin of bench/pingpong.c.
package main

import (
	"sync"
	"time"

	"weftbench/internal/bench"
)

func echo(ping <-chan int, pong chan<- int, wg *sync.WaitGroup) {
	for v := range ping {
		pong <- v + 1
	}
	wg.Done()
}

func main() {
	n := bench.N(1000000)
	ping, pong := make(chan int), make(chan int)
	var wg sync.WaitGroup
	wg.Add(1)
	go echo(ping, pong, &wg)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		ping <- i
		if v := <-pong; v != i+1 {
			bench.Fail("answer %d to %d", v, i)
		}
	}
	elapsed := time.Since(t0)
	close(ping)
	wg.Wait()
	bench.Report("pingpong", n, bench.PerOp(elapsed, n), "")
}
