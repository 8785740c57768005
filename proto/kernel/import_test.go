package kernel

import (
	"fmt"
	"maps"
	"net/netip"
	"strings"
	"testing"
	"time"

	"rtm/repl/rtmtest"
	"rtm/store/entry"
)

// sinkHas waits until the sink holds exactly routes and macs.
func sinkHas(t *testing.T, s *mapSink, routes map[netip.Prefix]entry.Route, macs map[entry.MAC]netip.Addr) {
	t.Helper()
	waitFor(t, 5*time.Second, "the sink to match", func() (bool, string) {
		r, m := s.snapshot()
		if d := diffRoutes(r, routes); d != "" {
			return false, d
		}
		if !maps.Equal(m, macs) {
			return false, fmt.Sprintf("MACs %v, want %v", m, macs)
		}
		return true, ""
	})
}

// sinkEqualsKernel waits, as long as a burst may take, until the sink's
// routes are want, read from the kernel.
func sinkEqualsKernel(t *testing.T, s *mapSink, want map[netip.Prefix]entry.Route) {
	t.Helper()
	waitFor(t, 30*time.Second, "the sink to equal the kernel", func() (bool, string) {
		got, _ := s.snapshot()
		if d := diffRoutes(got, want); d != "" {
			return false, fmt.Sprintf("%d routes in the sink, %d in the kernel: %s", len(got), len(want), d)
		}
		return true, ""
	})
}

