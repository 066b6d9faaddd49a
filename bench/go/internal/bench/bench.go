// SPDX-License-Identifier: MIT
// Package bench is the scaffolding shared by the Go twins of weft's bench
// programs (bench/<name>.c). Each twin takes N as an optional first
// argument, checks its own result, and prints one line
//
//	<name> <N> <value> [key=value ...]
//
// A wrong result prints the reason on stderr and exits 1 without a line.
package bench

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// Fail reports a wrong run and exits 1.
func Fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "bench: FAILED: "+format+"\n", args...)
	os.Exit(1)
}

// Check fails the run unless ok holds.
func Check(ok bool, what string) {
	if !ok {
		Fail("%s", what)
	}
}

// N returns the count from os.Args[1], else def. N must be positive.
func N(def int) int {
	if len(os.Args) < 2 {
		return def
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n <= 0 {
		Fail("usage: %s [N > 0]", os.Args[0])
	}
	return n
}

// PerOp is d in nanoseconds divided by n.
func PerOp(d time.Duration, n int) float64 {
	return float64(d.Nanoseconds()) / float64(n)
}

// RSSBytes is the resident set size now, from /proc/self/statm, as the C
// programs measure it.
func RSSBytes() int64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		Fail("cannot read /proc/self/statm: %v", err)
	}
	var size, resident int64
	if _, err := fmt.Sscan(string(data), &size, &resident); err != nil {
		Fail("cannot parse /proc/self/statm: %v", err)
	}
	return resident * int64(os.Getpagesize())
}

// PeakRSSMB is the peak resident set size in MiB (ru_maxrss is in KiB).
func PeakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		Fail("getrusage: %v", err)
	}
	return float64(ru.Maxrss) / 1024
}

// Report prints the result line; extra is "key=value ..." or empty.
func Report(name string, n int, value float64, extra string) {
	if extra != "" {
		extra = " " + extra
	}
	fmt.Printf("%s %d %.1f%s\n", name, n, value, extra)
}
