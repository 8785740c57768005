package store

import (
	"fmt"
	"net/netip"
	"unsafe"

	"rtm/store/entry"
	"rtm/store/ordered"
	"rtm/store/prefetch"
)

// writeRoute rewrites route slot i. No reader maps route slots (clients
// get routes over the socket), so unlike a MAC slot it needs no seqlock:
// the journal, armed around every write, makes a killed write safe. Its
// seq word stays 0 (repair closes one an older rtm left odd). A word
// that holds its value already is not stored: an IPv4 route leaves three
// of the seven words 0.
func (s *Store) writeRoute(i int, w *[7]uint64) {
	sl := &s.rslots[i]
	for k := range w {
		if sl.w[k].Load() != w[k] {
			ordered.Store(&sl.w[k], w[k])
		}
		if k == 3 {
			crashPoint("route.mid")
		}
	}
}

// PrefetchRoutes has the CPU load the index lines where the probes for ps
// start, ahead of changes to them: in a server fed a large table, the
// probe's miss was a tenth of its time (BENCHMARKS.md, B9). The slots the
// next creates take, the top of the free list, are loaded too: a fresh or
// large table's slot missed on its write.
func (s *Store) PrefetchRoutes(ps []netip.Prefix) {
	for i := range ps {
		s.routes.Prefetch(&ps[i])
	}
	if s.mem == nil {
		return
	}
	free, n := s.freeRoutes, len(ps)
	for k := len(free) - 1; k >= 0 && n > 0; k, n = k-1, n-1 {
		prefetch.Line(unsafe.Pointer(&s.rslots[free[k]]))
	}
	for i := int(s.untouched); i < len(s.rslots) && n > 0; i, n = i+1, n-1 {
		prefetch.Line(unsafe.Pointer(&s.rslots[i]))
	}
}

// CreateRoute adds r, which must pass r.Check(). It fails with ErrExists
// if r.Prefix has a route and ErrFull if RouteCapacity routes exist.
func (s *Store) CreateRoute(r entry.Route) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := r.Check(); err != nil {
		return routeError(r.Prefix, err)
	}
	i, free := s.freeRoute()
	if !free {
		if _, ok := s.routes.place(r.Prefix); ok {
			return routeError(r.Prefix, entry.ErrExists)
		}
		return routeError(r.Prefix, fmt.Errorf("%w (%d routes)", ErrFull, s.lay.routeCap))
	}
	// The index first: it says whether the prefix has a route in the
	// same probe that inserts it. Nothing after it can fail, so the
	// index and the segment agree again before the lock is let go.
	if !s.routes.add(&r, i) {
		return routeError(r.Prefix, entry.ErrExists)
	}
	s.takeRoute(i)
	s.journalRoute(int(i))
	w := encodeRoute(&r)
	s.writeRoute(int(i), &w)
	s.disarm()
	ordered.Store(&s.hdr.routeCount, uint64(s.routes.Len()))
	return nil
}

// UpdateRoute replaces the route for r.Prefix (ErrNotFound if none).
func (s *Store) UpdateRoute(r entry.Route) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := r.Check(); err != nil {
		return routeError(r.Prefix, err)
	}
	i, ok := s.routes.slot(r.Prefix)
	if !ok {
		return routeError(r.Prefix, entry.ErrNotFound)
	}
	s.journalRoute(int(i))
	w := encodeRoute(&r)
	s.writeRoute(int(i), &w)
	s.disarm()
	s.routes.set(&r, i)
	return nil
}

// DeleteRoute removes the route for p (ErrNotFound if none).
func (s *Store) DeleteRoute(p netip.Prefix) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := entry.CheckPrefix(p); err != nil {
		return routeError(p, err)
	}
	i, ok := s.routes.slot(p)
	if !ok {
		return routeError(p, entry.ErrNotFound)
	}
	s.journalRoute(int(i))
	s.writeRoute(int(i), &[7]uint64{})
	s.disarm()
	s.routes.Delete(p)
	s.freeRoutes = append(s.freeRoutes, i)
	ordered.Store(&s.hdr.routeCount, uint64(s.routes.Len()))
	return nil
}

// GetRoute returns the route for exactly p.
func (s *Store) GetRoute(p netip.Prefix) (entry.Route, bool) { return s.routes.Get(p) }

// MatchRoute returns the longest-prefix match for ip.
func (s *Store) MatchRoute(ip netip.Addr) (entry.Route, bool) { return s.routes.Match(ip) }

// RouteCount is the number of routes.
func (s *Store) RouteCount() int { return s.routes.Len() }

// Routes is the in-memory index of the routes, for reading (show,
// snapshots). Changing it does not change the segment.
func (s *Store) Routes() *RouteTable { return &s.routes }

// FlushRoutes removes every route, journaled like FlushMACs.
func (s *Store) FlushRoutes() error {
	if err := s.usable(); err != nil {
		return err
	}
	ordered.Store(&s.hdr.journal.state, jRouteFlush)
	s.clearRoutes()
	s.disarm()
	s.routes.Clear()
	s.untouchedRoutes()
	ordered.Store(&s.hdr.routeCount, 0)
	return nil
}

// clearRoutes zeroes every route slot that is not all zeros: a flush
// killed midway may have left a slot half cleared, its flags already 0.
func (s *Store) clearRoutes() int {
	cleared := 0
	for i := range s.rslots {
		sl := &s.rslots[i]
		dirty := false
		for k := range sl.w {
			dirty = dirty || sl.w[k].Load() != 0
		}
		if dirty {
			s.writeRoute(i, &[7]uint64{})
			cleared++
			crashPoint("flush.route")
		}
	}
	return cleared
}
