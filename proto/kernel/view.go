package kernel

import (
	"errors"
	"net/netip"

	"rtm/store/entry"

	"golang.org/x/sys/unix"
)

// routeView is what an importer knows of one routing table of its
// source (the kernel, or zebra over FPM): every route by prefix, the
// nexthop objects they may use, the devices of rtm's network namespace,
// and what the sink was told. The two importers learn changes their own
// way and apply them here, so both map routes onto rtm's model by the
// same rules and count the same skips.
//
// Changes mark prefixes dirty; flush brings the sink in line with them,
// once per batch of changes, so a delete followed by a create of one
// prefix (zebra's way of changing a route) reaches the sink as one
// update.
type routeView struct {
	sink   Sink
	table  uint32
	logf   func(string, ...any) // with the importer's name in front
	stats  *counters            // viewNames, then the skip kinds
	prefix string               // of the counters' names in rtm server's show stats

	links   *linkTable
	missing map[int32]bool          // indexes re-listed in vain since the last link event
	relist  func() ([]klink, error) // lists the devices again, on a miss

	cands    map[netip.Prefix][]routeCand
	nexthops map[uint32]knexthop
	users    map[uint32]map[netip.Prefix]struct{} // nexthop id -> prefixes with a candidate using it
	groups   map[uint32]map[uint32]struct{}       // member id -> groups holding it
	routes   map[netip.Prefix]entry.Route         // what the sink was told
	dirty    map[netip.Prefix]struct{}
	told     [numSkipKinds]bool // a skip of the kind was logged (skipWhy)

	// current, if set, says what the sink holds for a prefix the view
	// has told it nothing of: a route it holds already as the source
	// has it (a store reopened after rtm restarted) is taken as the
	// view's without telling the sink, where a Replace would reach every
	// client as an update that changes nothing.
	current func(netip.Prefix) (entry.Route, bool)
}

// The view's counters, in Stats order before the skip kinds.
const (
	vRoutes        = iota // gauge: routes the sink holds from the importer
	vNexthops             // gauge: nexthop objects known
	vRouteUpdates         // sink route calls that succeeded
	vSinkErrors           // sink calls that failed
	vNetlinkErrors        // malformed messages and socket errors
	vFixed
)

var viewNames = []string{"routes_imported", "nexthops", "route_updates", "sink_errors", "netlink_errors"}

// skipIndex places the skip counters after the fixed ones.
func skipIndex(k skipKind) int { return vFixed + int(k) - 1 }

func newRouteView(sink Sink, table uint32, relist func() ([]klink, error), logf func(string, ...any), prefix string) *routeView {
	return &routeView{
		sink:     sink,
		table:    table,
		relist:   relist,
		logf:     logf,
		prefix:   prefix,
		stats:    newCounters(viewNames, skipNames[1:]),
		links:    newLinkTable(),
		cands:    map[netip.Prefix][]routeCand{},
		nexthops: map[uint32]knexthop{},
		users:    map[uint32]map[netip.Prefix]struct{}{},
		groups:   map[uint32]map[uint32]struct{}{},
		routes:   map[netip.Prefix]entry.Route{},
		dirty:    map[netip.Prefix]struct{}{},
	}
}

// reset forgets the source's routes and nexthop objects before a fresh
// read of them; what the sink was told stays, so that the next flush
// gives it only the differences.
func (v *routeView) reset() {
	v.touchAll()
	v.cands = make(map[netip.Prefix][]routeCand, len(v.cands))
	v.nexthops = make(map[uint32]knexthop, len(v.nexthops))
	v.users = make(map[uint32]map[netip.Prefix]struct{}, len(v.users))
	v.groups = make(map[uint32]map[uint32]struct{}, len(v.groups))
}

// keyedRoute says whether r belongs to the table the view follows,
// counting it if not.
func (v *routeView) keyedRoute(r *kroute) bool {
	if r.family != unix.AF_INET && r.family != unix.AF_INET6 {
		return false
	}
	if k := keyed(r, v.table); k != importable {
		v.skipped(k, r.dst)
		return false
	}
	return true
}

