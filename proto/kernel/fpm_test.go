package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"rtm/store/entry"

	"golang.org/x/sys/unix"
)

// The FPM importer against a zebra played by the test: frames built as
// zebra's dplane_fpm_nl builds them (see decodeFPM), sent over TCP on
// the loopback of the test's namespace, whose devices name the routes'
// interfaces. The tests with the real zebra are in the root package.

// nlMsg is a netlink message of type typ around payload.
func nlMsg(typ, flags uint16, payload []byte) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN, unix.NLMSG_HDRLEN+len(payload)+3)
	putHeader(b[:unix.NLMSG_HDRLEN], typ, flags, 0)
	b = append(b, payload...)
	binary.NativeEndian.PutUint32(b, uint32(len(b)))
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// fpmFrame is one FPM frame holding msgs.
func fpmFrame(msgs ...[]byte) []byte {
	b := []byte{fpmVersion, fpmTypeNetlink, 0, 0}
	for _, m := range msgs {
		b = append(b, m...)
	}
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	return b
}

// zRoute is zebra's RTM_NEWROUTE or RTM_DELROUTE for prefix in table
// through nexthop object nhid (none for a delete).
func zRoute(typ uint16, prefix string, nhid, table uint32) []byte {
	p := mustPrefix(prefix)
	fam := uint8(unix.AF_INET)
	if p.Addr().Is6() {
		fam = unix.AF_INET6
	}
	rt := uint8(unix.RTN_UNICAST)
	if typ == unix.RTM_DELROUTE {
		rt = 0
	}
	attrs := [][]byte{attr(nil, unix.RTA_DST, p.Addr().AsSlice()), attr(nil, unix.RTA_PRIORITY, u32(20)),
		attr(nil, unix.RTA_TABLE, u32(table))}
	if nhid != 0 {
		attrs = append(attrs, attr(nil, rtaNHID, u32(nhid)))
	}
	b := rtmsg(fam, uint8(p.Bits()), rt, 0, attrs...)
	b[5] = unix.RTPROT_BGP
	return nlMsg(typ, unix.NLM_F_REQUEST|unix.NLM_F_CREATE|unix.NLM_F_REPLACE, b)
}

// zNexthop is zebra's RTM_NEWNEXTHOP for a single next hop (gw may be
// "" for a device alone).
func zNexthop(id uint32, gw string, oif int32) []byte {
	fam := uint8(unix.AF_INET)
	attrs := [][]byte{attr(nil, unix.NHA_ID, u32(id))}
	if gw != "" {
		a := mustAddr(gw)
		if a.Is6() {
			fam = unix.AF_INET6
		}
		attrs = append(attrs, attr(nil, unix.NHA_GATEWAY, a.AsSlice()))
	}
	attrs = append(attrs, attr(nil, unix.NHA_OIF, u32(uint32(oif))))
	return nlMsg(unix.RTM_NEWNEXTHOP, unix.NLM_F_REQUEST|unix.NLM_F_CREATE|unix.NLM_F_REPLACE, nhmsg(fam, attrs...))
}

// zGroup is zebra's RTM_NEWNEXTHOP for a group.
func zGroup(id uint32, members ...uint32) []byte {
	var g []byte
	for _, m := range members {
		g = append(binary.NativeEndian.AppendUint32(g, m), 1, 0, 0, 0)
	}
	return nlMsg(unix.RTM_NEWNEXTHOP, unix.NLM_F_REQUEST|unix.NLM_F_CREATE|unix.NLM_F_REPLACE,
		nhmsg(unix.AF_UNSPEC, attr(nil, unix.NHA_ID, u32(id)), attr(nil, unix.NHA_GROUP, g)))
}

// zDelNexthop is zebra's RTM_DELNEXTHOP.
func zDelNexthop(id uint32) []byte {
	return nlMsg(unix.RTM_DELNEXTHOP, unix.NLM_F_REQUEST, nhmsg(unix.AF_UNSPEC, attr(nil, unix.NHA_ID, u32(id))))
}

// fpmNS makes the namespace of an FPM test: lo up (zebra dials
// 127.0.0.1) and veth0; it returns veth0's index.
func fpmNS(t *testing.T) int32 {
	t.Helper()
	newNS(t)
	ip(t, "link", "set", "lo", "up")
	veth(t, "veth0", "veth1")
	ifi, err := net.InterfaceByName("veth0")
	if err != nil {
		t.Fatal(err)
	}
	return int32(ifi.Index)
}

