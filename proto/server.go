package proto

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"rtm/store"
	"rtm/store/ordered"
)

// ServerOptions configure a Server: the instance it serves and who may
// connect.
type ServerOptions struct {
	Name    string // the instance name, for messages and show info
	Version string // rtm's version, for show info
	Socket  string // path of the SOCK_SEQPACKET socket
	// Store says where the segment is and, when it is created, its
	// capacities. Capacities left 0 take an existing store's, or the
	// defaults for a new one; capacities given must match an existing
	// store's, unless Fresh.
	Store store.Options
	// Fresh starts with empty tables even if the store holds some; with
	// capacities that differ from the store's it creates the store anew.
	Fresh bool
	// Unlink removes the store file on Close (default: keep it for the
	// next server).
	Unlink bool
	// GroupAccess lets the owner's group connect (socket mode 0660) and
	// read the store (mode 0640). The store is given that mode even if
	// it existed with another: the flags say who may read it.
	GroupAccess bool
	// AllowUIDs lists uids besides the server's own (and root) that may
	// connect and read. The kernel's SO_PEERCRED is the source of truth.
	AllowUIDs []uint32
	// AllowWriteUIDs lists uids besides the server's own (and root) that
	// may connect and change the tables.
	AllowWriteUIDs []uint32
	// MaxClients bounds the connected clients (0 means DefaultMaxClients):
	// a client past it is refused, and says so.
	MaxClients int
	// LogBytes bounds the memory of the change log that slow clients
	// read from (0 means DefaultLogBytes). A client that falls further
	// behind is sent a fresh snapshot.
	LogBytes int
	// KernelImport is the kernel table the server's tables follow
	// (--from-kernel, or --from-fpm from a zebra of that namespace), for
	// show info; nil if none.
	KernelImport *KernelTable
	// Logf receives connection events; nil discards them.
	Logf func(format string, args ...any)
}

// Server owns the tables through the store and fans every change out to
// the connected clients. All writes go through its mutex, in one order:
// write the store, then append the change to the log, then wake writers.
// No lock is held while writing to a socket, so no client can stall it.
type Server struct {
	opts    ServerOptions
	ln      *net.UnixListener
	uid     uint32
	started time.Time

	mu     sync.Mutex // guards st, log, marked, snap and the order of changes
	st     *store.Store
	log    *changeLog
	marked uint64    // the last change whose time the store holds
	snap   *snapshot // the last snapshot taken, shared by the clients that need one

	// forgot is the crashed store whose link this start replaced: a
	// start abandoned (Abandon) that removes its own store links it again.
	forgot string

	storeGone atomic.Bool // the store's file was found removed, and said so
	// snapshotStall is how long a client may take none of an outdated
	// snapshot before its writer lets it go (a time.Duration; tests
	// shorten it).
	snapshotStall atomic.Int64

	conns   atomic.Pointer[[]*serverConn]
	askers  atomic.Int32 // connections that only ask (FlagQueryOnly)
	placed  atomic.Int64 // clients admitted (admit), up to MaxClients
	nextID  atomic.Uint64
	greetMu sync.Mutex
	greeted []*serverConn // connections that have not said hello yet, oldest first
	closing atomic.Bool
	wg      sync.WaitGroup
	// acceptMu orders Serve's wg.Add before shutdown's wg.Wait.
	acceptMu sync.Mutex

	// Sync waits on acked, which acks and departures notify while a
	// sync is waiting (syncWaiters > 0, so acks cost nothing otherwise).
	syncWaiters atomic.Int32
	acked       notifier
	// holding counts the Origins that hold their changes (Origin.Hold):
	// while one does and no sync waits, writers send sealed chunks only.
	holding atomic.Int32

	refusedLogs, busyLogs atomic.Uint64 // refusals and drops logged, throttled

	originsMu sync.Mutex
	origins   []namedCount // changes counted per named source
	extra     statSources
	fpm       atomic.Pointer[func() FPMState] // SetFPM's

	stats serverStats
}

