package store

import (
	"cmp"
	"encoding/binary"
	"iter"
	"math/bits"
	"net/netip"
	"slices"

	"rtm/store/entry"
)

// RouteTable is an in-memory routing table with longest-prefix match:
// the server's index of the routes in its segment (with each route's
// slot), and a client's local copy of the routes it was sent. The zero
// value is an empty table. It is not safe for concurrent use; callers
// lock.
//
// The routes sit in one slice; one hash map per prefix length maps the
// masked address to a route's place in it, and a bit per length says
// which lengths are in use. Setting a route is one map assignment,
// finding one by prefix one map lookup, and a longest-prefix match one
// lookup per length in use, longest first: a handful on real tables.
// Nothing is allocated per route once the maps and the slice have grown
// (a cleared table keeps their room); a trie allocates a node for most
// new prefixes, which cost a client more than the rest of applying a
// route.
type RouteTable struct {
	v4   [33]map[uint32]int32
	v6   [129]map[[2]uint64]int32
	len4 uint64    // bit n: some IPv4 route has length n
	len6 [3]uint64 // bit n: some IPv6 route has length n
	ents []routeEntry
	free []int32 // places in ents of deleted routes
}

// routeEntry is a route and, in the server's index, its segment slot. A
// free place has an invalid prefix.
type routeEntry struct {
	entry.Route
	slot int32
}

func key4(a netip.Addr, bits int) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:]) & mask32(bits)
}

// mask32 has the first n of 32 bits set (a shift by 32 gives 0 in Go).
func mask32(n int) uint32 { return ^uint32(0) << (32 - n) }

func key6(a netip.Addr, n int) [2]uint64 {
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	if n <= 64 {
		return [2]uint64{hi & (^uint64(0) << (64 - n)), 0}
	}
	return [2]uint64{hi, lo & (^uint64(0) << (128 - n))}
}

// place returns the place of the route for exactly p in ents.
func (t *RouteTable) place(p netip.Prefix) (int32, bool) {
	if !p.IsValid() || p.Masked() != p {
		return 0, false
	}
	n := p.Bits()
	if p.Addr().Is4() {
		i, ok := t.v4[n][key4(p.Addr(), n)]
		return i, ok
	}
	i, ok := t.v6[n][key6(p.Addr(), n)]
	return i, ok
}

// get returns the entry for exactly p.
func (t *RouteTable) get(p netip.Prefix) (routeEntry, bool) {
	if i, ok := t.place(p); ok {
		return t.ents[i], true
	}
	return routeEntry{}, false
}

// set adds or replaces the route for r.Prefix, with its slot.
func (t *RouteTable) set(r entry.Route, slot int32) {
	p := r.Prefix
	if !p.IsValid() {
		return
	}
	e := routeEntry{Route: r, slot: slot}
	if i, ok := t.place(p); ok {
		t.ents[i] = e
		return
	}
	var i int32
	if k := len(t.free); k > 0 {
		i = t.free[k-1]
		t.free = t.free[:k-1]
		t.ents[i] = e
	} else {
		i = int32(len(t.ents))
		t.ents = append(t.ents, e)
	}
	n := p.Bits()
	if p.Addr().Is4() {
		if t.v4[n] == nil {
			t.v4[n] = make(map[uint32]int32)
		}
		t.v4[n][key4(p.Addr(), n)] = i
		t.len4 |= 1 << n
		return
	}
	if t.v6[n] == nil {
		t.v6[n] = make(map[[2]uint64]int32)
	}
	t.v6[n][key6(p.Addr(), n)] = i
	t.len6[n/64] |= 1 << (n % 64)
}

// Set adds or replaces r. It trusts r to pass r.Check() (routes from the
// segment or from the server already did); a route with an invalid
// prefix is ignored.
func (t *RouteTable) Set(r entry.Route) { t.set(r, -1) }

// Delete removes the route for p; ErrNotFound if there is none.
func (t *RouteTable) Delete(p netip.Prefix) error {
	i, ok := t.place(p)
	if !ok {
		return routeError(p, entry.ErrNotFound)
	}
	t.ents[i] = routeEntry{}
	t.free = append(t.free, i)
	// A length no route has any more is skipped by a match; its map keeps
	// its room.
	n := p.Bits()
	if p.Addr().Is4() {
		delete(t.v4[n], key4(p.Addr(), n))
		if len(t.v4[n]) == 0 {
			t.len4 &^= 1 << n
		}
		return nil
	}
	delete(t.v6[n], key6(p.Addr(), n))
	if len(t.v6[n]) == 0 {
		t.len6[n/64] &^= 1 << (n % 64)
	}
	return nil
}

// Get returns the route for exactly p.
func (t *RouteTable) Get(p netip.Prefix) (entry.Route, bool) {
	e, ok := t.get(p)
	return e.Route, ok
}

// Match returns the route with the longest prefix containing ip. An
// IPv4-mapped IPv6 address matches as the IPv4 address.
func (t *RouteTable) Match(ip netip.Addr) (entry.Route, bool) {
	if !ip.IsValid() {
		return entry.Route{}, false
	}
	ip = ip.Unmap()
	if ip.Is4() {
		for lens := t.len4; lens != 0; {
			n := bits.Len64(lens) - 1
			lens &^= 1 << n
			if i, ok := t.v4[n][key4(ip, n)]; ok {
				return t.ents[i].Route, true
			}
		}
		return entry.Route{}, false
	}
	for w := 2; w >= 0; w-- {
		for lens := t.len6[w]; lens != 0; {
			b := bits.Len64(lens) - 1
			lens &^= 1 << b
			n := 64*w + b
			if i, ok := t.v6[n][key6(ip, n)]; ok {
				return t.ents[i].Route, true
			}
		}
	}
	return entry.Route{}, false
}

// Len is the number of routes.
func (t *RouteTable) Len() int { return len(t.ents) - len(t.free) }

// Clear removes every route, keeping the room they took.
func (t *RouteTable) Clear() {
	for _, m := range t.v4 {
		clear(m)
	}
	for _, m := range t.v6 {
		clear(m)
	}
	t.len4, t.len6 = 0, [3]uint64{}
	t.ents, t.free = t.ents[:0], t.free[:0]
}

// entries yields every entry, in no order.
func (t *RouteTable) entries() iter.Seq[routeEntry] {
	return func(yield func(routeEntry) bool) {
		for _, e := range t.ents {
			if e.Prefix.IsValid() && !yield(e) {
				return
			}
		}
	}
}

// Range yields the routes in no order: for whoever reads them all and
// does not print them (a snapshot, a check).
func (t *RouteTable) Range() iter.Seq[entry.Route] {
	return func(yield func(entry.Route) bool) {
		for e := range t.entries() {
			if !yield(e.Route) {
				return
			}
		}
	}
}

// All yields the routes sorted by prefix (address, then length), IPv4
// before IPv6: the order show prints.
func (t *RouteTable) All() iter.Seq[entry.Route] {
	routes := make([]entry.Route, 0, t.Len())
	for r := range t.Range() {
		routes = append(routes, r)
	}
	slices.SortFunc(routes, func(a, b entry.Route) int {
		return cmp.Or(a.Prefix.Addr().Compare(b.Prefix.Addr()), cmp.Compare(a.Prefix.Bits(), b.Prefix.Bits()))
	})
	return slices.Values(routes)
}
