package proto

import (
	"context"
	"net/netip"

	"rtm/store/entry"
)

// The server's tables: one way in for every change, whatever its origin,
// and the reads that answer show, lookup and route at the server.

// Apply makes one change: under the server's mutex it writes the store,
// then publishes the change, the one path and the one order of every
// change. Clients see a Replace as the Create or Update it was. A MAC
// delete is published after the store has dropped the key: a client that
// still holds the key reads "not found" from the store, never another
// MAC's address, because lookups check the key in the slot.
func (s *Server) Apply(c entry.Change) error {
	_, err := s.applyAll([]*entry.Change{&c}, true)
	return err
}

// applyAll makes the changes cs in order under one hold of the lock, each
// written to the store and then published; without kick the idle
// writers are woken only when a change fills a packet's worth
// (Origin.Hold). It stops at the first change that fails, and returns how
// many were made before it and that one's error.
func (s *Server) applyAll(cs []*entry.Change, kick bool) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, c := range cs {
		if err := s.st.Apply(c); err != nil {
			s.markFirst()
			return i, err
		}
		before := s.log.cur
		rec := appendChange(s.log.room(), c, false)
		s.publish(rec, kick || s.log.cur != before)
	}
	s.markFirst()
	return len(cs), nil
}

// markFirst marks the store with the time of the first change this
// server made, at once: the once-a-second mark (markChanges) missed it
// when the server died within that second, and rtm ls then showed no
// time for a store that had changed. Callers hold s.mu.
func (s *Server) markFirst() {
	if s.marked == 0 {
		s.markChanged()
	}
}

// PrefetchMACs loads the store's slots for ms ahead of changes to them
// (store.Store.PrefetchMACs): a replay calls it for the next few lines.
func (s *Server) PrefetchMACs(ms []entry.MAC) {
	s.mu.Lock()
	s.st.PrefetchMACs(ms)
	s.mu.Unlock()
}

// PrefetchRoutes loads the route index where the probes for ps start
// (store.Store.PrefetchRoutes), as PrefetchMACs does for MACs.
func (s *Server) PrefetchRoutes(ps []netip.Prefix) {
	s.mu.Lock()
	s.st.PrefetchRoutes(ps)
	s.mu.Unlock()
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
	entry.SortMACs(out)
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
		{"snapshots_dropped_stalled", st.snapshotsDropped.Load()},
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

// SyncLocal is `sync local` at the server: its tables hold every change
// made so far, so there is nothing to wait for.
func (s *Server) SyncLocal(context.Context) error { return nil }
