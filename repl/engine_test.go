package repl

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"rtm/proto"
	"rtm/store/entry"
)

// memEngine is the tables in memory, with the server's semantics: create
// of an existing key and update or delete of a missing one fail and
// change nothing.
type memEngine struct {
	routes  map[netip.Prefix]entry.Route
	macs    map[entry.MAC]netip.Addr
	clients []proto.ClientInfo
	syncErr error
	syncs   int
}

// readOnly is an engine that only reads, as a client's does.
type readOnly struct{ Tables }

func newMemEngine() *memEngine {
	return &memEngine{routes: map[netip.Prefix]entry.Route{}, macs: map[entry.MAC]netip.Addr{}}
}

// Apply makes c with the server's semantics, in memory.
func (e *memEngine) Apply(c entry.Change) error {
	if c.Op == entry.Flush {
		if c.Table&entry.Routes != 0 {
			clear(e.routes)
		}
		if c.Table&entry.MACs != 0 {
			clear(e.macs)
		}
		return nil
	}
	if err := c.Check(); err != nil {
		return err
	}
	var had bool
	if c.Table == entry.Routes {
		_, had = e.routes[c.Route.Prefix]
	} else {
		_, had = e.macs[c.MAC]
	}
	switch {
	case c.Op == entry.Create && had:
		return &entry.KeyError{Table: "key", Key: c.Key(), Err: entry.ErrExists}
	case (c.Op == entry.Update || c.Op == entry.Delete) && !had:
		return &entry.KeyError{Table: "key", Key: c.Key(), Err: entry.ErrNotFound}
	}
	switch {
	case c.Table == entry.Routes && c.Op == entry.Delete:
		delete(e.routes, c.Route.Prefix)
	case c.Table == entry.Routes:
		e.routes[c.Route.Prefix] = c.Route
	case c.Op == entry.Delete:
		delete(e.macs, c.MAC)
	default:
		e.macs[c.MAC] = c.IP
	}
	return nil
}

func comparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

func (e *memEngine) Routes() []entry.Route {
	out := make([]entry.Route, 0, len(e.routes))
	for _, r := range e.routes {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b entry.Route) int { return comparePrefix(a.Prefix, b.Prefix) })
	return out
}

func (e *memEngine) GetRoute(p netip.Prefix) (entry.Route, bool) {
	r, ok := e.routes[p]
	return r, ok
}

func (e *memEngine) MatchRoute(ip netip.Addr) (entry.Route, bool) {
	best, found := entry.Route{}, false
	for p, r := range e.routes {
		if p.Contains(ip) && (!found || p.Bits() > best.Prefix.Bits()) {
			best, found = r, true
		}
	}
	return best, found
}

func (e *memEngine) MACs() []entry.MAC {
	out := make([]entry.MAC, 0, len(e.macs))
	for m := range e.macs {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b entry.MAC) int { return cmp.Compare(a.Uint64(), b.Uint64()) })
	return out
}

func (e *memEngine) LookupMAC(m entry.MAC) (netip.Addr, error) {
	ip, ok := e.macs[m]
	if !ok {
		return ip, fmt.Errorf("MAC %s: %w", m, entry.ErrNotFound)
	}
	return ip, nil
}

func (e *memEngine) Clients(context.Context) ([]proto.ClientInfo, error) { return e.clients, nil }

func (e *memEngine) Info(context.Context) (proto.ServerInfo, error) {
	return proto.ServerInfo{Name: "lab", Version: "test", PID: 1, Protocol: proto.Version, Routes: len(e.routes), RouteCapacity: 100, MACs: len(e.macs), MACCapacity: 1000}, nil
}

func (e *memEngine) Stats() []proto.Stat {
	return []proto.Stat{{Name: "routes", Value: uint64(len(e.routes))}, {Name: "macs", Value: uint64(len(e.macs))}, {Name: "changes", Value: 7}}
}

func (e *memEngine) Sync(ctx context.Context) error {
	e.syncs++
	if e.syncErr != nil {
		<-ctx.Done()
		return behindError{ctx.Err()}
	}
	return nil
}

func (e *memEngine) SyncLocal(context.Context) error { return nil }

// behindError is what a server's sync says when it times out: who is
// behind, in rtm's words, wrapping the context's reason.
type behindError struct{ err error }

func (behindError) Error() string   { return "1 client behind: slow (pid 1) at change 3 of 5" }
func (e behindError) Unwrap() error { return e.err }

// dump prints both tables in a canonical form, for byte-identical
// before/after comparisons.
func (e *memEngine) dump() string {
	var b strings.Builder
	for _, r := range e.Routes() {
		b.WriteString(r.String() + "\n")
	}
	for _, m := range e.MACs() {
		fmt.Fprintf(&b, "%s %s\n", m, e.macs[m])
	}
	return b.String()
}
