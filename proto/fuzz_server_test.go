package proto

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"rtm/repl/rtmtest"
	"rtm/store"
	"rtm/store/entry"

	"golang.org/x/sys/unix"
)

// FuzzServerPackets: no input from a socket peer can corrupt state or
// crash the server. An input is what one connection sends (fuzzPackets);
// after it, the tables of a client connected throughout equal the
// store's, the server still serves a new client, whose tables equal
// them too, the store passes its own check, the server sent nothing
// malformed, and the connection has left nothing behind: no place among
// the clients, no goroutine. A panic in any goroutine of the server ends
// the test binary, which fails the test with the input that caused it.
//
// One server serves every input of a process, started by the first: an
// input takes milliseconds, a server's start and close take longer.
// Each input begins with the same tables (fuzzServer.reset), so what an
// input does, it does alone, and what it adds never fills the store for
// the next.
func FuzzServerPackets(f *testing.F) {
	for _, in := range fuzzSeeds() {
		f.Add(in)
	}
	fs := &fuzzServer{store: rtmtest.StorePath(f), socket: filepath.Join(f.TempDir(), "s.sock")}
	f.Cleanup(fs.close)
	f.Fuzz(func(t *testing.T, in []byte) {
		fs.start(t)
		fs.reset(t)
		goroutines := runtime.NumGoroutine()
		mode, pkts := fuzzPackets(in)
		fs.converse(t, mode, pkts)
		fs.check(t, goroutines)
	})
}

// The first byte of an input says how the connection goes.
const (
	fuzzHello  = 1 // a valid hello goes first
	fuzzAsks   = 2 // that hello is one of a connection that only asks
	fuzzLinger = 4 // shut the sending side and read until the server closes; else close once it has read everything
)

// fuzzMaxPackets bounds the packets of an input, so that one takes a few
// milliseconds at most.
const fuzzMaxPackets = 16

// The fuzzed server's store is small: its check and a client's snapshot
// are quick, and a request can fill it.
const (
	fuzzMACs   = 64
	fuzzRoutes = 32
)

// fuzzFirstSeq is where the fuzzed server's log begins.
const fuzzFirstSeq = 1 << 40

// fuzzWait bounds every wait for the server: one longer is a hang.
const fuzzWait = 5 * time.Second

// fuzzPackets reads an input: a mode byte (fuzzHello, fuzzAsks,
// fuzzLinger), then packets, each a length byte n and n bytes. An n of
// 0xff is followed by a length of two bytes, plus one (up to MaxPacket);
// 0xfe by a length byte and that many bytes, padded with zeros to one
// byte past MaxPacket. Bytes past fuzzMaxPackets packets are ignored, and
// a length past the end of the input takes what is left.
func fuzzPackets(in []byte) (mode byte, pkts [][]byte) {
	if len(in) == 0 {
		return 0, nil
	}
	mode, in = in[0], in[1:]
	for len(in) > 0 && len(pkts) < fuzzMaxPackets {
		n, size := int(in[0]), 0
		in = in[1:]
		switch {
		case n == 0xff && len(in) >= 2:
			n, in = int(binary.LittleEndian.Uint16(in))+1, in[2:]
		case n == 0xfe && len(in) >= 1:
			n, size, in = int(in[0]), MaxPacket+1, in[1:]
		}
		n = min(n, len(in))
		p := make([]byte, max(n, size))
		copy(p, in[:n])
		pkts, in = append(pkts, p), in[n:]
	}
	return mode, pkts
}

// fuzzInput is what fuzzPackets reads as mode and pkts; a packet longer
// than MaxPacket is sent as its header padded with zeros.
func fuzzInput(mode byte, pkts ...[]byte) []byte {
	in := []byte{mode}
	for _, p := range pkts {
		switch {
		case len(p) > MaxPacket:
			in = append(append(in, 0xfe, HeaderSize), p[:HeaderSize]...)
		case len(p) >= 0xfe:
			in = binary.LittleEndian.AppendUint16(append(in, 0xff), uint16(len(p)-1))
			in = append(in, p...)
		default:
			in = append(append(in, byte(len(p))), p...)
		}
	}
	return in
}

