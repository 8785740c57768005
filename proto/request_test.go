package proto

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"rtm/repl/rtmtest"
	"rtm/store/entry"
)

func ask(t *testing.T, c *Client, epoch uint64, bail bool, cs ...entry.Change) Reply {
	t.Helper()
	var b []byte
	for _, ch := range cs {
		b = AppendChange(b, ch, true)
	}
	ch, err := c.Request(context.Background(), epoch, b, len(cs), bail)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		return r
	case <-time.After(20 * time.Second):
		t.Fatal("no reply within 20s")
		return Reply{}
	}
}

func routeN(i int) entry.Route {
	return entry.Route{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16), Gateway: netip.MustParseAddr("192.0.2.1"), Dev: "eth0"}
}

// TestRequests: a request applies every change and reports each refusal
// by its index, in the words the server's prompt uses after the key; with
// bail it stops at the first, and the server skips the later requests of
// that epoch but runs a new epoch. Every applied change reaches the
// sender's own tables.
func TestRequests(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	c := dialTest(t, srv, "asker")
	create := func(i int) entry.Change { return entry.RouteChange(entry.Create, routeN(i)) }

	r := ask(t, c, 0, false, create(1), create(1), create(2))
	if r.Err != nil || r.Ran != 3 || !slices.Equal(r.Failures, []Failure{{Index: 1, Msg: "already exists"}}) {
		t.Errorf("without bail: %+v", r)
	}
	r = ask(t, c, 7, true, create(3), create(3), create(4))
	if r.Ran != 2 || len(r.Failures) != 1 || r.Skipped {
		t.Errorf("bail: %+v", r)
	}
	if r = ask(t, c, 7, true, create(5)); !r.Skipped || r.Ran != 0 {
		t.Errorf("a later request of the failed epoch: %+v; want skipped", r)
	}
	if r = ask(t, c, 8, true, create(6)); r.Skipped || len(r.Failures) != 0 {
		t.Errorf("a new epoch: %+v; want it run", r)
	}
	// Failures on both sides of a group's end (the server applies
	// applyGroup changes at a time) and two in a row.
	var many []entry.Change
	for i := range 40 {
		many = append(many, create(100+i))
	}
	many[15], many[16], many[33] = create(1), create(2), create(100)
	r = ask(t, c, 0, false, many...)
	wantFailures := []Failure{{Index: 15, Msg: "already exists"}, {Index: 16, Msg: "already exists"}, {Index: 33, Msg: "already exists"}}
	if r.Ran != 40 || !slices.Equal(r.Failures, wantFailures) {
		t.Errorf("40 changes, 3 refused: ran %d, failures %+v", r.Ran, r.Failures)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.CatchUp(ctx, r.Conn, r.Published); err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{1: true, 2: true, 3: true, 4: false, 5: false, 6: true} {
		if i == 0 {
			continue
		}
		if _, ok := c.GetRoute(routeN(i).Prefix); ok != want {
			t.Errorf("route %d at the client: %v, want %v", i, ok, want)
		}
	}
}

// TestRequestMalformed: a request with a malformed change closes that
// client's connection and applies none of its changes, not even those
// before the bad one.
func TestRequestMalformed(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	c := dialTest(t, srv, "bad")
	b := AppendChange(nil, entry.RouteChange(entry.Create, routeN(1)), true)
	b = append(b, 0x3f) // no such op
	ch, err := c.Request(context.Background(), 0, b, 2, false)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		if r.Err == nil {
			t.Fatalf("a malformed request was answered: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer and no close within 10s")
	}
	if _, ok := srv.GetRoute(routeN(1).Prefix); ok {
		t.Fatal("a change of the malformed request was applied")
	}
	if n := serverStat(srv, "clients_dropped_protocol"); n != 1 {
		t.Errorf("clients_dropped_protocol = %d, want 1", n)
	}
}

// TestQueries: a client asks the server what only it knows.
func TestQueries(t *testing.T) {
	srv := newTestServer(t, ServerOptions{Name: "q"})
	c := dialTest(t, srv, "asker")
	if err := srv.Apply(entry.RouteChange(entry.Create, routeN(1))); err != nil {
		t.Fatal(err)
	}
	clients, err := c.Clients(context.Background())
	if err != nil || len(clients) != 1 || clients[0].Name != "asker" {
		t.Errorf("clients: %+v, %v", clients, err)
	}
	info, err := c.Info(context.Background())
	if err != nil || info.Name != "q" || info.Routes != 1 {
		t.Errorf("info: %+v, %v", info, err)
	}
	stats, err := c.ServerStats(context.Background())
	i := slices.IndexFunc(stats, func(s Stat) bool { return s.Name == "routes" })
	if err != nil || i < 0 || stats[i].Value != 1 {
		t.Errorf("server stats: %+v, %v", stats, err)
	}
}

// TestClientSync: a sync asked by a client waits for every client, as the
// server's own does: it times out naming a client that does not read, in
// the server's words, and returns at once when an interrupt cancels it.
func TestClientSync(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	c := dialTest(t, srv, "asker")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Sync(ctx); err != nil {
		t.Fatalf("sync with every client live: %v", err)
	}
	// A client that says hello and never reads again.
	helloRaw(t, srv, "sleepy")
	if !rtmtest.WaitFor(5*time.Second, func() bool { cs, _ := srv.Clients(); return len(cs) == 2 }) {
		t.Fatal("the sleepy client never connected")
	}
	if err := srv.Apply(entry.RouteChange(entry.Create, routeN(1))); err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	err := c.Sync(short)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 client behind: sleepy") {
		t.Fatalf("sync past a client that does not read: %v", err)
	}
	long, cancel3 := context.WithTimeout(context.Background(), time.Minute)
	go func() { time.Sleep(100 * time.Millisecond); cancel3() }()
	start := time.Now()
	if err := c.Sync(long); !errors.Is(err, context.Canceled) || time.Since(start) > 10*time.Second {
		t.Fatalf("interrupted sync: %v after %v", err, time.Since(start))
	}
	// The abandoned sync's answer, when it comes, is no protocol error:
	// the session goes on.
	if _, err := c.Info(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestAsk: a connection that only asks gets its answer without a
// snapshot, is no client in show clients, and may not change anything.
func TestAsk(t *testing.T) {
	srv := newTestServer(t, ServerOptions{Name: "asked"})
	if err := srv.Apply(entry.RouteChange(entry.Create, routeN(1))); err != nil {
		t.Fatal(err)
	}
	var info ServerInfo
	if err := Ask(srv.opts.Socket, nil, QueryInfo, &info); err != nil || info.Name != "asked" || info.Routes != 1 {
		t.Fatalf("Ask info: %+v, %v", info, err)
	}
	if n := serverStat(srv, "snapshots_sent"); n != 0 {
		t.Errorf("snapshots_sent = %d after an Ask, want 0", n)
	}
	uc, _, _, _, err := handshake(srv.opts.Socket, "asker", nil, FlagQueryOnly, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if cs, _ := srv.Clients(); len(cs) != 0 {
		t.Errorf("a connection that only asks is listed as a client: %+v", cs)
	}
	body := binary.LittleEndian.AppendUint64(nil, 1)
	body = AppendChange(body, entry.RouteChange(entry.Create, routeN(2)), true)
	if err := writePacket(uc, Header{Kind: KindRequest, Count: 1, Seq: 1}, body); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, MaxPacket+1)
	uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, h, err := readPacket(uc, buf); err != nil || h.Kind != KindError {
		t.Fatalf("a request from a connection that only asks: %v %v, want an error packet", h.Kind, err)
	}
	if _, ok := srv.GetRoute(routeN(2).Prefix); ok {
		t.Fatal("the request of a connection that only asks was applied")
	}
}

// TestInflightFitsSendBuffer: a client's requests in flight, each full,
// and the acks its receive loop sends meanwhile, go into its socket
// without a send waiting for room, with one full request to spare, even
// when the server reads nothing (MaxInflight says what a waiting send
// leads to). The socket is set up as rtm's are (setBuffers).
func TestInflightFitsSendBuffer(t *testing.T) {
	client, server := seqpacketPair(t)
	setBuffers(client)
	setBuffers(server)
	raw, err := client.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	// trySend sends one packet of n bytes without waiting; false if the
	// socket had no room.
	packet := make([]byte, MaxPacket)
	trySend := func(n int) bool {
		var serr error
		if err := raw.Control(func(fd uintptr) {
			serr = unix.Sendmsg(int(fd), packet[:n], nil, nil, unix.MSG_DONTWAIT)
		}); err != nil {
			t.Fatal(err)
		}
		if serr != nil && !errors.Is(serr, unix.EAGAIN) {
			t.Fatal(serr)
		}
		return serr == nil
	}
	full := HeaderSize + 8 + MaxRequest
	if full != MaxPacket {
		t.Fatalf("a full request is %d bytes, a packet at most %d", full, MaxPacket)
	}
	for i := range MaxInflight + 1 {
		if !trySend(full) {
			t.Fatalf("full request %d of %d (%d in flight and one to spare) would wait for room", i+1, MaxInflight+1, MaxInflight)
		}
	}
	const acks = 64
	for i := range acks {
		if !trySend(HeaderSize) {
			t.Fatalf("ack %d of %d after %d full requests would wait for room", i+1, acks, MaxInflight+1)
		}
	}
	// The buffer is finite: the check above could fail.
	for i := 0; ; i++ {
		if !trySend(full) {
			t.Logf("the send buffer took %d full requests and %d acks", MaxInflight+1+i, acks)
			break
		}
		if i == 1000 {
			t.Fatal("the send buffer never filled")
		}
	}
}

// TestReplyMustFitItsRequest: a reply whose counts do not fit the request
// it answers is a protocol violation, not answers for lines never sent.
func TestReplyMustFitItsRequest(t *testing.T) {
	fail := func(idx ...int) []Failure {
		var fs []Failure
		for _, i := range idx {
			fs = append(fs, Failure{Index: i, Msg: "bad"})
		}
		return fs
	}
	for _, tc := range []struct {
		changes int
		r       Reply
		ok      bool
	}{
		{3, Reply{Ran: 3}, true},
		{3, Reply{Ran: 3, Failures: fail(0, 2)}, true},
		{3, Reply{Ran: 1, Failures: fail(0)}, true},  // bail at the first
		{0, Reply{Failures: fail(0)}, true},          // a query refused
		{1, Reply{Skipped: true}, true},              // after a failed epoch
		{1, Reply{Ran: 1, Failures: fail(3)}, false}, // past the request
		{1, Reply{Ran: 1, Failures: fail(1 << 31)}, false},
		{3, Reply{Ran: 3, Failures: fail(1, 1)}, false}, // one change twice
		{3, Reply{Ran: 3, Failures: fail(2, 0)}, false}, // out of order
		{2, Reply{Ran: 5}, false},
	} {
		// Through the wire format, as a reply arrives.
		r, err := decodeReply(encodeReply(&tc.r))
		if err != nil {
			t.Fatal(err)
		}
		if err := r.fits(tc.changes); (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrProtocol)) {
			t.Errorf("reply %+v to a request of %d: %v, want ok=%v", tc.r, tc.changes, err, tc.ok)
		}
	}
}

// TestPrintable: a peer's text reaches a terminal without the control
// sequences or broken bytes in it; rtm's own messages pass as they are.
func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		`create route 10.9.0.0/16: bad interface name "a\"b"`: `create route 10.9.0.0/16: bad interface name "a\"b"`,
		"junk\n\x1b[31mred": `junk\n\x1b[31mred`,
		"et\x8c0 é":         `et\x8c0 é`,
		"uid 65534 may not": "uid 65534 may not",
		"abc\u202edcba":     `abc\u202edcba`,
		"zero\u200bwidth":   `zero\u200bwidth`,
	} {
		if got := Printable([]byte(in)); got != want {
			t.Errorf("Printable(%q) = %q, want %q", in, got, want)
		}
	}
	r, err := decodeReply(encodeReply(&Reply{Ran: 1, Failures: []Failure{{Msg: "no\x1b]0;owned\x07"}}}))
	if err != nil || r.Failures[0].Msg != `no\x1b]0;owned\a` {
		t.Errorf("a reply's failure: %q, %v", r.Failures[0].Msg, err)
	}
}