// skipped counts a route of the source for p that rtm cannot hold, by
// kind, and logs the first of each kind a user may have meant rtm to take
// (skipWhy): a table that lacks routes its source has says why once, and
// the counter counts the rest.
func (v *routeView) skipped(k skipKind, p netip.Prefix) {
	v.stats.inc(skipIndex(k))
	if why := skipWhy[k]; why != "" && !v.told[k] {
		v.told[k] = true
		v.logf("%s skipped: %s; others like it are counted only (%s%s in show stats)", p, why, v.prefix, skipNames[k])
	}
}

// inTable is keyedRoute without counting, for deletes.
func (v *routeView) inTable(r *kroute) bool {
	return (r.family == unix.AF_INET || r.family == unix.AF_INET6) && keyed(r, v.table) == importable
}

// count counts a route of the source that rtm cannot hold, by kind; one
// that uses a nexthop object is judged by the object as it is now.
func (v *routeView) count(p netip.Prefix, c routeCand, family uint8) {
	k := c.kind
	if k == importable && c.nhid != 0 {
		_, _, k = v.resolve(c.nhid, family)
	}
	if k != importable {
		v.skipped(k, p)
	}
}

// setCands replaces the candidates of p, keeping the index of which
// prefixes use which nexthop object.
func (v *routeView) setCands(p netip.Prefix, cs []routeCand) {
	for _, c := range v.cands[p] {
		if c.nhid != 0 {
			if u := v.users[c.nhid]; u != nil {
				delete(u, p)
				if len(u) == 0 {
					delete(v.users, c.nhid)
				}
			}
		}
	}
	if len(cs) == 0 {
		delete(v.cands, p)
	} else {
		v.cands[p] = cs
	}
	for _, c := range cs {
		if c.nhid != 0 {
			u := v.users[c.nhid]
			if u == nil {
				u = map[netip.Prefix]struct{}{}
				v.users[c.nhid] = u
			}
			u[p] = struct{}{}
		}
	}
	v.dirty[p] = struct{}{}
}

// addRoute applies a route of a dump or an RTM_NEWROUTE notification
// with its flags (a dump entry has none).
func (v *routeView) addRoute(r *kroute, nlflags uint16) {
	if !v.keyedRoute(r) {
		return
	}
	c := candOf(r)
	v.count(r.dst, c, r.family)
	v.setCands(r.dst, addCand(v.cands[r.dst], c, r.family, nlflags))
}

// deleteRoute applies an RTM_DELROUTE notification; diverged says the
// view may no longer match the kernel (see delCand).
func (v *routeView) deleteRoute(r *kroute) (diverged bool) {
	if !v.inTable(r) {
		return false
	}
	cs, diverged := delCand(v.cands[r.dst], candOf(r), r.family)
	v.setCands(r.dst, cs)
	return diverged
}

// selectRoute applies a route zebra selected (FPM): zebra sends one route
// per prefix and table, so it replaces whatever the view held for the
// prefix. It reports whether the route is of the followed table.
func (v *routeView) selectRoute(r *kroute) bool {
	if !v.keyedRoute(r) {
		return false
	}
	c := candOf(r)
	v.count(r.dst, c, r.family)
	v.setCands(r.dst, []routeCand{c})
	return true
}

// withdrawRoute applies zebra's delete of its route for r.dst.
func (v *routeView) withdrawRoute(r *kroute) bool {
	if !v.inTable(r) {
		return false
	}
	v.setCands(r.dst, nil)
	return true
}

// setNexthop applies a nexthop object of a dump or an RTM_NEWNEXTHOP
// (which replaces an object of the same id).
func (v *routeView) setNexthop(nh knexthop) {
	if old, ok := v.nexthops[nh.id]; ok {
		v.leaveGroups(old)
	}
	v.nexthops[nh.id] = nh
	for _, m := range nh.group {
		g := v.groups[m]
		if g == nil {
			g = map[uint32]struct{}{}
			v.groups[m] = g
		}
		g[nh.id] = struct{}{}
	}
	v.touchUsers(nh.id)
	v.stats.set(vNexthops, uint64(len(v.nexthops)))
}

