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
	MACs() []entry.MAC                                   // sorted
	LookupMAC(entry.MAC) (netip.Addr, error)             // error wraps entry.ErrNotFound when absent
	Clients(context.Context) ([]proto.ClientInfo, error) // the server's clients, asked of the server by a client until ctx ends
	Info(context.Context) (proto.ServerInfo, error)      // the server's, asked likewise
	Stats() []proto.Stat                                 // this process's counters
	Sync(ctx context.Context) error                      // wait until every client applied everything so far
	SyncLocal(ctx context.Context) error                 // wait until this copy holds everything made so far
}

// Changer is an engine that applies changes itself: the server's, seen
// from one origin. A create of an existing key and an update or delete of
// a missing one fail with errors wrapping entry.ErrExists or
// entry.ErrNotFound, and change nothing.
type Changer interface {
	Apply(entry.Change) error
}

// Remote is the engine of a client: the server applies its changes. The
// Interp sends them in batches through a forwarder.
type Remote interface {
	// Request sends n changes (records of proto.AppendChange with their
	// values) to be applied in order, waiting for a connection until ctx
	// ends; the reply arrives on the channel. With bail the request
	// stops at its first failure and the later requests of its epoch are
	// skipped.
	Request(ctx context.Context, epoch uint64, changes []byte, n int, bail bool) (<-chan proto.Reply, error)
	// CatchUp waits until the client has applied every change up to seq
	// of connection conn (a reply's Published and Conn).
	CatchUp(ctx context.Context, conn, seq uint64) error
	// ServerStats asks the server for its counters, until ctx ends.
	ServerStats(ctx context.Context) ([]proto.Stat, error)
}

// Prefetcher is an engine whose changes wait on memory when its tables are
// large: a replay tells it the MACs and the prefixes of the next few
// changes before it runs the first of them, so that their cache misses
// overlap instead of coming one after another. It changes nothing.
type Prefetcher interface {
	PrefetchMACs([]entry.MAC)
	PrefetchRoutes([]netip.Prefix)
}

// Grouper is a Changer that makes a run of changes at once, in order, as
// that many calls of Apply would; it stops at the first that fails and
// returns how many it made and that one's error. A replay gives it the
// change lines waiting in its buffer: the server's lock is taken once for
// the run instead of once per change.
type Grouper interface {
	ApplyAll([]*entry.Change) (int, error)
}

// Batcher is an engine that passes its changes on (the server's, to its
// clients): a replay holds them while more lines are waiting in its
// buffer and sends them on when it would wait for input, so that a
// stream of changes goes out in a few large packets rather than one small
// packet per wake-up of every client.
type Batcher interface {
	Hold() // changes made from now on wait for Send
	Send() // passes on every change made so far, and stops holding
}
