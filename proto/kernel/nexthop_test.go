package kernel

import (
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"rtm/repl/rtmtest"
	"rtm/store/entry"
)

// Routes that use kernel nexthop objects (ip nexthop), as FRR installs
// them. A nexthop needs a carrier, so both ends of the veth are up; both
// are in the test's namespace.

// nexthopNS makes the namespace of a nexthop test: veth0 (192.0.2.1/24,
// 2001:db8::1/64) and veth2 with carrier, and the kernel's compatibility
// mode as asked: on, route messages carry the object's next hops too and
// an object's change is announced route by route; off, neither.
func nexthopNS(t *testing.T, compat bool) {
	t.Helper()
	newNS(t)
	veth(t, "veth0", "veth1")
	veth(t, "veth2", "veth3")
	ip(t, "link", "set", "veth1", "up")
	ip(t, "link", "set", "veth3", "up")
	ip(t, "link", "set", "lo", "up") // blackhole nexthops live on lo
	ip(t, "addr", "add", "192.0.2.1/24", "dev", "veth0")
	ip(t, "-6", "addr", "add", "2001:db8::1/64", "dev", "veth0", "nodad")
	mode := "0\n"
	if compat {
		mode = "1\n"
	}
	// /proc/sys/net is the namespace of the thread that opens it: this
	// test's own.
	if err := os.WriteFile("/proc/sys/net/ipv4/nexthop_compat_mode", []byte(mode), 0); err != nil {
		t.Fatalf("set nexthop_compat_mode: %v", err)
	}
}

func compatName(compat bool) string {
	if compat {
		return "compat"
	}
	return "nocompat"
}

// TestImportNexthops: routes with nhid import as their object's next hop;
// a group of several is skipped and counted, a group of one is its
// member; replacing an object changes its routes, deleting it deletes
// them, and a group that loses a member changes too.
func TestImportNexthops(t *testing.T) {
	for _, compat := range []bool{true, false} {
		t.Run(compatName(compat), func(t *testing.T) {
			nexthopNS(t, compat)
			ip(t, "nexthop", "add", "id", "6", "via", "192.0.2.254", "dev", "veth0")
			ip(t, "nexthop", "add", "id", "7", "via", "192.0.2.253", "dev", "veth0")
			ip(t, "nexthop", "add", "id", "8", "group", "6/7")
			ip(t, "nexthop", "add", "id", "9", "dev", "veth2")
			ip(t, "nexthop", "add", "id", "10", "group", "6")
			ip(t, "nexthop", "add", "id", "11", "blackhole")
			ip(t, "nexthop", "add", "id", "16", "via", "2001:db8::fe", "dev", "veth0")
			ip(t, "nexthop", "add", "id", "12", "via", "10.9.9.9", "dev", "veth0", "onlink")
			ip(t, "route", "add", "198.51.100.0/24", "nhid", "6")
			ip(t, "route", "add", "100.64.0.0/24", "nhid", "12")
			ip(t, "route", "add", "198.51.100.0/25", "nhid", "8")
			ip(t, "route", "add", "203.0.113.0/26", "nhid", "9")
			ip(t, "route", "add", "203.0.113.64/26", "nhid", "10")
			ip(t, "route", "add", "203.0.113.128/26", "nhid", "11")
			ip(t, "-6", "route", "add", "2001:db8:1::/48", "nhid", "16")

			sink := newMapSink()
			im := startImporter(t, sink, ImporterOptions{})
			routes := map[netip.Prefix]entry.Route{}
			set := func(rs ...entry.Route) {
				for _, r := range rs {
					routes[r.Prefix] = r
				}
			}
			set(route("192.0.2.0/24", "", "veth0"), route("2001:db8::/64", "", "veth0"),
				route("198.51.100.0/24", "192.0.2.254", "veth0"),
				route("203.0.113.0/26", "", "veth2"),
				route("203.0.113.64/26", "192.0.2.254", "veth0"),
				route("2001:db8:1::/48", "2001:db8::fe", "veth0"))
			sinkHas(t, sink, routes, map[entry.MAC]netip.Addr{})
			// 198.51.100.0/25 goes through a group, 203.0.113.128/26 a
			// blackhole, 100.64.0.0/24 a gateway off the link's subnet.
			checkStats(t, im.Stats(), map[string]uint64{"skipped_nexthop_group": 1, "skipped_blackhole": 1, "skipped_onlink": 1, "nexthops": 8})

			// A replaced object moves its routes, including those of the
			// group of one that holds it.
			ip(t, "nexthop", "replace", "id", "6", "via", "192.0.2.252", "dev", "veth0")
			ip(t, "nexthop", "replace", "id", "16", "via", "2001:db8::fd", "dev", "veth0")
			set(route("198.51.100.0/24", "192.0.2.252", "veth0"), route("203.0.113.64/26", "192.0.2.252", "veth0"),
				route("2001:db8:1::/48", "2001:db8::fd", "veth0"))
			sinkHas(t, sink, routes, map[entry.MAC]netip.Addr{})

			// A group of one that becomes a group of two hides its
			// route; groups that lose a member down to one show theirs.
			ip(t, "nexthop", "replace", "id", "10", "group", "6/7")
			delete(routes, mustPrefix("203.0.113.64/26"))
			sinkHas(t, sink, routes, map[entry.MAC]netip.Addr{})
			ip(t, "nexthop", "del", "id", "7")
			set(route("198.51.100.0/25", "192.0.2.252", "veth0"), route("203.0.113.64/26", "192.0.2.252", "veth0"))
			sinkHas(t, sink, routes, map[entry.MAC]netip.Addr{})

			// Deleting an object deletes every route that uses it,
			// directly or through the groups it leaves empty; the kernel
			// announces none of the IPv4 deletes.
			ip(t, "nexthop", "del", "id", "6")
			ip(t, "nexthop", "del", "id", "16")
			for _, p := range []string{"198.51.100.0/24", "198.51.100.0/25", "203.0.113.64/26", "2001:db8:1::/48"} {
				delete(routes, mustPrefix(p))
			}
			sinkHas(t, sink, routes, map[entry.MAC]netip.Addr{})
			if n := stat(im.Stats(), "nexthops"); n != 3 {
				t.Errorf("nexthops = %d after the deletes, want 3 (dev veth2, blackhole, onlink)", n)
			}
			if d := diffRoutes(routes, importableRoutes(t)); compat && d != "" {
				t.Errorf("rtm's routes differ from the kernel's: %s", d)
			}
		})
	}
}