// DefaultMaxClients is the number of clients a server admits unless
// ServerOptions.MaxClients says otherwise.
const DefaultMaxClients = 1024

// maxHandshakes bounds the connections that have not said hello yet:
// each may wait helloTimeout for one. Past it the oldest that has sent
// nothing is dropped: a client sends its hello as soon as it connects, so
// a flood of connections that say nothing cannot keep a real client out.
const maxHandshakes = 64

// greet records a new connection, waiting for its hello; past
// maxHandshakes it drops the oldest that has sent nothing.
func (s *Server) greet(c *serverConn) {
	s.greetMu.Lock()
	defer s.greetMu.Unlock()
	if len(s.greeted) >= maxHandshakes {
		if i := slices.IndexFunc(s.greeted, (*serverConn).drop); i >= 0 {
			s.logThrottled(&s.busyLogs, "dropped a connection that had not said hello: %d were waiting", len(s.greeted))
			s.greeted = slices.Delete(s.greeted, i, i+1)
		}
	}
	s.greeted = append(s.greeted, c)
}

// ungreet says c's handshake is over, one way or the other.
func (s *Server) ungreet(c *serverConn) {
	s.greetMu.Lock()
	defer s.greetMu.Unlock()
	s.greeted = slices.DeleteFunc(s.greeted, func(x *serverConn) bool { return x == c })
}

// logThrottled logs the 1st, 2nd, 4th, 8th… event counted by n, so that
// a flood of refusals cannot flood the log.
func (s *Server) logThrottled(n *atomic.Uint64, format string, args ...any) {
	if k := n.Add(1); k&(k-1) == 0 {
		s.opts.Logf(format+" (%d so far)", append(args, k)...)
	}
}

type serverStats struct {
	connects, disconnects, dropped, refused atomic.Uint64
	snapshots, overruns, resyncRequests     atomic.Uint64
	snapshotsDropped                        atomic.Uint64
	packets, records, bytes, acks           atomic.Uint64
	requests, fromClients                   atomic.Uint64
}

// Start opens (or creates) the instance's store and listens on its
// socket: everything a server needs before it Serves. A start that fails
// leaves nothing behind: a store it created is removed again.
func Start(o ServerOptions) (*Server, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.MaxClients <= 0 {
		o.MaxClients = DefaultMaxClients
	}
	// The group reads the store, and may connect; it never writes the
	// store: what a client changes, the server writes.
	if o.Store.Perm == 0 {
		o.Store.Perm = 0o600
		if o.GroupAccess {
			o.Store.Perm = 0o640
		}
	}
	if o.LogBytes < 0 || o.LogBytes > MaxLogBytes {
		return nil, fmt.Errorf("log of %d bytes: want at most %d (0: the default)", o.LogBytes, MaxLogBytes)
	}
	// The socket's path and directory first: a refused one leaves no
	// store behind.
	if err := checkSocketLen(o.Socket); err != nil {
		return nil, fmt.Errorf("listen %w", err)
	}
	if err := prepareSocketDir(o.Socket, o.GroupAccess); err != nil {
		return nil, err
	}
	st, renew, err := openStore(o.Store, o.Fresh)
	if err != nil {
		return nil, err
	}
	mode := os.FileMode(0o600)
	if o.GroupAccess {
		mode = 0o660
	}
	ln, err := listen(o.Socket, mode)
	if err != nil {
		discard(st)
		return nil, err
	}
	if st, err = renew(st); err != nil {
		ln.Close()
		return nil, err
	}
	s := &Server{
		opts:    o,
		ln:      ln,
		uid:     uint32(os.Getuid()),
		started: time.Now(),
		st:      st,
	}
	switch forgot, err := linkStore(o.Name, o.Socket, st.Path()); {
	case err != nil:
		o.Logf("store link %s: %v", storeLink(o.Name), err)
	case forgot != "":
		s.forgot = forgot
		o.Logf("instance %s's store was %s until this start, which its server did not close (it crashed): rtm ls lists it no more; `rtm server --name %s --store %s` repairs it", o.Name, forgot, o.Name, forgot)
	}
	s.log = newChangeLog(0, cmp.Or(o.LogBytes, DefaultLogBytes), s.lowestRead)
	s.snapshotStall.Store(int64(snapshotStall))
	s.conns.Store(&[]*serverConn{})
	go s.markChanges()
	return s, nil
}

