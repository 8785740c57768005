package kernel

import (
	"bufio"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"rtm/repl/rtmtest"
	"rtm/store/entry"
)

func newInstaller(t testing.TB, opt InstallerOptions) *Installer {
	t.Helper()
	in, err := NewInstaller(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return in
}

// TestMain lets the test binary play an installer process for the
// crash test.
func TestMain(m *testing.M) {
	rtmtest.Main(m, rtmtest.Roles{"installer": installerChild}, nil)
}

// kernelHas waits until `ip route show proto 82` and `ip neigh show proto
// 82` list exactly routes and neighbours ("IP dev DEV" -> MAC).
func kernelHas(t *testing.T, routes []entry.Route, neigh map[string]string) {
	t.Helper()
	want := map[netip.Prefix]entry.Route{}
	for _, r := range routes {
		want[r.Prefix] = r
	}
	waitFor(t, 5*time.Second, "the kernel's proto 82 entries", func() (bool, string) {
		got := routeSet(t, ipRoutes(t, "proto", "82"))
		if d := diffRoutes(got, want); d != "" {
			return false, "routes: " + d
		}
		gn := neighSet(ipNeighs(t, "proto", "82"))
		if !maps.Equal(gn, neigh) {
			return false, fmt.Sprintf("neighbours %v, want %v", gn, neigh)
		}
		return true, ""
	})
}

func TestInstall(t *testing.T) {
	newNS(t)
	veth(t, "veth0", "veth1")
	veth(t, "veth2", "veth3")
	in := newInstaller(t, InstallerOptions{})
	routes := []entry.Route{
		// The gateway route comes first: the installer orders connected
		// routes before the gateways that need them.
		route("198.51.100.0/24", "192.0.2.254", "veth0"),
		route("192.0.2.0/24", "", "veth0"),
		route("203.0.113.0/24", "", "veth2"),
		route("2001:db8:1::/48", "2001:db8::fe", "veth0"),
		route("2001:db8::/64", "", "veth0"),
	}
	macs := []entry.MACEntry{
		{MAC: mustMAC("02:00:00:00:00:01"), IP: mustAddr("192.0.2.10")},
		{MAC: mustMAC("02:00:00:00:00:02"), IP: mustAddr("203.0.113.5")},
		{MAC: mustMAC("02:00:00:00:00:03"), IP: mustAddr("2001:db8::10")},
		{MAC: mustMAC("02:00:00:00:00:04"), IP: mustAddr("198.51.100.7")}, // under a gateway route: its device
	}
	if err := in.Reconcile(routes, macs); err != nil {
		t.Fatal(err)
	}
	neigh := map[string]string{
		"192.0.2.10 dev veth0":   "02:00:00:00:00:01",
		"203.0.113.5 dev veth2":  "02:00:00:00:00:02",
		"2001:db8::10 dev veth0": "02:00:00:00:00:03",
		"198.51.100.7 dev veth0": "02:00:00:00:00:04",
	}
	kernelHas(t, routes, neigh)
	for _, n := range ipNeighs(t, "proto", "82") {
		if len(n.State) != 1 || n.State[0] != "PERMANENT" {
			t.Errorf("neighbour %s state %v, want PERMANENT", n.Dst, n.State)
		}
	}
	if out := ip(t, "route", "show", "proto", "82", "192.0.2.0/24"); !strings.Contains(out, "scope link") {
		t.Errorf("connected route not scope link: %q", out)
	}

	// A more specific route moves a neighbour to its device; a changed
	// MAC replaces the entry; a deleted MAC and a route whose neighbours
	// lose their cover take their entries away.
	if err := in.Apply(set(route("203.0.113.0/28", "", "veth0"))); err != nil {
		t.Fatal(err)
	}
	routes = append(routes, route("203.0.113.0/28", "", "veth0"))
	delete(neigh, "203.0.113.5 dev veth2")
	neigh["203.0.113.5 dev veth0"] = "02:00:00:00:00:02"
	kernelHas(t, routes, neigh)
	if err := in.Apply([]entry.Change{
		entry.MACChange(entry.Replace, mustMAC("02:00:00:00:00:01"), mustAddr("192.0.2.11")),
		entry.MACChange(entry.Delete, mustMAC("02:00:00:00:00:04"), netip.Addr{}),
		entry.RouteChange(entry.Delete, entry.Route{Prefix: mustPrefix("2001:db8::/64")}),
		set(route("198.51.100.0/24", "192.0.2.253", "veth0")),
	}...); err != nil {
		t.Fatal(err)
	}
	routes[0] = route("198.51.100.0/24", "192.0.2.253", "veth0")
	routes = append(routes[:4], routes[5:]...)
	delete(neigh, "192.0.2.10 dev veth0")
	delete(neigh, "198.51.100.7 dev veth0")
	delete(neigh, "2001:db8::10 dev veth0")
	neigh["192.0.2.11 dev veth0"] = "02:00:00:00:00:01"
	kernelHas(t, routes, neigh)
	st := in.Stats()
	if n := stat(st, "neighbours_pending"); n != 1 {
		t.Errorf("neighbours_pending = %d, want 1 (2001:db8::10 has no route)", n)
	}
	if n := stat(st, "routes_installed"); n != uint64(len(routes)) {
		t.Errorf("routes_installed = %d, want %d", n, len(routes))
	}

	// Two MACs on one IP: the lowest MAC is installed, counted as a conflict.
	if err := in.Apply(entry.MACChange(entry.Replace, mustMAC("02:00:00:00:00:00"), mustAddr("192.0.2.11"))); err != nil {
		t.Fatal(err)
	}
	neigh["192.0.2.11 dev veth0"] = "02:00:00:00:00:00"
	kernelHas(t, routes, neigh)
	if n := stat(in.Stats(), "neigh_ip_conflicts"); n != 1 {
		t.Errorf("neigh_ip_conflicts = %d, want 1", n)
	}

	if err := in.Apply(entry.FlushOf(entry.Routes)); err != nil {
		t.Fatal(err)
	}
	kernelHas(t, nil, map[string]string{})
	if err := in.Apply(set(route("192.0.2.0/24", "", "bad/name"))); err == nil {
		t.Error("SetRoute accepted a bad device name")
	}
}

// TestInstallLeavesForeignEntries: entries of other owners survive a
// reconcile and a flush, and a key they hold is reported once.
func TestInstallLeavesForeignEntries(t *testing.T) {
	newNS(t)
	veth(t, "veth0", "veth1")
	ip(t, "route", "add", "192.0.2.0/24", "dev", "veth0", "proto", "static")
	ip(t, "route", "add", "198.51.100.0/24", "via", "192.0.2.254", "dev", "veth0", "proto", "static")
	ip(t, "route", "add", "203.0.113.0/24", "via", "192.0.2.254", "dev", "veth0") // proto boot
	ip(t, "neigh", "add", "192.0.2.20", "lladdr", "02:00:00:00:00:20", "dev", "veth0", "nud", "permanent")
	ip(t, "neigh", "add", "192.0.2.21", "lladdr", "02:00:00:00:00:21", "dev", "veth0", "nud", "permanent", "protocol", "4")
	foreignRoutes := ip(t, "route", "show", "table", "all")
	foreignNeigh := ip(t, "neigh", "show")

	var logged logLines
	in := newInstaller(t, InstallerOptions{RetryInterval: 50 * time.Millisecond, Logf: logged.logf})
	routes := []entry.Route{
		route("198.51.100.0/24", "192.0.2.1", "veth0"), // held by a static route
		route("198.51.100.0/25", "192.0.2.1", "veth0"),
		route("192.0.2.0/25", "", "veth0"),
	}
	macs := []entry.MACEntry{
		{MAC: mustMAC("02:00:00:00:00:99"), IP: mustAddr("192.0.2.20")}, // held by a foreign entry
		{MAC: mustMAC("02:00:00:00:00:30"), IP: mustAddr("192.0.2.30")},
	}
	if err := in.Reconcile(routes, macs); err != nil {
		t.Fatal(err)
	}
	kernelHas(t, routes[1:], map[string]string{"192.0.2.30 dev veth0": "02:00:00:00:00:30"})
	if err := in.Reconcile(routes, macs); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // several retries
	st := in.Stats()
	if stat(st, "route_foreign") != 1 || stat(st, "neigh_foreign") != 1 {
		t.Errorf("route_foreign = %d, neigh_foreign = %d, want 1 and 1",
			stat(st, "route_foreign"), stat(st, "neigh_foreign"))
	}
	if stat(st, "routes_pending") != 1 || stat(st, "neighbours_pending") != 1 {
		t.Errorf("routes_pending = %d, neighbours_pending = %d, want 1 and 1",
			stat(st, "routes_pending"), stat(st, "neighbours_pending"))
	}
	logs := logged.all()
	for _, key := range []string{"198.51.100.0/24", "192.0.2.20"} {
		n := 0
		for _, l := range logs {
			if strings.Contains(l, key+" ") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s logged %d times, want once: %q", key, n, logs)
		}
	}

	if err := in.Apply(entry.FlushOf(entry.Both)); err != nil {
		t.Fatal(err)
	}
	kernelHas(t, nil, map[string]string{})
	if got := ip(t, "route", "show", "table", "all"); got != foreignRoutes {
		t.Errorf("foreign routes changed:\n%s\nwant\n%s", got, foreignRoutes)
	}
	if got := ip(t, "neigh", "show"); got != foreignNeigh {
		t.Errorf("foreign neighbours changed:\n%s\nwant\n%s", got, foreignNeigh)
	}
	if stat(in.Stats(), "routes_pending") != 0 {
		t.Errorf("routes_pending = %d after a flush", stat(in.Stats(), "routes_pending"))
	}

	// Once the foreign route goes, the retried route takes its place.
	if err := in.Apply(set(route("198.51.100.0/24", "192.0.2.1", "veth0"))); err != nil {
		t.Fatal(err)
	}
	ip(t, "route", "del", "198.51.100.0/24", "proto", "static")
	kernelHas(t, []entry.Route{route("198.51.100.0/24", "192.0.2.1", "veth0")}, map[string]string{})
}

// TestInstallWaitsForDevice: routes and neighbours on a device that does
// not exist yet are installed when it appears and comes up, and the log
// says so as it said they waited.
func TestInstallWaitsForDevice(t *testing.T) {
	newNS(t)
	var logged logLines
	in := newInstaller(t, InstallerOptions{Logf: logged.logf})
	routes := []entry.Route{
		route("198.51.100.0/24", "192.0.2.254", "vlate"),
		route("192.0.2.0/24", "", "vlate"),
	}
	if err := in.Apply([]entry.Change{
		set(routes[0]),
		set(routes[1]),
		entry.MACChange(entry.Replace, mustMAC("02:00:00:00:00:09"), mustAddr("192.0.2.9")),
	}...); err != nil {
		t.Fatal(err)
	}
	st := in.Stats()
	if stat(st, "routes_pending") != 2 || stat(st, "neighbours_pending") != 1 || stat(st, "route_failures") != 2 {
		t.Errorf("routes_pending %d neighbours_pending %d route_failures %d, want 2, 1, 2",
			stat(st, "routes_pending"), stat(st, "neighbours_pending"), stat(st, "route_failures"))
	}
	ip(t, "link", "add", "name", "vlate", "type", "veth", "peer", "name", "vlate1")
	time.Sleep(100 * time.Millisecond) // down: still refused
	kernelHas(t, nil, map[string]string{})
	ip(t, "link", "set", "vlate", "up")
	kernelHas(t, routes, map[string]string{"192.0.2.9 dev vlate": "02:00:00:00:00:09"})
	waitFor(t, time.Second, "pending gauges to clear", func() (bool, string) {
		st := in.Stats()
		return stat(st, "routes_pending") == 0 && stat(st, "neighbours_pending") == 0, fmt.Sprint(st)
	})
	said := logged.String()
	for _, want := range []string{
		"route 198.51.100.0/24 via 192.0.2.254 dev vlate pending: device vlate does not exist",
		"route 198.51.100.0/24 via 192.0.2.254 dev vlate installed, pending no more",
		"route 192.0.2.0/24 dev vlate installed, pending no more",
		"neighbour 192.0.2.9 installed, pending no more",
	} {
		if !strings.Contains(said, want) {
			t.Errorf("the log does not say %q:\n%s", want, said)
		}
	}

	// Down flushes them from the kernel; up brings them back.
	ip(t, "link", "set", "vlate", "down")
	kernelHas(t, nil, map[string]string{})
	ip(t, "link", "set", "vlate", "up")
	kernelHas(t, routes, map[string]string{"192.0.2.9 dev vlate": "02:00:00:00:00:09"})
}

// TestInstallAfterAnOverflow: the installer's event socket overflows
// while a device appears and comes up, the "up" among the events lost. It
// re-reads the kernel, which has the device up, and installs the route
// that waited for it; the events queued before the overflow are older
// than that and are dropped. Replayed after the re-read (as they were),
// the device's first event, "down", forgot the route the kernel kept, and
// left it pending for good on a device that was up.
func TestInstallAfterAnOverflow(t *testing.T) {
	newNS(t)
	veth(t, "veth0", "veth1")
	ip(t, "route", "add", "192.0.2.0/24", "dev", "veth0")
	var logged logLines
	in := newInstaller(t, InstallerOptions{Logf: logged.logf})
	if err := in.watch.setRecvBuffer(4096, true); err != nil {
		t.Fatal(err)
	}
	late := route("198.51.100.0/24", "", "vlate")
	if err := in.Apply(set(late)); err != nil {
		t.Fatal(err)
	}
	// The installer reads no event while the test holds its lock: the
	// one it has read waits, the rest queue, and the socket overflows.
	in.mu.Lock()
	ip(t, "route", "add", "10.255.0.1/32", "via", "192.0.2.1")
	time.Sleep(100 * time.Millisecond) // read, and waiting for the lock
	ip(t, "link", "add", "name", "vlate", "type", "veth", "peer", "name", "vlate1")
	adds := make([]string, 500)
	for i := range adds {
		adds[i] = fmt.Sprintf("route add 10.1.%d.%d/32 via 192.0.2.1", i>>8, i&0xff)
	}
	ipBatch(t, adds)
	ip(t, "link", "set", "vlate", "up")
	in.mu.Unlock()
	kernelHas(t, []entry.Route{late}, map[string]string{})
	waitFor(t, 2*time.Second, "the route pending no more", func() (bool, string) {
		st := in.Stats()
		return stat(st, "routes_pending") == 0, fmt.Sprint(st)
	})
	// Nothing comes after: the state it settled in is the one it keeps.
	time.Sleep(200 * time.Millisecond)
	if st := in.Stats(); stat(st, "routes_pending") != 0 || stat(st, "resyncs") == 0 {
		t.Errorf("routes_pending %d, resyncs %d: want 0 and a re-read\n%s", stat(st, "routes_pending"), stat(st, "resyncs"), logged.String())
	}
	kernelHas(t, []entry.Route{late}, map[string]string{})
}

// childRoutes is the state the crash test's first installer installs.
func childRoutes(n int) []entry.Route {
	rs := []entry.Route{route("192.0.2.0/24", "", "veth0")}
	for i := range n {
		rs = append(rs, route(fmt.Sprintf("10.0.%d.%d/32", i>>8, i&0xff), "192.0.2.1", "veth0"))
	}
	return rs
}

func childMACs(n int) []entry.MACEntry {
	var ms []entry.MACEntry
	for i := range n {
		ms = append(ms, entry.MACEntry{MAC: entry.MACFromUint64(0x020000000100 + uint64(i)), IP: netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + i)})})
	}
	return ms
}

