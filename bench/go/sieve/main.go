// SPDX-License-Identifier: MIT
// sieve: Go's concurrent prime sieve (a generator and a daisy chain of
// filters over unbuffered channels), first N primes. Value: ns per prime;
// also total_ms. As in bench/sieve.c, the generator stops at the N-th
// prime (from a plain sieve computed before the clock starts) and the
// chain winds down by closing.
package main

import (
	"fmt"
	"sync"
	"time"

	"weftbench/internal/bench"
)

func generate(last int, out chan<- int, wg *sync.WaitGroup) {
	for i := 2; i <= last; i++ {
		out <- i
	}
	close(out)
	wg.Done()
}

func filter(prime int, in <-chan int, out chan<- int, wg *sync.WaitGroup) {
	for v := range in {
		if v%prime != 0 {
			out <- v
		}
	}
	close(out)
	wg.Done()
}

// firstPrimes is the sieve of Eratosthenes (sequential, untimed).
func firstPrimes(n int) []int {
	for limit := 64; ; limit *= 2 {
		composite := make([]bool, limit)
		primes := make([]int, 0, n)
		for i := 2; i < limit && len(primes) < n; i++ {
			if composite[i] {
				continue
			}
			primes = append(primes, i)
			for j := i * i; j < limit; j += i {
				composite[j] = true
			}
		}
		if len(primes) == n {
			return primes
		}
	}
}

func main() {
	n := bench.N(5000)
	want := firstPrimes(n)
	got := make([]int, n)
	var wg sync.WaitGroup
	wg.Add(n + 1)
	t0 := time.Now()
	ch := make(chan int)
	go generate(want[n-1], ch, &wg)
	for i := 0; i < n; i++ {
		got[i] = <-ch
		ch1 := make(chan int)
		go filter(got[i], ch, ch1, &wg)
		ch = ch1
	}
	elapsed := time.Since(t0)
	_, open := <-ch
	bench.Check(!open, "numbers after the last prime")
	wg.Wait()
	for i := range want {
		if got[i] != want[i] {
			bench.Fail("prime %d is %d, want %d", i, got[i], want[i])
		}
	}
	extra := fmt.Sprintf("total_ms=%.1f", float64(elapsed.Nanoseconds())/1e6)
	bench.Report("sieve", n, bench.PerOp(elapsed, n), extra)
}
