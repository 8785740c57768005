package ordered

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestStore: Store sets the word it is given and no other.
func TestStore(t *testing.T) {
	var w [3]atomic.Uint64
	for _, v := range []uint64{1, 0, 1 << 63, ^uint64(0), 0x0123456789abcdef} {
		Store(&w[1], v)
		if w[0].Load() != 0 || w[1].Load() != v || w[2].Load() != 0 {
			t.Fatalf("after Store(%#x): %#x %#x %#x", v, w[0].Load(), w[1].Load(), w[2].Load())
		}
	}
}

// TestStoreOrder: a seqlock written with Store alone, read on another
// thread. A reader that finds the same even sequence before and after
// reading the two data words must find the pair the writer stored
// together; a store made visible out of order shows as a mismatched pair.
// The race detector build checks sync/atomic's Store instead.
func TestStoreOrder(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 || runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs to read while the writer writes")
	}
	var seq, a, b atomic.Uint64
	b.Store(^uint64(0)) // the pair (0, ^0) before the first write
	const writes = 2_000_000
	var stop atomic.Bool
	var loops atomic.Int64 // the reader's rounds, stable or not
	var wg sync.WaitGroup
	var consistent, midStream, torn int
	wg.Go(func() {
		runtime.LockOSThread()
		for !stop.Load() {
			loops.Add(1)
			s1 := seq.Load()
			x, y := a.Load(), b.Load()
			if s2 := seq.Load(); s1&1 == 1 || s1 != s2 {
				continue
			}
			if x != ^y {
				torn++
				if torn <= 5 {
					t.Errorf("read %#x and %#x under sequence %d", x, y, s1)
				}
				continue
			}
			consistent++
			if 0 < s1 && s1 < 2*writes {
				midStream++
			}
		}
	})
	// On a loaded machine the writes may all be done before the reader
	// runs at all (CI, with other packages' tests), and it would read
	// nothing while they run: the writer goes on, a chunk at a time,
	// only once the reader has gone round since the chunk before.
	waitLoops := func(n int64) {
		for deadline := time.Now().Add(10 * time.Second); loops.Load() < n && time.Now().Before(deadline); {
			runtime.Gosched()
		}
	}
	const chunk = 10_000
	runtime.LockOSThread()
	for i := uint64(1); i <= writes; i++ {
		if i%chunk == 1 {
			waitLoops(loops.Load() + 1)
		}
		s := seq.Load()
		Store(&seq, s+1)
		Store(&a, i)
		Store(&b, ^i)
		Store(&seq, s+2)
	}
	runtime.UnlockOSThread()
	stop.Store(true)
	wg.Wait()
	if midStream == 0 {
		t.Fatalf("the reader never read a stable pair while the writes went on (%d stable reads in all)", consistent)
	}
	t.Logf("%d writes; %d stable reads, %d of them while the writes went on; %d torn", writes, consistent, midStream, torn)
}

// TestFence: the store-buffering litmus test. Two threads each store a
// flag, fence, and load the other's flag, round after round, in step; in
// no round may both load 0. Without the fence an amd64 machine shows that
// outcome thousands of times in these rounds (a load served before the
// thread's own store is visible): the lost wake-up Server.kickIdle's
// fence prevents. The rounds stop after a second: on a busy machine the
// two threads may share a core, and each round then waits for the other
// thread's turn.
func TestFence(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 || runtime.NumCPU() < 2 {
		t.Skip("needs two CPUs to run the two threads at once")
	}
	const rounds = 200_000
	x, y := make([]atomic.Uint64, rounds), make([]atomic.Uint64, rounds)
	sawY, sawX := make([]uint64, rounds), make([]uint64, rounds)
	var doneA, doneB atomic.Int64 // rounds each side finished, to keep them in step
	var last atomic.Int64         // the rounds both run: lowered when time is up
	last.Store(rounds)
	var wg sync.WaitGroup
	wg.Go(func() {
		runtime.LockOSThread()
		for i := range rounds {
			for doneB.Load() < int64(i) {
				if int64(i) >= last.Load() {
					return
				}
			}
			Store(&x[i], 1)
			Fence()
			sawY[i] = y[i].Load()
			doneA.Store(int64(i + 1))
		}
	})
	runtime.LockOSThread()
	deadline := time.Now().Add(time.Second)
	for i := range rounds {
		if i%1024 == 0 && time.Now().After(deadline) {
			last.Store(int64(i))
			break
		}
		for doneA.Load() < int64(i) {
		}
		Store(&y[i], 1)
		Fence()
		sawX[i] = x[i].Load()
		doneB.Store(int64(i + 1))
	}
	runtime.UnlockOSThread()
	wg.Wait()
	done := int(last.Load())
	if done < 1000 {
		t.Skipf("only %d rounds in a second: the two threads hardly ran at once", done)
	}
	both := 0
	for i := range done {
		if sawX[i] == 0 && sawY[i] == 0 {
			both++
		}
	}
	if both > 0 {
		t.Fatalf("in %d of %d rounds neither thread saw the other's store", both, done)
	}
}