// deleteNexthop applies RTM_DELNEXTHOP. The kernel deletes the routes
// that use the object with it, without a notification for each IPv4
// route, and takes it out of the groups that hold it; a group left
// empty goes too.
func (v *routeView) deleteNexthop(id uint32) {
	nh, ok := v.nexthops[id]
	if !ok {
		return
	}
	v.leaveGroups(nh)
	delete(v.nexthops, id)
	for p := range v.users[id] {
		cs := v.cands[p]
		keep := make([]routeCand, 0, len(cs))
		for _, c := range cs {
			if c.nhid != id {
				keep = append(keep, c)
			}
		}
		v.setCands(p, keep)
	}
	for g := range v.groups[id] {
		gnh := v.nexthops[g]
		members := make([]uint32, 0, len(gnh.group))
		for _, m := range gnh.group {
			if m != id {
				members = append(members, m)
			}
		}
		if len(members) == 0 {
			v.deleteNexthop(g)
			continue
		}
		gnh.group = members
		v.nexthops[g] = gnh
		v.touchUsers(g)
	}
	delete(v.groups, id)
	v.stats.set(vNexthops, uint64(len(v.nexthops)))
}

// leaveGroups forgets that nh's members belong to it.
func (v *routeView) leaveGroups(nh knexthop) {
	for _, m := range nh.group {
		if g := v.groups[m]; g != nil {
			delete(g, nh.id)
			if len(g) == 0 {
				delete(v.groups, m)
			}
		}
	}
}

// touchUsers marks the prefixes whose routes use object id, directly or
// through a group.
func (v *routeView) touchUsers(id uint32) {
	for p := range v.users[id] {
		v.dirty[p] = struct{}{}
	}
	for g := range v.groups[id] {
		for p := range v.users[g] {
			v.dirty[p] = struct{}{}
		}
	}
}

// resolve maps a nexthop object onto rtm's model for a route of family:
// a single next hop, or a group of one, is a gateway (or none) and a
// device; a larger group is multipath.
func (v *routeView) resolve(id uint32, family uint8) (gw netip.Addr, oif int32, kind skipKind) {
	nh, ok := v.nexthops[id]
	if !ok {
		return netip.Addr{}, 0, skipUnknownNexthop
	}
	switch len(nh.group) {
	case 0:
	case 1:
		if nh, ok = v.nexthops[nh.group[0]]; !ok || nh.group != nil {
			return netip.Addr{}, 0, skipUnknownNexthop
		}
	default:
		return netip.Addr{}, 0, skipNexthopGroup
	}
	switch {
	case nh.blackhole:
		return netip.Addr{}, 0, skipBlackhole
	case nh.fdb:
		return netip.Addr{}, 0, skipOtherType
	case nh.encap:
		return netip.Addr{}, 0, skipEncap
	case nh.gw.IsValid() && nh.family != family:
		return netip.Addr{}, 0, skipVia
	case nh.onlink && nh.gw.IsValid():
		return netip.Addr{}, 0, skipOnlink
	case nh.oif == 0:
		return netip.Addr{}, 0, skipNoDevice
	case badGateway(nh.gw):
		return netip.Addr{}, 0, skipBadPrefix
	}
	return nh.gw, nh.oif, importable
}

// touchAll marks every prefix.
func (v *routeView) touchAll() {
	for p := range v.cands {
		v.dirty[p] = struct{}{}
	}
	for p := range v.routes {
		v.dirty[p] = struct{}{}
	}
}

// touchDevice marks the prefixes with any route through device i (directly
// or by its nexthop object): their best may change.
func (v *routeView) touchDevice(i int32) {
	for p, cs := range v.cands {
		for _, c := range cs {
			oif := c.oif
			if c.nhid != 0 {
				_, oif, _ = v.resolve(c.nhid, family(p.Addr()))
			}
			if oif == i {
				v.dirty[p] = struct{}{}
				break
			}
		}
	}
}