// The tables every input begins with: something for its updates and
// deletes to find, in both families.
var (
	fuzzRoute4 = entry.Route{Prefix: netip.MustParsePrefix("10.0.0.0/24"), Gateway: netip.MustParseAddr("192.168.0.1"), Dev: "eth0"}
	fuzzRoute6 = entry.Route{Prefix: netip.MustParsePrefix("2001:db8::/64"), Dev: "eth1"}
	fuzzMAC4   = entry.MAC{2, 0, 0, 0, 0, 1}
	fuzzMAC6   = entry.MAC{2, 0, 0, 0, 0, 2}
	fuzzBase   = []entry.Change{
		entry.FlushOf(entry.Both),
		entry.RouteChange(entry.Create, fuzzRoute4),
		entry.RouteChange(entry.Create, fuzzRoute6),
		entry.MACChange(entry.Create, fuzzMAC4, netip.MustParseAddr("10.9.0.1")),
		entry.MACChange(entry.Create, fuzzMAC6, netip.MustParseAddr("2001:db8::2")),
	}
)

// fuzzSeeds are well-formed conversations built with the package's own
// encoders, and malformed variants of them.
func fuzzSeeds() [][]byte {
	hello := pkt(Header{Kind: KindHello}, []byte("fuzz"))
	request := func(id uint64, flags uint8, epoch uint64, cs ...entry.Change) []byte {
		body := binary.LittleEndian.AppendUint64(nil, epoch)
		for _, c := range cs {
			body = AppendChange(body, c, true)
		}
		return pkt(Header{Kind: KindRequest, Flags: flags, Count: uint32(len(cs)), Seq: id}, body)
	}
	query := func(id uint64, q Query, arg ...byte) []byte {
		return pkt(Header{Kind: KindQuery, Seq: id}, append([]byte{byte(q)}, arg...))
	}
	syncFor := func(id uint64, d time.Duration) []byte {
		return query(id, QuerySync, binary.LittleEndian.AppendUint64(nil, uint64(d))...)
	}
	ack := func(seq uint64) []byte { return pkt(Header{Kind: KindAck, Seq: seq}, nil) }
	ping := pkt(Header{Kind: KindPing}, binary.LittleEndian.AppendUint64(nil, 7))
	resync := pkt(Header{Kind: KindResync}, nil)

	moved := fuzzRoute4
	moved.Dev = "eth2"
	changes := []entry.Change{
		entry.RouteChange(entry.Create, entry.Route{Prefix: netip.MustParsePrefix("10.1.0.0/16"), Gateway: netip.MustParseAddr("192.168.0.2"), Dev: "eth0"}),
		entry.RouteChange(entry.Create, entry.Route{Prefix: netip.MustParsePrefix("2001:db8:1::/48"), Gateway: netip.MustParseAddr("2001:db8::1"), Dev: "eth1"}),
		entry.RouteChange(entry.Replace, entry.Route{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Dev: "lo"}),
		entry.RouteChange(entry.Update, moved),
		entry.RouteChange(entry.Delete, entry.Route{Prefix: fuzzRoute6.Prefix}),
		entry.MACChange(entry.Create, entry.MAC{2, 0, 0, 0, 1, 1}, netip.MustParseAddr("10.9.1.1")),
		entry.MACChange(entry.Create, entry.MAC{2, 0, 0, 0, 1, 2}, netip.MustParseAddr("2001:db8::1:2")),
		entry.MACChange(entry.Update, fuzzMAC4, netip.MustParseAddr("10.9.0.11")),
		entry.MACChange(entry.Replace, entry.MAC{2, 0, 0, 0, 1, 3}, netip.MustParseAddr("10.9.1.3")),
		entry.MACChange(entry.Delete, fuzzMAC6, netip.Addr{}),
	}
	// More than the store holds: the last are refused as the tables fill.
	var full []entry.Change
	for i := range fuzzRoutes + 8 {
		full = append(full, entry.RouteChange(entry.Create, route(i, "eth3")))
	}
	for i := range fuzzMACs + 8 {
		full = append(full, entry.MACChange(entry.Create, mac(i), netip.AddrFrom4([4]byte{10, 8, byte(i >> 8), byte(i)})))
	}

	otherVersion := append([]byte(nil), hello...)
	otherVersion[1] = Version + 1
	badMagic := append([]byte(nil), ping...)
	badMagic[0] = 'r'
	oversized := make([]byte, MaxPacket+1)
	PutHeader(oversized, Header{Kind: KindPing})
	countless := request(1, 0, 1, changes[0])
	binary.LittleEndian.PutUint32(countless[4:], 1<<32-1)

	const on = fuzzHello | fuzzLinger
	return [][]byte{
		// Well-formed.
		fuzzInput(on, request(1, 0, 1, changes...), ack(0), ack(fuzzFirstSeq+1), resync, ping, query(2, QueryInfo)),
		fuzzInput(fuzzHello, request(1, 0, 1, changes...), ping), // closed as the server answers
		fuzzInput(on, request(1, 0, 1, append(changes, entry.FlushOf(entry.MACs), entry.FlushOf(entry.Routes))...)),
		fuzzInput(on, request(1, 0, 1, full...), ack(fuzzFirstSeq+2)),
		// The first change fails (it exists), so the request of the same
		// epoch is skipped, and the next epoch runs.
		fuzzInput(on, request(1, FlagBail, 5, entry.RouteChange(entry.Create, fuzzRoute4), changes[0]),
			request(2, FlagBail, 5, changes[1]), request(3, FlagBail, 6, changes[2])),
		fuzzInput(on, query(1, QueryClients), query(2, QueryStats), syncFor(3, 10*time.Millisecond), syncFor(4, time.Hour), syncFor(5, 0)),
		fuzzInput(fuzzHello, syncFor(1, time.Hour)),
		fuzzInput(on|fuzzAsks, query(1, QueryInfo), syncFor(2, time.Second), ping),
		fuzzInput(fuzzHello, resync, resync, ack(1)),
		fuzzInput(0),
		fuzzInput(fuzzLinger),
		fuzzInput(fuzzHello),
		// Malformed.
		fuzzInput(on, ack(1<<62)), // past the last change
		fuzzInput(on, pkt(Header{Kind: KindAck}, []byte{1})),
		fuzzInput(fuzzLinger, hello[:7]),   // a truncated header
		fuzzInput(on, ping[:HeaderSize-1]), // after the hello
		fuzzInput(fuzzLinger, otherVersion),
		fuzzInput(on, badMagic),
		fuzzInput(on, oversized),
		fuzzInput(fuzzLinger, oversized),
		fuzzInput(on, countless),                                                 // a count past its records
		fuzzInput(on, pkt(Header{Kind: KindRequest, Count: 1}, []byte{1, 2, 3})), // shorter than its epoch
		fuzzInput(on, pkt(Header{Kind: KindRequest, Count: 1}, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0x0f})), // no such op
		fuzzInput(on, request(1, 0, 1, changes[5])[:HeaderSize+8+7]),                                  // a MAC without its address
		fuzzInput(on, pkt(Header{Kind: KindBatch, Count: 1}, nil)),
		fuzzInput(on, pkt(Header{Kind: 99}, nil)),
		fuzzInput(on, hello), // a second hello
		fuzzInput(fuzzLinger, pkt(Header{Kind: KindHello}, []byte("bad\nname"))),
		fuzzInput(fuzzLinger, ping), // no hello
		fuzzInput(on|fuzzAsks, request(1, 0, 1, changes[0])),
		fuzzInput(on, pkt(Header{Kind: KindQuery, Seq: 1}, nil)),
		fuzzInput(on, query(1, 'z')),
		fuzzInput(on, query(1, QuerySync, 1, 2)),
		fuzzInput(on, []byte{}, ping), // an empty packet
	}
}

