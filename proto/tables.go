package proto

import (
	"errors"
	"net/netip"
	"rtm/store/entry"
	"slices"
)

// The server's tables, as the command language sees them. Every change
// takes the server's mutex, writes the store, then publishes the change:
// the one path and the one order of every change, whatever its origin.

// The write methods implement the command language's changes.

func (s *Server) CreateRoute(r entry.Route) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.CreateRoute(r); err != nil {
		return err
	}
	s.publish(AppendRoute(s.log.room(), OpRouteCreate, r))
	return nil
}

func (s *Server) UpdateRoute(r entry.Route) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.UpdateRoute(r); err != nil {
		return err
	}
	s.publish(AppendRoute(s.log.room(), OpRouteUpdate, r))
	return nil
}

func (s *Server) DeleteRoute(p netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.DeleteRoute(p); err != nil {
		return err
	}
	s.publish(AppendRouteDelete(s.log.room(), p))
	return nil
}

func (s *Server) CreateMAC(m entry.MAC, ip netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.CreateMAC(m, ip); err != nil {
		return err
	}
	s.publish(AppendMAC(s.log.room(), OpMACCreate, m))
	return nil
}

func (s *Server) UpdateMAC(m entry.MAC, ip netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.UpdateMAC(m, ip); err != nil {
		return err
	}
	s.publish(AppendMAC(s.log.room(), OpMACUpdate, m))
	return nil
}

// DeleteMAC publishes after the store has dropped the key: a client that
// still holds the key reads "not found" from the store, never another
// MAC's address, because lookups check the key in the slot.
func (s *Server) DeleteMAC(m entry.MAC) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.DeleteMAC(m); err != nil {
		return err
	}
	s.publish(AppendMAC(s.log.room(), OpMACDelete, m))
	return nil
}

// PrefetchMACs loads the store's slots for ms ahead of changes to them
// (store.Store.PrefetchMACs): a replay calls it for the next few lines.
func (s *Server) PrefetchMACs(ms []entry.MAC) {
	s.mu.Lock()
	s.st.PrefetchMACs(ms)
	s.mu.Unlock()
}

// ReplaceRoute creates or updates the route for r.Prefix, as `ip route
// replace` does; clients see a create or an update.
func (s *Server) ReplaceRoute(r entry.Route) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	op := OpRouteUpdate
	if _, ok := s.st.GetRoute(r.Prefix); ok {
		if err := s.st.UpdateRoute(r); err != nil {
			return err
		}
	} else {
		if err := s.st.CreateRoute(r); err != nil {
			return err
		}
		op = OpRouteCreate
	}
	s.publish(AppendRoute(s.log.room(), op, r))
	return nil
}

// ReplaceMAC creates or updates the entry for m.
func (s *Server) ReplaceMAC(m entry.MAC, ip netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	op := OpMACUpdate
	err := s.st.UpdateMAC(m, ip)
	if errors.Is(err, entry.ErrNotFound) {
		op, err = OpMACCreate, s.st.CreateMAC(m, ip)
	}
	if err != nil {
		return err
	}
	s.publish(AppendMAC(s.log.room(), op, m))
	return nil
}

func (s *Server) Flush(routes, macs bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var which uint8
	if routes {
		if err := s.st.FlushRoutes(); err != nil {
			return err
		}
		which |= FlushRoutes
	}
	if macs {
		if err := s.st.FlushMACs(); err != nil {
			return err
		}
		which |= FlushMACs
	}
	if which != 0 {
		s.publish(AppendFlush(s.log.room(), which))
	}
	return nil
}

// The read methods answer `show`, `lookup` and `route` at the server.

func (s *Server) Routes() []entry.Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.st.Routes()
	out := make([]entry.Route, 0, rt.Len())
	for r := range rt.All() {
		out = append(out, r)
	}
	return out
}

func (s *Server) GetRoute(p netip.Prefix) (entry.Route, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.GetRoute(p)
}

func (s *Server) MatchRoute(ip netip.Addr) (entry.Route, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.MatchRoute(ip)
}

func (s *Server) MACs() []entry.MAC {
	s.mu.Lock()
	out := make([]entry.MAC, 0, s.st.MACCount())
	s.st.RangeMACs(func(m entry.MAC, _ netip.Addr) bool {
		out = append(out, m)
		return true
	})
	s.mu.Unlock()
	slices.SortFunc(out, entry.MAC.Compare)
	return out
}

func (s *Server) LookupMAC(m entry.MAC) (netip.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ip, ok := s.st.LookupMAC(m)
	if !ok {
		return netip.Addr{}, &entry.KeyError{Table: "MAC", Key: m.String(), Err: entry.ErrNotFound}
	}
	return ip, nil
}

// Clients lists the connected clients with their lag.
func (s *Server) Clients() ([]ClientInfo, error) {
	pub := s.log.published.Load()
	conns := *s.conns.Load()
	out := make([]ClientInfo, 0, len(conns))
	for _, c := range conns {
		out = append(out, c.snapshotInfo(pub))
	}
	return out, nil
}

// Stats returns the server's counters, in a stable order.
func (s *Server) Stats() []Stat {
	s.mu.Lock()
	routes, macs := s.st.Routes().Len(), s.st.MACCount()
	routeCap, macCap := s.st.RouteCapacity(), s.st.Capacity()
	s.mu.Unlock()
	st := &s.stats
	stats := []Stat{
		{"routes", uint64(routes)},
		{"macs", uint64(macs)},
		{"route_capacity", uint64(routeCap)},
		{"mac_capacity", uint64(macCap)},
		{"route_fill_percent", percent(routes, routeCap)},
		{"mac_fill_percent", percent(macs, macCap)},
		{"changes", s.log.published.Load()},
		{"clients", uint64(len(*s.conns.Load()))},
		{"clients_connected", st.connects.Load()},
		{"clients_disconnected", st.disconnects.Load()},
		{"clients_dropped_protocol", st.dropped.Load()},
		{"clients_refused", st.refused.Load()},
		{"snapshots_sent", st.snapshots.Load()},
		{"slow_client_resyncs", st.overruns.Load()},
		{"resyncs_requested", st.resyncRequests.Load()},
		{"packets_sent", st.packets.Load()},
		{"records_sent", st.records.Load()},
		{"bytes_sent", st.bytes.Load()},
		{"acks_received", st.acks.Load()},
		{"requests_received", st.requests.Load()},
	}
	s.originsMu.Lock()
	for _, o := range s.origins {
		stats = append(stats, Stat{"changes_from_" + o.name, o.n.Load()})
	}
	s.originsMu.Unlock()
	stats = append(stats, Stat{"changes_from_clients", st.fromClients.Load()})
	return s.extra.append(stats)
}

// AddStats adds the counters f returns, their names prefixed, to Stats.
func (s *Server) AddStats(prefix string, f func() []Stat) { s.extra.add(prefix, f) }

// percent is n of total in whole percent, rounded up so that a table
// with anything in it never shows 0.
func percent(n, total int) uint64 {
	if total == 0 {
		return 0
	}
	return uint64((n*100 + total - 1) / total)
}
