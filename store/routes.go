package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// Route slot flags word.
const (
	routeUsed = 1 << 63
	routeIPv6 = 1 << 8
)

// encodeRoute packs a checked route into the seven words of a slot.
func encodeRoute(r Route) [7]uint64 {
	var w [7]uint64
	a := r.Prefix.Addr()
	w[0] = routeUsed | uint64(r.Prefix.Bits())
	if !a.Is4() {
		w[0] |= routeIPv6
	}
	_, w[1], w[2] = encodeIP(a)
	_, w[3], w[4] = encodeIP(r.Gateway)
	var dev [16]byte
	copy(dev[:], r.Dev)
	w[5] = binary.LittleEndian.Uint64(dev[:8])
	w[6] = binary.LittleEndian.Uint64(dev[8:])
	return w
}

var errBadRouteSlot = errors.New("bad route slot")

// decodeRoute is the inverse of encodeRoute; it rejects words that no
// checked route encodes to.
func decodeRoute(w [7]uint64) (Route, error) {
	if w[0]&^(routeUsed|routeIPv6|0xff) != 0 {
		return Route{}, fmt.Errorf("%w: flags %#x", errBadRouteSlot, w[0])
	}
	fam := uint64(0)
	if w[0]&routeIPv6 != 0 {
		fam = keyIPv6
	} else if w[1] != 0 || w[2]>>32 != 0 || w[3] != 0 || w[4]>>32 != 0 {
		return Route{}, fmt.Errorf("%w: IPv4 route with IPv6 address bits", errBadRouteSlot)
	}
	a := decodeIP(fam, w[1], w[2])
	p, err := a.Prefix(int(w[0] & 0xff))
	if err != nil || p.Bits() != int(w[0]&0xff) {
		return Route{}, fmt.Errorf("%w: prefix length %d", errBadRouteSlot, w[0]&0xff)
	}
	var dev [16]byte
	binary.LittleEndian.PutUint64(dev[:8], w[5])
	binary.LittleEndian.PutUint64(dev[8:], w[6])
	n := 0
	for n < len(dev) && dev[n] != 0 {
		n++
	}
	for _, c := range dev[n:] {
		if c != 0 {
			return Route{}, fmt.Errorf("%w: interface name not NUL padded", errBadRouteSlot)
		}
	}
	r := Route{Prefix: p, Gateway: decodeIP(fam, w[3], w[4]), Dev: string(dev[:n])}
	if p != netip.PrefixFrom(a, p.Bits()) {
		return Route{}, fmt.Errorf("%w: prefix %s has host bits", errBadRouteSlot, netip.PrefixFrom(a, p.Bits()))
	}
	if err := r.Check(); err != nil {
		return Route{}, err
	}
	return r, nil
}

// writeRoute rewrites route slot i under its seqlock.
func (s *Store) writeRoute(i int, w [7]uint64) {
	sl := &s.rslots[i]
	seq := sl.seq.Load() | 1
	sl.seq.Store(seq)
	for k := range w {
		sl.w[k].Store(w[k])
		if k == 3 {
			fail("route.mid")
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
		return fmt.Errorf("route %s: %w", r.Prefix, err)
	}
	if _, ok := s.routeIndex[r.Prefix]; ok {
		return fmt.Errorf("route %s: %w", r.Prefix, ErrExists)
	}
	if len(s.freeRoutes) == 0 {
		return fmt.Errorf("route %s: %w (%d routes)", r.Prefix, ErrFull, s.lay.routeCap)
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
		return fmt.Errorf("route %s: %w", r.Prefix, err)
	}
	i, ok := s.routeIndex[r.Prefix]
	if !ok {
		return fmt.Errorf("route %s: %w", r.Prefix, ErrNotFound)
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
		return fmt.Errorf("route %s: %w", p, err)
	}
	i, ok := s.routeIndex[p]
	if !ok {
		return fmt.Errorf("route %s: %w", p, ErrNotFound)
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
			fail("flush.route")
		}
	}
	return cleared
}
