package kernel

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"

	"rtm/store/entry"

	"golang.org/x/sys/unix"
)

// Sink receives what an Importer reads from the kernel: Replace and
// Delete changes, for which entry.ErrNotFound is no failure (a key the
// kernel dropped may be gone from rtm already). The rtm server's origin
// "kernel" is one; the importer calls it from its Run goroutine only.
type Sink interface {
	Apply(entry.Change) error
}

// ImporterOptions tune an Importer; the zero value follows table main
// with IPv4 preferred.
type ImporterOptions struct {
	// Table is the routing table to follow; 0 means main (254).
	Table uint32
	// PreferFamily is 4 (the default) or 6: which address family wins
	// when kernel neighbours of both families share one MAC.
	PreferFamily int
	// RecvBuffer is the event socket's receive buffer in bytes; 0 means
	// DefaultRecvBuffer. Overflows are recovered by a resync whatever the
	// size; a larger buffer makes them rarer.
	RecvBuffer int
	// Logf, if set, receives one line per notable event (resyncs, sink
	// refusals).
	Logf func(format string, args ...any)
}

// DefaultRecvBuffer is the event socket's receive buffer unless
// ImporterOptions.RecvBuffer says otherwise.
const DefaultRecvBuffer = 32 << 20

// Importer counters, in Stats order before the skip kinds.
const (
	imRoutes           = iota // gauge: routes the sink holds from the importer
	imMACs                    // gauge: MAC entries likewise
	imRouteUpdates            // sink route calls that succeeded
	imMACUpdates              // sink MAC calls that succeeded
	imNeighConflicts          // gauge: MACs that neighbours with different IPs claim
	imResyncs                 // complete re-reads of the kernel
	imOverflows               // ENOBUFS on the event socket: events were lost
	imDumpsInterrupted        // dumps the kernel flagged inconsistent, redone
	imSinkErrors              // sink calls that failed
	imNetlinkErrors           // malformed messages and socket errors
	imFixed
)

// skipIndex and neighSkipIndex place the skip counters after the fixed ones.
func skipIndex(k skipKind) int       { return imFixed + int(k) - 1 }
func neighSkipIndex(k neighKind) int { return imFixed + int(numSkipKinds) - 1 + int(k-neighSkipProxy) }

var importerNames = []string{
	"routes_imported", "neighbours_imported", "route_updates", "mac_updates",
	"neigh_conflicts", "resyncs", "overflows", "dumps_interrupted",
	"sink_errors", "netlink_errors",
}

// Importer mirrors the kernel's routes and neighbours of one network
// namespace into a Sink. See the package documentation for the rules.
type Importer struct {
	sink   Sink
	table  uint32
	rule   macRule
	logf   func(string, ...any)
	events *conn // subscribed to links, routes, neighbours, IPv4 addresses
	dumps  *conn // requests only, so a dump never interleaves with events
	stats  *counters

	ready     chan struct{}
	running   atomic.Bool
	closed    atomic.Bool
	closeOnce sync.Once

	// Owned by the Run goroutine.
	links   *linkTable
	missing map[int32]bool               // indexes re-listed in vain since the last link event
	cands   map[netip.Prefix][]routeCand // the kernel's routes of the table, by prefix
	neigh   map[neighKey]entry.MAC       // the kernel's neighbours that are MAC entries
	byMAC   map[entry.MAC][]macCand      // the same, by MAC
	routes  map[netip.Prefix]entry.Route // what the sink was told
	macs    map[entry.MAC]netip.Addr     // likewise
	resync  bool                         // the view has diverged: re-read the kernel
}

// NewImporter prepares an importer of the network namespace of the
// calling thread: it subscribes to the kernel's route, neighbour and link
// events at once, so nothing that happens after NewImporter returns is
// missed. Run reads the tables and follows the events.
func NewImporter(sink Sink, opt ImporterOptions) (*Importer, error) {
	im := &Importer{
		sink:  sink,
		table: opt.Table,
		logf:  opt.Logf,
		stats: newCounters(importerNames, skipNames[1:], neighSkipNames[neighSkipProxy:]),
		ready: make(chan struct{}),
		links: newLinkTable(),
	}
	if im.table == 0 {
		im.table = unix.RT_TABLE_MAIN
	}
	switch opt.PreferFamily {
	case 0, 4:
	case 6:
		im.rule.prefer6 = true
	default:
		return nil, fmt.Errorf("kernel import: PreferFamily %d: want 4 or 6", opt.PreferFamily)
	}
	if im.logf == nil {
		im.logf = func(string, ...any) {}
	}
	var err error
	im.events, err = openConn(unix.RTNLGRP_LINK, unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV6_ROUTE,
		unix.RTNLGRP_NEIGH, unix.RTNLGRP_IPV4_IFADDR)
	if err != nil {
		return nil, fmt.Errorf("kernel import: %w", err)
	}
	size := opt.RecvBuffer
	if size <= 0 {
		size = DefaultRecvBuffer
	}
	if err := im.events.setRecvBuffer(size, true); err != nil {
		im.events.close()
		return nil, fmt.Errorf("kernel import: %w", err)
	}
	im.dumps, err = openConn()
	if err != nil {
		im.events.close()
		return nil, fmt.Errorf("kernel import: %w", err)
	}
	return im, nil
}

