// Package ordered stores words that other threads and processes read
// while they change, in the order the writer makes the stores, without
// paying a full fence for each one.
//
// The store's seqlocks and crash journal need one thing of the hardware:
// that its stores land in program order, so that a reader that sees a
// slot's new words also sees its sequence word made odd, and a writer
// killed between two stores leaves the earlier one in memory. sync/atomic
// gives more than that: on amd64 every atomic.Uint64.Store is an XCHG, a
// full fence that waits for the store buffer to drain, and a MAC create
// made nine of them (BENCHMARKS.md, B1). An amd64 processor keeps stores
// in order on its own (TSO: a store is never made visible before an
// earlier one), so Store there is a plain MOV, written in assembly so that
// the compiler can neither move it past another access nor drop it.
// Elsewhere, and under the race detector (which must see the writes),
// Store is sync/atomic's.
//
// Store orders stores only: a load after it may be served before the
// store is visible. A thread that publishes with Store and then looks for
// another thread's store (Dekker's pattern: the change log's publisher,
// then the flags of writers going to sleep) calls Fence between the two.
package ordered