// startFPM runs an FPM importer on a free port of the namespace's
// loopback until the test ends.
func startFPM(t *testing.T, sink Sink, quiet time.Duration) *FPMImporter {
	t.Helper()
	f, err := NewFPMImporter(sink, FPMOptions{Addr: netip.MustParseAddrPort("127.0.0.1:0"), ReplayQuiet: quiet, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	runImporter(t, f)
	return f
}

// zebraConn is the test's side of a connection, as zebra.
type zebraConn struct {
	t *testing.T
	c net.Conn
}

func dialZebra(t *testing.T, f *FPMImporter) *zebraConn {
	t.Helper()
	c, err := net.Dial("tcp", f.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &zebraConn{t, c}
}

func (z *zebraConn) send(frames ...[]byte) {
	z.t.Helper()
	var b []byte
	for _, f := range frames {
		b = append(b, f...)
	}
	if _, err := z.c.Write(b); err != nil {
		z.t.Fatalf("zebra write: %v", err)
	}
}

// closedByRTM waits until rtm has closed the connection.
func (z *zebraConn) closedByRTM() {
	z.t.Helper()
	z.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := z.c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		z.t.Fatalf("connection not closed by rtm: %v", err)
	}
}

// zebraWent is a first zebra: it sends frames, its replay ends, and it
// disconnects.
func zebraWent(t *testing.T, f *FPMImporter, frames ...[]byte) {
	t.Helper()
	z := dialZebra(t, f)
	z.send(frames...)
	fpmStat(t, f, "replays", 1)
	z.c.Close()
	fpmStat(t, f, "zebra_connected", 0)
}

// fpmStat waits until counter name of f reaches want.
func fpmStat(t *testing.T, f *FPMImporter, name string, want uint64) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("%s to reach %d", name, want), func() (bool, string) {
		n := stat(f.Stats(), name)
		return n == want, fmt.Sprintf("%s is %d", name, n)
	})
}

func TestFPMImport(t *testing.T) {
	veth0 := fpmNS(t)
	sink := newMapSink()
	f := startFPM(t, sink, time.Hour)
	z := dialZebra(t, f)
	// What zebra 8.4 sends first, as seen on a real connection: its
	// nexthop objects, then its routes, one per frame.
	z.send(fpmFrame(zNexthop(2, "", veth0)), fpmFrame(zNexthop(6, "192.0.2.1", veth0)),
		fpmFrame(zNexthop(7, "192.0.2.2", veth0)), fpmFrame(zGroup(8, 6, 7)),
		fpmFrame(zNexthop(9, "2001:db8::1", veth0)),
		fpmFrame(zRoute(unix.RTM_NEWROUTE, "192.0.2.0/24", 2, unix.RT_TABLE_MAIN)),
		fpmFrame(zRoute(unix.RTM_NEWROUTE, "198.51.100.0/24", 6, unix.RT_TABLE_MAIN)),
		fpmFrame(zRoute(unix.RTM_NEWROUTE, "203.0.113.0/25", 8, unix.RT_TABLE_MAIN)),
		fpmFrame(zRoute(unix.RTM_NEWROUTE, "203.0.113.128/25", 6, 100)),
		fpmFrame(zRoute(unix.RTM_NEWROUTE, "2001:db8:1::/48", 9, unix.RT_TABLE_MAIN)),
		fpmFrame(zRoute(unix.RTM_NEWROUTE, "fe80::/64", 2, unix.RT_TABLE_MAIN)))
	routes := map[netip.Prefix]entry.Route{}
	set := func(rs ...entry.Route) {
		for _, r := range rs {
			routes[r.Prefix] = r
		}
	}
	set(route("192.0.2.0/24", "", "veth0"), route("198.51.100.0/24", "192.0.2.1", "veth0"),
		route("2001:db8:1::/48", "2001:db8::1", "veth0"))
	sinkHas(t, sink, routes, map[entry.MAC]netip.Addr{})
	checkStats(t, f.Stats(), map[string]uint64{"skipped_nexthop_group": 1, "skipped_other_table": 1,
		"skipped_link_local": 1, "frames": 11, "nexthops": 5, "routes_imported": 3, "zebra_connected": 1})

	// A route whose next hops change comes as a delete and a create in
	// one frame: the sink sees one update, not a delete.
	calls := sink.callCount()
	z.send(fpmFrame(zRoute(unix.RTM_DELROUTE, "198.51.100.0/24", 0, unix.RT_TABLE_MAIN),
		zRoute(unix.RTM_NEWROUTE, "198.51.100.0/24", 7, unix.RT_TABLE_MAIN)))
	set(route("198.51.100.0/24", "192.0.2.2", "veth0"))
	sinkHas(t, sink, routes, map[entry.MAC]netip.Addr{})
	if n := sink.callCount() - calls; n != 1 {
		t.Errorf("a route changed in one frame took %d sink calls, want 1", n)
	}
	// An object replaced moves its routes; one deleted takes them.
	z.send(fpmFrame(zNexthop(7, "192.0.2.3", veth0)))
	set(route("198.51.100.0/24", "192.0.2.3", "veth0"))
	sinkHas(t, sink, routes, map[entry.MAC]netip.Addr{})
	z.send(fpmFrame(zDelNexthop(9)), fpmFrame(zRoute(unix.RTM_DELROUTE, "192.0.2.0/24", 0, unix.RT_TABLE_MAIN)))
	delete(routes, mustPrefix("2001:db8:1::/48"))
	delete(routes, mustPrefix("192.0.2.0/24"))
	sinkHas(t, sink, routes, map[entry.MAC]netip.Addr{})

	// Devices are named in rtm's namespace, and follow a rename.
	ip(t, "link", "set", "veth0", "down")
	ip(t, "link", "set", "veth0", "name", "uplink0")
	set(route("198.51.100.0/24", "192.0.2.3", "uplink0"))
	sinkHas(t, sink, routes, map[entry.MAC]netip.Addr{})
}

