package proto

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"rtm/store"
	"rtm/store/entry"
	"rtm/store/prefetch"

	"golang.org/x/sys/unix"
)

// ClientOptions configure a client session.
type ClientOptions struct {
	Socket string
	Name   string // shown in the server's `show clients`
	// Logf receives session events (lost server, resync); nil discards.
	Logf func(format string, args ...any)
	// Wait is how long Dial keeps trying to reach the server (0: one try).
	Wait time.Duration
	// Subscribers see what the client applies (a watcher, a kernel
	// installer), in order.
	Subscribers []Subscriber
	// ServerUIDs are uids besides the client's own and root that the
	// client trusts to run its server (rtm client --server-uid).
	ServerUIDs []uint32
}

// Subscriber sees what a client applies, in order, from the session's
// goroutine and without the tables' lock: first the whole tables after
// each snapshot, then each batch of live changes once it is applied. The
// client knows nothing of what a subscriber does with them, as FRR's
// dataplane plugins know nothing of each other.
type Subscriber interface {
	// Snapshot says that a snapshot has replaced the tables (the first
	// one, or a resync) and gives them whole; seq is the last change it
	// holds. A MAC deleted again before its address could be read from
	// the store is left out.
	Snapshot(seq uint64, routes []entry.Route, macs []entry.MACEntry)
	// Changes gives a batch of live changes; cs[i] is change first+i. A
	// MAC create's or update's IP is read from the store once the batch
	// is applied: invalid if the entry was gone again by then (its
	// delete follows).
	Changes(first uint64, cs []entry.Change)
}

// Client is a session's subscription to a server: it keeps a local copy of
// the routing table and of the MAC key set, reads MAC addresses from the
// store mapping, and hands what it applies to its Subscribers.
// The copy survives a lost server; the session reconnects with backoff
// and replaces the copy with a fresh snapshot.
type Client struct {
	opts ClientOptions

	mu     sync.RWMutex
	routes *store.RouteTable
	macs   *macSet
	room   tableRoom // written by the receive loop alone, under mu

	reader  atomic.Pointer[store.Reader]
	readers []*store.Reader // every mapping ever used; unmapped at Close only

	applied atomic.Uint64 // last change applied
	ready   chan struct{} // closed once the client has what the server had when it was welcomed
	readyAt atomic.Uint64 // the server's last change at the welcome
	firstBy time.Time     // Dial's deadline (Wait): the first snapshot must have come by then
	done    chan struct{} // closed when the session ends for good
	err     error         // why it ended: nil for a server quit or Close; written before done is closed
	// quit is the server's goodbye, if it said one: stored as it comes,
	// before the requests in flight fail, so a sync that fails with them
	// says the server quit.
	quit     atomic.Pointer[QuitError]
	stop     chan struct{}
	once     sync.Once
	unmapped sync.Once // Close unmaps the stores once

	connMu sync.Mutex
	conn   *net.UnixConn // nil while the session reconnects
	connUp notifier      // a new connection is up
	// connGen numbers the connections: a reply says which it came on,
	// and a catch-up to a sequence of a lost connection ends at once.
	connGen atomic.Uint64

	pongMu  sync.Mutex
	pongs   map[uint64]chan uint64
	pingSeq atomic.Uint64

	// Sync waits on progress, which the receive loop notifies when
	// applied moves while a sync is waiting.
	syncWaiters atomic.Int32
	progress    notifier

	req requests // in flight, waiting for replies

	extra statSources

	stats clientStats
}

type clientStats struct {
	packets, records, snapshots, reconnects, gaps, resyncs atomic.Uint64
}