// TestImportNexthopReplacedUnderRoutes: one object under 1,000 routes is
// replaced; every route changes in the sink, whether the kernel
// announces the routes again (compatibility mode) or not.
func TestImportNexthopReplacedUnderRoutes(t *testing.T) {
	const n = 1000
	for _, compat := range []bool{true, false} {
		t.Run(compatName(compat), func(t *testing.T) {
			nexthopNS(t, compat)
			ip(t, "nexthop", "add", "id", "6", "via", "192.0.2.254", "dev", "veth0")
			want := map[netip.Prefix]entry.Route{mustPrefix("192.0.2.0/24"): route("192.0.2.0/24", "", "veth0"),
				mustPrefix("2001:db8::/64"): route("2001:db8::/64", "", "veth0")}
			lines := make([]string, n)
			for i := range lines {
				p := fmt.Sprintf("2001:db8:%x::/48", i+1)
				lines[i] = "route add " + p + " nhid 6"
				want[mustPrefix(p)] = route(p, "", "veth0") // the gateway is set below
			}
			// IPv6 routes through an IPv4 object are via another family:
			// give the object an IPv6 gateway first.
			ip(t, "nexthop", "replace", "id", "6", "via", "2001:db8::fe", "dev", "veth0")
			ipBatch(t, lines)
			sink := newMapSink()
			startImporter(t, sink, ImporterOptions{})
			for p, r := range want {
				if p.Bits() == 48 {
					r.Gateway = mustAddr("2001:db8::fe")
					want[p] = r
				}
			}
			sinkHas(t, sink, want, map[entry.MAC]netip.Addr{})
			calls := sink.callCount()
			start := time.Now()
			ip(t, "nexthop", "replace", "id", "6", "via", "2001:db8::fd", "dev", "veth0")
			for p, r := range want {
				if p.Bits() == 48 {
					r.Gateway = mustAddr("2001:db8::fd")
					want[p] = r
				}
			}
			sinkHas(t, sink, want, map[entry.MAC]netip.Addr{})
			t.Logf("%d routes moved in %v with %d sink calls", n, time.Since(start), sink.callCount()-calls)
		})
	}
}

// TestImportNexthopBurst: thousands of objects and routes added,
// replaced, regrouped and deleted with ip -batch while an importer with a
// tiny receive buffer follows: its socket overflows, it reads the kernel
// again, objects first, and ends equal to the kernel. The kernel walks
// every IPv6 route at each object replaced or deleted, so the default
// size is a quarter of the long one's routes: 1 s of CPU, not 11.
func TestImportNexthopBurst(t *testing.T) {
	t.Parallel()
	nexthopNS(t, true)
	sink := newMapSink()
	im := startImporter(t, sink, ImporterOptions{RecvBuffer: 4096})
	objects, routes := rtmtest.Size(1000, 2000), rtmtest.Size(5000, 20000)
	gw := func(i int) string { return fmt.Sprintf("2001:db8::%x", i+2) }
	var lines []string
	for i := range objects {
		lines = append(lines, fmt.Sprintf("nexthop add id %d via %s dev veth0", i+1, gw(i)))
	}
	for i := range routes {
		lines = append(lines, fmt.Sprintf("route add 2001:db8:%x:%x::/64 nhid %d", 1+i>>16, i&0xffff, i%objects+1))
	}
	ipBatch(t, lines)
	lines = lines[:0]
	for i := 0; i < objects; i += 2 {
		lines = append(lines, fmt.Sprintf("nexthop replace id %d via %s dev veth0", i+1, gw(i+objects)))
	}
	for i := 0; i < objects; i += 5 {
		lines = append(lines, fmt.Sprintf("nexthop del id %d", i+2))
	}
	for i := 0; i < 100; i++ { // groups of two and of one
		lines = append(lines, fmt.Sprintf("nexthop add id %d group %d/%d", objects+i+1, 10*i+3, 10*i+4),
			fmt.Sprintf("nexthop add id %d group %d", 2*objects+i+1, 10*i+5),
			fmt.Sprintf("route replace 2001:db8:%x:%x::/64 nhid %d", 1, 10*i+3, objects+i+1),
			fmt.Sprintf("route replace 2001:db8:%x:%x::/64 nhid %d", 1, 10*i+5, 2*objects+i+1))
	}
	ipBatch(t, lines)

	want := importableRoutes(t)
	if len(want) < routes/2 {
		t.Fatalf("the kernel holds only %d importable routes: the test checks too little", len(want))
	}
	sinkEqualsKernel(t, sink, want)
	st := im.Stats()
	if stat(st, "overflows") == 0 {
		t.Errorf("overflows = 0: the tiny buffer should have overflowed")
	}
	if n, w := stat(st, "nexthops"), uint64(objects-objects/5+200); n != w {
		t.Errorf("nexthops = %d, want %d", n, w)
	}
	t.Logf("overflows %d, resyncs %d, %d routes", stat(st, "overflows"), stat(st, "resyncs"), len(want))
}
