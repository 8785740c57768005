package store

import (
	"fmt"
	"net/netip"
	"unsafe"

	"rtm/store/entry"
	"rtm/store/ordered"
	"rtm/store/prefetch"
)

// writeMAC rewrites slot i under its seqlock: seq goes odd, the words
// change (key first, so a reader that sees the new key on an odd seq
// knows the value is in flux), seq goes even. Starting from seq|1 also
// closes a slot left odd by a killed writer.
func (s *Store) writeMAC(i int, key, hi, lo uint64) {
	sl := &s.macs[i]
	seq := sl.seq.Load() | 1
	ordered.Store(&sl.seq, seq)
	crashPoint("mac.seq")
	// An update of the same family leaves the key as it is: one store
	// fewer, and a reader sees the same key either way.
	if sl.key.Load() != key {
		ordered.Store(&sl.key, key)
	}
	crashPoint("mac.key")
	ordered.Store(&sl.hi, hi)
	crashPoint("mac.hi")
	ordered.Store(&sl.lo, lo)
	crashPoint("mac.lo")
	ordered.Store(&sl.seq, seq+1)
}

// probe returns the slot holding want, or the empty slot that ends its
// probe sequence. The table always has an empty slot, so it terminates.
func (s *Store) probe(want uint64) (int, bool) {
	n := len(s.macs)
	i := macHome(want, n)
	for {
		k := s.macs[i].key.Load()
		if k == 0 {
			return i, false
		}
		if k&keyMatch == want {
			return i, true
		}
		if i++; i == n {
			i = 0
		}
	}
}

// PrefetchMACs has the CPU load the cache lines where the probe for each
// of ms starts (prefetch), so that a run of changes to them finds them
// loaded instead of missing one at a time. It reads and changes nothing.
func (s *Store) PrefetchMACs(ms []entry.MAC) {
	if s.mem == nil {
		return
	}
	n := len(s.macs)
	var lines [64]unsafe.Pointer
	k := 0
	for i := range ms {
		h := macHome(macKeyAt(&ms[i]), n)
		lines[k], k = unsafe.Pointer(&s.macs[h]), k+1
		// Two slots share a line, from an even slot. At the load of a
		// full table about a quarter of the probes go on past the home
		// line, most of them into the next one.
		if next := h&^1 + 2; next < n {
			lines[k], k = unsafe.Pointer(&s.macs[next]), k+1
		}
		if k > len(lines)-2 {
			prefetch.Lines(lines[:k])
			k = 0
		}
	}
	prefetch.Lines(lines[:k])
}

// CreateMAC adds m with address ip. It fails with ErrExists if m is
// present and ErrFull if the table holds Capacity entries.
func (s *Store) CreateMAC(m entry.MAC, ip netip.Addr) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := entry.CheckHostIP(ip); err != nil {
		return macError(m, err)
	}
	want := macKey(m)
	i, found := s.probe(want)
	if found {
		return macError(m, entry.ErrExists)
	}
	if s.macCount >= s.lay.macCap {
		return macError(m, fmt.Errorf("%w (%d entries)", ErrFull, s.lay.macCap))
	}
	fam, hi, lo := encodeIP(ip)
	s.journalMAC(i)
	s.writeMAC(i, want|fam, hi, lo)
	s.disarm()
	s.macCount++
	ordered.Store(&s.hdr.macCount, uint64(s.macCount))
	return nil
}

// UpdateMAC sets the address of m, which must exist (else ErrNotFound).
func (s *Store) UpdateMAC(m entry.MAC, ip netip.Addr) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := entry.CheckHostIP(ip); err != nil {
		return macError(m, err)
	}
	want := macKey(m)
	i, found := s.probe(want)
	if !found {
		return macError(m, entry.ErrNotFound)
	}
	fam, hi, lo := encodeIP(ip)
	s.journalMAC(i)
	s.writeMAC(i, want|fam, hi, lo)
	s.disarm()
	return nil
}

