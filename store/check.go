package store

import (
	"fmt"

	"rtm/store/entry"
)

// Check verifies the whole segment against the invariants: header intact,
// journal idle, epoch even, every seq even, every MAC key well formed,
// unique and reachable from its home slot, every route slot a valid
// route matching the in-memory index, and every count right. It returns
// an error wrapping ErrCorrupt that names the first violation.
func (s *Store) Check() error {
	if err := s.usable(); err != nil {
		return err
	}
	h := s.hdr
	if h.magic.Load() != magic || h.checksum.Load() != staticSum(h) {
		return fmt.Errorf("%w: header damaged", ErrCorrupt)
	}
	if st := h.journal.state.Load(); st != jIdle {
		return fmt.Errorf("%w: journal armed (state %d)", ErrCorrupt, st)
	}
	if e := h.epoch.Load(); e&1 == 1 {
		return fmt.Errorf("%w: shift epoch %d odd with no delete in progress", ErrCorrupt, e)
	}
	if err := s.checkMACs(); err != nil {
		return err
	}
	return s.checkRoutes()
}

func (s *Store) checkMACs() error {
	n, count := len(s.macs), 0
	for i := range s.macs {
		sl := &s.macs[i]
		if seq := sl.seq.Load(); seq&1 == 1 {
			return fmt.Errorf("%w: MAC slot %d: odd seq %d", ErrCorrupt, i, seq)
		}
		k, hi, lo := sl.key.Load(), sl.hi.Load(), sl.lo.Load()
		if k == 0 {
			if hi != 0 || lo != 0 {
				// The undo of a create clears the slot: it must have been clear.
				return fmt.Errorf("%w: MAC slot %d: empty but not zeroed", ErrCorrupt, i)
			}
			continue
		}
		count++
		m := entry.MACFromUint64(k)
		switch {
		case k&keyUsed == 0 || k&^(keyUsed|keyIPv6|macMask) != 0:
			return fmt.Errorf("%w: MAC slot %d: bad key word %#x", ErrCorrupt, i, k)
		case k&keyIPv6 == 0 && (hi != 0 || lo>>32 != 0):
			return fmt.Errorf("%w: MAC slot %d (%s): IPv4 value with high bits set", ErrCorrupt, i, m)
		}
		if err := entry.CheckIP(decodeIP(k, hi, lo)); err != nil {
			return fmt.Errorf("%w: MAC slot %d (%s): %w", ErrCorrupt, i, m, err)
		}
		// The probe from the key's home must reach this very slot: a gap
		// on the way would hide it, an earlier copy would duplicate it.
		if j, found := s.probe(k & keyMatch); !found || j != i {
			if found {
				return fmt.Errorf("%w: MAC %s in slots %d and %d", ErrCorrupt, m, j, i)
			}
			return fmt.Errorf("%w: MAC %s in slot %d unreachable from home slot %d", ErrCorrupt, m, i, macHome(k, n))
		}
	}
	if count > s.lay.macCap {
		return fmt.Errorf("%w: %d MAC entries, capacity %d", ErrCorrupt, count, s.lay.macCap)
	}
	if count != s.macCount || uint64(count) != s.hdr.macCount.Load() {
		return fmt.Errorf("%w: %d MAC entries, counted %d, header says %d", ErrCorrupt, count, s.macCount, s.hdr.macCount.Load())
	}
	return nil
}

func (s *Store) checkRoutes() error {
	used := 0
	for i := range s.rslots {
		sl := &s.rslots[i]
		if seq := sl.seq.Load(); seq&1 == 1 {
			return fmt.Errorf("%w: route slot %d: odd seq %d", ErrCorrupt, i, seq)
		}
		var w [7]uint64
		for k := range w {
			w[k] = sl.w[k].Load()
		}
		if w[0]&routeUsed == 0 {
			if w != [7]uint64{} {
				return fmt.Errorf("%w: route slot %d: free but not zeroed", ErrCorrupt, i)
			}
			continue
		}
		used++
		r, err := decodeRoute(w)
		if err != nil {
			return fmt.Errorf("%w: route slot %d: %w", ErrCorrupt, i, err)
		}
		got, slot, ok := s.routes.get(r.Prefix)
		if !ok || int(slot) != i {
			return fmt.Errorf("%w: route slot %d (%s) not indexed there", ErrCorrupt, i, r.Prefix)
		}
		if got != r {
			return fmt.Errorf("%w: route table has %v for slot %d (%s)", ErrCorrupt, got, i, r)
		}
	}
	if used != s.routes.Len() || uint64(used) != s.hdr.routeCount.Load() || used+s.freeRouteCount() != len(s.rslots) {
		return fmt.Errorf("%w: %d routes in slots, table %d, header %d, free %d of %d",
			ErrCorrupt, used, s.routes.Len(), s.hdr.routeCount.Load(), s.freeRouteCount(), len(s.rslots))
	}
	return nil
}