func TestImportDumpAndEvents(t *testing.T) {
	newNS(t)
	veth(t, "veth0", "veth1")
	veth(t, "veth2", "veth3")
	ip(t, "addr", "add", "192.0.2.1/24", "dev", "veth0")
	ip(t, "-6", "addr", "add", "2001:db8::1/64", "dev", "veth0", "nodad")
	ip(t, "route", "add", "198.51.100.0/24", "via", "192.0.2.254", "dev", "veth0")
	ip(t, "-6", "route", "add", "2001:db8:1::/48", "via", "2001:db8::fe", "dev", "veth0")
	ip(t, "route", "add", "203.0.113.0/26", "dev", "veth2")
	// Kinds rtm's model cannot hold.
	ip(t, "route", "add", "blackhole", "203.0.113.64/26")
	ip(t, "route", "add", "unreachable", "203.0.113.128/26")
	ip(t, "route", "add", "prohibit", "203.0.113.192/27")
	ip(t, "route", "add", "203.0.113.224/27", "nexthop", "via", "192.0.2.2", "dev", "veth0", "nexthop", "via", "192.0.2.3", "dev", "veth0")
	ip(t, "route", "add", "198.51.100.0/25", "via", "192.0.2.9", "dev", "veth0", "table", "100")
	ip(t, "route", "add", "100.64.0.0/24", "via", "10.9.9.9", "dev", "veth0", "onlink")
	// Without a gateway the flag means nothing: a connected route.
	ip(t, "-6", "route", "add", "2001:db8:7::/48", "dev", "veth0", "onlink")
	// Neighbours: a dual-stack host (one MAC, two IPs), states that are
	// and are not MAC entries.
	ip(t, "neigh", "add", "192.0.2.5", "lladdr", "02:00:00:00:00:05", "dev", "veth0", "nud", "permanent")
	ip(t, "neigh", "add", "192.0.2.6", "lladdr", "02:00:00:00:00:06", "dev", "veth0", "nud", "stale")
	ip(t, "neigh", "add", "2001:db8::6", "lladdr", "02:00:00:00:00:06", "dev", "veth0", "nud", "permanent")
	ip(t, "neigh", "add", "192.0.2.7", "dev", "veth0", "nud", "failed")
	ip(t, "neigh", "add", "192.0.2.8", "lladdr", "02:00:00:00:00:08", "dev", "veth0", "nud", "noarp")

	sink := newMapSink()
	var logged logLines
	im := startImporter(t, sink, ImporterOptions{Logf: logged.logf})
	routes := map[netip.Prefix]entry.Route{}
	for _, r := range []entry.Route{
		route("192.0.2.0/24", "", "veth0"),
		route("198.51.100.0/24", "192.0.2.254", "veth0"),
		route("203.0.113.0/26", "", "veth2"),
		route("2001:db8::/64", "", "veth0"),
		route("2001:db8:1::/48", "2001:db8::fe", "veth0"),
		route("2001:db8:7::/48", "", "veth0"),
	} {
		routes[r.Prefix] = r
	}
	macs := map[entry.MAC]netip.Addr{
		mustMAC("02:00:00:00:00:05"): mustAddr("192.0.2.5"),
		mustMAC("02:00:00:00:00:06"): mustAddr("192.0.2.6"), // IPv4 wins over 2001:db8::6
		mustMAC("02:00:00:00:00:08"): mustAddr("192.0.2.8"),
	}
	sinkHas(t, sink, routes, macs)
	st := im.Stats()
	for _, name := range []string{"skipped_blackhole", "skipped_unreachable", "skipped_prohibit",
		"skipped_multipath", "skipped_other_table", "skipped_onlink"} {
		if stat(st, name) == 0 {
			t.Errorf("%s = 0 after the dump, want > 0", name)
		}
	}
	// The first route of each kind a user may have meant to import is
	// named, once; the kernel's own are not (table local's, say).
	all := logged.String()
	for _, want := range []string{
		"kernel import: 203.0.113.224/27 skipped: a route of several next hops (ECMP), and an rtm route has one; others like it are counted only (kernel_skipped_multipath in show stats)",
		"kernel import: 203.0.113.64/26 skipped: a blackhole route",
		"kernel import: 100.64.0.0/24 skipped: a route with an onlink gateway",
	} {
		if strings.Count(all, want) != 1 {
			t.Errorf("the log names %q %d times, want once:\n%s", want, strings.Count(all, want), all)
		}
	}
	if strings.Contains(all, "skipped_other_table") || strings.Contains(all, "skipped_local") {
		t.Errorf("the log names routes of kinds every kernel has:\n%s", all)
	}
	if n := stat(st, "neigh_conflicts"); n != 1 {
		t.Errorf("neigh_conflicts = %d, want 1 (02:00:00:00:00:06)", n)
	}
	if n := stat(st, "routes_imported"); n != uint64(len(routes)) {
		t.Errorf("routes_imported = %d, want %d", n, len(routes))
	}

	// Live changes: a connected route, an IPv6 device route, a replaced
	// gateway, a delete, a worse metric that takes over when the better
	// one goes, and a skipped kind.
	blackholes := stat(st, "skipped_blackhole")
	ip(t, "route", "add", "192.0.2.128/25", "dev", "veth2")
	ip(t, "-6", "route", "add", "2001:db8:2::/48", "dev", "veth2")
	ip(t, "route", "replace", "198.51.100.0/24", "via", "192.0.2.253", "dev", "veth0")
	ip(t, "-6", "route", "del", "2001:db8:1::/48")
	ip(t, "route", "add", "203.0.113.0/26", "via", "192.0.2.10", "dev", "veth0", "metric", "50")
	ip(t, "route", "add", "blackhole", "198.51.100.128/25")
	routes[mustPrefix("192.0.2.128/25")] = route("192.0.2.128/25", "", "veth2")
	routes[mustPrefix("2001:db8:2::/48")] = route("2001:db8:2::/48", "", "veth2")
	routes[mustPrefix("198.51.100.0/24")] = route("198.51.100.0/24", "192.0.2.253", "veth0")
	delete(routes, mustPrefix("2001:db8:1::/48"))
	sinkHas(t, sink, routes, macs)
	ip(t, "route", "del", "203.0.113.0/26", "dev", "veth2", "metric", "0")
	routes[mustPrefix("203.0.113.0/26")] = route("203.0.113.0/26", "192.0.2.10", "veth0")
	sinkHas(t, sink, routes, macs)
	if n := stat(im.Stats(), "skipped_blackhole"); n != blackholes+1 {
		t.Errorf("skipped_blackhole = %d after a live blackhole, want %d", n, blackholes+1)
	}

	// Neighbours: the next claimant takes a MAC over when the winner
	// goes; a failed state deletes; a new entry appears.
	ip(t, "neigh", "del", "192.0.2.6", "dev", "veth0")
	macs[mustMAC("02:00:00:00:00:06")] = mustAddr("2001:db8::6")
	ip(t, "neigh", "change", "192.0.2.5", "dev", "veth0", "nud", "failed")
	delete(macs, mustMAC("02:00:00:00:00:05"))
	ip(t, "neigh", "add", "203.0.113.9", "lladdr", "02:00:00:00:00:09", "dev", "veth2", "nud", "reachable")
	macs[mustMAC("02:00:00:00:00:09")] = mustAddr("203.0.113.9")
	sinkHas(t, sink, routes, macs)
	if n := stat(im.Stats(), "neigh_conflicts"); n != 0 {
		t.Errorf("neigh_conflicts = %d after the conflict went, want 0", n)
	}

	// A device that goes down loses its routes without a notification per
	// IPv4 route; the importer re-reads the kernel.
	resyncs := stat(im.Stats(), "resyncs")
	ip(t, "link", "set", "veth2", "down")
	delete(routes, mustPrefix("192.0.2.128/25"))
	delete(routes, mustPrefix("2001:db8:2::/48"))
	delete(macs, mustMAC("02:00:00:00:00:09"))
	sinkHas(t, sink, routes, macs)
	if n := stat(im.Stats(), "resyncs"); n <= resyncs {
		t.Errorf("resyncs = %d after a device went down, want > %d", n, resyncs)
	}
}