// markChanges records in the store, once a second at most, when the
// tables last changed (rtm ls shows it): no cost on a change. It also lets
// go of a shared snapshot the change log no longer reaches.
func (s *Server) markChanges() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for range tick.C {
		if s.closing.Load() {
			return
		}
		s.mu.Lock()
		s.markChanged()
		if s.snap != nil && s.log.at(s.snap.cur.num) == nil {
			s.snap = nil // out of the log's reach: no client can be given it
		}
		s.mu.Unlock()
	}
}

// markChanged marks the store if there were changes since the last mark.
// Callers hold s.mu.
func (s *Server) markChanged() {
	if pub := s.log.published.Load(); pub != s.marked {
		s.marked = pub
		s.st.MarkChanged(time.Now())
	}
}

// openStore opens the store. Capacities asked for must be the store's: a
// store is sized once, when it is created, and made anew (with fresh) to
// change them. What makes it fresh, a store anew or its tables emptied,
// waits for renew, which Start calls once the socket listens: a start
// that fails before then changes nothing.
func openStore(o store.Options, fresh bool) (st *store.Store, renew func(*store.Store) (*store.Store, error), err error) {
	if st, err = store.Open(o); err != nil {
		return nil, nil, err
	}
	mismatch := capacityMismatch(st, o)
	switch {
	case mismatch != "" && !fresh:
		st.Close()
		return nil, nil, fmt.Errorf("store %s %s; a store keeps the size it was created with: start with --fresh to create it anew, empty, with the new capacity", o.Path, mismatch)
	case mismatch != "":
		// The capacity not asked for stays the store's.
		o.Capacity = cmp.Or(o.Capacity, st.Capacity())
		o.RouteCapacity = cmp.Or(o.RouteCapacity, st.RouteCapacity())
		if err := st.FitsAnew(o.Capacity, o.RouteCapacity); err != nil {
			st.Close()
			return nil, nil, err
		}
		return st, func(st *store.Store) (*store.Store, error) {
			if err := st.Remove(); err != nil {
				return nil, err
			}
			return store.Open(o)
		}, nil
	case fresh && !st.Recovery().Created:
		return st, func(st *store.Store) (*store.Store, error) {
			if err := errors.Join(st.FlushRoutes(), st.FlushMACs()); err != nil {
				st.Close()
				return nil, err
			}
			return st, nil
		}, nil
	}
	return st, func(st *store.Store) (*store.Store, error) { return st, nil }, nil
}

// capacityMismatch says how an existing store differs from the
// capacities asked for ("" if it does not).
func capacityMismatch(st *store.Store, o store.Options) string {
	var diffs []string
	if o.Capacity != 0 && o.Capacity != st.Capacity() {
		diffs = append(diffs, fmt.Sprintf("has room for %d MACs, not %d (--capacity)", st.Capacity(), o.Capacity))
	}
	if o.RouteCapacity != 0 && o.RouteCapacity != st.RouteCapacity() {
		diffs = append(diffs, fmt.Sprintf("has room for %d routes, not %d (--route-capacity)", st.RouteCapacity(), o.RouteCapacity))
	}
	return strings.Join(diffs, " and ")
}

// discard closes a store after a failed start, removing it if the start
// created it.
func discard(st *store.Store) {
	if st.Recovery().Created {
		st.Remove()
		return
	}
	st.Close()
}

