// Package prefetch asks the CPU to load a cache line ahead of its use:
// the one thing about memory that Go has no statement for.
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
