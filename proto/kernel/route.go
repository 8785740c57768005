package kernel

import (
	"net/netip"
	"slices"

	"rtm/store/entry"

	"golang.org/x/sys/unix"
)

// skipKind says why a kernel route has no place in rtm's model, which
// holds one unicast next hop (a gateway, or none for a connected route)
// and a device per prefix.
type skipKind uint8

const (
	importable skipKind = iota
	// Not rtm's key space at all: such routes are counted and forgotten.
	skipCached     // RTM_F_CLONED: a cache or exception entry, not a route
	skipOtherTable // not the table the importer follows
	skipTOS        // IPv4 TOS-specific route: a second key for the prefix
	skipSource     // IPv6 source-specific route (from ...): likewise
	skipBadPrefix  // prefix rtm refuses (e.g. IPv4-mapped IPv6)
	// Routes that hold their prefix in the kernel but that rtm cannot
	// express: they are kept as candidates (see routeCands) so that they
	// hide a worse route of the same prefix, as they do in the kernel.
	skipBlackhole
	skipUnreachable
	skipProhibit
	skipLocal
	skipBroadcast
	skipAnycast
	skipMulticast // RTN_MULTICAST, or an IPv6 prefix inside ff00::/8
	skipThrow
	skipOtherType // nat, xresolve and types added after this was written
	skipMultipath
	skipNexthopGroup   // uses a nexthop object that is a group of several (ECMP)
	skipUnknownNexthop // uses a nexthop object the importer has not seen (yet)
	skipEncap          // lightweight tunnel (MPLS, SRv6, BPF, ...)
	skipVia            // next hop of another address family (RFC 5549)
	skipOnlink         // a gateway taken as on the link whatever its subnet (onlink)
	skipNoDevice
	skipLinkLocal // IPv6 prefix inside fe80::/10: one per link, keyed by device in the kernel
	skipUnknownDevice
	skipBadDevice // a device name rtm refuses (entry.CheckIfName): ',' or a control character
	numSkipKinds
)

var skipNames = [numSkipKinds]string{
	importable:         "",
	skipCached:         "skipped_cached",
	skipOtherTable:     "skipped_other_table",
	skipTOS:            "skipped_tos",
	skipSource:         "skipped_source",
	skipBadPrefix:      "skipped_bad_prefix",
	skipBlackhole:      "skipped_blackhole",
	skipUnreachable:    "skipped_unreachable",
	skipProhibit:       "skipped_prohibit",
	skipLocal:          "skipped_local",
	skipBroadcast:      "skipped_broadcast",
	skipAnycast:        "skipped_anycast",
	skipMulticast:      "skipped_multicast",
	skipThrow:          "skipped_throw",
	skipOtherType:      "skipped_other_type",
	skipMultipath:      "skipped_multipath",
	skipNexthopGroup:   "skipped_nexthop_group",
	skipUnknownNexthop: "skipped_unknown_nexthop",
	skipEncap:          "skipped_encap",
	skipVia:            "skipped_via",
	skipOnlink:         "skipped_onlink",
	skipNoDevice:       "skipped_no_device",
	skipLinkLocal:      "skipped_link_local",
	skipUnknownDevice:  "skipped_unknown_device",
	skipBadDevice:      "skipped_bad_device_name",
}

// skipWhy says, for the kinds of route a user may have meant rtm to take,
// why rtm cannot hold one: the first of each is logged. The others are
// every kernel's own (local, broadcast, link-local, cached) or pass
// (a device or nexthop object not seen yet), and are only counted.
var skipWhy = [numSkipKinds]string{
	skipTOS:          "a route for one TOS, which rtm's routes have no field for",
	skipSource:       "a route for one source prefix, which rtm's routes have no field for",
	skipBlackhole:    "a blackhole route, which has no next hop",
	skipUnreachable:  "an unreachable route, which has no next hop",
	skipProhibit:     "a prohibit route, which has no next hop",
	skipMultipath:    "a route of several next hops (ECMP), and an rtm route has one",
	skipNexthopGroup: "a route through a nexthop group of several next hops (ECMP), and an rtm route has one",
	skipEncap:        "a route with a lightweight tunnel (MPLS, SRv6, BPF), which an rtm route cannot carry",
	skipVia:          "a route through a gateway of the other address family (RFC 5549), which an rtm route cannot hold",
	skipOnlink:       "a route with an onlink gateway, which a kernel refuses without the flag rtm's routes lack",
	skipBadDevice:    "a route through a device whose name holds ',' or a control character, which rtm's lines cannot carry",
}

