package repl

import (
	"context"
	"net/netip"

	"rtm/proto"
	"rtm/store/entry"
)

// Tables is what every engine answers, the reads: the server's tables, or
// a client's copy of them with MAC addresses read from the shared store.
type Tables interface {
	Routes() []entry.Route // sorted by prefix
	GetRoute(netip.Prefix) (entry.Route, bool)
	MatchRoute(netip.Addr) (entry.Route, bool)
	MACs() []entry.MAC                       // sorted
	LookupMAC(entry.MAC) (netip.Addr, error) // error wraps entry.ErrNotFound when absent
	Clients() ([]proto.ClientInfo, error)    // the server's clients, asked of the server by a client
	Info() (proto.ServerInfo, error)         // the server's, asked of the server by a client
	Stats() []proto.Stat
	Sync(ctx context.Context) error // wait until every client applied everything so far
}

// Changer is an engine that applies changes itself: the server's. Create
// of an existing key and update or delete of a missing one fail with
// errors wrapping entry.ErrExists or entry.ErrNotFound, and change
// nothing. An engine that is not a Changer refuses every change.
type Changer interface {
	CreateRoute(entry.Route) error
	UpdateRoute(entry.Route) error
	DeleteRoute(netip.Prefix) error
	CreateMAC(entry.MAC, netip.Addr) error
	UpdateMAC(entry.MAC, netip.Addr) error
	DeleteMAC(entry.MAC) error
	ReplaceRoute(entry.Route) error         // create or update
	ReplaceMAC(entry.MAC, netip.Addr) error // create or update
	Flush(routes, macs bool) error
}

// Prefetcher is an engine whose changes wait on memory when its tables are
// large: a replay tells it the MACs of the next few changes before it
// runs the first of them, so that their cache misses overlap instead of
// coming one after another. It changes nothing.
type Prefetcher interface {
	PrefetchMACs([]entry.MAC)
}
