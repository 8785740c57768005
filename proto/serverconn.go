package proto

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// MaxNameLen bounds a client's name in its hello.
const MaxNameLen = 64

// CheckClientName says why name cannot name a client: the server shows it
// in show clients and in its log, one per line, so it is 1 to MaxNameLen
// bytes of printable UTF-8.
func CheckClientName(name string) error {
	switch {
	case name == "":
		return errors.New("client name is empty")
	case len(name) > MaxNameLen:
		return fmt.Errorf("client name is %d bytes long; at most %d are allowed", len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("client name %q is not valid UTF-8", name)
	}
	for _, r := range name {
		switch {
		case r < ' ' || r == 0x7f || unicode.IsControl(r):
			return fmt.Errorf("client name %q holds the control character %U; use printable characters", name, r)
		case !unicode.IsPrint(r):
			// Format characters (U+202E turns the text after it around),
			// separators other than the space, invisible ones: a name in
			// show clients must read as what it is.
			return fmt.Errorf("client name %q holds %U, which does not print as itself; use printable characters", name, r)
		}
	}
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("client name %q is only spaces", name)
	}
	return nil
}

// helloTimeout is how long a new connection may take to say hello.
const helloTimeout = 5 * time.Second

// serverConn is one client as the server sees it: a reader goroutine for
// acks and requests, and a writer goroutine (serveConn itself) that
// copies the change log into packets at its own pace.
type serverConn struct {
	s    *Server
	uc   *net.UnixConn
	info ClientInfo // immutable after hello

	hello     atomic.Int32 // waiting, spoke or dropped
	queryOnly bool         // said hello with FlagQueryOnly: it only asks
	placed    bool         // admitted: holds a place among the clients
	acked     atomic.Uint64
	grown     atomic.Bool  // it reads: its send buffer is a streaming one (setBuffers)
	sent      atomic.Int64 // bytes its socket took while its buffer was the first one
	live      atomic.Bool  // snapshot delivered, streaming changes
	idle      atomic.Bool  // writer is waiting for a kick
	resync    atomic.Bool  // send a fresh snapshot before anything else
	wake      chan struct{}
	// low is the lowest chunk of the log the writer may still read: set
	// under the server's lock with its snapshot, raised as it moves on.
	// Chunks below every writer's are recycled (changeLog.buffer).
	low atomic.Uint64

	lastSend time.Time // writer goroutine only

	// The reader goroutine's: the origin the client's requests apply
	// through, and the epoch whose request failed with FlagBail (its
	// later requests are skipped).
	origin      *Origin
	failedEpoch uint64
	changes     atomic.Uint64      // changes this client made
	syncCancel  context.CancelFunc // ends the sync query of this client that waits, if any
	syncDone    chan struct{}      // closed when that sync has replied or given up

	closeOnce sync.Once
	quit      chan struct{} // closed to ask the writer to finish
	reason    string
	deadline  time.Time
	// deadlineMu orders the writer's own write deadlines (a stalled
	// snapshot's) with the goodbye's: once quit is closed, the goodbye's
	// deadline is the one a write has.
	deadlineMu sync.Mutex

	// requests is held while a request is applied and answered; the
	// goodbye (finish) takes it to set bye, after which no request is
	// applied. So every request applied was answered before the goodbye,
	// and a client can tell the rest were not (FlagFinal).
	requests sync.Mutex
	bye      bool
	// unanswered: a request failed on its way, perhaps applied and not
	// answered; the goodbye then promises nothing (no FlagFinal).
	unanswered bool
}

// The states of a connection before its hello: a greeter may drop it
// only while it is silent, and its handshake reads the hello only if it
// was not dropped.
const (
	waiting int32 = iota
	spoke
	dropped
)

// drop closes a connection that has sent nothing yet, and reports
// whether it did.
func (c *serverConn) drop() bool {
	if quiet(c.uc) && c.hello.CompareAndSwap(waiting, dropped) {
		c.uc.Close()
		return true
	}
	return false
}

func (c *serverConn) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *serverConn) shutdown(reason string, timeout time.Duration) {
	c.closeOnce.Do(func() {
		c.deadlineMu.Lock()
		defer c.deadlineMu.Unlock()
		c.reason, c.deadline = reason, time.Now().Add(timeout)
		// A deadline also unblocks a write already stuck on a stopped client.
		c.uc.SetWriteDeadline(c.deadline)
		// A client stopped before it read its first packet holds the
		// rest of its snapshot and the goodbye in a streaming buffer, as
		// one that read does: with the first's single packet it would
		// find a lost server, not one that quit (setFirstBuffers).
		c.grow()
		close(c.quit)
	})
}

