package kernel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"rtm/store/entry"

	"golang.org/x/sys/unix"
)

// DefaultFPMPort is the port zebra's dplane_fpm_nl connects to unless
// configured otherwise (`fpm address 127.0.0.1 port 2620`).
const DefaultFPMPort = 2620

// DefaultFPMAddr is where an FPMImporter listens unless told otherwise.
var DefaultFPMAddr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), DefaultFPMPort)

// ZebraUser is the user FRR's packages run zebra as: its connections
// are accepted as the server's own.
const ZebraUser = "frr"

// DefaultReplayQuiet is how long zebra's replay of its table must go
// without naming anything new before rtm takes it to be over (replay.go):
// zebra's walk of its table pauses for 1 s at most, and 3 s leaves room.
const DefaultReplayQuiet = 3 * time.Second

// fpmBufferSize holds several frames of the largest size (64 KiB).
const fpmBufferSize = 256 << 10

// ParseFPMAddr reads the address an FPMImporter listens on: an IP
// address and a port ("127.0.0.1:2620", "[::1]:2620"), an IP address
// alone (port 2620), or ":PORT" (on 127.0.0.1). A name is refused: what
// the listener is open to must be exactly what was asked for.
func ParseFPMAddr(v string) (netip.AddrPort, error) {
	bad := func() (netip.AddrPort, error) {
		return netip.AddrPort{}, fmt.Errorf("want an IP address to listen on, with a port or without (%d), as 127.0.0.1:2620, [::1]:2620 or ::1, got %q", DefaultFPMPort, v)
	}
	// An address alone, bracketed or not, takes the default port.
	bare := v
	if strings.HasPrefix(bare, "[") && strings.HasSuffix(bare, "]") {
		bare = bare[1 : len(bare)-1]
	}
	if a, err := netip.ParseAddr(bare); err == nil && a.Zone() == "" && (bare == v || a.Is6()) {
		return netip.AddrPortFrom(a, DefaultFPMPort), nil
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return bad()
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return bad()
	}
	a := DefaultFPMAddr.Addr()
	if host != "" {
		if a, err = netip.ParseAddr(host); err != nil || a.Zone() != "" || strings.Contains(host, "%") {
			return bad()
		}
	}
	return netip.AddrPortFrom(a, uint16(p)), nil
}

// FPMOptions tune an FPMImporter; the zero value listens on
// DefaultFPMAddr and follows table main.
type FPMOptions struct {
	// Addr is the address to listen on; the zero value means
	// DefaultFPMAddr. Any address but a loopback one is logged as open
	// to whoever can reach it.
	Addr netip.AddrPort
	// Table is the routing table to follow; 0 means main (254).
	Table uint32
	// ReplayQuiet is DefaultReplayQuiet if 0.
	ReplayQuiet time.Duration
	// AllowUIDs may connect from this host besides root, this process's
	// uid and ZebraUser's (see FPMImporter).
	AllowUIDs []uint32
	// Held are routes the sink holds already: a server's store, reopened
	// after rtm restarted. They stay until the end of zebra's first
	// replay, as an earlier connection's routes do across zebra's
	// reconnect, and go then unless zebra named them: a restart of rtm
	// leaves no gap in its clients' tables (nor in the kernels they
	// install into) while zebra connects again and replays. Current, if
	// set, says what the sink holds for a prefix then: a held route that
	// changed since (typed again) is not the import's to delete.
	Held    []entry.Route
	Current func(netip.Prefix) (entry.Route, bool)
	// Logf, if set, receives one line per connection, replay and
	// refusal.
	Logf func(format string, args ...any)
}

// FPM counters beside the route view's.
const (
	fpmConnected    = iota // gauge: 1 while zebra is connected
	fpmConnections         // connections accepted
	fpmRefused             // connections refused: another zebra was connected, or the peer may not change the tables
	fpmFrames              // frames applied
	fpmMalformed           // connections closed for a frame rtm cannot read
	fpmReplays             // replays of zebra's table seen to their end
	fpmStaleRemoved        // routes of an earlier connection that a replay did not send again
)

var fpmNames = []string{
	"zebra_connected", "connections", "connections_refused", "frames", "malformed_frames", "replays", "stale_routes_removed",
}

