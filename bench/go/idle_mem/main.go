// SPDX-License-Identifier: MIT
// idle_mem: N goroutines all blocked receiving on one unbuffered channel.
// Value: resident memory per blocked goroutine in bytes (RSS from
// /proc/self/statm after a GC, minus the same before). Twin of
// bench/idle_mem.c.
package main

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"weftbench/internal/bench"
)

func main() {
	n := bench.N(100000)
	gate := make(chan struct{})
	var started, finished sync.WaitGroup
	var released int64
	started.Add(n)
	finished.Add(n)
	runtime.GC()
	before := bench.RSSBytes()
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			if _, open := <-gate; !open {
				atomic.AddInt64(&released, 1)
			}
			finished.Done()
		}()
	}
	started.Wait()
	// the last ones may be between Done and parking
	time.Sleep(20 * time.Millisecond)
	runtime.GC()
	bytes := bench.RSSBytes() - before
	close(gate)
	finished.Wait()
	bench.Check(atomic.LoadInt64(&released) == int64(n), "a goroutine was not released")
	bench.Report("idle_mem", n, float64(bytes)/float64(n), "")
}