// fuzzServer is the server every input of a process talks to, and a
// client that follows it throughout: the changes an input makes reach
// it live, so a change published and not stored, or stored and not
// published, shows as a difference from the store, which a new client's
// snapshot, read from the store, would not show.
type fuzzServer struct {
	store, socket string

	once  sync.Once
	srv   *Server
	watch *Client
	err   error
	log   fuzzLog
}

// start starts the server and its watching client for the first input.
func (fs *fuzzServer) start(t *testing.T) {
	fs.once.Do(func() {
		fs.srv, fs.err = Start(ServerOptions{
			Socket: fs.socket,
			Store:  store.Options{Path: fs.store, Capacity: fuzzMACs, RouteCapacity: fuzzRoutes},
			Unlink: true,
			Logf:   fs.log.logf,
		})
		if fs.err != nil {
			return
		}
		// The log begins far from 0, as that of a server that has run for
		// a while: whether an ack is past the last change then depends on
		// the input alone, not on how many inputs ran before it.
		fs.srv.mu.Lock()
		fs.srv.log = newChangeLog(fuzzFirstSeq, DefaultLogBytes, fs.srv.lowestRead)
		fs.srv.mu.Unlock()
		go fs.srv.Serve()
		if fs.watch, fs.err = Dial(ClientOptions{Socket: fs.socket, Name: "fuzz-watch"}); fs.err != nil {
			return
		}
		select {
		case <-fs.watch.Ready():
		case <-time.After(fuzzWait):
			fs.err = fmt.Errorf("the watching client has no snapshot within %v", fuzzWait)
		}
	})
	if fs.err != nil {
		t.Fatal(fs.err)
	}
}