// Serve accepts clients until Close. Running out of file descriptors is
// reported and retried, never fatal: a client that comes then is told so
// (with FlagRetry: one that waits for its server tries again), where it
// would otherwise wait unanswered in the listen queue. For that the
// server keeps a spare descriptor, given up for the moment it takes to
// accept and refuse the client (noFDRefuseWait at most).
func (s *Server) Serve() error {
	spare := openSpare()
	defer func() { closeSpare(spare) }()
	backoff := 5 * time.Millisecond
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if s.closing.Load() {
				return nil
			}
			if isFDExhaustion(err) && spare >= 0 {
				closeSpare(spare)
				s.refuseNoFD(err)
				spare = openSpare()
				continue
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
		s.checkStore()
		if spare < 0 {
			// Taken by another open of this process as it was given
			// up, or never had: try again, now that a client is in.
			spare = openSpare()
		}
		// A connection accepted as the server closes is not served:
		// shutdown's Wait must not run beside this Add.
		s.acceptMu.Lock()
		if s.closing.Load() {
			s.acceptMu.Unlock()
			c.Close()
			return nil
		}
		s.wg.Add(1)
		s.acceptMu.Unlock()
		conn := s.newConn(c)
		s.greet(conn)
		go s.serveConn(conn)
	}
}

// openSpare opens the descriptor Serve keeps for refusing clients when
// the others are all in use; -1 if none could be had.
func openSpare() int {
	fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

func closeSpare(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}

// refuseNoFD accepts the client that the exhaustion acceptErr left
// waiting, now that the spare descriptor is free, and tells it why it is
// refused. If another open took the descriptor first (another goroutine
// of this process; for ENFILE, any process), the client waits for the
// next try.
func (s *Server) refuseNoFD(acceptErr error) {
	c, err := s.ln.AcceptUnix()
	if err != nil {
		return
	}
	defer c.Close()
	s.stats.refused.Add(1)
	why := noFDError(acceptErr)
	var errno unix.Errno
	if errors.As(acceptErr, &errno) {
		acceptErr = errno // the listener's address is in the log line already
	}
	s.logThrottled(&s.refusedLogs, "accept on %s: %v: a client refused", s.opts.Socket, acceptErr)
	// The accept loop waits for this: a client that neither reads nor
	// closes holds it up only a moment, time for a slow one's hello to
	// come and be read (else the close would reset the connection).
	refuseWithin(c, tryAgain{why}, noFDRefuseWait)
}

// noFDRefuseWait is how long a client refused for want of descriptors is
// given to say hello and close; the refusal is in its socket all the
// same, and a client whose hello finds the connection closed reads it.
const noFDRefuseWait = 100 * time.Millisecond

// noFDError says which limit on open files an accept ran into: the
// process's (EMFILE), named with its value, or the system's (ENFILE).
func noFDError(acceptErr error) error {
	if errors.Is(acceptErr, unix.ENFILE) {
		return errors.New("its system is out of file descriptors; try again later")
	}
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return errors.New("out of file descriptors; try again later")
	}
	return fmt.Errorf("out of file descriptors (its limit: %d open files; raise it with ulimit -n before it starts); try again later", rl.Cur)
}

// Close tells every client the server is quitting, after sending them every
// change published so far, then closes the socket (removing its file) and
// the store (syncing it, or removing it with Unlink). It waits at most
// timeout for slow clients.
func (s *Server) Close(reason string, timeout time.Duration) error {
	if !s.shutdown(reason, timeout) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.Unlink {
		return s.unlinked(s.st.Remove())
	}
	s.markChanged()
	if s.st.Removed() {
		s.opts.Logf("store %s was removed while the server ran: its tables were not kept", s.st.Path())
	}
	return s.unlinked(s.st.Close())
}

// unlinked removes the server's store link once its store is closed
// clean or removed (err nil): a store closed is no crash to find. A quit
// cut short before then (SIGQUIT, a failed sync) leaves it, for rtm ls.
func (s *Server) unlinked(err error) error {
	if err == nil {
		unlinkStore(s.opts.Name, s.st.Path())
	}
	return err
}