// TestFPMFollowsTable: with Table set (a VRF's table, as zebra sends
// every VRF's routes on one connection), the importer takes that table's
// routes and counts main's as another table's.
func TestFPMFollowsTable(t *testing.T) {
	t.Parallel()
	veth0 := fpmNS(t)
	sink := newMapSink()
	f, err := NewFPMImporter(sink, FPMOptions{Addr: netip.MustParseAddrPort("127.0.0.1:0"), Table: 100, ReplayQuiet: time.Hour, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	runImporter(t, f)
	z := dialZebra(t, f)
	z.send(fpmFrame(zNexthop(6, "192.0.2.1", veth0)),
		fpmFrame(zRoute(unix.RTM_NEWROUTE, "198.51.100.0/24", 6, unix.RT_TABLE_MAIN)),
		fpmFrame(zRoute(unix.RTM_NEWROUTE, "203.0.113.0/25", 6, 100)))
	routes := map[netip.Prefix]entry.Route{mustPrefix("203.0.113.0/25"): route("203.0.113.0/25", "192.0.2.1", "veth0")}
	sinkHas(t, sink, routes, map[entry.MAC]netip.Addr{})
	checkStats(t, f.Stats(), map[string]uint64{"skipped_other_table": 1, "routes_imported": 1})
	z.send(fpmFrame(zRoute(unix.RTM_DELROUTE, "203.0.113.0/25", 0, 100)))
	sinkHas(t, sink, map[netip.Prefix]entry.Route{}, map[entry.MAC]netip.Addr{})
}

// TestFPMReplay: zebra sends its whole table again on each connection.
// Routes of the earlier connection that it does not send again are
// removed once the new connection has named nothing new for the replay's
// quiet time, not before, and however busy it is with changes to what it
// named; the others change at once.
func TestFPMReplay(t *testing.T) {
	t.Parallel()
	veth0 := fpmNS(t)
	sink := newMapSink()
	const quiet = 2 * time.Second
	f := startFPM(t, sink, quiet)
	// 192.0.2.128/25 is ECMP, which rtm does not take: its going at the
	// replay's end is no stale route of rtm's.
	zebraWent(t, f, fpmFrame(zNexthop(6, "192.0.2.1", veth0)), fpmFrame(zNexthop(7, "192.0.2.2", veth0)),
		fpmFrame(zGroup(8, 6, 7)), fpmFrame(zRoute(unix.RTM_NEWROUTE, "192.0.2.128/25", 8, unix.RT_TABLE_MAIN)),
		fpmFrame(zRoute(unix.RTM_NEWROUTE, "198.51.100.0/24", 6, unix.RT_TABLE_MAIN)),
		fpmFrame(zRoute(unix.RTM_NEWROUTE, "203.0.113.0/25", 6, unix.RT_TABLE_MAIN)),
		fpmFrame(zRoute(unix.RTM_NEWROUTE, "203.0.113.128/25", 7, unix.RT_TABLE_MAIN)))

	// A restarted zebra numbers its objects anew and holds less.
	z := dialZebra(t, f)
	z.send(fpmFrame(zNexthop(12, "192.0.2.9", veth0)),
		fpmFrame(zRoute(unix.RTM_NEWROUTE, "198.51.100.0/24", 12, unix.RT_TABLE_MAIN)),
		fpmFrame(zRoute(unix.RTM_NEWROUTE, "2001:db8::/64", 12, unix.RT_TABLE_MAIN)))
	during := map[netip.Prefix]entry.Route{}
	for _, r := range []entry.Route{route("198.51.100.0/24", "192.0.2.9", "veth0"),
		route("203.0.113.0/25", "192.0.2.1", "veth0"), route("203.0.113.128/25", "192.0.2.2", "veth0")} {
		during[r.Prefix] = r
	}
	sinkHas(t, sink, during, map[entry.MAC]netip.Addr{})
	if n := stat(f.Stats(), "replays"); n != 1 {
		t.Fatalf("replays = %d before the new connection named nothing new for %v: stale routes went too early", n, quiet)
	}
	// Changes to routes already named keep coming, as they do on a busy
	// network: they do not hold the replay open.
	stop := make(chan struct{})
	churned := make(chan int)
	go func() {
		n := 0
		for gw := uint32(12); ; gw = 25 - gw {
			select {
			case <-stop:
				churned <- n
				return
			case <-time.After(100 * time.Millisecond):
			}
			z.c.Write(fpmFrame(zRoute(unix.RTM_DELROUTE, "198.51.100.0/24", 0, unix.RT_TABLE_MAIN),
				zRoute(unix.RTM_NEWROUTE, "198.51.100.0/24", gw, unix.RT_TABLE_MAIN)))
			n++
		}
	}()
	z.send(fpmFrame(zNexthop(13, "192.0.2.9", veth0)))
	fpmStat(t, f, "replays", 2)
	close(stop)
	if n := <-churned; n < 5 {
		t.Fatalf("only %d changes were sent during the replay's quiet time of %v", n, quiet)
	}
	sinkHas(t, sink, map[netip.Prefix]entry.Route{mustPrefix("198.51.100.0/24"): route("198.51.100.0/24", "192.0.2.9", "veth0")},
		map[entry.MAC]netip.Addr{})
	// Of the old objects 6 and 7, none is left; 2001:db8::/64 goes
	// through an IPv4 gateway.
	checkStats(t, f.Stats(), map[string]uint64{"stale_routes_removed": 2, "nexthops": 2, "skipped_via": 1})
}

// TestFPMHeldRoutes: a server started again on its store holds routes
// from before (FPMOptions.Held). zebra's replay of one as it was changes
// nothing its clients would see (every such route reached them as an
// update to itself); one zebra sends otherwise is replaced; the one
// zebra never had goes at the replay's end, and the log names it.
func TestFPMHeldRoutes(t *testing.T) {
	t.Parallel()
	veth0 := fpmNS(t)
	sink := newMapSink()
	same, moved, typed := route("198.51.100.0/24", "192.0.2.1", "veth0"), route("203.0.113.0/25", "192.0.2.1", "veth0"), route("10.77.0.0/16", "192.0.2.1", "veth0")
	for _, r := range []entry.Route{same, moved, typed} {
		sink.Apply(entry.RouteChange(entry.Create, r))
	}
	current := func(p netip.Prefix) (entry.Route, bool) {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		r, ok := sink.routes[p]
		return r, ok
	}
	var logged logLines
	f, err := NewFPMImporter(sink, FPMOptions{Addr: netip.MustParseAddrPort("127.0.0.1:0"), ReplayQuiet: time.Second,
		Held: []entry.Route{same, moved, typed}, Current: current, Logf: logged.logf})
	if err != nil {
		t.Fatal(err)
	}
	runImporter(t, f)
	calls := sink.callCount()
	z := dialZebra(t, f)
	z.send(fpmFrame(zNexthop(6, "192.0.2.1", veth0)), fpmFrame(zNexthop(7, "192.0.2.2", veth0)),
		fpmFrame(zRoute(unix.RTM_NEWROUTE, "198.51.100.0/24", 6, unix.RT_TABLE_MAIN)),
		fpmFrame(zRoute(unix.RTM_NEWROUTE, "203.0.113.0/25", 7, unix.RT_TABLE_MAIN)))
	fpmStat(t, f, "replays", 1)
	moved.Gateway = mustAddr("192.0.2.2")
	sinkHas(t, sink, map[netip.Prefix]entry.Route{same.Prefix: same, moved.Prefix: moved}, map[entry.MAC]netip.Addr{})
	if n := sink.callCount() - calls; n != 2 {
		t.Errorf("%d changes for zebra's replay, want 2: the moved route's and the typed one's delete", n)
	}
	if all := logged.String(); !strings.Contains(all, "2 routes for rtm, 1 stale route removed: 10.77.0.0/16") {
		t.Errorf("the end of the replay does not name the route it removed:\n%s", all)
	}
}

// TestFPMReplayUnderATrickle: prefixes announced for the first time at
// the pace of live changes do not hold a replay open. A route withdrawn
// while rtm was away stayed, in rtm and in every --to-kernel client, for
// as long as a new prefix came every few seconds (36 s in a review, with
// FRR announcing one every 2 s).
func TestFPMReplayUnderATrickle(t *testing.T) {
	t.Parallel()
	veth0 := fpmNS(t)
	sink := newMapSink()
	const quiet = time.Second
	f := startFPM(t, sink, quiet)
	zebraWent(t, f, fpmFrame(zNexthop(6, "192.0.2.1", veth0)),
		fpmFrame(zRoute(unix.RTM_NEWROUTE, "198.51.100.0/24", 6, unix.RT_TABLE_MAIN)),
		fpmFrame(zRoute(unix.RTM_NEWROUTE, "203.0.113.0/24", 6, unix.RT_TABLE_MAIN)))

	// zebra comes back without 203.0.113.0/24, then announces a new
	// prefix every half quiet time.
	z := dialZebra(t, f)
	z.send(fpmFrame(zNexthop(6, "192.0.2.1", veth0)),
		fpmFrame(zRoute(unix.RTM_NEWROUTE, "198.51.100.0/24", 6, unix.RT_TABLE_MAIN)))
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(quiet / 2):
			}
			z.c.Write(fpmFrame(zRoute(unix.RTM_NEWROUTE, fmt.Sprintf("10.9.%d.0/24", i), 6, unix.RT_TABLE_MAIN)))
		}
	}()
	waitFor(t, 6*quiet, "the stale route to go while new prefixes trickle in", func() (bool, string) {
		routes, _ := sink.snapshot()
		_, ok := routes[mustPrefix("203.0.113.0/24")]
		return !ok, fmt.Sprintf("203.0.113.0/24 still held, replays %d", stat(f.Stats(), "replays"))
	})
	checkStats(t, f.Stats(), map[string]uint64{"replays": 2, "stale_routes_removed": 1})
}

