package store

import (
	"cmp"
	"encoding/binary"
	"iter"
	"math/bits"
	"net/netip"
	"slices"
	"unsafe"

	"rtm/store/entry"
	"rtm/store/prefetch"
)

// RouteTable is an in-memory routing table with longest-prefix match:
// the server's index of the routes in its segment (with each route's
// slot), and a client's local copy of the routes it was sent. The zero
// value is an empty table. It is not safe for concurrent use; callers
// lock.
//
// The routes sit in one slice of fixed-size entries that hold no Go
// pointers (addresses as words, the interface name as an index into the
// table's interned names), so the garbage collector never scans them
// and growing the slice is a plain copy. IPv4 routes are indexed by one
// open-addressing table of words keyed by (masked address, length), so
// setting a route is one hash and one probe; IPv6 routes by one map per
// prefix length. A bit per length says which lengths are in use: a
// longest-prefix match is one lookup per length in use, longest first, a
// handful on real tables. Nothing is allocated per route once the table
// has grown (a cleared table keeps its room); a trie allocates a node for
// most new prefixes, which cost a client more than the rest of applying
// a route.
type RouteTable struct {
	ents []routeEntry
	free []int32 // places in ents of deleted routes
	devs devNames

	idx4   []uint64 // IPv4 index: idx4Word(key, place); 0 is empty; len is 0 or a power of two
	n4     int      // IPv4 routes
	count4 [33]int32
	len4   uint64 // bit n: some IPv4 route has length n

	v6   [129]map[[2]uint64]int32
	len6 [3]uint64 // bit n: some IPv6 route has length n
}

// routeEntry is a route and, in the server's index, its segment slot.
// Addresses are two words each, as encodeIP packs them.
type routeEntry struct {
	dst, gw [2]uint64
	slot    int32
	dev     uint32 // index in the table's devNames
	bits    uint8
	flags   uint8 // entUsed, entIPv6, entConnected; 0 is a free place
}

const (
	entUsed = 1 << iota
	entIPv6
	entConnected
)

// The IPv4 index word: the key (address << 6 | length) above the
// route's place + 1 in ents. The store holds at most 1<<24 routes.
const (
	placeBits = 26
	maxPlaces = 1<<placeBits - 1
)

func idx4Key(a uint32, n int) uint64 { return uint64(a)<<6 | uint64(n) }

func idx4Word(key uint64, place int32) uint64 { return key<<placeBits | uint64(place+1) }

func (t *RouteTable) idx4Home(key uint64) int {
	// Fibonacci hashing: the multiply spreads neighbouring prefixes, the
	// top bits pick the slot.
	return int((key * 0x9e3779b97f4a7c15) >> (64 - bits.TrailingZeros(uint(len(t.idx4)))))
}

// find4 returns the index slot holding key, or -1.
func (t *RouteTable) find4(key uint64) int {
	if t.n4 == 0 {
		return -1
	}
	mask := len(t.idx4) - 1
	for i := t.idx4Home(key); ; i = (i + 1) & mask {
		switch w := t.idx4[i]; {
		case w == 0:
			return -1
		case w>>placeBits == key:
			return i
		}
	}
}

// delete4 empties index slot i. Backward-shift deletion keeps every probe
// sequence unbroken without tombstones.
func (t *RouteTable) delete4(i int) {
	mask := len(t.idx4) - 1
	for j := (i + 1) & mask; t.idx4[j] != 0; j = (j + 1) & mask {
		// The word at j may move back to the hole at i unless its home
		// lies cyclically in (i, j].
		if h := t.idx4Home(t.idx4[j] >> placeBits); (j-h)&mask >= (j-i)&mask {
			t.idx4[i] = t.idx4[j]
			i = j
		}
	}
	t.idx4[i] = 0
	t.n4--
}

func (t *RouteTable) grow4() { t.resize4(idx4Size(2 * t.n4)) }

// idx4Size is the index size for n routes: at most half full, so that a
// probe that misses (every new route) stays short.
func idx4Size(n int) int { return max(16, 1<<bits.Len(uint(2*n))) }

func (t *RouteTable) resize4(size int) {
	old := t.idx4
	t.idx4 = prefetch.Make[uint64](size)
	mask := len(t.idx4) - 1
	for _, w := range old {
		if w == 0 {
			continue
		}
		i := t.idx4Home(w >> placeBits)
		for t.idx4[i] != 0 {
			i = (i + 1) & mask
		}
		t.idx4[i] = w
	}
}

