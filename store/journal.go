package store

import "rtm/store/ordered"

// The crash journal. Every change to a slot is one of:
//
//   - a single-slot write (MAC create/update, route create/update/delete):
//     the old words are saved and the journal armed before the write,
//     and disarmed after it; repair undoes an armed write, so the slot
//     holds its old value. A create into an empty slot saves nothing:
//     an empty slot is all zeros, so its undo is to clear the slot;
//   - a MAC delete: the journal holds the current hole of the backward
//     shift; repair finishes the shift, so the key is gone;
//   - a flush: repair clears whatever is left.
//
// All of it lives in the header, so a writer killed at any instruction
// leaves enough for the next Open to restore a consistent table.

// journalMAC saves MAC slot i and arms an undo record for it; an empty
// slot's is two words: its index and the state that says its undo is to
// clear it. The record's words land before the slot's (ordered.Store),
// so a writer killed at any store leaves an undo that covers it.
func (s *Store) journalMAC(i int) {
	j, sl := &s.hdr.journal, &s.macs[i]
	ordered.Store(&j.index, uint64(i))
	if sl.key.Load() == 0 {
		ordered.Store(&j.state, jMACCreate)
		crashPoint("journal.armed")
		return
	}
	ordered.Store(&j.old[0], sl.key.Load())
	ordered.Store(&j.old[1], sl.hi.Load())
	ordered.Store(&j.old[2], sl.lo.Load())
	ordered.Store(&j.state, jMACSlot)
	crashPoint("journal.armed")
}

// journalRoute saves route slot i and arms an undo record for it; a free
// slot's, as an empty MAC slot's, is its index alone.
func (s *Store) journalRoute(i int) {
	j, sl := &s.hdr.journal, &s.rslots[i]
	ordered.Store(&j.index, uint64(i))
	if sl.w[0].Load()&routeUsed == 0 {
		ordered.Store(&j.state, jRouteCreate)
		crashPoint("journal.armed")
		return
	}
	for k := range sl.w {
		ordered.Store(&j.old[k], sl.w[k].Load())
	}
	ordered.Store(&j.state, jRouteSlot)
	crashPoint("journal.armed")
}

func (s *Store) disarm() {
	crashPoint("journal.done")
	ordered.Store(&s.hdr.journal.state, jIdle)
}

// repair runs on a segment whose last writer died: it applies the
// journal, closes any slot still odd and leaves the shift epoch even.
// Counts are recomputed by load and the result verified by Check.
func (s *Store) repair() {
	j := &s.hdr.journal
	state, idx := j.state.Load(), j.index.Load()
	switch state {
	case jMACSlot:
		if idx < uint64(len(s.macs)) {
			s.writeMAC(int(idx), j.old[0].Load(), j.old[1].Load(), j.old[2].Load())
			s.rec.Repaired++
		}
	case jMACCreate:
		if idx < uint64(len(s.macs)) {
			s.writeMAC(int(idx), 0, 0, 0)
			s.rec.Repaired++
		}
	case jRouteCreate:
		if idx < uint64(len(s.rslots)) {
			s.writeRoute(int(idx), &[7]uint64{})
			s.rec.Repaired++
		}
	case jRouteSlot:
		if idx < uint64(len(s.rslots)) {
			var w [7]uint64
			for k := range w {
				w[k] = j.old[k].Load()
			}
			s.writeRoute(int(idx), &w)
			s.rec.Repaired++
		}
	case jMACShift:
		if idx < uint64(len(s.macs)) {
			s.rec.Repaired += s.shiftFrom(int(idx))
		}
	case jMACFlush:
		s.rec.Repaired += s.clearMACs()
	case jRouteFlush:
		s.rec.Repaired += s.clearRoutes()
	}
	s.rec.JournalReplayed = state != jIdle
	ordered.Store(&j.state, jIdle)
	// No write is in flight outside the journal, so an odd seq here is
	// only possible in a damaged file (or, in a route slot, one an older
	// rtm, which seqlocked route slots, left odd); closing it lets Check
	// judge the words.
	for i := range s.macs {
		if seq := s.macs[i].seq.Load(); seq&1 == 1 {
			ordered.Store(&s.macs[i].seq, seq+1)
			s.rec.Repaired++
		}
	}
	for i := range s.rslots {
		if seq := s.rslots[i].seq.Load(); seq&1 == 1 {
			ordered.Store(&s.rslots[i].seq, seq+1)
			s.rec.Repaired++
		}
	}
	s.endShift()
}
