//go:build !race

package ordered

import "sync/atomic"

// Store sets *p to v, visible to other threads and processes after every
// store made before it.
//
//go:noescape
func Store(p *atomic.Uint64, v uint64)

// Fence makes every store before it visible to other threads and
// processes before any load after it is served (MFENCE).
func Fence()