func TestImportPreferIPv6(t *testing.T) {
	newNS(t)
	veth(t, "veth0", "veth1")
	ip(t, "neigh", "add", "192.0.2.6", "lladdr", "02:00:00:00:00:06", "dev", "veth0", "nud", "permanent")
	ip(t, "neigh", "add", "2001:db8::7", "lladdr", "02:00:00:00:00:06", "dev", "veth0", "nud", "permanent")
	ip(t, "neigh", "add", "2001:db8::6", "lladdr", "02:00:00:00:00:06", "dev", "veth0", "nud", "permanent")
	sink := newMapSink()
	startImporter(t, sink, ImporterOptions{PreferFamily: 6})
	sinkHas(t, sink, map[netip.Prefix]entry.Route{}, map[entry.MAC]netip.Addr{
		mustMAC("02:00:00:00:00:06"): mustAddr("2001:db8::6"), // IPv6, then the lowest
	})
}

// TestImportOverflow adds and deletes 10,000 routes (100,000 with
// RTM_LONG=1) with ip -batch while an importer with a tiny receive buffer
// follows: the socket overflows, the importer re-reads the kernel, and
// the sink ends equal to it. A 4 KiB buffer holds a few dozen messages,
// but an importer that happens to keep pace with ip never overflows: so
// the sink holds the importer up during the adds (it reads no event
// while a change waits for the sink), and the socket overflows for sure.
// The changes after them it follows at its own pace.
func TestImportOverflow(t *testing.T) {
	newNS(t)
	veth(t, "veth0", "veth1")
	ip(t, "route", "add", "192.0.2.0/24", "dev", "veth0")
	sink := newMapSink()
	im := startImporter(t, sink, ImporterOptions{RecvBuffer: 4096})
	n := rtmtest.Size(10_000, 100_000)
	adds := make([]string, n)
	for i := range adds {
		adds[i] = fmt.Sprintf("route add 10.%d.%d.%d/32 via 192.0.2.1 dev veth0", i>>16, i>>8&0xff, i&0xff)
	}
	sink.mu.Lock()
	ipBatch(t, adds)
	sink.mu.Unlock()
	// Delete every third one and move every seventh to another gateway.
	var changes []string
	for i := 0; i < n; i += 3 {
		changes = append(changes, fmt.Sprintf("route del 10.%d.%d.%d/32", i>>16, i>>8&0xff, i&0xff))
	}
	for i := 1; i < n; i += 7 {
		if i%3 != 0 {
			changes = append(changes, fmt.Sprintf("route replace 10.%d.%d.%d/32 via 192.0.2.2 dev veth0", i>>16, i>>8&0xff, i&0xff))
		}
	}
	ipBatch(t, changes)

	want := routeSet(t, ipRoutes(t, "table", "main"))
	if len(want) != n-(n+2)/3+1 {
		t.Fatalf("kernel holds %d routes, want %d", len(want), n-(n+2)/3+1)
	}
	sinkEqualsKernel(t, sink, want)
	st := im.Stats()
	if stat(st, "overflows") == 0 || stat(st, "resyncs") < 2 {
		t.Errorf("overflows = %d, resyncs = %d: the tiny buffer should have overflowed and forced a resync",
			stat(st, "overflows"), stat(st, "resyncs"))
	}
	t.Logf("overflows %d, resyncs %d", stat(st, "overflows"), stat(st, "resyncs"))
}