// DeleteMAC removes m (ErrNotFound if absent). The entries after it in
// its cluster shift back, so no tombstone is left.
func (s *Store) DeleteMAC(m entry.MAC) error {
	if err := s.usable(); err != nil {
		return err
	}
	i, found := s.probe(macKey(m))
	if !found {
		return macError(m, entry.ErrNotFound)
	}
	j := &s.hdr.journal
	ordered.Store(&j.index, uint64(i))
	ordered.Store(&j.state, jMACShift)
	crashPoint("shift.armed")
	s.shiftFrom(i)
	s.disarm()
	s.endShift()
	s.macCount--
	ordered.Store(&s.hdr.macCount, uint64(s.macCount))
	return nil
}

// shiftFrom empties slot hole (whose content is garbage: the deleted
// entry or an entry already copied elsewhere) by pulling back the next
// entry of the cluster that may live there, repeating from the slot that
// entry left, until an empty slot ends the cluster. The journal's index
// follows the hole, so a repair can resume from any step.
func (s *Store) shiftFrom(hole int) int {
	n := len(s.macs)
	steps := 0
	for j := hole; ; {
		if j++; j == n {
			j = 0
		}
		sl := &s.macs[j]
		k := sl.key.Load()
		if k == 0 {
			break
		}
		// The entry stays if its home lies cyclically in (hole, j]:
		// moving it before its home would hide it from its own probe.
		if (j-macHome(k, n)+n)%n < (j-hole+n)%n {
			continue
		}
		s.beginShift()
		s.writeMAC(hole, k, sl.hi.Load(), sl.lo.Load())
		steps++
		crashPoint("shift.moved")
		hole = j
		ordered.Store(&s.hdr.journal.index, uint64(hole))
		crashPoint("shift.step")
	}
	s.writeMAC(hole, 0, 0, 0)
	return steps + 1
}

// beginShift makes the shift epoch odd before an entry moves: a reader
// that missed while it was odd, or saw it change, probes again.
func (s *Store) beginShift() {
	if e := s.hdr.epoch.Load(); e&1 == 0 {
		ordered.Store(&s.hdr.epoch, e+1)
	}
}

// endShift makes the epoch even again after the last move.
func (s *Store) endShift() {
	if e := s.hdr.epoch.Load(); e&1 == 1 {
		ordered.Store(&s.hdr.epoch, e+1)
	}
}

// LookupMAC returns the address stored for m.
func (s *Store) LookupMAC(m entry.MAC) (netip.Addr, bool) {
	if s.mem == nil {
		return netip.Addr{}, false
	}
	i, found := s.probe(macKey(m))
	if !found {
		return netip.Addr{}, false
	}
	sl := &s.macs[i]
	return decodeIP(sl.key.Load(), sl.hi.Load(), sl.lo.Load()), true
}

// MACCount is the number of MAC entries.
func (s *Store) MACCount() int { return s.macCount }

// RangeMACs calls fn for every entry in slot order until fn returns
// false. fn must not modify the store. It stops at the last entry: the
// slots after it are not read, so a small table's snapshot does not
// fault in a large segment (an empty one's, none of it).
func (s *Store) RangeMACs(fn func(entry.MAC, netip.Addr) bool) {
	left := s.macCount
	for i := 0; left > 0 && i < len(s.macs); i++ {
		sl := &s.macs[i]
		k := sl.key.Load()
		if k == 0 {
			continue
		}
		left--
		if !fn(entry.MACFromUint64(k), decodeIP(k, sl.hi.Load(), sl.lo.Load())) {
			return
		}
	}
}

// FlushMACs removes every MAC entry. The flush is journaled: a writer
// killed halfway leaves it for the next Open to finish.
func (s *Store) FlushMACs() error {
	if err := s.usable(); err != nil {
		return err
	}
	ordered.Store(&s.hdr.journal.state, jMACFlush)
	s.clearMACs()
	s.disarm()
	s.macCount = 0
	ordered.Store(&s.hdr.macCount, 0)
	return nil
}

func (s *Store) clearMACs() int {
	cleared := 0
	for i := range s.macs {
		if s.macs[i].key.Load() != 0 || s.macs[i].seq.Load()&1 == 1 {
			s.writeMAC(i, 0, 0, 0)
			cleared++
			crashPoint("flush.slot")
		}
	}
	return cleared
}

// usable refuses operations on a closed store.
func (s *Store) usable() error {
	if s.mem == nil {
		return fmt.Errorf("store %s: %w", s.path, ErrClosed)
	}
	return nil
}