// Dial connects to the server, completes the hello, and runs the session
// in the background. A failure to reach the server at all is returned at
// once; losing it later is survived by reconnecting.
func Dial(o ClientOptions) (*Client, error) {
	if err := CheckClientName(o.Name); err != nil {
		return nil, err
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	c := &Client{
		opts:   o,
		routes: new(store.RouteTable),
		macs:   newMACSet(0),
		ready:  make(chan struct{}),
		done:   make(chan struct{}),
		stop:   make(chan struct{}),
		pongs:  make(map[uint64]chan uint64),
	}
	c.firstBy = time.Now().Add(o.Wait)
	uc, err := c.connect()
	for err != nil && !errors.Is(err, ErrRefused) && time.Now().Before(c.firstBy) {
		time.Sleep(50 * time.Millisecond)
		uc, err = c.connect()
	}
	if err != nil {
		return nil, err
	}
	go c.run(uc)
	return c, nil
}

// Ready is closed once the client holds everything the server had when it
// first welcomed it: its first snapshot, and the changes that complete it.
func (c *Client) Ready() <-chan struct{} { return c.ready }

// markReady closes Ready once the client holds every change the server
// had made when it welcomed this client: a snapshot may be an older one,
// shared with other clients, which the changes after it complete.
func (c *Client) markReady() {
	if !c.isReady() && c.applied.Load() >= c.readyAt.Load() {
		close(c.ready)
	}
}

func (c *Client) isReady() bool {
	select {
	case <-c.ready:
		return true
	default:
		return false
	}
}

// Done is closed when the session has ended: the server quit, Close, the
// server refused or dropped the client, or it was lost before the first
// snapshot and not back within Dial's Wait.
func (c *Client) Done() <-chan struct{} { return c.done }

// PeerGone says whether the server has closed the connection, whether or
// not this client has read what it sent before (its goodbye among it): a
// receive loop held up elsewhere (a watcher's write to an output nobody
// reads) would never read that far. False while there is no connection.
func (c *Client) PeerGone() bool {
	c.connMu.Lock()
	conn := c.conn
	c.connMu.Unlock()
	if conn == nil {
		return false
	}
	rc, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLRDHUP}}
		if n, err := unix.Poll(fds, 0); err == nil && n == 1 {
			gone = fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP) != 0
		}
	})
	return gone
}

// Err says why the session ended: nil after a server quit or Close, an
// error wrapping ErrRefused if the server refused or dropped the client,
// another error if the server was lost before the first snapshot and did
// not come back within Dial's Wait. It waits for the end.
func (c *Client) Err() error {
	<-c.done
	return c.err
}

// Quit is the server's goodbye once the session has ended with one (a
// *QuitError, which wraps ErrServerQuit and ErrSessionEnded), nil
// otherwise. It waits for the end.
func (c *Client) Quit() error {
	<-c.done
	if q := c.quit.Load(); q != nil {
		return q
	}
	return nil
}

// ended is what a wait or a request gets once the session is over: the
// server's goodbye, which says why, or ErrSessionEnded.
func (c *Client) ended() error {
	if q := c.quit.Load(); q != nil {
		return q
	}
	return ErrSessionEnded
}

// Close ends the session and unmaps the store. It may be called more
// than once, from any goroutine.
func (c *Client) Close() error {
	c.once.Do(func() { close(c.stop) })
	c.connMu.Lock()
	if c.conn != nil {
		c.conn.Close()
	}
	c.connMu.Unlock()
	<-c.done
	c.unmapped.Do(func() {
		for _, r := range c.readers {
			r.Close()
		}
	})
	return nil
}

// Resync drops the local copy and asks for a fresh snapshot (SIGUSR1).
func (c *Client) Resync() {
	c.stats.resyncs.Add(1)
	// Not connected: the next connection begins with a snapshot anyway.
	ctx, cancel := context.WithTimeout(context.Background(), askTimeout)
	defer cancel()
	c.send(ctx, Header{Kind: KindResync}, nil)
}

// connect dials the socket, says hello and maps the store it is welcomed
// to. It trusts nothing before it has checked the socket's directory and
// the server's uid, nor a store the server's uid does not own alone.
func (c *Client) connect() (*net.UnixConn, error) {
	uc, serverUID, body, seq, err := handshake(c.opts.Socket, c.opts.Name, c.opts.ServerUIDs, 0, c.firstBy)
	if err != nil {
		return nil, err
	}
	c.readyAt.Store(seq)
	gen, path := binary.LittleEndian.Uint64(body), string(body[8:])
	if r := c.reader.Load(); r == nil || r.Generation() != gen || r.Path() != path {
		nr, err := store.OpenReader(path, int(serverUID))
		if err != nil {
			uc.Close()
			if _, ok := errors.AsType[*store.UnsafeError](err); ok {
				err = untrusted{err}
			}
			if errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("map store of %s: %w (%w: removed while the server runs?)", c.opts.Socket, err, ErrNoStore)
			}
			return nil, fmt.Errorf("map store of %s: %w", c.opts.Socket, err)
		}
		if got := nr.Generation(); got != gen {
			// Another file at the path: moved there by whoever can write
			// its directory, or a server's new store made after the
			// welcome. Its entries are not the server's.
			nr.Close()
			uc.Close()
			return nil, fmt.Errorf("map store of %s: %s is not the server's store (generation %x, the server's %x): it was replaced", c.opts.Socket, path, got, gen)
		}
		if r != nil {
			c.opts.Logf("store %s has a new generation: remapped", path)
		}
		// Old mappings stay mapped: a lookup in flight may still read them.
		c.readers = append(c.readers, nr)
		c.reader.Store(nr)
	}
	c.connMu.Lock()
	c.conn = uc
	c.connGen.Add(1)
	c.connMu.Unlock()
	c.connUp.notify()
	return uc, nil
}