// checkStore says, once, that the store's file was removed under the
// server: a client that connects cannot map it, and the tables end with
// the server. A client's connect is when it matters, and costs an fstat.
func (s *Server) checkStore() {
	if s.storeGone.Load() || s.opts.Unlink {
		return
	}
	s.mu.Lock()
	gone := s.st.Removed()
	path := s.st.Path()
	s.mu.Unlock()
	if gone && !s.storeGone.Swap(true) {
		s.opts.Logf("store %s was removed while the server runs: clients cannot map it, and its tables end when the server quits", path)
	}
}

// Abandon is Close for a start that failed (a --script that stopped at an
// error): a store this server created is removed, so a failed start
// leaves nothing behind, unless a client changed it meanwhile (the
// server serves while its scripts run): what a client was told was
// applied is kept (a kernel's or zebra's routes come again with the next
// start), and so is a store the server reopened. It returns what became
// of a store it created: "removed", "kept" or "" (it reopened one, or was
// closed already).
func (s *Server) Abandon(reason string, timeout time.Duration) (created string) {
	if !s.shutdown(reason, timeout) {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !s.st.Recovery().Created:
		s.unlinked(s.st.Close())
		return ""
	case s.stats.fromClients.Load() > 0:
		s.unlinked(s.st.Close())
		return "kept"
	}
	if err := s.unlinked(s.st.Remove()); err == nil && s.forgot != "" {
		// It leaves nothing behind, not even the loss of that record.
		if _, err := linkStore(s.opts.Name, s.opts.Socket, s.forgot); err == nil {
			s.opts.Logf("instance %s's store is %s again, as before this start (crashed: `rtm server --name %s --store %s` repairs it)", s.opts.Name, s.forgot, s.opts.Name, s.forgot)
		}
	}
	return "removed"
}

// shutdown says goodbye to every client and closes the socket; false if
// the server was closed already.
func (s *Server) shutdown(reason string, timeout time.Duration) bool {
	if s.closing.Swap(true) {
		return false
	}
	s.acceptMu.Lock() // no Add in flight (Serve): Wait below may start
	s.acceptMu.Unlock()
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
	return true
}

// Checkpoint writes the store back to its file (SIGHUP).
func (s *Server) Checkpoint() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.Sync()
}

// publish appends one encoded record (built on s.log.room()) and, with
// kick, wakes every idle writer. Callers hold s.mu.
func (s *Server) publish(rec []byte, kick bool) {
	s.log.commit(rec)
	if kick {
		s.kickIdle()
	}
}

// lowestRead is the lowest chunk of the log a writer may still read
// (changeLog.low): chunks below it are recycled.
func (s *Server) lowestRead() uint64 {
	low := uint64(math.MaxUint64)
	for _, c := range *s.conns.Load() {
		low = min(low, c.low.Load())
	}
	return low
}

// kickIdle wakes every idle writer: what the log holds goes out. The
// fence orders the log's last store before the loads of idle: a writer
// sets idle and then looks at the log once more, so one of the two sees
// the other's store and no change is left unsent.
func (s *Server) kickIdle() {
	ordered.Fence()
	for _, c := range *s.conns.Load() {
		if c.idle.Load() {
			c.kick()
		}
	}
}

// Sync waits until every connected client has acknowledged every change
// published before the call. When ctx ends first, the error names the
// clients behind and wraps ctx's error.
func (s *Server) Sync(ctx context.Context) error {
	target := s.log.published.Load()
	// Changes an Origin holds go out now: they are waited for.
	s.syncWaiters.Add(1)
	defer s.syncWaiters.Add(-1)
	s.kickIdle()
	for {
		wake := s.acked.wait()
		if !s.anyBehind(target) {
			return nil
		}
		select {
		case <-ctx.Done():
			return &waitError{what: s.behind(target), err: ctx.Err()}
		case <-wake:
		}
	}
}

// behind says which clients have not acknowledged target:
// "1 client behind: sleepy (pid 31980) at change 1 of 3".
func (s *Server) behind(target uint64) string {
	var names []string
	for _, c := range *s.conns.Load() {
		if acked := c.acked.Load(); acked < target {
			names = append(names, fmt.Sprintf("%s (pid %d) at change %d of %d", c.info.Name, c.info.PID, acked, target))
		}
	}
	if len(names) == 1 {
		return "1 client behind: " + names[0]
	}
	return fmt.Sprintf("%d clients behind: %s", len(names), strings.Join(names, ", "))
}