// TestReaderRefusedAsItIsWritten: a reader's request is answered as apply
// answers it, each change refused by its index (the first alone with
// bail), in the same bytes, though written a packet at a time; and a
// request of an epoch that failed is skipped, as a writer's is.
func TestReaderRefusedAsItIsWritten(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	flush := AppendChange(nil, entry.Change{Op: entry.Flush, Table: entry.MACs}, true)
	// send has c take a request of n flushes and returns its answer.
	send := func(t *testing.T, c *serverConn, b *net.UnixConn, n uint32, bail bool, epoch uint64) []byte {
		t.Helper()
		h := Header{Kind: KindRequest, Count: n, Seq: 7}
		if bail {
			h.Flags = FlagBail
		}
		body := binary.LittleEndian.AppendUint64(nil, epoch)
		for range n {
			body = append(body, flush...)
		}
		sent := make(chan error, 1)
		go func() { sent <- c.request(h, body) }()
		var got []byte
		buf := make([]byte, MaxPacket+1)
		b.SetReadDeadline(time.Now().Add(10 * time.Second))
		for more, packets := true, 0; more; packets++ {
			p, rh, err := readPacket(b, buf)
			if err != nil || rh.Kind != KindReply || rh.Seq != 7 {
				t.Fatalf("n=%d bail=%v: packet %d: %v %+v", n, bail, packets, err, rh)
			}
			got, more = append(got, p...), rh.Flags&FlagMore != 0
		}
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
		return got
	}
	refusing := func(c *serverConn) { c.origin = &Origin{Server: srv, refusal: readOnlyError(65534)} }
	for _, tc := range []struct {
		n    uint32
		bail bool
	}{{0, false}, {1, false}, {3, false}, {3, true}, {700, false}, {65512, false}, {65512, true}} {
		a, b := seqpacketPair(t)
		c := srv.newConn(a)
		refusing(c)
		got := send(t, c, b, tc.n, tc.bail, 0)
		// What apply makes of the same request through a refusing origin.
		var body []byte
		for range tc.n {
			body = append(body, flush...)
		}
		d := Decoder{Values: true}
		d.Reset(body, tc.n)
		var want Reply
		c.apply(&d, tc.bail, &want)
		want.Published = srv.log.published.Load()
		if w := encodeReply(&want); !bytes.Equal(got, w) {
			t.Errorf("n=%d bail=%v: %d bytes, want apply's %d", tc.n, tc.bail, len(got), len(w))
		}
		r, err := decodeReply(got)
		if err == nil {
			err = r.fits(int(tc.n))
		}
		if err != nil {
			t.Errorf("n=%d bail=%v: %v", tc.n, tc.bail, err)
		}
		a.Close()
		b.Close()
	}
	// Epochs: the second bail request of a refused epoch is skipped.
	a, b := seqpacketPair(t)
	defer a.Close()
	defer b.Close()
	c := srv.newConn(a)
	refusing(c)
	for i, want := range []Reply{{Ran: 1, Failures: []Failure{{Msg: entry.Reason(readOnlyError(65534))}}}, {Skipped: true}} {
		want.Published = srv.log.published.Load()
		if got := send(t, c, b, 2, true, 5); !bytes.Equal(got, encodeReply(&want)) {
			r, _ := decodeReply(got)
			t.Errorf("bail request %d of epoch 5: %+v, want %+v", i, r, want)
		}
	}
}
