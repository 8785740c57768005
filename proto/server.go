package proto

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"rtm/store"
)

// ServerOptions configure a Server.
type ServerOptions struct {
	Socket string       // path of the SOCK_SEQPACKET socket
	Store  *store.Store // the segment; the Server becomes its only user
	// GroupAccess opens the socket to the owner's group (mode 0660).
	GroupAccess bool
	// AllowUIDs lists uids besides the server's own (and root) that may
	// connect. The kernel's SO_PEERCRED is the source of truth.
	AllowUIDs []uint32
	// LogBytes bounds the memory of the change log that slow clients
	// read from (0 means DefaultLogBytes). A client that falls further
	// behind is sent a fresh snapshot.
	LogBytes int
	// Logf receives connection events; nil discards them.
	Logf func(format string, args ...any)
}

// Server owns the tables through the store and fans every change out to
// the connected clients. All writes go through its mutex, in one order:
// write the store, then append the change to the log, then wake writers.
// No lock is held while writing to a socket, so no client can stall it.
type Server struct {
	opts ServerOptions
	ln   *net.UnixListener
	uid  uint32

	mu  sync.Mutex // guards st, log and the order of changes
	st  *store.Store
	log *changeLog

	conns   atomic.Pointer[[]*serverConn]
	nextID  atomic.Uint64
	closing atomic.Bool
	wg      sync.WaitGroup

	syncWaiters atomic.Int32
	ackSignal   chan struct{}

	stats serverStats
}

type serverStats struct {
	connects, disconnects, dropped, refused atomic.Uint64
	snapshots, overruns, resyncRequests     atomic.Uint64
	packets, records, bytes, acks           atomic.Uint64
}

// Listen opens the socket and returns a Server ready to Serve.
func Listen(o ServerOptions) (*Server, error) {
	mode := os.FileMode(0o600)
	if o.GroupAccess {
		mode = 0o660
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	ln, err := listen(o.Socket, mode)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opts:      o,
		ln:        ln,
		uid:       uint32(os.Getuid()),
		st:        o.Store,
		log:       newChangeLog(0, cmp.Or(o.LogBytes, DefaultLogBytes)),
		ackSignal: make(chan struct{}, 1),
	}
	s.conns.Store(&[]*serverConn{})
	return s, nil
}

// Serve accepts clients until Close. Running out of file descriptors is
// reported and retried, never fatal.
func (s *Server) Serve() error {
	backoff := 5 * time.Millisecond
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if s.closing.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) || isFDExhaustion(err) {
				s.opts.Logf("accept on %s: %v; retrying in %v", s.opts.Socket, err, backoff)
				time.Sleep(backoff)
				backoff = min(2*backoff, time.Second)
				continue
			}
			return fmt.Errorf("accept on %s: %w", s.opts.Socket, err)
		}
		backoff = 5 * time.Millisecond
		s.wg.Add(1)
		go s.serveConn(c)
	}
}

// Close tells every client the server is quitting, after sending them every
// change published so far, then closes the socket (removing its file).
// It waits at most timeout for slow clients.
func (s *Server) Close(reason string, timeout time.Duration) {
	if s.closing.Swap(true) {
		return
	}
	s.ln.Close()
	for _, c := range *s.conns.Load() {
		c.shutdown(reason, timeout)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout + 100*time.Millisecond):
		for _, c := range *s.conns.Load() {
			c.uc.Close()
		}
		<-done
	}
}

// publish appends one encoded record (built on s.log.room()) and wakes
// every idle writer. Callers hold s.mu.
func (s *Server) publish(rec []byte) {
	s.log.commit(rec)
	for _, c := range *s.conns.Load() {
		if c.idle.Load() {
			c.kick()
		}
	}
}

// The write methods implement the command language's changes.

func (s *Server) CreateRoute(r store.Route) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.CreateRoute(r); err != nil {
		return err
	}
	s.publish(AppendRoute(s.log.room(), OpRouteCreate, r))
	return nil
}

func (s *Server) UpdateRoute(r store.Route) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.UpdateRoute(r); err != nil {
		return err
	}
	s.publish(AppendRoute(s.log.room(), OpRouteUpdate, r))
	return nil
}

func (s *Server) DeleteRoute(p netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.DeleteRoute(p); err != nil {
		return err
	}
	s.publish(AppendRouteDelete(s.log.room(), p))
	return nil
}

func (s *Server) CreateMAC(m store.MAC, ip netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.CreateMAC(m, ip); err != nil {
		return err
	}
	s.publish(AppendMAC(s.log.room(), OpMACCreate, m))
	return nil
}

func (s *Server) UpdateMAC(m store.MAC, ip netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.UpdateMAC(m, ip); err != nil {
		return err
	}
	s.publish(AppendMAC(s.log.room(), OpMACUpdate, m))
	return nil
}

// DeleteMAC publishes after the store has dropped the key: a client that
// still holds the key reads "not found" from the store, never another
// MAC's address, because lookups check the key in the slot.
func (s *Server) DeleteMAC(m store.MAC) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.st.DeleteMAC(m); err != nil {
		return err
	}
	s.publish(AppendMAC(s.log.room(), OpMACDelete, m))
	return nil
}

func (s *Server) Flush(routes, macs bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var which uint8
	if routes {
		if err := s.st.FlushRoutes(); err != nil {
			return err
		}
		which |= FlushRoutes
	}
	if macs {
		if err := s.st.FlushMACs(); err != nil {
			return err
		}
		which |= FlushMACs
	}
	if which != 0 {
		s.publish(AppendFlush(s.log.room(), which))
	}
	return nil
}