// idx4Place is the place an index word points to.
func idx4Place(w uint64) int32 { return int32(w&maxPlaces) - 1 }

func key6(a netip.Addr, n int) [2]uint64 {
	b := a.As16()
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	if n <= 64 {
		return [2]uint64{hi & (^uint64(0) << (64 - n)), 0}
	}
	return [2]uint64{hi, lo & (^uint64(0) << (128 - n))}
}

// mask32 has the first n of 32 bits set (a shift by 32 gives 0 in Go).
func mask32(n int) uint32 { return ^uint32(0) << (32 - n) }

func addr4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// place returns the place of the route for exactly p in ents.
func (t *RouteTable) place(p netip.Prefix) (int32, bool) {
	if !p.IsValid() || p.Masked() != p {
		return 0, false
	}
	n := p.Bits()
	if p.Addr().Is4() {
		i := t.find4(idx4Key(addr4(p.Addr()), n))
		if i < 0 {
			return 0, false
		}
		return idx4Place(t.idx4[i]), true
	}
	i, ok := t.v6[n][key6(p.Addr(), n)]
	return i, ok
}

// route is the entry's route.
func (t *RouteTable) route(e *routeEntry) entry.Route {
	fam := uint64(0)
	if e.flags&entIPv6 != 0 {
		fam = keyIPv6
	}
	r := entry.Route{Prefix: netip.PrefixFrom(decodeIP(fam, e.dst[0], e.dst[1]), int(e.bits)), Dev: t.devs.names[e.dev]}
	if e.flags&entConnected == 0 {
		r.Gateway = decodeIP(fam, e.gw[0], e.gw[1])
	}
	return r
}

// slot returns the segment slot of the route for exactly p.
func (t *RouteTable) slot(p netip.Prefix) (int32, bool) {
	if i, ok := t.place(p); ok {
		return t.ents[i].slot, true
	}
	return 0, false
}

// get returns the route for exactly p and its slot.
func (t *RouteTable) get(p netip.Prefix) (entry.Route, int32, bool) {
	if i, ok := t.place(p); ok {
		return t.route(&t.ents[i]), t.ents[i].slot, true
	}
	return entry.Route{}, 0, false
}

// set adds or replaces the route for r.Prefix, with its slot.
func (t *RouteTable) set(r *entry.Route, slot int32) { t.put(r, slot, true) }

// add adds r with its slot unless r.Prefix has a route: then it reports
// false and changes nothing. A create is then one probe of the index,
// not a look for the prefix and a second probe to insert it.
func (t *RouteTable) add(r *entry.Route, slot int32) bool { return t.put(r, slot, false) }

// put is set, and add when replace is false.
func (t *RouteTable) put(r *entry.Route, slot int32, replace bool) bool {
	p := r.Prefix
	if !p.IsValid() {
		return false
	}
	e := routeEntry{slot: slot, bits: uint8(p.Bits()), flags: entUsed}
	var fam uint64
	fam, e.dst[0], e.dst[1] = encodeIP(p.Addr())
	if fam != 0 {
		e.flags |= entIPv6
	}
	if r.Connected() {
		e.flags |= entConnected
	} else {
		_, e.gw[0], e.gw[1] = encodeIP(r.Gateway)
	}
	n := p.Bits()
	if fam == 0 {
		// One probe finds the prefix or the empty word a new route
		// takes; the index grows first, so that word stays where it is.
		if (t.n4+1)*2 > len(t.idx4) {
			t.grow4()
		}
		key := idx4Key(uint32(e.dst[1]), n)
		mask := len(t.idx4) - 1
		j := t.idx4Home(key)
		for ; t.idx4[j] != 0; j = (j + 1) & mask {
			if w := t.idx4[j]; w>>placeBits == key {
				if !replace {
					return false
				}
				e.dev = t.devs.ref(r.Dev)
				t.replace(idx4Place(w), e)
				return true
			}
		}
		e.dev = t.devs.ref(r.Dev)
		t.idx4[j] = idx4Word(key, t.newPlace(e))
		t.n4++
		t.count4[n]++
		t.len4 |= 1 << n
		return true
	}
	k := key6(p.Addr(), n)
	if i, ok := t.v6[n][k]; ok {
		if !replace {
			return false
		}
		e.dev = t.devs.ref(r.Dev)
		t.replace(i, e)
		return true
	}
	e.dev = t.devs.ref(r.Dev)
	if t.v6[n] == nil {
		t.v6[n] = make(map[[2]uint64]int32)
	}
	t.v6[n][k] = t.newPlace(e)
	t.len6[n/64] |= 1 << (n % 64)
	return true
}

