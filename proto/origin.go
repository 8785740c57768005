package proto

import (
	"context"
	"fmt"
	"sync/atomic"

	"rtm/store/entry"
)

// Origin is the server seen from one source of changes: the server's own
// prompt and scripts, the kernel, or one client. It reads as the server
// does, and writes through the server's one path, counting what each
// source changed (show stats, show clients). A client that may only read
// gets an Origin that refuses its changes.
type Origin struct {
	*Server
	counts  []*atomic.Uint64 // each counts a change that succeeded
	refusal error            // nil: may change the tables
	held    bool             // changes wait for Send (Hold)
}

// Origin returns the server seen from the source called name: its
// changes are counted as changes_from_NAME in show stats.
func (s *Server) Origin(name string) *Origin {
	s.originsMu.Lock()
	defer s.originsMu.Unlock()
	for _, o := range s.origins {
		if o.name == name {
			return &Origin{Server: s, counts: []*atomic.Uint64{o.n}}
		}
	}
	n := new(atomic.Uint64)
	s.origins = append(s.origins, namedCount{name, n})
	return &Origin{Server: s, counts: []*atomic.Uint64{n}}
}

type namedCount struct {
	name string
	n    *atomic.Uint64
}

// clientOrigin is the Origin of a connected client.
func (c *serverConn) clientOrigin() *Origin {
	o := &Origin{Server: c.s, counts: []*atomic.Uint64{&c.changes, &c.s.stats.fromClients}}
	if !c.s.mayWrite(c.info.UID) {
		o.refusal = readOnlyError(c.info.UID)
	}
	return o
}

// readOnlyError refuses the changes of a client whose uid may only read.
type readOnlyError uint32

func (e readOnlyError) Error() string {
	return fmt.Sprintf("refused: uid %d may read but not change the tables (the server allows it with --allow-write-uid %d)", uint32(e), uint32(e))
}

func (readOnlyError) Unwrap() error { return entry.ErrReadOnly }

// Clients is Server.Clients, asked as a client asks it (Client.Clients):
// so the server's Interp and a client's ask their engine alike. The
// server answers at once and has no use for ctx.
func (o *Origin) Clients(context.Context) ([]ClientInfo, error) { return o.Server.Clients() }

// Info is Server.Info, asked as Clients is.
func (o *Origin) Info(context.Context) (ServerInfo, error) { return o.Server.Info() }

// Apply makes c through the server's one path (Server.Apply), once the
// origin's permission is checked, and counts it if it was made: ApplyAll
// of one change.
func (o *Origin) Apply(c entry.Change) error {
	_, err := o.ApplyAll([]*entry.Change{&c})
	return err
}

// ApplyAll makes the changes cs in order, as that many calls of Apply
// would, under one hold of the server's lock; it stops at the first that
// fails, and returns how many were made and that one's error. A replay
// passes the change lines waiting in its buffer: one lock and one count
// for the run instead of one per change.
func (o *Origin) ApplyAll(cs []*entry.Change) (int, error) {
	if o.refusal != nil {
		return 0, o.refusal
	}
	n, err := o.Server.applyAll(cs, !o.held)
	if n > 0 {
		for _, c := range o.counts {
			c.Add(uint64(n))
		}
	}
	return n, err
}

// Hold keeps the changes made through o from going out to the clients
// until Send, unless they fill a packet: a source that has more changes
// waiting (a replay with lines in its buffer, a client's request) then
// sends them in a few large packets, each of which wakes every client
// once, instead of one small packet per wake-up. While any Origin holds,
// the writers send whole packets only, also of other origins' changes,
// which wait at most until a packet fills or the holder sends; Sync sends
// everything before it waits. An Origin is used by one goroutine at a
// time.
func (o *Origin) Hold() {
	if !o.held {
		o.held = true
		o.holding.Add(1)
	}
}

// Send wakes the writers for every change made so far, and stops holding.
func (o *Origin) Send() {
	if o.held {
		o.held = false
		o.holding.Add(-1)
	}
	o.Server.kickIdle()
}
