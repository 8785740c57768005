package store

import (
	"fmt"
	"net/netip"
)

// writeRoute rewrites route slot i under its seqlock.
func (s *Store) writeRoute(i int, w [7]uint64) {
	sl := &s.rslots[i]
	seq := sl.seq.Load() | 1
	sl.seq.Store(seq)
	for k := range w {
		sl.w[k].Store(w[k])
		if k == 3 {
			crashPoint("route.mid")
		}
	}
	sl.seq.Store(seq + 1)
}

// CreateRoute adds r, which must pass r.Check(). It fails with ErrExists
// if r.Prefix has a route and ErrFull if RouteCapacity routes exist.
func (s *Store) CreateRoute(r Route) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := r.Check(); err != nil {
		return routeError(r.Prefix, err)
	}
	if _, ok := s.routeIndex[r.Prefix]; ok {
		return routeError(r.Prefix, ErrExists)
	}
	if len(s.freeRoutes) == 0 {
		return routeError(r.Prefix, fmt.Errorf("%w (%d routes)", ErrFull, s.lay.routeCap))
	}
	i := s.freeRoutes[len(s.freeRoutes)-1]
	s.freeRoutes = s.freeRoutes[:len(s.freeRoutes)-1]
	s.journalRoute(int(i))
	s.writeRoute(int(i), encodeRoute(r))
	s.disarm()
	s.routeIndex[r.Prefix] = i
	s.routes.Set(r)
	s.hdr.routeCount.Store(uint64(len(s.routeIndex)))
	return nil
}

// UpdateRoute replaces the route for r.Prefix (ErrNotFound if none).
func (s *Store) UpdateRoute(r Route) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := r.Check(); err != nil {
		return routeError(r.Prefix, err)
	}
	i, ok := s.routeIndex[r.Prefix]
	if !ok {
		return routeError(r.Prefix, ErrNotFound)
	}
	s.journalRoute(int(i))
	s.writeRoute(int(i), encodeRoute(r))
	s.disarm()
	s.routes.Set(r)
	return nil
}

// DeleteRoute removes the route for p (ErrNotFound if none).
func (s *Store) DeleteRoute(p netip.Prefix) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := CheckPrefix(p); err != nil {
		return routeError(p, err)
	}
	i, ok := s.routeIndex[p]
	if !ok {
		return routeError(p, ErrNotFound)
	}
	s.journalRoute(int(i))
	s.writeRoute(int(i), [7]uint64{})
	s.disarm()
	delete(s.routeIndex, p)
	s.routes.t.Delete(p)
	s.freeRoutes = append(s.freeRoutes, i)
	s.hdr.routeCount.Store(uint64(len(s.routeIndex)))
	return nil
}

// GetRoute returns the route for exactly p.
func (s *Store) GetRoute(p netip.Prefix) (Route, bool) { return s.routes.Get(p) }

// MatchRoute returns the longest-prefix match for ip.
func (s *Store) MatchRoute(ip netip.Addr) (Route, bool) { return s.routes.Match(ip) }

// RouteCount is the number of routes.
func (s *Store) RouteCount() int { return len(s.routeIndex) }

// Routes is the in-memory index of the routes, for reading (show,
// snapshots). Changing it does not change the segment.
func (s *Store) Routes() *RouteTable { return &s.routes }

// FlushRoutes removes every route, journaled like FlushMACs.
func (s *Store) FlushRoutes() error {
	if err := s.usable(); err != nil {
		return err
	}
	s.hdr.journal.state.Store(jRouteFlush)
	s.clearRoutes()
	s.disarm()
	clear(s.routeIndex)
	s.routes.Clear()
	s.rebuildFreeRoutes()
	s.hdr.routeCount.Store(0)
	return nil
}

func (s *Store) clearRoutes() int {
	cleared := 0
	for i := range s.rslots {
		if s.rslots[i].w[0].Load() != 0 || s.rslots[i].seq.Load()&1 == 1 {
			s.writeRoute(i, [7]uint64{})
			cleared++
			crashPoint("flush.route")
		}
	}
	return cleared
}