// handshake connects to the server at socket once its directory is
// trusted, checks who runs it (SO_PEERCRED) before it believes a byte,
// says hello with flags, and returns the connection, the server's uid,
// the body of its welcome and the last change it had made then. It waits
// helloTimeout for the welcome, or until by if that is sooner and not
// past: a client told to wait so long for its server (Dial's Wait) waits
// no longer for one that is there but silent.
func handshake(socket, name string, trusted []uint32, flags uint8, by time.Time) (*net.UnixConn, uint32, []byte, uint64, error) {
	if err := checkSocketLen(socket); err != nil {
		return nil, 0, nil, 0, fmt.Errorf("connect to %w", err)
	}
	if err := checkSocketDir(socket, trusted); err != nil {
		return nil, 0, nil, 0, err
	}
	uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: socket, Net: "unixpacket"})
	if err != nil {
		return nil, 0, nil, 0, dialError(socket, trusted, err)
	}
	serverUID, err := checkServer(uc, socket, trusted)
	if err != nil {
		uc.Close()
		return nil, 0, nil, 0, err
	}
	setBuffers(uc)
	buf := make([]byte, MaxPacket+1)
	start := time.Now()
	deadline := start.Add(helloTimeout)
	if by.After(start) && by.Before(deadline) {
		deadline = by
	}
	if beforeHello != nil {
		beforeHello()
	}
	helloErr := writePacket(uc, Header{Kind: KindHello, Flags: flags}, []byte(name))
	if helloErr != nil {
		// A server that refused before the hello came (out of
		// descriptors) has closed: its reason may be waiting, and is
		// read as any refusal; nothing else is.
		deadline = time.Now().Add(100 * time.Millisecond)
	}
	uc.SetReadDeadline(deadline)
	body, h, err := readPacket(uc, buf)
	uc.SetReadDeadline(time.Time{})
	if helloErr != nil && (err != nil || h.Kind != KindError) {
		uc.Close()
		return nil, 0, nil, 0, fmt.Errorf("hello to %s: %w", socket, helloErr)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: no welcome within %v: it is stopped or overloaded", ErrBusy, deadline.Sub(start).Round(100*time.Millisecond))
	}
	if err == nil && h.Kind == KindError && h.Flags&FlagRetry != 0 {
		err = fmt.Errorf("%w: %s", ErrBusy, Printable(body))
	} else if err == nil && h.Kind == KindError {
		err = fmt.Errorf("%w: %s", ErrRefused, Printable(body))
	} else if err == nil && (h.Kind != KindWelcome || len(body) < 9) {
		err = fmt.Errorf("%w: expected welcome, got %v", ErrProtocol, h.Kind)
	}
	if err != nil {
		uc.Close()
		return nil, 0, nil, 0, fmt.Errorf("handshake with %s: %w", socket, err)
	}
	return uc, serverUID, body, h.Seq, nil
}

// beforeHello, when a test sets it, runs between the connect and the
// hello: the one way to make a hello come after a server has refused
// and closed.
var beforeHello func()