// FPMImporter is rtm as zebra's Forwarding Plane Manager: it listens for
// zebra's dplane_fpm_nl module and maps the routes zebra selects onto a
// Sink by the same rules as an Importer. See the package documentation.
type FPMImporter struct {
	ln    *net.TCPListener
	links *conn     // link events of rtm's network namespace
	dumps *conn     // requests: the devices
	diag  *diagConn // who owns a connection's other end
	allow map[uint32]bool
	quiet time.Duration
	logf  func(string, ...any)
	stats *counters

	ready     chan struct{}
	running   atomic.Bool
	closed    atomic.Bool
	closeOnce sync.Once
	wg        sync.WaitGroup // the connection and the link follower

	mu      sync.Mutex // guards what follows, and the view's sink calls
	view    *routeView
	zebra   *net.TCPConn  // the connected zebra, nil if none
	since   time.Time     // when zebra connected, or the last one left
	replay  *replay       // zebra's replay, until it is over (see replay.go)
	held    []entry.Route // FPMOptions.Held, until the first replay ends
	current func(netip.Prefix) (entry.Route, bool)
}

// NewFPMImporter listens for zebra on opt.Addr, in the network namespace
// of the calling thread, whose devices name the routes' interfaces. Run
// serves the connections. Its errors name no flag: the caller does.
func NewFPMImporter(sink Sink, opt FPMOptions) (*FPMImporter, error) {
	f := &FPMImporter{
		quiet:   opt.ReplayQuiet,
		logf:    opt.Logf,
		stats:   newCounters(fpmNames),
		ready:   make(chan struct{}),
		held:    opt.Held,
		current: opt.Current,
	}
	if f.quiet <= 0 {
		f.quiet = DefaultReplayQuiet
	}
	if f.logf == nil {
		f.logf = func(string, ...any) {}
	}
	addr := opt.Addr
	if !addr.IsValid() {
		addr = DefaultFPMAddr
	}
	table := opt.Table
	if table == 0 {
		table = unix.RT_TABLE_MAIN
	}
	f.view = newRouteView(sink, table, func() ([]klink, error) { return dumpLinks(f.dumps) },
		func(format string, args ...any) { f.logf("fpm: "+format, args...) }, "fpm_")
	f.view.current = opt.Current
	var err error
	if f.links, err = openConn(unix.RTNLGRP_LINK); err != nil {
		return nil, err
	}
	if f.dumps, err = openConn(); err != nil {
		f.links.close()
		return nil, err
	}
	if f.diag, err = openDiag(); err == nil {
		f.ln, err = listenFPM(addr, f.diag)
	}
	if err != nil {
		f.links.close()
		f.dumps.close()
		if f.diag != nil {
			f.diag.close()
		}
		return nil, err
	}
	f.allow = map[uint32]bool{0: true, uint32(os.Geteuid()): true}
	for _, u := range opt.AllowUIDs {
		f.allow[u] = true
	}
	if u, err := user.Lookup(ZebraUser); err == nil {
		if uid, err := strconv.ParseUint(u.Uid, 10, 32); err == nil {
			f.allow[uint32(uid)] = true
		}
	}
	if !addr.Addr().IsLoopback() {
		f.logf("fpm: listening on %s, not a loopback address: whoever reaches it can change rtm's routes", f.Addr())
	}
	return f, nil
}

// listenFPM listens on exactly addr: "tcp" would take 0.0.0.0 for the
// IPv6 wildcard too. An address in use is told with whose socket holds it.
func listenFPM(addr netip.AddrPort, diag *diagConn) (*net.TCPListener, error) {
	network := "tcp6"
	if addr.Addr().Unmap().Is4() {
		network, addr = "tcp4", netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	}
	ln, err := net.ListenTCP(network, net.TCPAddrFromAddrPort(addr))
	if !errors.Is(err, unix.EADDRINUSE) {
		return ln, err
	}
	uid, inode, derr := diag.tcpListener(addr)
	if derr != nil {
		// A wildcard address can be held by a listener on one address
		// only, which a connection to the wildcard would not reach.
		var ok bool
		if uid, inode, ok = portListener(addr.Port()); !ok {
			return nil, fmt.Errorf("listen on %s: the address is in use", addr)
		}
	}
	if pid, name := socketHolder(inode); pid != 0 {
		return nil, fmt.Errorf("listen on %s: the address is in use by %s (pid %d, uid %d); stop it, or give --from-fpm another address and zebra the same (fpm address A port P)", addr, name, pid, uid)
	}
	return nil, fmt.Errorf("listen on %s: the address is in use by a socket of uid %d; stop its program, or give --from-fpm another address and zebra the same (fpm address A port P)", addr, uid)
}