// waitError is a wait that ended before its goal: what says where things
// stood, in rtm's words; err is the context's reason.
type waitError struct {
	what string
	err  error
}

func (e *waitError) Error() string { return e.what }
func (e *waitError) Unwrap() error { return e.err }

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

// Info describes the server and its store.
func (s *Server) Info() (ServerInfo, error) {
	// Asked before s.mu: the FPM importer holds its own lock while it
	// applies zebra's routes, which takes s.mu.
	fpm := s.fpmState()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	state := st.Recovery().String()
	if state == "clean" {
		state = "reopened"
	}
	if s.opts.Fresh && !st.Recovery().Created {
		state += ", emptied"
	}
	if was := st.Recovery().PermWas; was != 0 {
		state += fmt.Sprintf(", mode %04o -> %04o", was, s.opts.Store.Perm.Perm())
		if st.Recovery().Reissued {
			state += " in a new file: whoever had the old one open sees no later change"
		}
	}
	if n := st.Recovery().Connected; n > 0 {
		state += fmt.Sprintf(", routes via 0.0.0.0 or :: made connected, as Linux takes them: %d", n)
	}
	if bad := st.Recovery().BadGateways; len(bad) > 0 {
		state += fmt.Sprintf(", routes through a gateway no kernel forwards through, which rtm now refuses: %d (the first: %s); update or delete them, as their lines in a dump do not replay", len(bad), bad[0])
	}
	if bad := st.Recovery().BadDevices; len(bad) > 0 {
		state += fmt.Sprintf(", routes through a device named with ',' or byte 0xa0, which rtm now refuses: %d (the first: %s); delete them, as their lines in a dump do not replay", len(bad), bad[0])
	}
	removed := !s.opts.Unlink && st.Removed()
	if removed {
		state += ", removed while the server runs: clients cannot map it, and its tables end when the server quits"
	}
	return ServerInfo{
		Name: s.opts.Name, Version: s.opts.Version, PID: os.Getpid(), Protocol: Version, Started: s.started,
		Socket: s.opts.Socket, Store: st.Path(), StoreState: state, StoreRemoved: removed, StoreBytes: st.Size(),
		Generation: st.Generation(), GenerationHex: store.HexGeneration(st.Generation()),
		Routes: st.RouteCount(), RouteCapacity: st.RouteCapacity(),
		MACs: st.MACCount(), MACCapacity: st.Capacity(),
		Changes: s.log.published.Load(), Changed: st.Changed(), LogBytes: len(s.log.ring) * chunkSize,
		Clients: len(*s.conns.Load()), KernelImport: s.kernelImport(), FPM: fpm,
	}, nil
}

// SetFPM has Info describe the FPM listener f reports on (--from-fpm).
// Info calls f without holding the server's lock, so f may take a lock
// held while the server's tables are changed.
func (s *Server) SetFPM(f func() FPMState) { s.fpm.Store(&f) }

func (s *Server) fpmState() *FPMState {
	f := s.fpm.Load()
	if f == nil {
		return nil
	}
	st := (*f)()
	return &st
}

// kernelImport is the table the server's routes come from, with its
// namespace's name as ip netns gave it now.
func (s *Server) kernelImport() *KernelTable {
	if s.opts.KernelImport == nil {
		return nil
	}
	k := *s.opts.KernelImport
	k.NetNSName = netnsName(k.NetNS)
	return &k
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

// removeConn forgets c; a sync waiting for it waits no more.
func (s *Server) removeConn(c *serverConn) {
	for {
		old := s.conns.Load()
		next := slices.DeleteFunc(slices.Clone(*old), func(x *serverConn) bool { return x == c })
		if s.conns.CompareAndSwap(old, &next) {
			s.acked.notify()
			return
		}
	}
}