func (fs *fuzzServer) close() {
	if fs.watch != nil {
		fs.watch.Close()
	}
	if fs.srv != nil {
		fs.srv.Close("test over", time.Second)
	}
}

// reset gives the tables what every input begins with.
func (fs *fuzzServer) reset(t *testing.T) {
	fs.log.reset()
	for _, c := range fuzzBase {
		if err := fs.srv.Apply(c); err != nil {
			t.Fatalf("reset the tables: %v", err)
		}
	}
}

// converse sends pkts on a connection of its own, after a hello if mode
// says so, and ends it as mode says.
func (fs *fuzzServer) converse(t *testing.T, mode byte, pkts [][]byte) {
	uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: fs.socket, Net: "unixpacket"})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer uc.Close()
	// What the server sends is read as it comes, so that neither end
	// waits on a full socket.
	answers := make(chan error, 1)
	go func() { answers <- readAnswers(uc) }()
	if mode&fuzzHello != 0 {
		h := Header{Kind: KindHello}
		if mode&fuzzAsks != 0 {
			h.Flags = FlagQueryOnly
		}
		pkts = append([][]byte{pkt(h, []byte("fuzz"))}, pkts...)
	}
	uc.SetWriteDeadline(time.Now().Add(fuzzWait))
	for _, p := range pkts {
		if _, err := uc.Write(p); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("the server read nothing for %v%s", fuzzWait, &fs.log)
			}
			break // closed by the server: the rest would go nowhere
		}
	}
	if mode&fuzzLinger != 0 {
		uc.CloseWrite()
		uc.SetReadDeadline(time.Now().Add(fuzzWait))
	} else {
		// Closed once the server has taken every packet off the socket:
		// it may still be writing to it, but what the input changes does
		// not depend on how far the server got, so a failing input fails
		// again when it is run again.
		for deadline := time.Now().Add(fuzzWait); unread(uc) > 0; time.Sleep(20 * time.Microsecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the server left %d bytes unread for %v%s", unread(uc), fuzzWait, &fs.log)
			}
		}
		uc.Close()
	}
	if err := <-answers; err != nil {
		t.Fatalf("%v%s", err, &fs.log)
	}
}

// readAnswers reads what the server sends until the connection is closed
// at either end, and says what is wrong with it: whatever a client
// sends, the server sends whole packets of its own kinds, and batches
// that decode.
func readAnswers(uc *net.UnixConn) error {
	buf := make([]byte, MaxPacket+1)
	var d Decoder
	var c entry.Change
	for {
		n, err := recvPacket(uc, buf)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return fmt.Errorf("the server did not close the connection within %v of the client's end", fuzzWait)
		case err != nil || n == 0:
			return nil
		case n > MaxPacket:
			return fmt.Errorf("the server sent a packet of %d bytes", n)
		}
		h, err := ParseHeader(buf[:n])
		if err != nil {
			return fmt.Errorf("the server sent a bad packet: %w", err)
		}
		switch h.Kind {
		case KindBatch:
			d.Reset(buf[HeaderSize:n], h.Count)
			for d.Next(&c) {
			}
			if err := d.Err(); err != nil {
				return fmt.Errorf("the server sent a bad batch: %w", err)
			}
		case KindWelcome, KindSnapshotBegin, KindSnapshotEnd, KindShutdown, KindError, KindPong, KindReply:
		default:
			return fmt.Errorf("the server sent a %v packet", h.Kind)
		}
	}
}