// Addr is the address the importer listens on.
func (f *FPMImporter) Addr() netip.AddrPort { return f.ln.Addr().(*net.TCPAddr).AddrPort() }

// Zebra returns the connected zebra's address ("" if none), when it
// connected (when the last one left if none is connected; zero if none
// ever did), whether its replay of its table is still going on, and how
// many routes of the store's rtm holds until the first replay ends
// (FPMOptions.Held), to remove those zebra does not send.
func (f *FPMImporter) Zebra() (addr string, since time.Time, replaying bool, held int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.zebra != nil {
		addr = f.zebra.RemoteAddr().String()
	}
	return addr, f.since, f.replay != nil, len(f.held)
}

// Ready is closed once the importer has read the devices and accepts
// zebra.
func (f *FPMImporter) Ready() <-chan struct{} { return f.ready }

// Stats returns the importer's counters; safe to call at any time.
func (f *FPMImporter) Stats() []Stat {
	return append(f.view.stats.snapshot(), f.stats.snapshot()...)
}

// Close stops Run, drops zebra's connection and releases the sockets. It
// does not wait for Run to return.
func (f *FPMImporter) Close() error {
	f.closeOnce.Do(func() {
		f.closed.Store(true)
		f.ln.Close()
		f.links.close()
		f.dumps.close()
		f.diag.close()
		f.mu.Lock()
		if f.zebra != nil {
			f.zebra.Close()
		}
		f.mu.Unlock()
	})
	return nil
}