// newPlace puts e in a free place of ents, or a new one, and returns it.
func (t *RouteTable) newPlace(e routeEntry) int32 {
	if k := len(t.free); k > 0 {
		i := t.free[k-1]
		t.free = t.free[:k-1]
		t.ents[i] = e
		return i
	}
	if len(t.ents) == maxPlaces {
		panic("store: a RouteTable holds at most 1<<26-1 routes")
	}
	if len(t.ents) == cap(t.ents) {
		t.growEnts()
	}
	t.ents = append(t.ents, e)
	return int32(len(t.ents) - 1)
}

// replace puts e at place i, which holds a route for the same prefix.
func (t *RouteTable) replace(i int32, e routeEntry) {
	t.devs.unref(t.ents[i].dev)
	t.ents[i] = e
}

// Set adds or replaces r. It trusts r to pass r.CheckStored() (routes
// from the segment or from the server already did); a route with an
// invalid prefix is ignored.
func (t *RouteTable) Set(r *entry.Route) { t.set(r, -1) }

// Delete removes the route for p; ErrNotFound if there is none.
func (t *RouteTable) Delete(p netip.Prefix) error {
	if !p.IsValid() || p.Masked() != p {
		return routeError(p, entry.ErrNotFound)
	}
	// A length no route has any more is skipped by a match; the index
	// keeps its room.
	n := p.Bits()
	var i int32
	if p.Addr().Is4() {
		s := t.find4(idx4Key(addr4(p.Addr()), n))
		if s < 0 {
			return routeError(p, entry.ErrNotFound)
		}
		i = idx4Place(t.idx4[s])
		t.delete4(s)
		if t.count4[n]--; t.count4[n] == 0 {
			t.len4 &^= 1 << n
		}
	} else {
		k := key6(p.Addr(), n)
		var ok bool
		if i, ok = t.v6[n][k]; !ok {
			return routeError(p, entry.ErrNotFound)
		}
		delete(t.v6[n], k)
		if len(t.v6[n]) == 0 {
			t.len6[n/64] &^= 1 << (n % 64)
		}
	}
	t.devs.unref(t.ents[i].dev)
	t.ents[i] = routeEntry{}
	t.free = append(t.free, i)
	return nil
}

// Get returns the route for exactly p.
func (t *RouteTable) Get(p netip.Prefix) (entry.Route, bool) {
	r, _, ok := t.get(p)
	return r, ok
}

// Match returns the route with the longest prefix containing ip. An
// IPv4-mapped IPv6 address matches as the IPv4 address.
func (t *RouteTable) Match(ip netip.Addr) (entry.Route, bool) {
	if !ip.IsValid() {
		return entry.Route{}, false
	}
	ip = ip.Unmap()
	if ip.Is4() {
		a := addr4(ip)
		for lens := t.len4; lens != 0; {
			n := bits.Len64(lens) - 1
			lens &^= 1 << n
			if i := t.find4(idx4Key(a&mask32(n), n)); i >= 0 {
				return t.route(&t.ents[idx4Place(t.idx4[i])]), true
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
				return t.route(&t.ents[i]), true
			}
		}
	}
	return entry.Route{}, false
}

// Prefetch has the CPU load the index line where the probe for p
// starts, so that a run of route changes finds its lines loaded instead
// of missing on each in turn. It reads and changes nothing.
func (t *RouteTable) Prefetch(p *netip.Prefix) {
	if len(t.idx4) < 1<<13 || !p.Addr().Is4() {
		return // fits in cache, or not in the IPv4 index
	}
	prefetch.Line(unsafe.Pointer(&t.idx4[t.idx4Home(idx4Key(addr4(p.Addr()), p.Bits()))]))
}

// Reserve makes room for n routes, so that up to n no route grows the
// table: no copy of the routes and no rehash of the index on the way to
// n, nor the garbage and the faults of fresh memory they make; the room
// is faulted in now (prefetch.Make). The server's table is sized for its
// segment's route capacity; a client's copy for its snapshot, then for a
// stream (proto's makeRoom).
func (t *RouteTable) Reserve(n int) {
	if n > cap(t.ents) {
		t.moveEnts(n)
	}
	if size := idx4Size(n); size > len(t.idx4) {
		t.resize4(size)
	}
}

