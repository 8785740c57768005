package store

import (
	"iter"
	"net/netip"

	"github.com/gaissmai/bart"
)

// RouteTable is an in-memory routing table with longest-prefix match:
// the server's index of the routes in its segment, and a client's local
// copy of the routes it was sent. The zero value is an empty table. It is
// not safe for concurrent use; callers lock.
type RouteTable struct {
	t bart.Table[Route]
}

// Delete removes the route for p; ErrNotFound if there is none.
func (t *RouteTable) Delete(p netip.Prefix) error {
	if _, ok := t.Get(p); !ok {
		return routeError(p, ErrNotFound)
	}
	t.t.Delete(p)
	return nil
}

// Set adds or replaces r. It trusts r to pass r.Check() (routes from the
// segment or from the server already did); a route with an invalid
// prefix is ignored.
func (t *RouteTable) Set(r Route) { t.t.Insert(r.Prefix, r) }

// Get returns the route for exactly p.
func (t *RouteTable) Get(p netip.Prefix) (Route, bool) {
	if !p.IsValid() || p.Masked() != p {
		return Route{}, false
	}
	return t.t.Get(p)
}

// Match returns the route with the longest prefix containing ip. An
// IPv4-mapped IPv6 address matches as the IPv4 address.
func (t *RouteTable) Match(ip netip.Addr) (Route, bool) {
	if !ip.IsValid() {
		return Route{}, false
	}
	return t.t.Lookup(ip.Unmap().WithZone(""))
}

// Len is the number of routes.
func (t *RouteTable) Len() int { return t.t.Size() }

// Clear removes every route.
func (t *RouteTable) Clear() { t.t = bart.Table[Route]{} }

// All yields the routes sorted by prefix, IPv4 before IPv6.
func (t *RouteTable) All() iter.Seq[Route] {
	return func(yield func(Route) bool) {
		for _, r := range t.t.AllSorted4() {
			if !yield(r) {
				return
			}
		}
		for _, r := range t.t.AllSorted6() {
			if !yield(r) {
				return
			}
		}
	}
}
