package proto

import (
	"net/netip"
	"sync/atomic"

	"rtm/store/entry"
)

// A snapshot is the whole state, encoded as batch bodies, and the log
// position just past the last change it contains. Taking one holds the
// server's lock for one walk over the tables: the only way to get a state
// that is exactly "everything up to sequence N".
//
// Snapshots are shared. A client that needs one gets the last one taken
// while the change log still reaches back to it, and then the log from
// there: a consistent cut, an older one, followed by every change after
// it, with no gap and no duplicate. So a thousand clients connecting at
// once cost one walk and one copy of the tables, not a thousand, and a
// client that stops reading in the middle of its snapshot holds a
// reference to the shared copy, not a copy of its own.
type snapshot struct {
	bodies       [][]byte
	counts       []uint32
	routes, macs int
	seq          uint64 // the last change it contains
	cur          cursor // where the log continues
}

// snapshot returns the shared snapshot, taking a new one if the last is
// gone from the log's reach, or so old that sending the changes since
// would cost more than sending the tables again. It sets low, the
// caller's writer's, to the chunk where the log continues, under the lock
// the publisher recycles chunks under: that chunk stays unrecycled.
func (s *Server) snapshot(low *atomic.Uint64) *snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	if last := s.snap; last != nil && s.log.at(last.cur.num) != nil && s.log.seq-last.seq <= uint64(last.routes+last.macs) {
		low.Store(last.cur.num)
		return last
	}
	snap := &snapshot{routes: s.st.Routes().Len(), macs: s.st.MACCount(), seq: s.log.seq, cur: s.log.tail()}
	buf := make([]byte, 0, chunkSize)
	var n uint32
	flush := func() {
		snap.bodies, snap.counts = append(snap.bodies, buf), append(snap.counts, n)
		buf, n = make([]byte, 0, chunkSize), 0
	}
	add := func(rec []byte) {
		buf = rec
		n++
		if len(buf)+MaxRecord > chunkSize {
			flush()
		}
	}
	for r := range s.st.Routes().Range() {
		add(AppendChange(buf, entry.RouteChange(entry.Create, r), false))
	}
	s.st.RangeMACs(func(m entry.MAC, _ netip.Addr) bool {
		add(AppendChange(buf, entry.MACChange(entry.Create, m, netip.Addr{}), false))
		return true
	})
	if n > 0 {
		flush()
	}
	s.snap = snap
	low.Store(snap.cur.num)
	return snap
}

// sharesSnapshot says whether snap is the snapshot the next client to
// need one would get.
func (s *Server) sharesSnapshot(snap *snapshot) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap == snap
}
