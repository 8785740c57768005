// Package prefetch brings memory in ahead of its use: Line asks the CPU
// to load a cache line, the one thing about memory that Go has no
// statement for; Pages faults in the pages of a fresh table.
//
// rtm's hot paths are random probes of tables far larger than the caches
// (the store's MAC slots, a client's key set). Each probe waits on a
// cache miss, and a plain load, even one whose value nobody uses, holds
// up every instruction after it until its line arrives: a few such loads
// in a row overlap, but the work that follows them cannot start. A
// prefetch instruction returns at once, so a replay or a batch can name
// the lines of the next several probes, carry on, and find them loaded.
//
// Line reads no value: it is a hint, not an access to shared memory, and
// a wrong or stale address costs nothing but the hint.
package prefetch

import "os"

// Pages writes a zero word in every page of s, a table just made and
// never written. Its probes read a slot before they write one: on fresh
// memory the read maps the kernel's zero page, and the write after it
// faults a second time, to copy the page and to flush the other CPUs'
// TLBs, on the path of every change that lands there first. Written
// first, each page faults once, here. It changes no value; the whole
// table becomes resident.
func Pages(s []uint64) {
	step := os.Getpagesize() / 8
	for i := 0; i < len(s); i += step {
		s[i] = 0
	}
}