// TestImportAliasOrder: of several routes of one prefix and metric, the
// kernel forwards with the first, and so does rtm, through a dump, a
// re-read, `ip route prepend` and `append`, and IPv6 routes that join as
// ECMP siblings (a multipath route, which rtm's model cannot hold).
func TestImportAliasOrder(t *testing.T) {
	newNS(t)
	veth(t, "veth0", "veth1")
	ip(t, "link", "set", "veth1", "up")
	ip(t, "addr", "add", "192.0.2.1/24", "dev", "veth0")
	ip(t, "addr", "add", "198.51.100.1/24", "dev", "veth1")
	ip(t, "-6", "addr", "add", "2001:db8:1::1/64", "dev", "veth0", "nodad")
	ip(t, "-6", "addr", "add", "2001:db8:2::1/64", "dev", "veth1", "nodad")
	// Before the importer starts, so that its dump lists both.
	ip(t, "route", "add", "203.0.113.192/26", "via", "192.0.2.77", "dev", "veth0")
	ip(t, "route", "append", "203.0.113.192/26", "via", "198.51.100.77", "dev", "veth1")
	routes := map[netip.Prefix]entry.Route{}
	for _, r := range []entry.Route{
		route("192.0.2.0/24", "", "veth0"),
		route("198.51.100.0/24", "", "veth1"),
		route("2001:db8:1::/64", "", "veth0"),
		route("2001:db8:2::/64", "", "veth1"),
		route("203.0.113.192/26", "192.0.2.77", "veth0"),
	} {
		routes[r.Prefix] = r
	}
	set := func(r entry.Route) { routes[r.Prefix] = r }
	noMACs := map[entry.MAC]netip.Addr{}
	sink := newMapSink()
	im := startImporter(t, sink, ImporterOptions{})
	sinkHas(t, sink, routes, noMACs)

	// A re-read (an address deleted) lists them in the same order.
	resyncs := stat(im.Stats(), "resyncs")
	ip(t, "addr", "add", "203.0.113.1/32", "dev", "veth1")
	ip(t, "addr", "del", "203.0.113.1/32", "dev", "veth1")
	waitFor(t, 5*time.Second, "a re-read", func() (bool, string) {
		n := stat(im.Stats(), "resyncs")
		return n > resyncs, fmt.Sprintf("resyncs %d", n)
	})
	sinkHas(t, sink, routes, noMACs)

	// prepend puts a route before the first; deleting it exposes the old one.
	ip(t, "route", "add", "198.51.100.176/28", "via", "192.0.2.88", "dev", "veth0")
	ip(t, "route", "prepend", "198.51.100.176/28", "via", "198.51.100.88", "dev", "veth1")
	set(route("198.51.100.176/28", "198.51.100.88", "veth1"))
	sinkHas(t, sink, routes, noMACs)
	ip(t, "route", "del", "198.51.100.176/28", "via", "198.51.100.88", "dev", "veth1")
	set(route("198.51.100.176/28", "192.0.2.88", "veth0"))
	sinkHas(t, sink, routes, noMACs)

	// An IPv6 gateway appended (or prepended) makes the route multipath:
	// hidden, as the kernel no longer forwards by one gateway. Deleting
	// a hop leaves the other.
	for _, add := range []string{"append", "prepend"} {
		ip(t, "-6", "route", "add", "2001:db8:c::/48", "via", "2001:db8:1::10", "dev", "veth0")
		set(route("2001:db8:c::/48", "2001:db8:1::10", "veth0"))
		sinkHas(t, sink, routes, noMACs)
		ip(t, "-6", "route", add, "2001:db8:c::/48", "via", "2001:db8:2::10", "dev", "veth1")
		delete(routes, mustPrefix("2001:db8:c::/48"))
		sinkHas(t, sink, routes, noMACs)
		ip(t, "-6", "route", "del", "2001:db8:c::/48", "via", "2001:db8:1::10", "dev", "veth0")
		set(route("2001:db8:c::/48", "2001:db8:2::10", "veth1"))
		sinkHas(t, sink, routes, noMACs)
		ip(t, "-6", "route", "del", "2001:db8:c::/48")
		delete(routes, mustPrefix("2001:db8:c::/48"))
		sinkHas(t, sink, routes, noMACs)
	}

	// Live as after a re-read: an IPv6 sibling joining a gateway route
	// with a device route of the metric between them (a dump lists the
	// group alone: hidden), and a replace, which takes the gateway route
	// behind a device route, not the device route.
	marks := 0
	reread := func() {
		t.Helper()
		// A route added last: once the sink has it, it has every event
		// before it (the kernel's notifications come in order).
		marks++
		mark := route(fmt.Sprintf("198.51.100.%d/32", 200+marks), "", "veth1")
		ip(t, "route", "add", mark.Prefix.String(), "dev", "veth1")
		set(mark)
		sinkHas(t, sink, routes, noMACs)
		n := stat(im.Stats(), "resyncs")
		ip(t, "addr", "add", "203.0.113.1/32", "dev", "veth1")
		ip(t, "addr", "del", "203.0.113.1/32", "dev", "veth1")
		waitFor(t, 5*time.Second, "a re-read", func() (bool, string) { return stat(im.Stats(), "resyncs") > n, "" })
		sinkHas(t, sink, routes, noMACs)
	}
	ip(t, "-6", "route", "add", "2001:db8:d::/48", "via", "2001:db8:1::10", "dev", "veth0")
	ip(t, "-6", "route", "append", "2001:db8:d::/48", "dev", "veth1")
	ip(t, "-6", "route", "append", "2001:db8:d::/48", "via", "2001:db8:1::11", "dev", "veth0")
	reread()
	ip(t, "-6", "route", "add", "2001:db8:f::/48", "dev", "veth1")
	ip(t, "-6", "route", "append", "2001:db8:f::/48", "via", "2001:db8:1::10", "dev", "veth0")
	ip(t, "-6", "route", "replace", "2001:db8:f::/48", "via", "2001:db8:1::12", "dev", "veth0")
	set(route("2001:db8:f::/48", "", "veth1"))
	reread()
}

// TestImportBadDeviceNames: Linux takes ',' and control characters in a
// device name, rtm does not (a ',' would print lines no replay reads
// back): routes through such a device are skipped and counted.
func TestImportBadDeviceNames(t *testing.T) {
	newNS(t)
	veth(t, "veth0", "a,b")
	ip(t, "link", "set", "a,b", "up")
	veth(t, "c\x01x", "veth1")
	ip(t, "route", "add", "198.51.100.8/29", "dev", "a,b")
	ip(t, "route", "add", "198.51.100.64/29", "dev", "c\x01x")
	ip(t, "route", "add", "198.51.100.72/29", "dev", "veth0")
	sink := newMapSink()
	im := startImporter(t, sink, ImporterOptions{})
	sinkHas(t, sink, map[netip.Prefix]entry.Route{
		mustPrefix("198.51.100.72/29"): route("198.51.100.72/29", "", "veth0"),
	}, map[entry.MAC]netip.Addr{})
	if n := stat(im.Stats(), "skipped_bad_device_name"); n != 2 {
		t.Errorf("skipped_bad_device_name = %d, want 2", n)
	}
}