// installerChild is the crash test's first installer: it installs
// RTM_KERNEL_TEST_ROUTES routes and RTM_KERNEL_TEST_MACS MAC entries,
// says "ready" and waits to be killed.
func installerChild() int {
	nr, nm := rtmtest.EnvInt("RTM_KERNEL_TEST_ROUTES"), rtmtest.EnvInt("RTM_KERNEL_TEST_MACS")
	in, err := NewInstaller(InstallerOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := in.Reconcile(childRoutes(nr), childMACs(nm)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
	return 1
}

// TestReconcileAfterKill: an installer process is killed with SIGKILL;
// the next one, given a smaller state, deletes what is left over and
// leaves foreign entries alone.
func TestReconcileAfterKill(t *testing.T) {
	newNS(t)
	veth(t, "veth0", "veth1")
	ip(t, "route", "add", "203.0.113.0/24", "dev", "veth0", "proto", "static")
	cmd := rtmtest.Child(t, "installer", "RTM_KERNEL_TEST_ROUTES=1000", "RTM_KERNEL_TEST_MACS=20")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("installer process said %q, %v", line, err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if n := len(ipRoutes(t, "proto", "82")); n != 1001 {
		t.Fatalf("the killed installer left %d routes, want 1001", n)
	}

	in := newInstaller(t, InstallerOptions{})
	routes := childRoutes(500)
	routes[7] = route(routes[7].Prefix.String(), "192.0.2.2", "veth0") // one differs
	macs := childMACs(10)
	if err := in.Reconcile(routes, macs); err != nil {
		t.Fatal(err)
	}
	neigh := map[string]string{}
	for _, m := range macs {
		neigh[m.IP.String()+" dev veth0"] = m.MAC.String()
	}
	kernelHas(t, routes, neigh)
	if out := ip(t, "route", "show", "proto", "static"); !strings.Contains(out, "203.0.113.0/24") {
		t.Errorf("foreign route gone: %q", out)
	}
	if n := stat(in.Stats(), "route_foreign"); n != 0 {
		t.Errorf("route_foreign = %d: the predecessor's routes are rtm's own", n)
	}
}

// TestInstallOptions: another table, protocol and metric, read back by
// an importer of that table.
func TestInstallOptions(t *testing.T) {
	newNS(t)
	veth(t, "veth0", "veth1")
	in := newInstaller(t, InstallerOptions{Table: 1000, Protocol: 201, Metric: 20})
	routes := []entry.Route{
		route("2001:db8:1::/48", "2001:db8::1", "veth0"),
		route("192.0.2.0/24", "", "veth0"),
		route("2001:db8::/64", "", "veth0"),
	}
	if err := in.Reconcile(routes, nil); err != nil {
		t.Fatal(err)
	}
	got := ipRoutes(t, "table", "1000", "proto", "201")
	if len(got) != len(routes) {
		t.Errorf("table 1000 proto 201: %+v, want %d routes", got, len(routes))
	}
	for _, r := range got {
		if r.Metric != 20 {
			t.Errorf("route %s metric %d, want 20", r.Dst, r.Metric)
		}
	}
	if n := len(ipRoutes(t, "proto", "82")); n != 0 {
		t.Errorf("%d routes with protocol 82 in table main", n)
	}
	sink := newMapSink()
	startImporter(t, sink, ImporterOptions{Table: 1000})
	want := map[netip.Prefix]entry.Route{}
	for _, r := range routes {
		want[r.Prefix] = r
	}
	sinkHas(t, sink, want, map[entry.MAC]netip.Addr{})
	if err := in.Reconcile(nil, nil); err != nil {
		t.Fatal(err)
	}
	sinkHas(t, sink, map[netip.Prefix]entry.Route{}, map[entry.MAC]netip.Addr{})
}

// TestInstallNeverReplacesForeign: another owner replaces rtm's route and
// neighbour in the kernel; rtm's next update of those keys leaves the
// other owner's entries as they are (and counts them foreign), for IPv4
// and IPv6, as a delete does.
func TestInstallNeverReplacesForeign(t *testing.T) {
	newNS(t)
	veth(t, "veth0", "veth1")
	ip(t, "link", "set", "veth1", "up")
	in := newInstaller(t, InstallerOptions{RetryInterval: time.Hour})
	routes := []entry.Route{
		route("192.0.2.0/24", "", "veth0"),
		route("198.51.100.0/24", "192.0.2.1", "veth0"),
		route("2001:db8:3:2::/64", "", "veth0"),
	}
	macs := []entry.MACEntry{{MAC: mustMAC("02:00:00:00:00:01"), IP: mustAddr("192.0.2.10")}}
	if err := in.Reconcile(routes, macs); err != nil {
		t.Fatal(err)
	}
	kernelHas(t, routes, map[string]string{"192.0.2.10 dev veth0": "02:00:00:00:00:01"})
	// Someone takes over rtm's keys.
	ip(t, "route", "replace", "198.51.100.0/24", "via", "192.0.2.9", "dev", "veth0", "proto", "static")
	ip(t, "-6", "route", "replace", "2001:db8:3:2::/64", "dev", "veth1", "proto", "static")
	ip(t, "neigh", "replace", "192.0.2.10", "lladdr", "02:00:00:00:00:99", "dev", "veth0", "nud", "permanent", "protocol", "4")
	time.Sleep(100 * time.Millisecond) // the events reach the installer
	foreignRoutes := ip(t, "route", "show", "table", "all", "proto", "static")
	foreignNeigh := ip(t, "neigh", "show", "192.0.2.10")
	// rtm's source changes the same keys.
	if err := in.Apply(
		set(route("198.51.100.0/24", "192.0.2.2", "veth0")),
		set(route("2001:db8:3:2::/64", "", "veth0")),
		entry.MACChange(entry.Update, mustMAC("02:00:00:00:00:01"), mustAddr("192.0.2.10")),
	); err != nil {
		t.Fatal(err)
	}
	if got := ip(t, "route", "show", "table", "all", "proto", "static"); got != foreignRoutes {
		t.Errorf("an update replaced another owner's route:\n%s\nwant\n%s", got, foreignRoutes)
	}
	if got := ip(t, "neigh", "show", "192.0.2.10"); got != foreignNeigh {
		t.Errorf("an update replaced another owner's neighbour: %q, want %q", got, foreignNeigh)
	}
	st := in.Stats()
	if stat(st, "route_foreign") != 2 || stat(st, "neigh_foreign") != 1 {
		t.Errorf("route_foreign = %d, neigh_foreign = %d, want 2 and 1", stat(st, "route_foreign"), stat(st, "neigh_foreign"))
	}
}

// TestInstallRestoresDeleted: an entry with rtm's mark that someone
// deletes by hand comes back within a second, without a resync.
func TestInstallRestoresDeleted(t *testing.T) {
	newNS(t)
	veth(t, "veth0", "veth1")
	in := newInstaller(t, InstallerOptions{RetryInterval: time.Hour})
	routes := []entry.Route{route("192.0.2.0/24", "", "veth0"), route("198.51.100.0/24", "192.0.2.1", "veth0")}
	neigh := map[string]string{"192.0.2.10 dev veth0": "02:00:00:00:00:01"}
	if err := in.Reconcile(routes, []entry.MACEntry{{MAC: mustMAC("02:00:00:00:00:01"), IP: mustAddr("192.0.2.10")}}); err != nil {
		t.Fatal(err)
	}
	kernelHas(t, routes, neigh)
	ip(t, "route", "del", "198.51.100.0/24", "proto", "82")
	ip(t, "neigh", "del", "192.0.2.10", "dev", "veth0")
	waitFor(t, time.Second, "the deleted entries back", func() (bool, string) {
		r := ip(t, "route", "show", "198.51.100.0/24", "proto", "82")
		n := ip(t, "neigh", "show", "192.0.2.10", "proto", "82")
		return r != "" && n != "", r + n
	})
	if n := stat(in.Stats(), "resyncs"); n != 1 {
		t.Errorf("resyncs = %d, want 1 (the reconcile's): the entries came back by their events", n)
	}
}

// TestInstallBehindForeign: another owner's route put before rtm's of the
// same key (ip route prepend), or an IPv6 hop merged with rtm's into one
// ECMP route, is the one the kernel forwards with: rtm takes its own
// route or hop out, never touches the other's (a replace would hit the
// first route of the key, a delete without a next hop every hop), and
// installs its route once the other's is gone. The same holds for such
// routes found at start.
func TestInstallBehindForeign(t *testing.T) {
	newNS(t)
	veth(t, "veth0", "veth1")
	ip(t, "link", "set", "veth1", "up")
	// Left by a predecessor: rtm's routes behind another owner's.
	ip(t, "route", "add", "192.0.2.0/24", "dev", "veth0", "proto", "82")
	ip(t, "-6", "route", "add", "2001:db8:1::/64", "dev", "veth0", "proto", "82")
	ip(t, "route", "add", "203.0.113.0/26", "via", "192.0.2.41", "dev", "veth0", "proto", "static")
	ip(t, "route", "append", "203.0.113.0/26", "via", "192.0.2.42", "dev", "veth0", "proto", "82")
	ip(t, "-6", "route", "add", "2001:db8:f::/48", "via", "2001:db8:1::31", "dev", "veth0", "proto", "82")
	ip(t, "-6", "route", "append", "2001:db8:f::/48", "via", "2001:db8:1::32", "dev", "veth0", "proto", "static")
	show := func(p string) string {
		if strings.Contains(p, ":") {
			return ip(t, "-6", "route", "show", p)
		}
		return ip(t, "route", "show", p)
	}
	foreign := map[string]string{
		"203.0.113.0/26":  "203.0.113.0/26 via 192.0.2.41 dev veth0 proto static \n",
		"2001:db8:f::/48": "2001:db8:f::/48 via 2001:db8:1::32 dev veth0 proto static metric 1024 pref medium\n",
	}
	in := newInstaller(t, InstallerOptions{RetryInterval: time.Hour})
	routes := []entry.Route{
		route("192.0.2.0/24", "", "veth0"),
		route("2001:db8:1::/64", "", "veth0"),
		route("198.51.100.32/27", "192.0.2.17", "veth0"),
		route("2001:db8:e::/48", "2001:db8:1::21", "veth0"),
		route("203.0.113.0/26", "192.0.2.43", "veth0"),
		route("2001:db8:f::/48", "2001:db8:1::33", "veth0"),
	}
	if err := in.Reconcile(routes, nil); err != nil {
		t.Fatal(err)
	}
	kernelHas(t, routes[:4], map[string]string{})
	for p, want := range foreign {
		if got := show(p); got != want {
			t.Errorf("at start, %s:\n%s\nwant the other owner's alone:\n%s", p, got, want)
		}
	}

	// Live: another owner prepends an IPv4 route, appends an IPv6 hop.
	ip(t, "route", "prepend", "198.51.100.32/27", "via", "192.0.2.18", "dev", "veth0", "proto", "static")
	ip(t, "-6", "route", "append", "2001:db8:e::/48", "via", "2001:db8:1::5", "dev", "veth0", "proto", "static")
	foreign["198.51.100.32/27"] = "198.51.100.32/27 via 192.0.2.18 dev veth0 proto static \n"
	foreign["2001:db8:e::/48"] = "2001:db8:e::/48 via 2001:db8:1::5 dev veth0 proto static metric 1024 pref medium\n"
	kernelHas(t, routes[:2], map[string]string{})
	// rtm's source changes those keys: the other owner's routes stay.
	if err := in.Apply(
		set(route("198.51.100.32/27", "192.0.2.19", "veth0")),
		set(route("2001:db8:e::/48", "2001:db8:1::22", "veth0")),
	); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	for p, want := range foreign {
		if got := show(p); got != want {
			t.Errorf("after an update, %s:\n%s\nwant the other owner's alone:\n%s", p, got, want)
		}
	}
	// The other owner leaves: rtm's routes go in.
	for p := range foreign {
		ip(t, "route", "del", p, "proto", "static")
	}
	kernelHas(t, []entry.Route{
		routes[0], routes[1],
		route("198.51.100.32/27", "192.0.2.19", "veth0"),
		route("2001:db8:e::/48", "2001:db8:1::22", "veth0"),
		routes[4], routes[5],
	}, map[string]string{})
}

// TestInstallNexthopObjectRoutes: routes with rtm's mark through a kernel
// nexthop object (rtm never installs such) are not rtm's: one its tables
// lack is deleted (by the object's id: the kernel matches such a route
// by nothing else), and one for a prefix its tables hold gives way to
// rtm's own route.
func TestInstallNexthopObjectRoutes(t *testing.T) {
	newNS(t)
	veth(t, "veth0", "veth1")
	ip(t, "link", "set", "veth1", "up") // a carrier for the objects
	ip(t, "route", "add", "192.0.2.0/24", "dev", "veth0", "proto", "82")
	ip(t, "-6", "route", "add", "2001:db8:1::/64", "dev", "veth0", "proto", "82")
	ip(t, "nexthop", "add", "id", "5", "via", "192.0.2.9", "dev", "veth0")
	ip(t, "-6", "nexthop", "add", "id", "6", "via", "2001:db8:1::9", "dev", "veth0")
	for _, p := range []string{"203.0.113.0/26", "203.0.113.64/26"} {
		ip(t, "route", "add", p, "nhid", "5", "proto", "82")
	}
	for _, p := range []string{"2001:db8:9::/48", "2001:db8:a::/48"} {
		ip(t, "-6", "route", "add", p, "nhid", "6", "proto", "82")
	}
	in := newInstaller(t, InstallerOptions{RetryInterval: time.Hour})
	routes := []entry.Route{
		route("192.0.2.0/24", "", "veth0"),
		route("2001:db8:1::/64", "", "veth0"),
		route("203.0.113.64/26", "192.0.2.44", "veth0"),
		route("2001:db8:a::/48", "2001:db8:1::44", "veth0"),
	}
	if err := in.Reconcile(routes, nil); err != nil {
		t.Fatal(err)
	}
	kernelHas(t, routes, map[string]string{})
	if got := ip(t, "route", "show") + ip(t, "-6", "route", "show"); strings.Contains(got, "nhid") {
		t.Errorf("routes through the nexthop objects left:\n%s", got)
	}
}

// TestInstallRefusedEntryLoggedOnce: a route through a device named with
// ',' and a MAC of the broadcast address (an old store's, which a client
// keeps) are not installed, and said once: every resync's snapshot
// brought them again, and each was logged.
func TestInstallRefusedEntryLoggedOnce(t *testing.T) {
	newNS(t)
	veth(t, "veth0", "veth1")
	var logged logLines
	in := newInstaller(t, InstallerOptions{Logf: logged.logf})
	good, bad := route("192.0.2.0/24", "", "veth0"), route("10.9.0.0/16", "", "a,b")
	// And a MAC of the broadcast address, which an earlier rtm stored.
	macs := []entry.MACEntry{{MAC: mustMAC("02:00:00:00:00:01"), IP: mustAddr("255.255.255.255")}, {MAC: mustMAC("02:00:00:00:00:02"), IP: mustAddr("192.0.2.2")}}
	for range 3 {
		in.Snapshot(1, []entry.Route{good, bad}, macs)
	}
	in.Changes(2, []entry.Change{entry.RouteChange(entry.Create, bad)})
	kernelHas(t, []entry.Route{good}, map[string]string{"192.0.2.2 dev veth0": "02:00:00:00:00:02"})
	for key, what := range map[string]string{"10.9.0.0/16": "route 10.9.0.0/16", "02:00:00:00:00:01": "MAC 02:00:00:00:00:01"} {
		var said []string
		for _, l := range logged.all() {
			if strings.Contains(l, key) {
				said = append(said, l)
			}
		}
		if len(said) != 1 || !strings.HasPrefix(said[0], "kernel install: "+what+": ") || !strings.HasSuffix(said[0], "; not installed") {
			t.Errorf("the refused %s was logged %d times, want once as kernel install: %s: …; not installed:\n%s", what, len(said), what, logged.String())
		}
	}
}

// TestInstallPendingLogBounded: a snapshot of many routes through a device
// that does not exist yet logs the first few as pending and counts the
// rest in one line, and so when the device comes (it logged every route
// twice: 10,000 lines for 5,000 routes).
func TestInstallPendingLogBounded(t *testing.T) {
	newNS(t)
	var logged logLines
	in := newInstaller(t, InstallerOptions{Logf: logged.logf})
	var routes []entry.Route
	for i := range 40 {
		routes = append(routes, route(fmt.Sprintf("10.%d.0.0/16", i), "", "vlate"))
	}
	if err := in.Reconcile(routes, nil); err != nil {
		t.Fatal(err)
	}
	if st := in.Stats(); stat(st, "routes_pending") != 40 || stat(st, "route_failures") != 40 {
		t.Errorf("routes_pending %d route_failures %d, want 40 and 40", stat(st, "routes_pending"), stat(st, "route_failures"))
	}
	said := logged.String()
	const more = "kernel install: and 32 more entries pending, or installed after pending, not logged one by one (show stats local: "
	if n, m := strings.Count(said, "pending: device vlate does not exist"), strings.Count(said, more); n != sayMax || m != 1 {
		t.Errorf("%d routes logged as pending and %d lines count the rest, want %d and 1:\n%s", n, m, sayMax, said)
	}
	mark := len(logged.all())
	ip(t, "link", "add", "name", "vlate", "type", "veth", "peer", "name", "vlate1")
	ip(t, "link", "set", "vlate", "up")
	kernelHas(t, routes, map[string]string{})
	waitFor(t, time.Second, "the pending gauge to clear", func() (bool, string) {
		return stat(in.Stats(), "routes_pending") == 0, fmt.Sprint(in.Stats())
	})
	// The device's events may come to one round of installs or more
	// (down, then up): each logs a few, and counts the rest.
	after := logged.all()[mark:]
	if len(after) > 4*(sayMax+1) || !strings.Contains(strings.Join(after, "\n"), "more entries pending, or installed after pending, not logged one by one") {
		t.Errorf("%d lines for 40 routes installed, without a count of the rest:\n%s", len(after), strings.Join(after, "\n"))
	}
}