var (
	linkLocal6 = netip.MustParsePrefix("fe80::/10")
	multicast6 = netip.MustParsePrefix("ff00::/8")
)

// keyed reports whether r belongs to rtm's key space for table: the
// routes of that table that compete for a prefix the way rtm keys it.
// The kind says why not.
func keyed(r *kroute, table uint32) skipKind {
	switch {
	case r.flags&unix.RTM_F_CLONED != 0:
		return skipCached
	case r.table != table:
		return skipOtherTable
	case r.tos != 0:
		return skipTOS
	case r.srcLen != 0:
		return skipSource
	case entry.CheckPrefix(r.dst) != nil:
		return skipBadPrefix
	}
	return importable
}

// kindOf says whether a keyed route maps onto a entry.Route.
func kindOf(r *kroute) skipKind {
	switch r.typ {
	case unix.RTN_UNICAST:
	case unix.RTN_BLACKHOLE:
		return skipBlackhole
	case unix.RTN_UNREACHABLE:
		return skipUnreachable
	case unix.RTN_PROHIBIT:
		return skipProhibit
	case unix.RTN_LOCAL:
		return skipLocal
	case unix.RTN_BROADCAST:
		return skipBroadcast
	case unix.RTN_ANYCAST:
		return skipAnycast
	case unix.RTN_MULTICAST:
		return skipMulticast
	case unix.RTN_THROW:
		return skipThrow
	default:
		return skipOtherType
	}
	switch {
	case r.family == unix.AF_INET6 && inside(r.dst, linkLocal6):
		return skipLinkLocal
	case r.family == unix.AF_INET6 && inside(r.dst, multicast6):
		return skipMulticast
	case r.nhid != 0:
		// The object decides (routeView.resolve): it can change under
		// the route without a route notification.
		return importable
	case r.nhops > 1:
		return skipMultipath
	case r.encap:
		return skipEncap
	case r.via:
		return skipVia
	case r.onlink && r.gw.IsValid():
		// rtm's route has no such flag: a mirror would install the
		// gateway without it, and the kernel refuses one off the
		// device's subnets. (Without a gateway the flag means nothing.)
		return skipOnlink
	case r.oif == 0:
		return skipNoDevice
	case badGateway(r.gw):
		return skipBadPrefix
	}
	return importable
}

// badGateway says whether gw is a gateway rtm refuses (zoned, IPv4-mapped,
// or one no kernel forwards through); the zero Addr is none.
func badGateway(gw netip.Addr) bool {
	return gw.IsValid() && (entry.CheckIP(gw) != nil || entry.CheckGateway(gw) != nil)
}

// inside reports whether p lies within q.
func inside(p, q netip.Prefix) bool { return p.Bits() >= q.Bits() && q.Contains(p.Addr()) }

// routeCand is one kernel route for a prefix in the followed table. The
// kernel may hold several (different metrics; IPv4 aliases appended with
// `ip route append`; IPv6 device routes); all fields together identify one.
type routeCand struct {
	metric uint32
	typ    uint8
	oif    int32
	gw     netip.Addr
	nhops  uint16
	nhid   uint32
	kind   skipKind
}

// candOf is the candidate of r. A route that uses a nexthop object is
// the object's id alone: the kernel may add the object's next hops to
// the message (net.ipv4.nexthop_compat_mode), as they were when it was
// sent, and the object can change since.
func candOf(r *kroute) routeCand {
	if r.nhid != 0 {
		return routeCand{metric: r.metric, typ: r.typ, nhid: r.nhid, kind: kindOf(r)}
	}
	return routeCand{metric: r.metric, typ: r.typ, oif: r.oif, gw: r.gw, nhops: r.nhops, kind: kindOf(r)}
}

