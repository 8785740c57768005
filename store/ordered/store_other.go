//go:build !amd64 || race

package ordered

import "sync/atomic"

// Store sets *p to v, visible to other threads and processes after every
// store made before it: sync/atomic's store, which orders more than that.
func Store(p *atomic.Uint64, v uint64) { p.Store(v) }

// Fence makes every store before it visible before any load after it.
// Here Store is sync/atomic's, sequentially consistent with sync/atomic's
// loads, so there is nothing left to order.
func Fence() {}