// Ready is closed once the first complete read of the kernel has been
// given to the sink.
func (im *Importer) Ready() <-chan struct{} { return im.ready }

// Stats returns the importer's counters; safe to call at any time.
func (im *Importer) Stats() []Stat { return im.stats.snapshot() }

// Close stops Run and releases the sockets. It does not wait for Run to
// return.
func (im *Importer) Close() error {
	im.closeOnce.Do(func() {
		im.closed.Store(true)
		im.events.close()
		im.dumps.close()
	})
	return nil
}

// Run reads the kernel's tables into the sink, then follows the kernel's
// events until ctx is done or Close is called, when it returns nil. It
// returns an error only if the kernel cannot be read at all. Run may be
// called once.
func (im *Importer) Run(ctx context.Context) error {
	if !im.running.CompareAndSwap(false, true) {
		return errors.New("kernel import: Run called twice")
	}
	stop := context.AfterFunc(ctx, func() { im.Close() })
	defer stop()
	if err := im.reload(); err != nil {
		return im.stopped(err)
	}
	close(im.ready)
	for {
		b, err := im.events.recv()
		if err != nil {
			if im.closed.Load() || errors.Is(err, os.ErrClosed) {
				return nil
			}
			if errors.Is(err, unix.ENOBUFS) {
				im.stats.inc(imOverflows)
				im.logf("kernel import: event socket overflowed (events lost); re-reading the kernel")
			} else {
				im.stats.inc(imNetlinkErrors)
				im.logf("kernel import: read events: %v; re-reading the kernel", err)
			}
			if err := im.reload(); err != nil {
				return im.stopped(err)
			}
			continue
		}
		if err := forMessages(b, im.handle); err != nil {
			im.stats.inc(imNetlinkErrors)
			im.logf("kernel import: %v; re-reading the kernel", err)
			im.resync = true
		}
		if im.resync {
			if err := im.reload(); err != nil {
				return im.stopped(err)
			}
		}
	}
}

// stopped turns an error caused by Close into a clean return.
func (im *Importer) stopped(err error) error {
	if im.closed.Load() {
		return nil
	}
	return err
}

// handle applies one event.
func (im *Importer) handle(m message) error {
	switch m.typ {
	case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
		r, err := decodeRoute(m.data)
		if err != nil {
			return err
		}
		im.routeEvent(&r, m.typ == unix.RTM_NEWROUTE, m.flags)
	case unix.RTM_NEWNEIGH, unix.RTM_DELNEIGH:
		n, err := decodeNeigh(m.data)
		if err != nil {
			return err
		}
		im.neighEvent(&n, m.typ == unix.RTM_NEWNEIGH)
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		l, err := decodeLink(m.data)
		if err != nil {
			return err
		}
		if l.family == unix.AF_UNSPEC { // AF_BRIDGE messages are about bridge ports
			im.linkEvent(l, m.typ == unix.RTM_NEWLINK)
		}
	case unix.RTM_DELADDR:
		// Removing an IPv4 address flushes the routes that used it as
		// source or gateway without a notification for each.
		if len(m.data) > 0 && m.data[0] == unix.AF_INET {
			im.resync = true
		}
	}
	return nil
}

func (im *Importer) routeEvent(r *kroute, add bool, nlflags uint16) {
	if r.family != unix.AF_INET && r.family != unix.AF_INET6 {
		return
	}
	if k := keyed(r, im.table); k != importable {
		if add {
			im.stats.inc(skipIndex(k))
		}
		return
	}
	c := candOf(r)
	cs := im.cands[r.dst]
	if add {
		if c.kind != importable {
			im.stats.inc(skipIndex(c.kind))
		}
		cs = addCand(cs, c, r.family, nlflags)
	} else {
		var diverged bool
		if cs, diverged = delCand(cs, c, r.family); diverged {
			im.resync = true
		}
	}
	if len(cs) == 0 {
		delete(im.cands, r.dst)
	} else {
		im.cands[r.dst] = cs
	}
	im.refreshRoute(r.dst)
}

func (im *Importer) neighEvent(n *kneigh, add bool) {
	if n.family != unix.AF_INET && n.family != unix.AF_INET6 || !n.ip.IsValid() {
		return
	}
	mac, kind := classifyNeigh(n)
	if kind >= neighSkipProxy && add {
		im.stats.inc(neighSkipIndex(kind))
	}
	im.setNeigh(neighKey{n.ifindex, n.ip}, mac, add && kind == neighEntry)
}

func (im *Importer) linkEvent(l klink, add bool) {
	clear(im.missing)
	if !add {
		im.links.remove(l.index)
		// The kernel drops a device's routes and neighbours with it,
		// without a notification for each IPv4 route.
		im.resync = true
		return
	}
	old, had := im.links.set(l)
	if had && old.up && l.flags&unix.IFF_UP == 0 {
		im.resync = true // going down flushes the device's routes silently too
	}
	if !had || old.name != l.name {
		// A new or renamed device: routes through it change name.
		for p, cs := range im.cands {
			for _, c := range cs {
				if c.oif == l.index {
					im.refreshRoute(p)
					break
				}
			}
		}
	}
}