// run is the session: receive until the server quits, reconnecting with
// backoff whenever the connection is lost.
func (c *Client) run(uc *net.UnixConn) {
	defer close(c.done)
	defer func() { c.failRequests(ErrSessionEnded) }()
	for {
		err := c.receive(uc)
		var qe *QuitError
		if errors.As(err, &qe) {
			// Before the connection goes: a send that finds none finds
			// the goodbye instead (sendLead).
			c.quit.Store(qe)
		}
		c.connMu.Lock()
		c.conn = nil // until connect has another: send waits for it
		c.connGen.Add(1)
		c.connMu.Unlock()
		c.progress.notify() // a catch-up on this connection is over
		uc.Close()
		c.failRequests(err)
		select {
		case <-c.stop:
			return
		default:
		}
		if qe != nil {
			return
		}
		if errors.Is(err, ErrRefused) {
			c.err = err
			return
		}
		if !c.isReady() && !time.Now().Before(c.firstBy) {
			// No tables to keep: a client that has not had its first
			// snapshot waits for the server no longer than Dial would.
			c.err = fmt.Errorf("lost the server at %s before its first snapshot: %w", c.opts.Socket, err)
			return
		}
		c.mu.RLock()
		nr, nm := c.routes.Len(), c.macs.Len()
		c.mu.RUnlock()
		c.opts.Logf("lost server at %s: %v; keeping %d routes and %d MACs, reconnecting", c.opts.Socket, err, nr, nm)
		if uc, err = c.reconnect(); uc == nil {
			c.err = err
			return
		}
		c.stats.reconnects.Add(1)
		c.opts.Logf("reconnected to %s", c.opts.Socket)
	}
}

