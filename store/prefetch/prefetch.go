// Package prefetch brings memory in ahead of its use: Line asks the CPU
// to load a cache line, the one thing about memory that Go has no
// statement for; Pages faults in the pages of a fresh table, and Make
// makes one, in huge pages when it is large.
//
// rtm's hot paths are random probes of tables far larger than the caches
// (the store's MAC slots, a client's key set). Each probe waits on a
// cache miss, and a plain load that misses, even one whose value nobody
// uses, cannot retire until its line arrives: once the CPU's window of
// instructions in flight fills behind it, everything waits. A few such
// loads in a row overlap, but the work that follows them soon stalls. A
// prefetch instruction retires at once, so a replay or a batch can name
// the lines of the next several probes, carry on, and find them loaded.
//
// Line reads no value: it is a hint, not an access to shared memory, and
// a wrong or stale address costs nothing but the hint.
package prefetch

import (
	"os"
	"runtime"
	"unsafe"
)

// Pages makes every page of s, a table or buffer just made and never
// written, present and writable now, rather than on the path of the first
// changes that land there. A table's probes read a slot before they write
// one: on fresh memory the read maps the kernel's zero page, and the
// write after it faults a second time, to copy the page and to flush the
// other CPUs' TLBs. A receive buffer is first written by the kernel, a
// fault inside the copy of the first packets.
//
// Where the kernel can (Linux 5.14 and later), one madvise call
// (MADV_POPULATE_WRITE) maps the pages first, without a fault for each:
// on this project's machine a fault costs 10–15 µs and the call 0.5–0.7
// µs a page (BENCHMARKS.md, "Machine"). Each page is then written once
// all the same: the first write to a page populated that way still cost
// something here, and left on the path of the first changes it made B9's
// clients use 1.5 times the CPU per change. It changes no value.
func Pages[E any](s []E) {
	var zero E
	size := len(s) * int(unsafe.Sizeof(zero))
	if size == 0 {
		return
	}
	populate(uintptr(unsafe.Pointer(&s[0])), size)
	runtime.KeepAlive(s)
	step := max(1, os.Getpagesize()/int(max(1, unsafe.Sizeof(zero))))
	for i := 0; i < len(s); i += step {
		s[i] = zero
	}
}