// limitWrite gives the writer's next writes the deadline t (none if
// zero), unless the connection is saying goodbye: then they keep the
// goodbye's, and it reports false.
func (c *serverConn) limitWrite(t time.Time) bool {
	c.deadlineMu.Lock()
	defer c.deadlineMu.Unlock()
	if c.quitting() {
		c.uc.SetWriteDeadline(c.deadline)
		return false
	}
	c.uc.SetWriteDeadline(t)
	return true
}

func (c *serverConn) snapshotInfo(published uint64) ClientInfo {
	info := c.info
	info.Acked = c.acked.Load()
	info.Changes = c.changes.Load()
	info.Writes = c.origin.refusal == nil
	if published > info.Acked {
		info.Lag = published - info.Acked
	}
	switch {
	case c.resync.Load():
		info.State = "resync"
	case c.live.Load():
		info.State = "live"
	default:
		info.State = "snapshot"
	}
	return info
}

func isFDExhaustion(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// newConn makes the serverConn of a new connection: it reads nothing of
// the log until its snapshot.
func (s *Server) newConn(uc *net.UnixConn) *serverConn {
	c := &serverConn{s: s, uc: uc, wake: make(chan struct{}, 1), quit: make(chan struct{})}
	c.info.ID = s.nextID.Add(1)
	c.low.Store(math.MaxUint64) // no snapshot yet: it reads nothing
	return c
}

// serveConn runs one client from hello to goodbye. Whatever the client
// sends or fails to send, only this connection is affected.
func (s *Server) serveConn(c *serverConn) {
	defer s.wg.Done()
	uc := c.uc
	defer uc.Close()
	err := c.handshake()
	s.ungreet(c)
	if err != nil && c.placed {
		s.release() // the welcome could not be sent
	}
	if err != nil && c.queryOnly {
		s.askers.Add(-1) // likewise
	}
	if err != nil {
		if errors.Is(err, errEOF) || c.hello.Load() == dropped {
			// Closed before a hello: a liveness probe (a second server
			// checking whether this socket is served), not a client.
			return
		}
		s.stats.refused.Add(1)
		s.logThrottled(&s.refusedLogs, "client #%d refused: %v", c.info.ID, err)
		refuse(uc, err)
		return
	}
	if c.queryOnly {
		// It asks and goes: no snapshot, no changes, no place among the
		// clients, and a few seconds at most.
		defer s.askers.Add(-1)
		uc.SetReadDeadline(time.Now().Add(askTime))
		if err := c.readLoop(); errors.Is(err, ErrProtocol) {
			s.stats.dropped.Add(1)
			refuse(uc, err)
		}
		return
	}
	if !setFirstBuffers(uc) {
		c.grow() // a packet would not fit: it streams from the start
	}
	s.stats.connects.Add(1)
	s.addConn(c)
	if s.closing.Load() {
		c.shutdown("server is quitting", time.Second)
	}
	s.opts.Logf("client %s (pid %d) connected", c.info.Name, c.info.PID)

	readErr := make(chan error, 1)
	go func() { readErr <- c.readLoop() }()
	err = c.writeLoop(readErr)
	if err == nil {
		// Said goodbye: let the client close first. Closing with its acks
		// still unread would make the kernel reset the connection, and the
		// client would see ECONNRESET instead of the goodbye.
		uc.SetReadDeadline(c.deadline)
		<-readErr
	}

	s.removeConn(c)
	s.release()
	s.stats.disconnects.Add(1)
	switch {
	case err == nil:
	case errors.Is(err, errEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		// EPIPE: it closed while the server was writing to it, as a
		// client that ends during its snapshot does.
		s.opts.Logf("client %s (pid %d) disconnected", c.info.Name, c.info.PID)
	default:
		if errors.Is(err, ErrProtocol) {
			s.stats.dropped.Add(1)
			refuse(uc, err)
		}
		s.opts.Logf("client %s (pid %d) dropped: %v", c.info.Name, c.info.PID, err)
	}
}

// refuse tells the client why it is being closed, and lets it read that
// before the close: closing with its packets still unread would make the
// kernel reset the connection, and the client would see ECONNRESET
// instead of the reason. A client that does not close is given a second.
func refuse(uc *net.UnixConn, err error) { refuseWithin(uc, err, time.Second) }

// refuseWithin is refuse giving the client wait to close.
func refuseWithin(uc *net.UnixConn, err error, wait time.Duration) {
	h := Header{Kind: KindError}
	if errors.As(err, new(tryAgain)) {
		h.Flags = FlagRetry
	}
	// Within wait too: a client whose socket is full (it read nothing)
	// would hold the refusal, and the server's quit, which waits for its
	// connections, for good.
	uc.SetWriteDeadline(time.Now().Add(wait))
	writePacket(uc, h, []byte(err.Error()))
	uc.CloseWrite()
	uc.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 256) // the rest of a longer packet is discarded
	for {
		if n, err := recvPacket(uc, buf); err != nil || n == 0 {
			return
		}
	}
}

// handshake checks the peer's credentials, reads its hello and welcomes it.
func (c *serverConn) handshake() error {
	cred, err := peerCred(c.uc)
	if err != nil {
		return fmt.Errorf("SO_PEERCRED: %w", err)
	}
	c.info.PID, c.info.UID = cred.Pid, cred.Uid
	if !c.s.allowed(cred.Uid) {
		return fmt.Errorf("uid %d may not connect (server runs as uid %d; allow it with --allow-uid %d)", cred.Uid, c.s.uid, cred.Uid)
	}
	c.uc.SetReadDeadline(time.Now().Add(helloTimeout))
	pr, err := newPacketReader(c.uc)
	if err != nil {
		return err
	}
	size, err := pr.peek()
	if err == nil && !c.hello.CompareAndSwap(waiting, spoke) {
		err = errEOF // dropped as silent a moment before it spoke
	}
	if err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	body, h, err := pr.read(size)
	defer pr.release()
	if err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	c.uc.SetReadDeadline(time.Time{})
	if h.Kind != KindHello {
		return fmt.Errorf("%w: expected hello, got %v", ErrProtocol, h.Kind)
	}
	if err := CheckClientName(string(body)); err != nil {
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	c.info.Name = string(body)
	c.queryOnly = h.Flags&FlagQueryOnly != 0
	switch {
	case c.queryOnly:
		if err := c.s.admitAsker(cred.Uid); err != nil {
			c.queryOnly = false // nothing to give back
			return tryAgain{err}
		}
	case !c.queryOnly:
		if err := c.s.admit(cred.Uid); err != nil {
			return tryAgain{err}
		}
		c.placed = true
	}
	c.info.Connected = time.Now()
	c.origin = c.clientOrigin()
	st := c.s.st
	w := make([]byte, 8, 8+len(st.Path()))
	binary.LittleEndian.PutUint64(w, st.Generation())
	w = append(w, st.Path()...)
	return writePacket(c.uc, Header{Kind: KindWelcome, Seq: c.s.log.published.Load()}, w)
}

// admitAsker gives a connection of uid that only asks one of the
// maxHandshakes places for questions; a uid that may only read, only
// while more than an eighth of them are free, as admit does for clients:
// a reader asking on many connections at once cannot keep the uids that
// may write from asking (rtm ls asks every server it lists).
func (s *Server) admitAsker(uid uint32) error {
	limit, whose := int32(maxHandshakes), ""
	if !s.mayWrite(uid) {
		limit -= maxHandshakes / 8
		whose = fmt.Sprintf(" (a uid that may only read asks on %d of them)", limit)
	}
	if s.askers.Add(1) > limit {
		s.askers.Add(-1)
		return fmt.Errorf("busy: %d connections are asking already%s; try again", s.askers.Load(), whose)
	}
	return nil
}

// admit gives a client of uid a place among the clients, if one is left;
// release gives it back. A uid that may only read is admitted only while
// more than an eighth of --max-clients is free (all but one place, for a
// server of fewer than 8), so that readers cannot keep out the uids that
// may write, whose clients would otherwise find every place taken by
// connections of a uid that may only read.
func (s *Server) admit(uid uint32) error {
	most := int64(s.opts.MaxClients)
	limit := most
	if !s.mayWrite(uid) {
		limit -= min((most+7)/8, most-1)
	}
	for {
		n := s.placed.Load()
		switch {
		case n >= most:
			return fmt.Errorf("too many clients: this server admits %d (rtm server --max-clients)", most)
		case n >= limit:
			return fmt.Errorf("too many clients for a uid that may only read: this server admits %d, and keeps the last %d places for the uids that may write (rtm server --max-clients)", most, most-limit)
		}
		if s.placed.CompareAndSwap(n, n+1) {
			return nil
		}
	}
}

func (s *Server) release() { s.placed.Add(-1) }

// tryAgain marks a refusal that may pass later: the server was full.
// The client is told so (FlagRetry).
type tryAgain struct{ error }

func (e tryAgain) Unwrap() error { return e.error }

// mayWrite says whether clients of uid may change the tables.
func (s *Server) mayWrite(uid uint32) bool {
	return uid == s.uid || uid == 0 || slices.Contains(s.opts.AllowWriteUIDs, uid)
}

// allowed says whether clients of uid may connect.
func (s *Server) allowed(uid uint32) bool {
	return s.mayWrite(uid) || slices.Contains(s.opts.AllowUIDs, uid)
}

// readLoop takes acks and requests from the client until it closes or
// breaks the protocol.
func (c *serverConn) readLoop() error {
	pr, err := newPacketReader(c.uc)
	if err != nil {
		return err
	}
	defer pr.release()
	for {
		body, h, err := pr.next()
		if err != nil {
			return err
		}
		switch h.Kind {
		case KindAck:
			if len(body) != 0 {
				return fmt.Errorf("%w: ack with a %d-byte body", ErrProtocol, len(body))
			}
			// An ack may go back: after a resync the client acknowledges
			// the snapshot it got, which may be older than its last ack.
			if pub := c.s.log.published.Load(); h.Seq > pub {
				return fmt.Errorf("%w: ack %d beyond the last change, %d", ErrProtocol, h.Seq, pub)
			}
			c.acked.Store(h.Seq)
			c.s.stats.acks.Add(1)
			if c.s.syncWaiters.Load() > 0 {
				c.s.acked.notify()
			}
		case KindResync:
			c.s.stats.resyncRequests.Add(1)
			c.resync.Store(true)
			c.kick()
		case KindRequest:
			if c.queryOnly {
				return fmt.Errorf("%w: a request on a connection that only asks", ErrProtocol)
			}
			c.s.stats.requests.Add(1)
			if err := c.requestBeforeBye(h, body); err != nil {
				return err
			}
		case KindQuery:
			c.s.stats.requests.Add(1)
			if err := c.query(h, body); err != nil {
				return err
			}
		case KindPing:
			// The pong carries the sequence number at arrival; the client
			// then waits until it has applied that much.
			if err := c.answer(Header{Kind: KindPong, Seq: c.s.log.published.Load()}, body); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: unexpected %v from client", ErrProtocol, h.Kind)
		}
	}
}

// writeLoop streams the snapshot and then the change log to the client.
// It returns when the client goes away (readErr) or the server quits.
func (c *serverConn) writeLoop(readErr <-chan error) error {
	c.resync.Store(true)
	var cur cursor
	for {
		select {
		case err := <-readErr:
			return err
		case <-c.quit:
			return c.finish(cur)
		default:
		}
		if c.resync.Swap(false) {
			var err error
			if cur, err = c.sendSnapshot(); errors.Is(err, errSnapshotStalled) {
				// It gets a fresh snapshot once it reads again, and keeps
				// no chunk of the log meanwhile.
				c.low.Store(math.MaxUint64)
				c.resync.Store(true)
				c.s.stats.snapshotsDropped.Add(1)
				c.waitWritable()
				continue
			}
			if err != nil {
				return err
			}
			continue
		}
		sent, next, err := c.sendLog(cur, true)
		if err != nil {
			return err
		}
		cur = next
		if sent {
			continue
		}
		// Nothing to send: sleep until kicked. Setting idle before the
		// last look closes the race with a publisher that checks idle
		// (or a holder that sends, or a sync).
		c.idle.Store(true)
		if c.resync.Load() || c.sendable(cur) {
			c.idle.Store(false)
			continue
		}
		select {
		case <-c.wake:
		case err := <-readErr:
			c.idle.Store(false)
			return err
		case <-c.quit:
			c.idle.Store(false)
			return c.finish(cur)
		}
		c.idle.Store(false)
	}
}

// packedAt is the state of an unsealed chunk whose end is cur.
func packedAt(cur cursor) uint64 {
	return uint64(cur.idx)<<32 | uint64(cur.off)
}

// Coalescing while changes stream in: per-packet costs dominate (a
// syscall and a wake-up on each side), so a writer that sent a packet
// moments ago and now has only a little to send waits a moment for more.
// A change after a quiet spell goes out at once, so idle latency is
// unaffected.
const (
	coalesceBytes  = 16 << 10
	coalesceWindow = 200 * time.Microsecond
	coalesceDelay  = 100 * time.Microsecond
)

// sendable says whether sendLog would send something past cur now.
func (c *serverConn) sendable(cur cursor) bool {
	ch := c.s.log.at(cur.num)
	if ch == nil {
		return true // overrun: a snapshot is due
	}
	count, _, isSealed := unpack(ch.state.Load())
	return isSealed || cur.idx < count && !c.waitForPacket()
}

// waitForPacket says whether a writer should leave the unsealed tail of
// the log for later: an Origin holds its changes (it will send them, or
// seal the chunk, soon) and no sync waits for them.
func (c *serverConn) waitForPacket() bool {
	return c.s.holding.Load() > 0 && c.s.syncWaiters.Load() == 0
}

// sendLog sends what the log holds past cur, in one packet per chunk.
// With coalesce it is the writer streaming: it leaves a chunk that is
// still being filled for later while an Origin holds, and waits a moment
// for a short tail to grow.
func (c *serverConn) sendLog(cur cursor, coalesce bool) (sent bool, next cursor, err error) {
	ch := c.s.log.at(cur.num)
	if ch == nil {
		// The ring moved past this client while it was not reading: it
		// gets a fresh snapshot rather than unbounded server memory.
		c.s.stats.overruns.Add(1)
		c.resync.Store(true)
		return true, cur, nil
	}
	count, size, isSealed := unpack(ch.state.Load())
	if coalesce && !isSealed && c.waitForPacket() {
		return false, cur, nil
	}
	if coalesce && cur.idx < count && !isSealed && size-cur.off < coalesceBytes && time.Since(c.lastSend) < coalesceWindow {
		time.Sleep(coalesceDelay)
		count, size, isSealed = unpack(ch.state.Load())
	}
	if cur.idx < count {
		c.lastSend = time.Now()
		h := Header{Kind: KindBatch, Count: count - cur.idx, Seq: ch.first + uint64(cur.idx)}
		if err := c.send(h, ch.data[cur.off:size]); err != nil {
			return false, cur, err
		}
		return true, cursor{num: cur.num, idx: count, off: size}, nil
	}
	if isSealed {
		c.low.Store(cur.num + 1) // done with this chunk: it may be recycled
		return true, cursor{num: cur.num + 1}, nil
	}
	return false, cur, nil
}

// sendSnapshot sends the whole state and returns where the log continues.
func (c *serverConn) sendSnapshot() (cursor, error) {
	c.live.Store(false)
	snap := c.s.snapshot(&c.low)
	cur := snap.cur
	var sizes [16]byte
	binary.LittleEndian.PutUint64(sizes[:], uint64(snap.routes))
	binary.LittleEndian.PutUint64(sizes[8:], uint64(snap.macs))
	// The begin too: a client can let its socket fill and then ask for
	// a resync, which would hold the snapshot at its first packet.
	if err := c.sendHeld(Header{Kind: KindSnapshotBegin, Seq: snap.seq}, sizes[:], snap); err != nil {
		return cur, err
	}
	for i, b := range snap.bodies {
		if err := c.sendHeld(Header{Kind: KindBatch, Flags: FlagSnapshot, Count: snap.counts[i]}, b, snap); err != nil {
			return cur, err
		}
	}
	// Count says how many changes the log holds past a shared snapshot:
	// they follow at once, and the client's subscribers wait for them.
	var past uint64
	if pub := c.s.log.published.Load(); pub > snap.seq {
		past = min(pub-snap.seq, math.MaxUint32)
	}
	if err := c.send(Header{Kind: KindSnapshotEnd, Seq: snap.seq, Count: uint32(past)}, nil); err != nil {
		return cur, err
	}
	c.s.stats.snapshots.Add(1)
	c.live.Store(true)
	return cur, nil
}

// A client that takes none of its snapshot for snapshotStall lets it
// go if a newer one has been taken since, and gets a fresh one once it
// reads again. A shared snapshot costs nothing per client, but one that
// is no longer shared is a copy of the tables held for that client
// alone: a reader that never reads, connecting again each time the
// tables had changed by more than their size, made the server hold a
// copy per connection. The stall bounds what the outdated copies hold to
// the changes made in snapshotStall, however large the tables. "None" is
// as the kernel says it: a full socket takes a packet again once room
// for it is read, so a client reading under some 32 KB/s while its
// buffer is the first one (a packet: setFirstBuffers), some 190 KB/s
// after, starts its snapshot again each time it is let go.
const snapshotStall = 2 * time.Second

var errSnapshotStalled = errors.New("the client took none of its snapshot")

// sendHeld sends a packet of snapshot snap, or gives up with
// errSnapshotStalled once the client has taken nothing for snapshotStall
// and snap is no longer the server's shared snapshot.
func (c *serverConn) sendHeld(h Header, body []byte, snap *snapshot) error {
	for {
		c.limitWrite(time.Now().Add(time.Duration(c.s.snapshotStall.Load())))
		err := c.send(h, body)
		if !c.limitWrite(time.Time{}) || !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if !c.s.sharesSnapshot(snap) {
			return errSnapshotStalled
		}
	}
}

// answer writes a packet of the reader goroutine's (a pong, a reply). A
// write deadline is the socket's, not a goroutine's: one the writer set
// for a snapshot (sendHeld) may cut this write short, and it is tried
// again; only the goodbye's deadline ends it, as before the writer had
// any.
func (c *serverConn) answer(h Header, body []byte) error {
	for {
		err := writePacket(c.uc, h, body)
		if !errors.Is(err, os.ErrDeadlineExceeded) || c.quitting() {
			return err
		}
		time.Sleep(time.Millisecond) // the writer takes its deadline off at once
	}
}

func (c *serverConn) quitting() bool {
	select {
	case <-c.quit:
		return true
	default:
		return false
	}
}

// waitWritable waits until the client's socket has room again, the
// client is gone, or the goodbye's deadline passes.
func (c *serverConn) waitWritable() {
	rc, err := c.uc.SyscallConn()
	if err != nil {
		return
	}
	looked := false
	rc.Write(func(fd uintptr) bool {
		if looked {
			return true // woken: room, a hang-up or an error
		}
		looked = true
		p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(p, 0)
		return err != nil || n > 0
	})
}

func (c *serverConn) send(h Header, body []byte) error {
	if err := writePacket(c.uc, h, body); err != nil {
		return err
	}
	// Once its socket has taken more than its first buffer holds, the
	// client has read: it gets a streaming one (setFirstBuffers). Only
	// reading makes that so; an ack, which a client may send unread,
	// does not.
	if !c.grown.Load() && c.sent.Add(int64(HeaderSize+len(body))) > firstSendBuffer {
		c.grow()
	}
	st := &c.s.stats
	st.packets.Add(1)
	st.records.Add(uint64(h.Count))
	st.bytes.Add(uint64(HeaderSize + len(body)))
	return nil
}

// grow gives the connection its streaming send buffer (setBuffers) in
// place of the first one, once.
func (c *serverConn) grow() {
	if c.grown.CompareAndSwap(false, true) {
		setBuffers(c.uc)
	}
}

// requestBeforeBye applies and answers a request unless the goodbye has
// been said: one that comes after it is left unapplied and unanswered, as
// the goodbye's FlagFinal promises the client.
func (c *serverConn) requestBeforeBye(h Header, body []byte) error {
	c.requests.Lock()
	defer c.requests.Unlock()
	if c.bye {
		return nil
	}
	err := c.request(h, body)
	if err != nil {
		c.unanswered = true
	}
	return err
}

// finish flushes what is left of the log (bounded by the shutdown
// deadline, so a stopped client cannot hold up the quit) and says goodbye.
// The client's requests stop first: every one applied has been answered,
// and the goodbye says no more will be (FlagFinal), unless one failed on
// its way (unanswered). Their changes are in the log flushed, unless the
// client had fallen behind the log and waits for a snapshot (resync).
func (c *serverConn) finish(cur cursor) error {
	c.uc.SetWriteDeadline(c.deadline)
	c.requests.Lock()
	c.bye = true
	final := !c.unanswered
	c.requests.Unlock()
	// A client waiting for a snapshot (it fell behind the log, or let
	// its snapshot go) has no place in the log to send from.
	for !c.resync.Load() {
		sent, next, err := c.sendLog(cur, false)
		if err != nil {
			return err
		}
		if !sent {
			break
		}
		cur = next
	}
	h := Header{Kind: KindShutdown}
	if final {
		h.Flags = FlagFinal
	}
	return writePacket(c.uc, h, []byte(c.reason))
}