// reconnect tries again with backoff until it is back, the client is
// closed (nil, nil), or the server refuses it (nil and the refusal). A
// client still waiting for its first snapshot gives up at Dial's
// deadline.
func (c *Client) reconnect() (*net.UnixConn, error) {
	backoff := 20 * time.Millisecond
	for {
		select {
		case <-c.stop:
			return nil, nil
		case <-time.After(backoff):
		}
		uc, err := c.connect()
		if err != nil && !c.isReady() && !time.Now().Before(c.firstBy) {
			return nil, fmt.Errorf("lost the server at %s before its first snapshot: %w", c.opts.Socket, err)
		}
		if err == nil || errors.Is(err, ErrRefused) {
			return uc, err
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// receive applies packets from one connection until it fails. Its
// buffer is faulted in before the first packet (prefetch.Pages): the
// first full packets would otherwise fault on each of its 17 pages inside
// the kernel's copy, on the path of the first changes.
func (c *Client) receive(uc *net.UnixConn) error {
	buf := make([]byte, MaxPacket+1)
	prefetch.Pages(buf)
	var (
		dec     = Decoder{StoredNames: true} // the server's tables
		staging *snapshotTables              // non-nil between snapshot begin and end
		live    bool
		// A snapshot can be a shared one, older than the log's head; the
		// changes since follow it at once. Subscribers are given the
		// tables only once those are applied too (heldTo), so a watcher
		// or a kernel never sees the tables go back in time and forward
		// again: a resync of a client that was up to date changes nothing.
		held   bool
		heldTo uint64
	)
	warming := false // a read deadline is set for warmUp
	for {
		body, h, err := readPacket(uc, buf)
		if warming && errors.Is(err, os.ErrDeadlineExceeded) {
			warming = false
			uc.SetReadDeadline(time.Time{})
			c.warmUp()
			continue
		}
		if err != nil {
			return err
		}
		c.stats.packets.Add(1)
		switch h.Kind {
		case KindSnapshotBegin:
			if len(body) != 16 {
				return fmt.Errorf("%w: snapshot begin of %d bytes", ErrMalformed, len(body))
			}
			macCap, routeCap := c.reader.Load().Capacities()
			routes, macs := binary.LittleEndian.Uint64(body), binary.LittleEndian.Uint64(body[8:])
			staging = newSnapshotTables(macCap, routeCap, macs, routes)
			live = false
		case KindBatch:
			dec.Reset(body, h.Count)
			c.stats.records.Add(uint64(h.Count))
			if h.Flags&FlagSnapshot != 0 {
				if staging == nil {
					return fmt.Errorf("%w: snapshot records outside a snapshot", ErrProtocol)
				}
				if err := applyAll(staging.routes, staging.macs, &dec, nil); err != nil {
					return err
				}
				continue
			}
			if !live {
				// Changes before our snapshot ends are already in it.
				continue
			}
			if h.Seq != c.applied.Load()+1 {
				// A gap means a lost change: never guess, resync.
				c.stats.gaps.Add(1)
				c.opts.Logf("change %d arrived, expected %d: asking for a fresh snapshot", h.Seq, c.applied.Load()+1)
				live = false
				if err := writePacket(uc, Header{Kind: KindResync}, nil); err != nil {
					return err
				}
				continue
			}
			c.makeRoom(int(h.Count))
			if err := c.applyBatch(&dec, h.Seq, !held); err != nil {
				return err
			}
			c.setApplied(h.Seq + uint64(h.Count) - 1)
			if held && c.applied.Load() >= heldTo {
				held = false
				c.publishSnapshot(c.applied.Load())
			}
			ack(uc, c.applied.Load())
			c.markReady()
		case KindSnapshotEnd:
			if staging == nil {
				return fmt.Errorf("%w: snapshot end without begin", ErrProtocol)
			}
			c.mu.Lock()
			c.routes, c.macs, c.room = staging.routes, staging.macs, staging.room
			c.mu.Unlock()
			staging = nil
			c.setApplied(h.Seq)
			live = true
			c.stats.snapshots.Add(1)
			if !warming {
				warming = true
				uc.SetReadDeadline(time.Now().Add(warmDelay))
			}
			// Count: the changes the log held past the snapshot when it
			// was sent.
			held, heldTo = len(c.opts.Subscribers) > 0 && h.Count > 0, h.Seq+uint64(h.Count)
			if len(c.opts.Subscribers) > 0 && !held {
				c.publishSnapshot(h.Seq)
			}
			ack(uc, h.Seq)
			c.markReady()
		case KindPong:
			if len(body) == 8 {
				c.pong(binary.LittleEndian.Uint64(body), h.Seq)
			}
		case KindReply:
			if err := c.gotReply(h, body); err != nil {
				return err
			}
		case KindShutdown:
			c.opts.Logf("%s; exiting", Printable(body))
			return &QuitError{Reason: Printable(body), Final: h.Flags&FlagFinal != 0}
		case KindError:
			return fmt.Errorf("%w: %s", ErrRefused, Printable(body))
		default:
			return fmt.Errorf("%w: unexpected %v from server", ErrProtocol, h.Kind)
		}
	}
}

// setApplied records that changes up to seq are applied, waking a sync.
func (c *Client) setApplied(seq uint64) {
	c.applied.Store(seq)
	if c.syncWaiters.Load() > 0 {
		c.progress.notify()
	}
}

// ack acknowledges changes up to seq. A failed ack does not end the
// session: a server that quit while this client was stopped has left its
// goodbye in the socket, and the next read must find it rather than treat
// the broken pipe as a crash.
func ack(uc *net.UnixConn, seq uint64) {
	writePacket(uc, Header{Kind: KindAck, Seq: seq}, nil)
}

// applyBatch applies one batch of live changes, the first numbered
// first, under one lock; with tell, subscribers see them after.
func (c *Client) applyBatch(dec *Decoder, first uint64, tell bool) error {
	var seen func(entry.Change)
	var changes []entry.Change
	if tell && len(c.opts.Subscribers) > 0 {
		seen = func(ch entry.Change) { changes = append(changes, ch) }
	}
	c.mu.Lock()
	err := applyAll(c.routes, c.macs, dec, seen)
	c.mu.Unlock()
	if len(changes) > 0 {
		r := c.reader.Load()
		for i := range changes {
			if ch := &changes[i]; ch.Table == entry.MACs && (ch.Op == entry.Create || ch.Op == entry.Update) {
				ch.IP, _ = r.Lookup(ch.MAC)
			}
		}
		for _, s := range c.opts.Subscribers {
			s.Changes(first, changes)
		}
	}
	return err
}

// publishSnapshot gives the subscribers the tables a snapshot made.
func (c *Client) publishSnapshot(seq uint64) {
	c.mu.RLock()
	routes := make([]entry.Route, 0, c.routes.Len())
	for r := range c.routes.Range() {
		routes = append(routes, r)
	}
	keys := make([]entry.MAC, 0, c.macs.Len())
	for m := range c.macs.All() {
		keys = append(keys, m)
	}
	c.mu.RUnlock()
	entry.SortMACs(keys)
	r := c.reader.Load()
	macs := make([]entry.MACEntry, 0, len(keys))
	// Looked up a group at a time: their cache misses overlap.
	var ips [64]netip.Addr
	var errs [64]error
	for len(keys) > 0 {
		group := keys[:min(len(keys), len(ips))]
		r.LookupMany(group, ips[:len(group)], errs[:len(group)])
		for i, m := range group {
			if errs[i] == nil {
				macs = append(macs, entry.MACEntry{MAC: m, IP: ips[i]})
			}
		}
		keys = keys[len(group):]
	}
	for _, s := range c.opts.Subscribers {
		s.Snapshot(seq, routes, macs)
	}
}

// applyGroup is how many records are decoded ahead of applying them:
// the more of their key set misses are in flight at once, the less each
// costs. 64 took an insert into a million-key set from about 21 to 13 ns
// (BenchmarkMACSetAdd); 128 gained nothing more.
const applyGroup = 64

// applyAll decodes and applies the records of dec in order, in groups
// whose MAC slots are touched first (see macSet.touch). seen, if not
// nil, sees each record once it is applied. Records before a malformed
// one are applied, as they would be one by one.
func applyAll(routes *store.RouteTable, macs *macSet, dec *Decoder, seen func(entry.Change)) error {
	var recs [applyGroup]entry.Change
	for {
		n := 0
		for n < len(recs) && dec.Next(&recs[n]) {
			n++
		}
		macs.touch(recs[:n])
		for i := range recs[:n] {
			if r := &recs[i]; r.Table == entry.Routes && r.Op != entry.Flush {
				routes.Prefetch(&r.Route.Prefix)
			}
		}
		for i := range recs[:n] {
			applyChange(routes, macs, &recs[i])
			if seen != nil {
				seen(recs[i])
			}
		}
		if n < len(recs) {
			return dec.Err()
		}
	}
}

// applyChange applies one change to a client's copy: routes whole, MACs
// as keys (their addresses are in the store).
func applyChange(routes *store.RouteTable, macs *macSet, c *entry.Change) {
	switch {
	case c.Op == entry.Flush:
		if c.Table&entry.Routes != 0 {
			routes.Clear()
		}
		if c.Table&entry.MACs != 0 {
			macs.Clear()
		}
	case c.Table == entry.Routes && c.Op == entry.Delete:
		routes.Delete(c.Route.Prefix)
	case c.Table == entry.Routes:
		routes.Set(&c.Route)
	case c.Op == entry.Delete:
		macs.Delete(c.MAC)
	case c.Op != entry.Update:
		macs.Add(c.MAC)
		// An update leaves the set as it is: the server updates only
		// MACs it holds, and this set is the server's keys at the change
		// before (a gap resyncs).
	}
}

// snapshotTables collect a snapshot aside, so the visible copy switches
// from old to new state at once.
type snapshotTables struct {
	routes *store.RouteTable
	macs   *macSet
	room   tableRoom
}

// tableRoom is how many entries a client's tables were made for, and the
// store's capacities, which no table outgrows.
type tableRoom struct {
	macs, routes     int
	macCap, routeCap int
}

// newSnapshotTables makes the tables a snapshot of macs MACs and routes
// routes fills, in a store of these capacities (snapshotSize). Their
// memory is faulted in at once (prefetch.Make): on fresh memory a probe
// takes two faults.
func newSnapshotTables(macCap, routeCap int, macs, routes uint64) *snapshotTables {
	room := tableRoom{macs: snapshotSize(macCap, macs), routes: snapshotSize(routeCap, routes), macCap: macCap, routeCap: routeCap}
	t := &snapshotTables{routes: new(store.RouteTable), macs: newMACSet(room.macs), room: room}
	t.routes.Reserve(room.routes)
	return t
}

// A client's tables are made for what its snapshot holds. A client that
// stays connected then grows them, once, to what a stream of changes
// usually needs (warmUp), and any client grows them ahead of a batch of
// changes that could outgrow them (makeRoom). Made for the stream at
// once, as they were, every client paid for that room up front, the
// faults of some 6 MiB of fresh memory and the collector they woke: a
// client that connects, makes one change and exits took twice as long.
const (
	// snapshotFloor keeps an empty client's tables to a few pages.
	snapshotFloor = 1 << 12
	// streamFloor is the room a stream into a small table gets at once:
	// one growth with its memory faulted in at once, instead of a
	// doubling every few thousand changes, each a rehash, a copy and
	// garbage.
	streamFloor = 1 << 17
	// warmDelay is how long after its snapshot a client grows its tables
	// for a stream: longer than a client that makes a change and exits
	// lives, short enough that a client started ahead of a burst is
	// ready for it.
	warmDelay = 20 * time.Millisecond
)

// snapshotSize is how many entries a client's table is made for: room for
// half as many again as the snapshot holds, at least snapshotFloor, at
// most the store's capacity.
func snapshotSize(capacity int, snapshot uint64) int {
	return min(capacity, max(snapshotFloor, int(min(snapshot, 1<<40))*3/2))
}

// streamSize is the room for a stream that takes a table to n entries:
// at least streamFloor, twice n past it, at most the capacity.
func streamSize(capacity, n int) int {
	return min(capacity, max(streamFloor, 2*n))
}

// makeRoom grows the live tables ahead of a batch of n changes that could
// outgrow them (every change counted as a create in both tables).
func (c *Client) makeRoom(n int) {
	if c.macs.Len()+n > c.room.macs || c.routes.Len()+n > c.room.routes {
		c.reserve(c.macs.Len()+n, c.routes.Len()+n)
	}
}

// warmUp grows the live tables to the room of a stream.
func (c *Client) warmUp() { c.reserve(c.macs.Len(), c.routes.Len()) }

// reserve grows each table that has room for fewer entries than macs or
// routes to the room of a stream that takes it there.
func (c *Client) reserve(macs, routes int) {
	r := &c.room
	macSize, routeSize := streamSize(r.macCap, macs), streamSize(r.routeCap, routes)
	if macSize <= r.macs && routeSize <= r.routes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if macSize > r.macs {
		c.macs.reserve(macSize)
		r.macs = macSize
	}
	if routeSize > r.routes {
		c.routes.Reserve(routeSize)
		r.routes = routeSize
	}
}

// send writes a packet on the session's connection. While the session
// reconnects there is none: send waits for the next one until ctx ends
// (so a sync or a change made while the server restarts goes to the new
// server instead of failing on the old connection). A write that fails
// on a connection just lost delivered nothing, and waits likewise.
func (c *Client) send(ctx context.Context, h Header, body []byte) error {
	return c.sendLead(ctx, h, nil, body)
}

// sendLead is send with lead, at most 8 bytes, between the header and
// the body (writePacketLead).
func (c *Client) sendLead(ctx context.Context, h Header, lead, body []byte) error {
	for {
		select {
		case <-c.done:
			// Over for good (a wait that also ended would hide why).
			return c.ended()
		default:
		}
		up := c.connUp.wait()
		c.connMu.Lock()
		uc := c.conn
		c.connMu.Unlock()
		if q := c.quit.Load(); q != nil && uc == nil {
			// The server said goodbye: no connection comes after it.
			return q
		}
		if uc != nil {
			err := writePacketLead(uc, h, lead, body)
			if err == nil {
				return nil
			}
			if q := c.quit.Load(); q != nil {
				// Lost to the goodbye, which says why: the receive loop
				// had it, and closed the connection (net.ErrClosed).
				return q
			}
			if !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, net.ErrClosed) {
				return err
			}
			// The receive loop is about to notice the loss: wait for the
			// connection after this one.
			for {
				c.connMu.Lock()
				same := c.conn == uc
				c.connMu.Unlock()
				if !same {
					break
				}
				select {
				case <-time.After(time.Millisecond):
				case <-c.done:
					return c.ended()
				case <-ctx.Done():
					return fmt.Errorf("not connected to the server: %w", err)
				}
			}
			continue
		}
		select {
		case <-up:
		case <-c.done:
			return c.ended()
		case <-ctx.Done():
			// The cause, as the caller worded it: how long it waited, or
			// that it was interrupted.
			return fmt.Errorf("not connected to the server: %w", context.Cause(ctx))
		}
	}
}

func (c *Client) pong(token, seq uint64) {
	c.pongMu.Lock()
	ch := c.pongs[token]
	delete(c.pongs, token)
	c.pongMu.Unlock()
	if ch != nil {
		ch <- seq
	}
}