// Run serves zebra's connections, one at a time, until ctx is done or
// Close is called; it returns once nothing it started runs any more. It
// returns an error only if the devices cannot be read. Run may be called
// once.
func (f *FPMImporter) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return errors.New("fpm: Run called twice")
	}
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	links, err := dumpLinks(f.dumps)
	if err != nil {
		if f.closed.Load() {
			return nil
		}
		return fmt.Errorf("fpm: list devices: %w", err)
	}
	f.view.links.replace(links)
	f.wg.Add(1)
	go f.followLinks()
	defer f.wg.Wait()
	close(f.ready)
	for {
		c, err := f.ln.AcceptTCP()
		if err != nil {
			if f.closed.Load() {
				return nil
			}
			// Out of descriptors or the like: wait as net/http does.
			f.logf("fpm: accept: %v", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		f.accept(c)
	}
}

// accept takes zebra's connection, or refuses it if a zebra is
// connected or its other end is a socket of this host that a uid owns
// that may not change the tables.
func (f *FPMImporter) accept(c *net.TCPConn) {
	if why := f.refusal(c); why != "" {
		c.Close()
		f.stats.inc(fpmRefused)
		f.logf("fpm: refused a connection from %s: %s", c.RemoteAddr(), why)
		return
	}
	f.mu.Lock()
	if f.zebra != nil || f.closed.Load() {
		other := f.zebra
		f.mu.Unlock()
		c.Close()
		if other != nil {
			f.stats.inc(fpmRefused)
			f.logf("fpm: refused a connection from %s: zebra at %s is connected, and rtm takes one at a time",
				c.RemoteAddr(), other.RemoteAddr())
		}
		return
	}
	f.zebra, f.since = c, time.Now()
	f.replay = newReplay(f.view)
	f.mu.Unlock()
	f.stats.inc(fpmConnections)
	f.stats.set(fpmConnected, 1)
	f.logf("fpm: zebra connected from %s", c.RemoteAddr())
	f.wg.Add(1)
	go f.serve(c)
}

// refusal says why the other end of c may not change the tables, or "".
// A socket of this host must be owned by an allowed uid; a connection
// from another host comes only to a listener asked for explicitly.
func (f *FPMImporter) refusal(c *net.TCPConn) string {
	local := c.LocalAddr().(*net.TCPAddr).AddrPort()
	remote := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	uid, err := f.diag.tcpOwner(remote, local)
	switch {
	case errors.Is(err, errNoSocket) && !local.Addr().Unmap().IsLoopback():
		return ""
	case err != nil:
		return err.Error()
	case !f.allow[uid]:
		return fmt.Sprintf("its socket is uid %d's, which may not change the tables (zebra runs as %s; rtm server --allow-write-uid %d allows this uid)", uid, ZebraUser, uid)
	}
	return ""
}

// errFrame wraps a frame rtm cannot read.
type errFrame struct{ err error }

func (e errFrame) Error() string { return e.err.Error() }
func (e errFrame) Unwrap() error { return e.err }

// serve reads zebra's frames until the connection ends.
func (f *FPMImporter) serve(c *net.TCPConn) {
	defer f.wg.Done()
	err := f.read(c)
	f.mu.Lock()
	f.zebra, f.replay, f.since = nil, nil, time.Now()
	f.mu.Unlock()
	c.Close()
	f.stats.set(fpmConnected, 0)
	var bad errFrame
	switch {
	case f.closed.Load():
	case errors.As(err, &bad):
		f.stats.inc(fpmMalformed)
		f.logf("fpm: zebra at %s sent a frame rtm cannot read: %v; closed its connection (zebra reconnects and sends its table again)",
			c.RemoteAddr(), err)
	default:
		f.logf("fpm: zebra at %s disconnected (%v); its routes stay until the next zebra's replay ends", c.RemoteAddr(), err)
	}
}

// read applies the frames of one connection. While zebra replays its
// table, each read waits at most until the replay's clock says it is
// over (replayClock): then stale routes go.
func (f *FPMImporter) read(c *net.TCPConn) error {
	buf := make([]byte, fpmBufferSize)
	var msgs []fpmMessage
	start, end := 0, 0
	replaying, clock := true, newReplayClock(f.quiet, time.Now())
	for {
		used, named, err := f.applyFrames(buf[start:end], &msgs)
		start += used
		if err != nil {
			return errFrame{err}
		}
		clock.named(time.Now(), named)
		if start == end {
			start, end = 0, 0
		} else if end == len(buf) {
			end = copy(buf, buf[start:end])
			start = 0
		}
		if replaying {
			if start == end && clock.over(time.Now()) {
				f.endReplay()
				replaying = false
				c.SetReadDeadline(time.Time{})
			} else {
				c.SetReadDeadline(clock.deadline())
			}
		}
		n, err := c.Read(buf[end:])
		end += n
		var ne net.Error
		switch {
		case err == nil:
		case replaying && errors.As(err, &ne) && ne.Timeout():
			if start != end {
				clock.named(time.Now(), 1) // zebra is in the middle of a frame
			}
			// The clock is read again above.
		case errors.Is(err, io.EOF):
			return errors.New("it closed the connection")
		default:
			return err
		}
	}
}

// applyFrames applies the complete frames at the start of b and returns
// how many bytes they took, and how many of them named a route or object
// not named before on this connection. A frame is decoded whole first,
// so one that is malformed changes nothing.
func (f *FPMImporter) applyFrames(b []byte, msgs *[]fpmMessage) (used, named int, err error) {
	locked := false
	defer func() {
		if locked {
			f.view.flush()
			f.mu.Unlock()
		}
	}()
	for {
		n, err := fpmFrameLen(b[used:])
		if err != nil {
			return used, named, err
		}
		if n == 0 || len(b)-used < n {
			return used, named, nil
		}
		*msgs, err = decodeFPM(b[used+fpmHeaderLen:used+n], (*msgs)[:0])
		if err != nil {
			return used, named, err
		}
		if !locked {
			f.mu.Lock()
			locked = true
		}
		if f.apply(*msgs) {
			named++
		}
		f.stats.inc(fpmFrames)
		used += n
	}
}

// apply applies one frame's messages to the view and reports whether
// they named something new to the replay. zebra sends a route's change
// as a delete and a create in one frame; the sink gets only the result,
// at the flush.
func (f *FPMImporter) apply(msgs []fpmMessage) (named bool) {
	for i := range msgs {
		m := &msgs[i]
		inView := false
		switch m.typ {
		case unix.RTM_NEWROUTE:
			inView = f.view.selectRoute(&m.route)
		case unix.RTM_DELROUTE:
			inView = f.view.withdrawRoute(&m.route)
		case unix.RTM_NEWNEXTHOP:
			f.view.setNexthop(m.nh)
		case unix.RTM_DELNEXTHOP:
			f.view.deleteNexthop(m.nh.id)
		}
		if f.replay == nil {
			continue
		}
		switch m.typ {
		case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
			named = f.replay.route(tableKey{m.route.table, m.route.dst}, inView) || named
		default:
			named = f.replay.nexthop(m.nh.id) || named
		}
	}
	return named
}

// endReplay removes what zebra held before this connection and did not
// send again: rtm now equals zebra's table.
func (f *FPMImporter) endReplay() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.replay == nil {
		return
	}
	removed := f.replay.end(f.view)
	f.replay = nil
	f.view.flush()
	for _, h := range f.held {
		p := h.Prefix
		if _, named := f.view.routes[p]; named {
			continue
		}
		if f.current != nil {
			if now, ok := f.current(p); !ok || now != h {
				continue // gone, or typed again since
			}
		}
		err := f.view.sink.Apply(entry.RouteChange(entry.Delete, entry.Route{Prefix: p}))
		switch {
		case err == nil:
			removed = append(removed, p)
		case !errors.Is(err, entry.ErrNotFound):
			f.view.sinkError("delete route %s held from before rtm started: %v", p, err)
		}
	}
	f.held = nil
	// What the sink holds now, the view has told it: a new prefix needs
	// no look at the server's table any more.
	f.view.current = nil
	f.stats.inc(fpmReplays)
	f.stats.add(fpmStaleRemoved, uint64(len(removed)))
	f.logf("fpm: zebra's table is in (nothing new for %v): %s for rtm, %s",
		f.quiet, plural(len(f.view.routes), "route"), staleRemoved(removed))
}

