package proto

import (
	"iter"
	"math/bits"
	"unsafe"

	"rtm/store/entry"
	"rtm/store/prefetch"
)

// macSet is a client's set of MAC keys: open addressing with linear
// probing over one flat slice of words. A MAC is 48 bits, so a word holds
// the MAC with a high bit set and zero marks an empty slot. Applying a
// change is then one hash and, mostly, one cache line, with no per-key
// allocation: a Go map with [6]byte keys spent half of a client's time
// in the fan-out benchmark hashing and growing.
type macSet struct {
	slots []uint64 // len is a power of two, or 0
	n     int
}

const macSetUsed = 1 << 63

// newMACSet returns a set with room for hint keys before it grows.
func newMACSet(hint int) *macSet {
	s := &macSet{}
	if hint > 0 {
		s.slots = prefetch.Make[uint64](macSetSize(hint))
	}
	return s
}

// macSetSize is the smallest power of two that holds hint keys at 3/4
// load at most. A full set grows to twice its slots: rounding up past an
// exact power of two (as a bare bits.Len did) made every growth four
// times, a 32 MiB set for a million keys and twice the fresh memory on
// the way.
func macSetSize(hint int) int {
	return max(16, 1<<bits.Len(uint(hint+hint/3-1)))
}

func (s *macSet) home(w uint64) int {
	// Fibonacci hashing: the multiply spreads consecutive MACs, the top
	// bits pick the slot.
	return int((w * 0x9e3779b97f4a7c15) >> (64 - bits.TrailingZeros(uint(len(s.slots)))))
}

// touch prefetches the home slot of every MAC that recs add or delete.
// On a large set nearly every change misses the cache, and a lone probe
// cannot overlap its miss with the next one: the branch on the slot's
// value stalls it. With the group's lines prefetched first, their misses
// overlap, and applying the group in order pays about one miss for it.
// (An update leaves the set as it is.)
func (s *macSet) touch(recs []entry.Change) {
	if len(s.slots) < 1<<14 {
		return // fits in cache
	}
	for i := range recs {
		if r := &recs[i]; r.Table == entry.MACs && (r.Op == entry.Create || r.Op == entry.Delete) {
			prefetch.Line(unsafe.Pointer(&s.slots[s.home(recs[i].MAC.Uint64()|macSetUsed)]))
		}
	}
}

// Len is the number of keys.
func (s *macSet) Len() int { return s.n }

// Add inserts m; adding a key already present changes nothing.
func (s *macSet) Add(m entry.MAC) {
	if (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	w := m.Uint64() | macSetUsed
	mask := len(s.slots) - 1
	for i := s.home(w); ; i = (i + 1) & mask {
		switch s.slots[i] {
		case w:
			return
		case 0:
			s.slots[i] = w
			s.n++
			return
		}
	}
}

// Delete removes m if present. Backward-shift deletion keeps every probe
// sequence unbroken without tombstones.
func (s *macSet) Delete(m entry.MAC) {
	if s.n == 0 {
		return
	}
	w := m.Uint64() | macSetUsed
	mask := len(s.slots) - 1
	i := s.home(w)
	for ; s.slots[i] != w; i = (i + 1) & mask {
		if s.slots[i] == 0 {
			return
		}
	}
	for j := (i + 1) & mask; s.slots[j] != 0; j = (j + 1) & mask {
		// The entry at j may move back to the hole at i unless its home
		// lies cyclically in (i, j].
		if h := s.home(s.slots[j]); (j-h)&mask >= (j-i)&mask {
			s.slots[i] = s.slots[j]
			i = j
		}
	}
	s.slots[i] = 0
	s.n--
}

// Has reports whether m is in the set.
func (s *macSet) Has(m entry.MAC) bool {
	if s.n == 0 {
		return false
	}
	w := m.Uint64() | macSetUsed
	mask := len(s.slots) - 1
	for i := s.home(w); ; i = (i + 1) & mask {
		switch s.slots[i] {
		case w:
			return true
		case 0:
			return false
		}
	}
}

// Clear removes every key and keeps the room.
func (s *macSet) Clear() {
	clear(s.slots)
	s.n = 0
}

// All yields the keys in slot order.
func (s *macSet) All() iter.Seq[entry.MAC] {
	return func(yield func(entry.MAC) bool) {
		for _, w := range s.slots {
			if w != 0 && !yield(entry.MACFromUint64(w)) {
				return
			}
		}
	}
}

func (s *macSet) grow() { s.resize(macSetSize(max(2*s.n, 8))) }

// reserve makes room for n keys before the set grows again.
func (s *macSet) reserve(n int) {
	if size := macSetSize(n); size > len(s.slots) {
		s.resize(size)
	}
}

func (s *macSet) resize(size int) {
	old := s.slots
	s.slots = prefetch.Make[uint64](size)
	mask := len(s.slots) - 1
	for _, w := range old {
		if w == 0 {
			continue
		}
		i := s.home(w)
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = w
	}
}