// exportable returns the route rtm holds for p, if the source's best
// route for p has one.
func (v *routeView) exportable(p netip.Prefix) (entry.Route, bool) {
	best, ok := bestCand(v.cands[p])
	if !ok || best.kind != importable {
		return entry.Route{}, false
	}
	gw, oif := best.gw, best.oif
	if best.nhid != 0 {
		var k skipKind
		if gw, oif, k = v.resolve(best.nhid, family(p.Addr())); k != importable {
			return entry.Route{}, false
		}
	}
	name, ok := v.deviceName(oif)
	if !ok {
		v.skipped(skipUnknownDevice, p)
		return entry.Route{}, false
	}
	if entry.CheckIfName(name) != nil {
		v.skipped(skipBadDevice, p)
		return entry.Route{}, false
	}
	return entry.Route{Prefix: p, Gateway: gw, Dev: name}, true
}

// deviceName resolves an interface index, re-listing the devices once on
// a miss (an event may have been lost).
func (v *routeView) deviceName(i int32) (string, bool) {
	if name, ok := v.links.name(i); ok {
		return name, true
	}
	if v.missing[i] {
		return "", false
	}
	if v.missing == nil {
		v.missing = map[int32]bool{}
	}
	v.missing[i] = true
	links, err := v.relist()
	if err != nil {
		v.stats.inc(vNetlinkErrors)
		return "", false
	}
	for _, l := range links {
		v.links.set(l)
	}
	return v.links.name(i)
}

// linkEvent records a device change; a new or renamed device renames
// the routes through it. It reports whether the device went down or
// away, which takes the kernel's routes through it with it.
func (v *routeView) linkEvent(l klink, add bool) (lost bool) {
	clear(v.missing)
	if !add {
		v.links.remove(l.index)
		v.touchDevice(l.index)
		return true
	}
	old, had := v.links.set(l)
	if !had || old.name != l.name {
		v.touchDevice(l.index)
	}
	return had && old.up && l.flags&unix.IFF_UP == 0
}

// held says whether the sink holds r already (see current).
func (v *routeView) held(r entry.Route) bool {
	now, ok := v.current(r.Prefix)
	return ok && now == r
}

// flush brings the sink in line with the view for every dirty prefix.
func (v *routeView) flush() {
	for p := range v.dirty {
		v.refreshRoute(p)
	}
	clear(v.dirty)
}

// refreshRoute brings the sink's route for p in line with the source.
func (v *routeView) refreshRoute(p netip.Prefix) {
	want, ok := v.exportable(p)
	have, had := v.routes[p]
	switch {
	case ok && !had && v.current != nil && v.held(want):
		v.routes[p] = want
	case ok && (!had || have != want):
		if err := v.sink.Apply(entry.RouteChange(entry.Replace, want)); err != nil {
			v.sinkError("set route %s: %v", want, err)
			return
		}
		v.routes[p] = want
		v.stats.inc(vRouteUpdates)
	case !ok && had:
		if err := v.sink.Apply(entry.RouteChange(entry.Delete, entry.Route{Prefix: p})); err != nil && !errors.Is(err, entry.ErrNotFound) {
			v.sinkError("delete route %s: %v", p, err)
			return
		}
		delete(v.routes, p)
		v.stats.inc(vRouteUpdates)
	default:
		return
	}
	v.stats.set(vRoutes, uint64(len(v.routes)))
}

// sinkError counts a refused change and logs the 1st, 2nd, 4th, 8th...
// so a sink that refuses everything cannot flood the log.
func (v *routeView) sinkError(format string, args ...any) {
	v.stats.inc(vSinkErrors)
	if n := v.stats.get(vSinkErrors); n&(n-1) == 0 {
		v.logf("sink refused (%d so far): "+format, append([]any{n}, args...)...)
	}
}