// growEnts doubles the room for routes. append grows a large slice by a
// quarter at a time: a table streaming from 16 k to 100 k routes copied
// itself eight times, each copy over fresh memory, a run of faults and
// garbage for the collector. Doubling, with the new room faulted in at
// once (prefetch.Make), makes it three.
func (t *RouteTable) growEnts() { t.moveEnts(max(16, 2*cap(t.ents))) }

// moveEnts moves the routes into fresh room for n of them.
func (t *RouteTable) moveEnts(n int) {
	ents := prefetch.Make[routeEntry](n)
	t.ents = ents[:copy(ents, t.ents)]
}

// Len is the number of routes.
func (t *RouteTable) Len() int { return len(t.ents) - len(t.free) }

// Clear removes every route, keeping the room they took.
func (t *RouteTable) Clear() {
	clear(t.idx4)
	t.n4, t.count4, t.len4 = 0, [33]int32{}, 0
	for _, m := range t.v6 {
		clear(m)
	}
	t.len6 = [3]uint64{}
	t.ents, t.free = t.ents[:0], t.free[:0]
	t.devs.clear()
}

// entries yields every route with its slot, in no order.
func (t *RouteTable) entries() iter.Seq2[entry.Route, int32] {
	return func(yield func(entry.Route, int32) bool) {
		for i := range t.ents {
			if e := &t.ents[i]; e.flags != 0 && !yield(t.route(e), e.slot) {
				return
			}
		}
	}
}

// Range yields the routes in no order: for whoever reads them all and
// does not print them (a snapshot, a check).
func (t *RouteTable) Range() iter.Seq[entry.Route] {
	return func(yield func(entry.Route) bool) {
		for r := range t.entries() {
			if !yield(r) {
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

// devNames interns the interface names of a table's routes, counting the
// routes that use each: a name no route uses any more frees its index.
// Real tables use a few names, found by a scan; a map takes over past
// devScan of them.
type devNames struct {
	names []string
	refs  []int32
	free  []uint32
	index map[string]uint32 // nil while len(names) <= devScan
}

const devScan = 16

// ref returns the index of name, counting one more route that uses it.
func (d *devNames) ref(name string) uint32 {
	i, ok := d.find(name)
	if !ok {
		i = d.add(name)
	}
	d.refs[i]++
	return i
}

func (d *devNames) find(name string) (uint32, bool) {
	if d.index != nil {
		i, ok := d.index[name]
		return i, ok
	}
	for i, n := range d.names {
		// Names of one length mostly differ at the end (eth0, eth1):
		// their last bytes settle most comparisons without a call.
		if len(n) == len(name) && n != "" && n[len(n)-1] == name[len(name)-1] && n == name && d.refs[i] > 0 {
			// Keep the caller's copy: a caller that interns its names
			// (a client's decoder) is then matched by pointer next time.
			if unsafe.StringData(n) != unsafe.StringData(name) {
				d.names[i] = name
			}
			return uint32(i), true
		}
	}
	return 0, false
}

func (d *devNames) add(name string) uint32 {
	var i uint32
	if k := len(d.free); k > 0 {
		i = d.free[k-1]
		d.free = d.free[:k-1]
		d.names[i] = name
	} else {
		i = uint32(len(d.names))
		d.names = append(d.names, name)
		d.refs = append(d.refs, 0)
	}
	if d.index == nil && len(d.names) > devScan {
		d.index = make(map[string]uint32, len(d.names))
		for j, n := range d.names {
			if d.refs[j] > 0 || uint32(j) == i {
				d.index[n] = uint32(j)
			}
		}
	} else if d.index != nil {
		d.index[name] = i
	}
	return i
}

// unref counts one route fewer that uses name i.
func (d *devNames) unref(i uint32) {
	if d.refs[i]--; d.refs[i] == 0 {
		if d.index != nil {
			delete(d.index, d.names[i])
		}
		d.names[i] = ""
		d.free = append(d.free, i)
	}
}

func (d *devNames) clear() {
	d.names, d.refs, d.free, d.index = d.names[:0], d.refs[:0], d.free[:0], nil
}
