package prefetch

import "unsafe"

// Line asks the CPU to bring the cache line holding p into every level
// of its cache (PREFETCHT0), and returns without waiting for it.
//
//go:noescape
func Line(p unsafe.Pointer)

// Lines is Line for each of ps, in one call.
//
//go:noescape
func Lines(ps []unsafe.Pointer)
