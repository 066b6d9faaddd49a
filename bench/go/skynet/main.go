// SPDX-License-Identifier: MIT
// skynet: the classic benchmark, a tree of goroutines with branching 10
// and N leaves over unbuffered channels; leaf k sends k, inner nodes send
// the sum of their children. Value: ns per leaf; also total_ms and
// peak_rss_mb. Twin of bench/skynet.c.
package main

import (
	"fmt"
	"time"

	"weftbench/internal/bench"
)

const branch = 10

func skynet(out chan<- int, num, size int) {
	if size == 1 {
		out <- num
		return
	}
	rc := make(chan int)
	sub := size / branch
	for i := 0; i < branch; i++ {
		go skynet(rc, num+i*sub, sub)
	}
	sum := 0
	for i := 0; i < branch; i++ {
		sum += <-rc
	}
	out <- sum
}

func main() {
	n := bench.N(1000000)
	p := 1
	for p < n {
		p *= branch
	}
	if p != n {
		bench.Fail("skynet: N must be a power of %d", branch)
	}
	c := make(chan int)
	t0 := time.Now()
	go skynet(c, 0, n)
	sum := <-c
	elapsed := time.Since(t0)
	bench.Check(sum == n*(n-1)/2, "wrong sum")
	extra := fmt.Sprintf("total_ms=%.1f peak_rss_mb=%.1f",
		float64(elapsed.Nanoseconds())/1e6, bench.PeakRSSMB())
	bench.Report("skynet", n, bench.PerOp(elapsed, n), extra)
}