// setNeigh records the kernel neighbour key as claiming mac (present) or
// nothing, and updates the sink for the MACs concerned.
func (im *Importer) setNeigh(key neighKey, mac entry.MAC, present bool) {
	old, had := im.neigh[key]
	if had && present && old == mac {
		return
	}
	if had {
		delete(im.neigh, key)
		im.editCands(old, func(cs []macCand) []macCand { return removeCand(cs, key) })
	}
	if present {
		im.neigh[key] = mac
		im.editCands(mac, func(cs []macCand) []macCand { return append(cs, key) })
	}
}

// editCands changes the claims on m, keeps the conflict gauge, and
// updates the sink if m's winner changed.
func (im *Importer) editCands(m entry.MAC, edit func([]macCand) []macCand) {
	cs := im.byMAC[m]
	before := len(cs) > 1 && conflicted(cs)
	cs = edit(cs)
	after := len(cs) > 1 && conflicted(cs)
	if len(cs) == 0 {
		delete(im.byMAC, m)
	} else {
		im.byMAC[m] = cs
	}
	switch {
	case after && !before:
		im.stats.add(imNeighConflicts, 1)
	case before && !after:
		im.stats.add(imNeighConflicts, ^uint64(0))
	}
	im.refreshMAC(m)
}

// exportable returns the route rtm holds for p, if the kernel's best
// route for p has one.
func (im *Importer) exportable(p netip.Prefix) (entry.Route, bool) {
	best, ok := bestCand(im.cands[p])
	if !ok || best.kind != importable {
		return entry.Route{}, false
	}
	name, ok := im.deviceName(best.oif)
	if !ok {
		im.stats.inc(skipIndex(skipUnknownDevice))
		return entry.Route{}, false
	}
	if entry.CheckIfName(name) != nil {
		return entry.Route{}, false
	}
	return entry.Route{Prefix: p, Gateway: best.gw, Dev: name}, true
}

// deviceName resolves an interface index, re-listing the devices once on
// a miss (an event may have been lost).
func (im *Importer) deviceName(i int32) (string, bool) {
	if name, ok := im.links.name(i); ok {
		return name, true
	}
	if im.missing[i] {
		return "", false
	}
	if im.missing == nil {
		im.missing = map[int32]bool{}
	}
	im.missing[i] = true
	links, err := dumpLinks(im.dumps)
	if err != nil {
		im.stats.inc(imNetlinkErrors)
		return "", false
	}
	for _, l := range links {
		im.links.set(l)
	}
	return im.links.name(i)
}

// refreshRoute brings the sink's route for p in line with the kernel.
func (im *Importer) refreshRoute(p netip.Prefix) {
	want, ok := im.exportable(p)
	have, had := im.routes[p]
	switch {
	case ok && (!had || have != want):
		if err := im.sink.Apply(entry.RouteChange(entry.Replace, want)); err != nil {
			im.sinkError("set route %s: %v", want, err)
			return
		}
		im.routes[p] = want
		im.stats.inc(imRouteUpdates)
	case !ok && had:
		if err := im.sink.Apply(entry.RouteChange(entry.Delete, entry.Route{Prefix: p})); err != nil && !errors.Is(err, entry.ErrNotFound) {
			im.sinkError("delete route %s: %v", p, err)
			return
		}
		delete(im.routes, p)
		im.stats.inc(imRouteUpdates)
	default:
		return
	}
	im.stats.set(imRoutes, uint64(len(im.routes)))
}

// refreshMAC brings the sink's entry for m in line with the kernel.
func (im *Importer) refreshMAC(m entry.MAC) {
	want, ok := im.rule.winner(im.byMAC[m])
	have, had := im.macs[m]
	switch {
	case ok && (!had || have != want):
		if err := im.sink.Apply(entry.MACChange(entry.Replace, m, want)); err != nil {
			im.sinkError("set MAC %s %s: %v", m, want, err)
			return
		}
		im.macs[m] = want
		im.stats.inc(imMACUpdates)
	case !ok && had:
		if err := im.sink.Apply(entry.MACChange(entry.Delete, m, netip.Addr{})); err != nil && !errors.Is(err, entry.ErrNotFound) {
			im.sinkError("delete MAC %s: %v", m, err)
			return
		}
		delete(im.macs, m)
		im.stats.inc(imMACUpdates)
	default:
		return
	}
	im.stats.set(imMACs, uint64(len(im.macs)))
}

// sinkError counts a refused change and logs the 1st, 2nd, 4th, 8th...
// so a sink that refuses everything cannot flood the log.
func (im *Importer) sinkError(format string, args ...any) {
	im.stats.inc(imSinkErrors)
	if n := im.stats.get(imSinkErrors); n&(n-1) == 0 {
		im.logf("kernel import: sink refused (%d so far): "+format, append([]any{n}, args...)...)
	}
}