// TestFPMOneZebra: a second connection while zebra is connected is
// refused and counted; zebra's own carries on.
func TestFPMOneZebra(t *testing.T) {
	veth0 := fpmNS(t)
	sink := newMapSink()
	f := startFPM(t, sink, time.Hour)
	z := dialZebra(t, f)
	z.send(fpmFrame(zNexthop(6, "192.0.2.1", veth0)))
	fpmStat(t, f, "frames", 1)
	other := dialZebra(t, f)
	other.closedByRTM()
	fpmStat(t, f, "connections_refused", 1)
	z.send(fpmFrame(zRoute(unix.RTM_NEWROUTE, "198.51.100.0/24", 6, unix.RT_TABLE_MAIN)))
	sinkHas(t, sink, map[netip.Prefix]entry.Route{mustPrefix("198.51.100.0/24"): route("198.51.100.0/24", "192.0.2.1", "veth0")},
		map[entry.MAC]netip.Addr{})
	// A next hop through 0.0.0.0 is connected, to Linux and to rtm.
	z.send(fpmFrame(zNexthop(7, "0.0.0.0", veth0), zRoute(unix.RTM_NEWROUTE, "203.0.113.0/24", 7, unix.RT_TABLE_MAIN)))
	sinkHas(t, sink, map[netip.Prefix]entry.Route{mustPrefix("198.51.100.0/24"): route("198.51.100.0/24", "192.0.2.1", "veth0"),
		mustPrefix("203.0.113.0/24"): route("203.0.113.0/24", "", "veth0")}, map[entry.MAC]netip.Addr{})
}