// The read methods answer `show`, `lookup` and `route` at the server.

func (s *Server) Routes() []store.Route {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := s.st.Routes()
	out := make([]store.Route, 0, rt.Len())
	for r := range rt.All() {
		out = append(out, r)
	}
	return out
}

func (s *Server) GetRoute(p netip.Prefix) (store.Route, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.GetRoute(p)
}

func (s *Server) MatchRoute(ip netip.Addr) (store.Route, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.MatchRoute(ip)
}

func (s *Server) MACs() []store.MAC {
	s.mu.Lock()
	out := make([]store.MAC, 0, s.st.MACCount())
	s.st.RangeMACs(func(m store.MAC, _ netip.Addr) bool {
		out = append(out, m)
		return true
	})
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b store.MAC) int { return compareMAC(a, b) })
	return out
}

func compareMAC(a, b store.MAC) int {
	x, y := a.Uint64(), b.Uint64()
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

func (s *Server) LookupMAC(m store.MAC) (netip.Addr, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ip, ok := s.st.LookupMAC(m)
	if !ok {
		return netip.Addr{}, fmt.Errorf("MAC %s: %w", m, store.ErrNotFound)
	}
	return ip, nil
}

// Clients lists the connected clients with their lag.
func (s *Server) Clients() []ClientInfo {
	pub := s.log.published.Load()
	conns := *s.conns.Load()
	out := make([]ClientInfo, 0, len(conns))
	for _, c := range conns {
		out = append(out, c.snapshotInfo(pub))
	}
	return out
}

// Stats returns the server's counters, in a stable order.
func (s *Server) Stats() []Stat {
	s.mu.Lock()
	routes, macs := s.st.Routes().Len(), s.st.MACCount()
	s.mu.Unlock()
	st := &s.stats
	return []Stat{
		{"routes", uint64(routes)},
		{"macs", uint64(macs)},
		{"changes", s.log.published.Load()},
		{"clients", uint64(len(*s.conns.Load()))},
		{"clients_connected", st.connects.Load()},
		{"clients_disconnected", st.disconnects.Load()},
		{"clients_dropped_protocol", st.dropped.Load()},
		{"clients_refused", st.refused.Load()},
		{"snapshots_sent", st.snapshots.Load()},
		{"slow_client_resyncs", st.overruns.Load()},
		{"resyncs_requested", st.resyncRequests.Load()},
		{"packets_sent", st.packets.Load()},
		{"records_sent", st.records.Load()},
		{"bytes_sent", st.bytes.Load()},
		{"acks_received", st.acks.Load()},
	}
}

// Sync waits until every connected client has acknowledged every change
// published before the call.
func (s *Server) Sync(ctx context.Context) error {
	target := s.log.published.Load()
	s.syncWaiters.Add(1)
	defer s.syncWaiters.Add(-1)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	behind := func() []string {
		var names []string
		for _, c := range *s.conns.Load() {
			if acked := c.acked.Load(); acked < target {
				names = append(names, fmt.Sprintf("%s (pid %d) at %d", c.info.Name, c.info.PID, acked))
			}
		}
		return names
	}
	for {
		if !s.anyBehind(target) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sync to change %d: %w; behind: %v", target, ctx.Err(), behind())
		case <-s.ackSignal:
		case <-tick.C:
		}
	}
}

// anyBehind says whether a connected client has not acknowledged target.
// It runs on every ack a sync waits for, so it formats nothing.
func (s *Server) anyBehind(target uint64) bool {
	for _, c := range *s.conns.Load() {
		if c.acked.Load() < target {
			return true
		}
	}
	return false
}

// Published returns the sequence number of the last change.
func (s *Server) Published() uint64 { return s.log.published.Load() }

func (s *Server) addConn(c *serverConn) {
	for {
		old := s.conns.Load()
		next := append(slices.Clip(*old), c)
		if s.conns.CompareAndSwap(old, &next) {
			return
		}
	}
}

func (s *Server) removeConn(c *serverConn) {
	for {
		old := s.conns.Load()
		next := slices.DeleteFunc(slices.Clone(*old), func(x *serverConn) bool { return x == c })
		if s.conns.CompareAndSwap(old, &next) {
			return
		}
	}
}

// snapshot encodes the whole state into batch bodies and returns them with
// the log position just past the last change they include. It holds the
// lock for the time of one walk over the tables: the only way to get a
// state that is exactly "everything up to sequence N".
func (s *Server) snapshot() (bodies [][]byte, counts []uint32, routes, macs int, seq uint64, cur cursor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	buf := make([]byte, 0, chunkSize)
	var n uint32
	flush := func() {
		bodies, counts = append(bodies, buf), append(counts, n)
		buf, n = make([]byte, 0, chunkSize), 0
	}
	add := func(rec []byte) {
		buf = rec
		n++
		if len(buf)+MaxRecord > chunkSize {
			flush()
		}
	}
	for r := range s.st.Routes().All() {
		add(AppendRoute(buf, OpRouteCreate, r))
	}
	s.st.RangeMACs(func(m store.MAC, _ netip.Addr) bool {
		add(AppendMAC(buf, OpMACCreate, m))
		return true
	})
	if n > 0 {
		flush()
	}
	return bodies, counts, s.st.Routes().Len(), s.st.MACCount(), s.log.seq, s.log.tail()
}