// plural is "1 route", "2 routes".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// staleRemoved says which routes the end of a replay removed: the first
// few by prefix, so that a route that went (one typed before rtm
// restarted, which zebra never had) is named where it went.
func staleRemoved(ps []netip.Prefix) string {
	switch len(ps) {
	case 0:
		return "no stale routes removed"
	case 1:
		return "1 stale route removed: " + ps[0].String()
	}
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	const named = 4
	s := fmt.Sprintf("%d stale routes removed: ", len(ps))
	for i, p := range ps[:min(len(ps), named)] {
		if i > 0 {
			s += ", "
		}
		s += p.String()
	}
	if len(ps) > named {
		s += fmt.Sprintf(" and %d more", len(ps)-named)
	}
	return s
}

// followLinks keeps the device names up to date: routes name their
// device, zebra numbers it.
func (f *FPMImporter) followLinks() {
	defer f.wg.Done()
	for {
		b, err := f.links.recv()
		if err != nil {
			if f.closed.Load() || errors.Is(err, os.ErrClosed) {
				return
			}
			// Events lost (ENOBUFS) or unreadable: list the devices again.
			f.mu.Lock()
			f.view.stats.inc(vNetlinkErrors)
			if links, err := dumpLinks(f.dumps); err == nil {
				f.view.links.replace(links)
				clear(f.view.missing)
				f.view.touchAll()
				f.view.flush()
			}
			f.mu.Unlock()
			continue
		}
		f.mu.Lock()
		if err := forMessages(b, func(m message) error {
			if m.typ != unix.RTM_NEWLINK && m.typ != unix.RTM_DELLINK {
				return nil
			}
			l, err := decodeLink(m.data)
			if err == nil && l.family == unix.AF_UNSPEC {
				f.view.linkEvent(l, m.typ == unix.RTM_NEWLINK)
			}
			return err
		}); err != nil {
			f.view.stats.inc(vNetlinkErrors)
		}
		f.view.flush()
		f.mu.Unlock()
	}
}
