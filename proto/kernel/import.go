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

// Importer counters beside the route view's, in Stats order before the
// neighbour skip kinds.
const (
	imMACs             = iota // gauge: MAC entries the sink holds from the importer
	imMACUpdates              // sink MAC calls that succeeded
	imNeighConflicts          // gauge: MACs that neighbours with different IPs claim
	imResyncs                 // complete re-reads of the kernel
	imOverflows               // ENOBUFS on the event socket: events were lost
	imDumpsInterrupted        // dumps the kernel flagged inconsistent, redone
	imFixed
)

func neighSkipIndex(k neighKind) int { return imFixed + int(k-neighSkipProxy) }

var importerNames = []string{
	"neighbours_imported", "mac_updates", "neigh_conflicts", "resyncs", "overflows", "dumps_interrupted",
}

// Importer mirrors the kernel's routes and neighbours of one network
// namespace into a Sink. See the package documentation for the rules.
type Importer struct {
	sink   Sink
	rule   macRule
	logf   func(string, ...any)
	events *conn // subscribed to links, routes, nexthops, neighbours, IPv4 addresses
	dumps  *conn // requests only, so a dump never interleaves with events
	stats  *counters

	ready     chan struct{}
	running   atomic.Bool
	closed    atomic.Bool
	closeOnce sync.Once

	// Owned by the Run goroutine.
	view   *routeView
	neigh  map[neighKey]entry.MAC   // the kernel's neighbours that are MAC entries
	byMAC  map[entry.MAC][]macCand  // the same, by MAC
	macs   map[entry.MAC]netip.Addr // what the sink was told
	resync bool                     // the view has diverged: re-read the kernel
}

// NewImporter prepares an importer of the network namespace of the
// calling thread: it subscribes to the kernel's route, neighbour and link
// events at once, so nothing that happens after NewImporter returns is
// missed. Run reads the tables and follows the events.
func NewImporter(sink Sink, opt ImporterOptions) (*Importer, error) {
	im := &Importer{
		sink:  sink,
		logf:  opt.Logf,
		stats: newCounters(importerNames, neighSkipNames[neighSkipProxy:]),
		ready: make(chan struct{}),
		macs:  map[entry.MAC]netip.Addr{},
	}
	table := opt.Table
	if table == 0 {
		table = unix.RT_TABLE_MAIN
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
	im.view = newRouteView(sink, table, func() ([]klink, error) { return dumpLinks(im.dumps) },
		func(format string, args ...any) { im.logf("kernel import: "+format, args...) }, "kernel_")
	var err error
	im.events, err = openConn(unix.RTNLGRP_LINK, unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV6_ROUTE,
		unix.RTNLGRP_NEXTHOP, unix.RTNLGRP_NEIGH, unix.RTNLGRP_IPV4_IFADDR)
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
func (im *Importer) Stats() []Stat {
	return append(im.view.stats.snapshot(), im.stats.snapshot()...)
}

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
				im.view.stats.inc(vNetlinkErrors)
				im.logf("kernel import: read events: %v; re-reading the kernel", err)
			}
			if err := im.reload(); err != nil {
				return im.stopped(err)
			}
			continue
		}
		if err := forMessages(b, im.handle); err != nil {
			im.view.stats.inc(vNetlinkErrors)
			im.logf("kernel import: %v; re-reading the kernel", err)
			im.resync = true
		}
		im.view.flush()
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
		if m.typ == unix.RTM_NEWROUTE {
			im.view.addRoute(&r, m.flags)
		} else if im.view.deleteRoute(&r) {
			im.resync = true
		}
	case unix.RTM_NEWNEXTHOP, unix.RTM_DELNEXTHOP:
		nh, err := decodeNexthop(m.data)
		if err != nil {
			return err
		}
		if m.typ == unix.RTM_NEWNEXTHOP {
			im.view.setNexthop(nh)
		} else {
			im.view.deleteNexthop(nh.id)
		}
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
		// AF_BRIDGE messages are about bridge ports. A device that goes
		// down or away takes its routes and neighbours with it, without
		// a notification for each IPv4 route.
		if l.family == unix.AF_UNSPEC && im.view.linkEvent(l, m.typ == unix.RTM_NEWLINK) {
			im.resync = true
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

// refreshMAC brings the sink's entry for m in line with the kernel.
func (im *Importer) refreshMAC(m entry.MAC) {
	want, ok := im.rule.winner(im.byMAC[m])
	have, had := im.macs[m]
	switch {
	case ok && (!had || have != want):
		if err := im.sink.Apply(entry.MACChange(entry.Replace, m, want)); err != nil {
			im.view.sinkError("set MAC %s %s: %v", m, want, err)
			return
		}
		im.macs[m] = want
		im.stats.inc(imMACUpdates)
	case !ok && had:
		if err := im.sink.Apply(entry.MACChange(entry.Delete, m, netip.Addr{})); err != nil && !errors.Is(err, entry.ErrNotFound) {
			im.view.sinkError("delete MAC %s: %v", m, err)
			return
		}
		delete(im.macs, m)
		im.stats.inc(imMACUpdates)
	default:
		return
	}
	im.stats.set(imMACs, uint64(len(im.macs)))
}