// dialAs connects to f as zebra from a socket uid owns: a socket's owner
// is the fsuid of the thread that makes it, and a namespace test's
// goroutine has a thread of its own, which it never gives back.
func dialAs(t *testing.T, f *FPMImporter, uid int) *zebraConn {
	t.Helper()
	unix.RawSyscall(unix.SYS_SETFSUID, uintptr(uid), 0, 0)
	defer unix.RawSyscall(unix.SYS_SETFSUID, 0, 0, 0)
	return dialZebra(t, f)
}

// TestFPMPeerUID: a connection from a socket of this host is refused
// unless its owner may change the tables, and counted; AllowUIDs (the
// server's --allow-write-uid) allows one more.
func TestFPMPeerUID(t *testing.T) {
	fpmNS(t)
	f := startFPM(t, newMapSink(), time.Hour)
	dialAs(t, f, 65534).closedByRTM()
	fpmStat(t, f, "connections_refused", 1)
	if n := stat(f.Stats(), "connections"); n != 0 {
		t.Fatalf("connections = %d after a refused uid", n)
	}
	z := dialAs(t, f, 0)
	fpmStat(t, f, "zebra_connected", 1)
	z.c.Close()

	g, err := NewFPMImporter(newMapSink(), FPMOptions{Addr: netip.MustParseAddrPort("127.0.0.1:0"), AllowUIDs: []uint32{65534}, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	runImporter(t, g)
	dialAs(t, g, 65534)
	fpmStat(t, g, "zebra_connected", 1)
}

// TestFPMAddressInUse: the importer listens on exactly the address it is
// given (0.0.0.0 is not [::] too), and one in use is refused with whose
// socket holds it.
func TestFPMAddressInUse(t *testing.T) {
	fpmNS(t)
	f, err := NewFPMImporter(newMapSink(), FPMOptions{Addr: netip.MustParseAddrPort("0.0.0.0:0"), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	port := f.Addr().Port()
	if c, err := net.Dial("tcp6", net.JoinHostPort("::1", strconv.Itoa(int(port)))); err == nil {
		c.Close()
		t.Errorf("an importer given 0.0.0.0:%d accepts IPv6 connections too", port)
	}
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	addr := netip.MustParseAddrPort(held.Addr().String())
	_, err = NewFPMImporter(newMapSink(), FPMOptions{Addr: addr})
	want := fmt.Sprintf("listen on %s: the address is in use by ", addr)
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), fmt.Sprintf("(pid %d, uid 0)", os.Getpid())) {
		t.Fatalf("an importer on an address this process listens on: %v; want %q and this pid", err, want)
	}
	// The wildcard address of a port held at one address: no connection
	// to the wildcard reaches that listener, which is found all the same.
	wild := netip.AddrPortFrom(netip.IPv4Unspecified(), addr.Port())
	_, err = NewFPMImporter(newMapSink(), FPMOptions{Addr: wild})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("listen on %s: the address is in use by ", wild)) || !strings.Contains(err.Error(), fmt.Sprintf("(pid %d, uid 0)", os.Getpid())) {
		t.Fatalf("an importer on the wildcard of a port this process listens on: %v", err)
	}
}

// TestFPMMalformed: a frame rtm cannot read closes that connection and
// changes nothing; the frames before it stand, and zebra's next
// connection is served.
func TestFPMMalformed(t *testing.T) {
	good := fpmFrame(zRoute(unix.RTM_NEWROUTE, "198.51.100.0/24", 6, unix.RT_TABLE_MAIN))
	truncated := fpmFrame(zRoute(unix.RTM_NEWROUTE, "203.0.113.0/24", 6, unix.RT_TABLE_MAIN))
	binary.NativeEndian.PutUint32(truncated[fpmHeaderLen:], 400)
	badDst := fpmFrame(nlMsg(unix.RTM_NEWROUTE, 0, rtmsg(unix.AF_INET, 24, unix.RTN_UNICAST, 0,
		attr(nil, unix.RTA_DST, []byte{203, 0, 113}), attr(nil, rtaNHID, u32(6)))))
	for name, frame := range map[string][]byte{
		"version 2":           append([]byte{2, 1, 0, 4}, nil...),
		"protobuf":            {1, 2, 0, 8, 0, 0, 0, 0},
		"length under header": {1, 1, 0, 3},
		"truncated message":   truncated,
		"bad destination": append(badDst,
			fpmFrame(zRoute(unix.RTM_NEWROUTE, "203.0.113.128/25", 6, unix.RT_TABLE_MAIN))...),
	} {
		t.Run(name, func(t *testing.T) {
			veth0 := fpmNS(t) // a subtest runs on a thread of its own
			sink := newMapSink()
			f := startFPM(t, sink, time.Hour)
			z := dialZebra(t, f)
			z.send(fpmFrame(zNexthop(6, "192.0.2.1", veth0)), good, frame)
			z.closedByRTM()
			fpmStat(t, f, "malformed_frames", 1)
			want := map[netip.Prefix]entry.Route{mustPrefix("198.51.100.0/24"): route("198.51.100.0/24", "192.0.2.1", "veth0")}
			sinkHas(t, sink, want, map[entry.MAC]netip.Addr{})
			z = dialZebra(t, f)
			z.send(fpmFrame(zRoute(unix.RTM_NEWROUTE, "203.0.113.0/24", 6, unix.RT_TABLE_MAIN)))
			want[mustPrefix("203.0.113.0/24")] = route("203.0.113.0/24", "192.0.2.1", "veth0")
			sinkHas(t, sink, want, map[entry.MAC]netip.Addr{})
		})
	}
}

func TestParseFPMAddr(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:2620": "127.0.0.1:2620", "[::1]:2621": "[::1]:2621", ":2700": "127.0.0.1:2700",
		"192.0.2.1": "192.0.2.1:2620", "::1": "[::1]:2620", "0.0.0.0:2620": "0.0.0.0:2620",
		"[::1]": "[::1]:2620", "[2001:db8::1]": "[2001:db8::1]:2620",
	} {
		got, err := ParseFPMAddr(in)
		if err != nil || got.String() != want {
			t.Errorf("ParseFPMAddr(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "localhost:2620", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:x", "[fe80::1%eth0]:2620", "fe80::1%eth0", "[127.0.0.1]", "[fe80::1%eth0]", "[::1"} {
		if got, err := ParseFPMAddr(in); err == nil {
			t.Errorf("ParseFPMAddr(%q) = %v, want an error", in, got)
		}
	}
}

// fuzzLinks are the devices FuzzFPM's importer knows: the index zebra
// numbered its device with in the corpus (testdata/fuzz/FuzzFPM holds
// what zebra 8.4 sent on a real connection), and two more.
func fuzzLinks() ([]klink, error) {
	return []klink{{index: 1, name: "lo"}, {index: 2, name: "veth0", flags: unix.IFF_UP}, {index: 3, name: "veth1"}}, nil
}

// FuzzFPM feeds arbitrary bytes to an FPM importer as zebra's stream,
// then ends the replay: nothing may panic, and the sink must hold
// exactly what the importer believes it told it, every route valid.
func FuzzFPM(f *testing.F) {
	f.Add(fpmFrame(zNexthop(6, "192.0.2.1", 2)))
	f.Add(append(fpmFrame(zGroup(8, 6, 7)), fpmFrame(zRoute(unix.RTM_NEWROUTE, "2001:db8::/32", 8, unix.RT_TABLE_MAIN))...))
	f.Fuzz(func(t *testing.T, stream []byte) {
		sink := newMapSink()
		im := &FPMImporter{logf: func(string, ...any) {}, stats: newCounters(fpmNames)}
		im.view = newRouteView(sink, unix.RT_TABLE_MAIN, fuzzLinks, im.logf, "kernel_")
		links, _ := fuzzLinks()
		im.view.links.replace(links)
		im.replay = newReplay(im.view)
		var msgs []fpmMessage
		for len(stream) > 0 {
			n, _, err := im.applyFrames(stream, &msgs)
			if err != nil || n == 0 {
				break
			}
			stream = stream[n:]
		}
		im.endReplay()
		got, _ := sink.snapshot()
		if d := diffRoutes(got, im.view.routes); d != "" {
			t.Fatalf("the sink differs from what the importer told it: %s", d)
		}
		for _, r := range got {
			if err := r.Check(); err != nil {
				t.Fatalf("invalid route %s in the sink: %v", routeString(r), err)
			}
		}
	})
}