// check asserts the invariants once an input's connection is closed;
// the process had goroutines goroutines before it was opened.
func (fs *fuzzServer) check(t *testing.T, goroutines int) {
	fs.waitIdle(t, "the connection")
	select {
	case <-fs.watch.Done():
		t.Fatalf("the watching client's session ended: %v%s", fs.watch.Err(), &fs.log)
	default:
	}
	fs.same(t, fs.watch, "the watching client")
	for _, stat := range []string{"gaps_detected", "reconnects"} {
		if n := clientStat(fs.watch, stat); n != 0 {
			t.Fatalf("the watching client: %s %d%s", stat, n, &fs.log)
		}
	}
	func() {
		c, err := Dial(ClientOptions{Socket: fs.socket, Name: "fuzz-check"})
		if err != nil {
			t.Fatalf("the server no longer serves: %v%s", err, &fs.log)
		}
		defer c.Close()
		select {
		case <-c.Ready():
		case <-time.After(fuzzWait):
			t.Fatalf("a new client has no snapshot within %v%s", fuzzWait, &fs.log)
		}
		fs.same(t, c, "a new client")
	}()
	fs.srv.mu.Lock()
	err := fs.srv.st.Check()
	fs.srv.mu.Unlock()
	if err != nil {
		t.Fatalf("store: %v%s", err, &fs.log)
	}
	fs.waitIdle(t, "the new client")
	// No goroutine outlives the connection or the new client: one left
	// behind by each input would add up without bound.
	for deadline := time.Now().Add(fuzzWait); runtime.NumGoroutine() > goroutines; time.Sleep(100 * time.Microsecond) {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, %d before the connection:\n%s", runtime.NumGoroutine(), goroutines, buf)
		}
	}
}

// same fails unless c's tables come to equal the store's. The server's
// reader of a connection can still be applying a request when its writer
// has failed on the closed connection and it is gone from the counts,
// so c gets a few tries to catch up; a difference that stays is a
// corruption.
func (fs *fuzzServer) same(t *testing.T, c *Client, who string) {
	var diff string
	for try := 0; try < 100; try++ {
		ctx, cancel := context.WithTimeout(context.Background(), fuzzWait)
		err := c.SyncLocal(ctx)
		cancel()
		if err != nil {
			t.Fatalf("sync %s: %v%s", who, err, &fs.log)
		}
		if diff = stateDiff(serverState(fs.srv), clientState(c)); diff == "" {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("the tables of %s differ from the store's: %s%s", who, diff, &fs.log)
}

// waitIdle waits until the server holds no connection but the watching
// client's: none greeted, none asking, one client, one place taken.
func (fs *fuzzServer) waitIdle(t *testing.T, what string) {
	s := fs.srv
	counts := func() (greeted, asking int, clients []string, placed int64) {
		s.greetMu.Lock()
		greeted = len(s.greeted)
		s.greetMu.Unlock()
		for _, c := range *s.conns.Load() {
			clients = append(clients, c.info.Name)
		}
		return greeted, int(s.askers.Load()), clients, s.placed.Load()
	}
	for deadline := time.Now().Add(fuzzWait); ; time.Sleep(20 * time.Microsecond) {
		g, a, c, p := counts()
		if g == 0 && a == 0 && len(c) == 1 && c[0] == "fuzz-watch" && p == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after %s closed: %d greeted, %d asking, clients %q, %d places taken%s", fuzzWait, what, g, a, c, p, &fs.log)
		}
	}
}

// stateDiff says how two stateTexts differ, "" if they do not: the
// first line of each that the other lacks.
func stateDiff(server, client string) string {
	if server == client {
		return ""
	}
	s, c := strings.Split(server, "\n"), strings.Split(client, "\n")
	only := func(a, b []string) string {
		for _, l := range a {
			if !slices.Contains(b, l) {
				return fmt.Sprintf("%q", l)
			}
		}
		return "none"
	}
	return fmt.Sprintf("%d lines at the server, %d at the client; only at the server: %s; only at the client: %s", len(s), len(c), only(s, c), only(c, s))
}

// fuzzLog keeps the server's last log lines of an input, to show with a
// failure.
type fuzzLog struct {
	mu    sync.Mutex
	lines []string
}

const fuzzLogLines = 8

func (l *fuzzLog) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == fuzzLogLines {
		l.lines = append(l.lines[:0], l.lines[1:]...)
	}
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *fuzzLog) reset() {
	l.mu.Lock()
	l.lines = l.lines[:0]
	l.mu.Unlock()
}

// String is the lines, each on a line of its own after a first line
// break, for the end of a failure's message.
func (l *fuzzLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == 0 {
		return ""
	}
	return "\nthe server's log:\n\t" + strings.Join(l.lines, "\n\t")
}

// unread is how much of what was sent on uc the other end has not read
// (SIOCOUTQ, in the kernel's memory for it, not the packets' bytes): 0
// once every packet was read, or the connection closed.
func unread(uc *net.UnixConn) int {
	rc, err := uc.SyscallConn()
	if err != nil {
		return 0
	}
	n := 0
	rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) })
	return n
}