// addCand applies RTM_NEWROUTE to the candidates of one prefix, keeping
// them in the kernel's order, since the first of a metric is the one it
// forwards with. nlflags are the notification's flags; a dump entry has
// none, and a dump lists the routes in order. The kernel marks what it
// did (checked on 6.x):
//   - NLM_F_REPLACE: it replaced the first route of the metric; in IPv6,
//     the first that is as fit for ECMP as the new one (a gateway route
//     or group for a gateway route, any other for any other), the whole
//     group if it is one;
//   - NLM_F_EXCL: it held no route of the metric, so one here is older
//     state (an event queued before a dump, replayed after it);
//   - NLM_F_APPEND: it added the route after those of its metric;
//   - NLM_F_CREATE alone: an IPv4 route went before them (ip route
//     prepend); an IPv6 route went after them, as IPv6 inserts.
//
// An IPv6 route with a gateway added beside another of its metric joins
// it as an ECMP sibling, and the kernel then sends the whole group (a
// multipath route, whatever the flags): it takes the first sibling's
// place, where a dump lists it.
func addCand(cs []routeCand, c routeCand, family uint8, nlflags uint16) []routeCand {
	if nlflags&unix.NLM_F_REPLACE != 0 {
		i := slices.IndexFunc(cs, func(x routeCand) bool {
			return x.metric == c.metric && (family != unix.AF_INET6 || x.sibling() == c.sibling())
		})
		if i < 0 {
			return append(cs, c)
		}
		cs[i] = c
		return cs
	}
	if slices.Contains(cs, c) {
		return cs // the kernel refuses exact duplicates: this one is known
	}
	switch {
	case nlflags&unix.NLM_F_EXCL != 0:
		cs = slices.DeleteFunc(cs, func(x routeCand) bool { return x.metric == c.metric })
	case family == unix.AF_INET6 && c.nhops > 1 && c.nhid == 0:
		joined := func(x routeCand) bool { return x.metric == c.metric && x.sibling() }
		if i := slices.IndexFunc(cs, joined); i >= 0 {
			cs[i] = c
			return append(cs[:i+1], slices.DeleteFunc(cs[i+1:], joined)...)
		}
	case family == unix.AF_INET && nlflags&(unix.NLM_F_CREATE|unix.NLM_F_APPEND) == unix.NLM_F_CREATE:
		if i := slices.IndexFunc(cs, func(x routeCand) bool { return x.metric == c.metric }); i >= 0 {
			return slices.Insert(cs, i, c)
		}
	}
	return append(cs, c)
}

// sibling reports whether an IPv6 route can be part of an ECMP group: a
// unicast route through a gateway, or the group itself. (Routes through
// nexthop objects never merge.)
func (c routeCand) sibling() bool {
	return c.typ == unix.RTN_UNICAST && c.nhid == 0 && (c.gw.IsValid() || c.nhops > 1)
}

// delCand applies RTM_DELROUTE. diverged says the candidates may no
// longer match the kernel, which only an IPv6 multipath route can cause:
// deleting one ECMP sibling leaves the others under a notification that
// may name the whole group or one hop. A delete of a route not held is
// an event replayed after a dump that already lacked it.
func delCand(cs []routeCand, c routeCand, family uint8) (_ []routeCand, diverged bool) {
	for i := range cs {
		if cs[i] == c {
			return append(cs[:i], cs[i+1:]...), family == unix.AF_INET6 && c.nhops > 1
		}
	}
	if family == unix.AF_INET6 {
		for _, x := range cs {
			if x.metric == c.metric && (x.nhops > 1 || c.nhops > 1) {
				return cs, true
			}
		}
	}
	return cs, false
}

// bestCand is the route the kernel forwards with: lowest metric, the
// first of equals (the kernel's first alias).
func bestCand(cs []routeCand) (routeCand, bool) {
	if len(cs) == 0 {
		return routeCand{}, false
	}
	b := cs[0]
	for _, c := range cs[1:] {
		if c.metric < b.metric {
			b = c
		}
	}
	return b, true
}

// routeString prints a route like `ip route`, connected or not.
func routeString(r entry.Route) string {
	if r.Gateway.IsValid() {
		return r.String()
	}
	return r.Prefix.String() + " dev " + r.Dev
}
