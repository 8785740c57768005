package kernel

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"rtm/store/entry"

	"github.com/vishvananda/netns"
)

// installerSink feeds what an importer reads into an installer, the way
// a server and a client with --from-kernel and --to-kernel would.
type installerSink struct{ in *Installer }

func (s installerSink) Apply(c entry.Change) error { return s.in.Apply(c) }

// importableRoutes is the part of `ip route show table main` that rtm's model
// holds: unicast, one next hop with a device (a list of one, as the
// kernel shows an IPv6 route through a group of one, is one), not IPv6
// link-local or multicast.
func importableRoutes(t *testing.T) map[netip.Prefix]entry.Route {
	var keep []ipRoute
	for _, r := range ipRoutes(t, "table", "main") {
		if len(r.Nexthops) == 1 {
			r.Gateway, r.Dev, r.Nexthops = r.Nexthops[0].Gateway, r.Nexthops[0].Dev, nil
		}
		if (r.Type == "" || r.Type == "unicast") && len(r.Nexthops) == 0 && r.Dev != "" &&
			!strings.HasPrefix(r.Dst, "fe80:") && !strings.HasPrefix(r.Dst, "ff") && !(slices.Contains(r.Flags, "onlink") && r.Gateway != "") {
			keep = append(keep, r)
		}
	}
	return routeSet(t, keep)
}

// macEntries is the part of `ip neigh show` that is MAC entries.
func macEntries(t *testing.T) map[string]string {
	var keep []ipNeigh
	for _, n := range ipNeighs(t) {
		if n.Lladdr != "" && len(n.State) == 1 && strings.Contains("PERMANENT STALE REACHABLE", n.State[0]) {
			keep = append(keep, n)
		}
	}
	return neighSet(keep)
}

// TestMirror runs namespace A's kernel -> Importer -> Installer ->
// namespace B's kernel, and checks that B's entries with rtm's mark equal
// A's importable routes and neighbours, at start and after live changes.
func TestMirror(t *testing.T) {
	a := newNS(t)
	veth(t, "veth0", "veth1")
	veth(t, "veth2", "veth3")
	ip(t, "addr", "add", "192.0.2.1/24", "dev", "veth0")
	ip(t, "-6", "addr", "add", "2001:db8::1/64", "dev", "veth0", "nodad")
	ip(t, "route", "add", "198.51.100.0/24", "via", "192.0.2.254", "dev", "veth0")
	ip(t, "route", "add", "203.0.113.0/25", "dev", "veth2")
	ip(t, "-6", "route", "add", "2001:db8:1::/48", "via", "2001:db8::fe", "dev", "veth0")
	ip(t, "route", "add", "blackhole", "203.0.113.128/25")
	ip(t, "neigh", "add", "192.0.2.5", "lladdr", "02:00:00:00:00:05", "dev", "veth0", "nud", "permanent")
	ip(t, "neigh", "add", "203.0.113.6", "lladdr", "02:00:00:00:00:06", "dev", "veth2", "nud", "stale")
	ip(t, "neigh", "add", "2001:db8::7", "lladdr", "02:00:00:00:00:07", "dev", "veth0", "nud", "permanent")

	b, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	veth(t, "veth0", "veth1")
	veth(t, "veth2", "veth3")
	in := newInstaller(t, InstallerOptions{})

	enter(t, a)
	im := startImporter(t, installerSink{in}, ImporterOptions{})

	same := func(what string) {
		t.Helper()
		enter(t, a)
		wantRoutes, wantNeigh := importableRoutes(t), macEntries(t)
		enter(t, b)
		waitFor(t, 5*time.Second, "B to mirror A "+what, func() (bool, string) {
			got := routeSet(t, ipRoutes(t, "proto", "82"))
			if d := diffRoutes(got, wantRoutes); d != "" {
				return false, "routes: " + d
			}
			gn := neighSet(ipNeighs(t, "proto", "82"))
			if !maps.Equal(gn, wantNeigh) {
				return false, fmt.Sprintf("neighbours %v, want %v", gn, wantNeigh)
			}
			return true, ""
		})
		if len(wantRoutes) < 3 || len(wantNeigh) < 2 {
			t.Fatalf("A has only %d routes and %d neighbours: the test checks too little", len(wantRoutes), len(wantNeigh))
		}
	}
	same("at start")

	enter(t, a)
	ip(t, "route", "replace", "198.51.100.0/24", "via", "192.0.2.253", "dev", "veth0")
	ip(t, "route", "add", "203.0.113.64/26", "dev", "veth0")
	ip(t, "-6", "route", "del", "2001:db8:1::/48")
	ip(t, "-6", "route", "add", "2001:db8:2::/48", "dev", "veth2")
	ip(t, "neigh", "del", "192.0.2.5", "dev", "veth0")
	ip(t, "neigh", "add", "192.0.2.8", "lladdr", "02:00:00:00:00:08", "dev", "veth0", "nud", "permanent")
	ip(t, "neigh", "add", "203.0.113.9", "lladdr", "02:00:00:00:00:09", "dev", "veth2", "nud", "reachable")
	same("after live changes")

	if n := stat(im.Stats(), "skipped_blackhole"); n == 0 {
		t.Error("skipped_blackhole = 0")
	}
	if n := stat(in.Stats(), "routes_pending") + stat(in.Stats(), "neighbours_pending"); n != 0 {
		t.Errorf("%d entries pending in B", n)
	}
}
