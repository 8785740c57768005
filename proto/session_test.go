package proto

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"rtm/repl/rtmtest"
	"rtm/store"
	"rtm/store/entry"
)

// TestKitStoreDir: the test kit, which imports no rtm package, spells
// out StoreDirEnv; the private directory it makes is where StoreDir puts
// stores.
func TestKitStoreDir(t *testing.T) {
	if rtmtest.StoreDirEnv != StoreDirEnv {
		t.Fatalf("rtmtest.StoreDirEnv %q, proto.StoreDirEnv %q", rtmtest.StoreDirEnv, StoreDirEnv)
	}
	if d := StoreDir(); d != rtmtest.StoreDir() || !strings.HasPrefix(DefaultStore("x"), d+"/") {
		t.Fatalf("StoreDir %q, DefaultStore %q; the kit's directory is %q", d, DefaultStore("x"), rtmtest.StoreDir())
	}
}

// newTestServer starts a server on a private store and socket, both
// removed when the test ends.
func newTestServer(t testing.TB, o ServerOptions) *Server {
	t.Helper()
	o.Store = store.Options{Path: rtmtest.StorePath(t), Capacity: 1 << 16, RouteCapacity: 1 << 14}
	o.Unlink = true
	if o.Logf == nil {
		o.Logf = t.Logf
	}
	o.Socket = filepath.Join(t.TempDir(), "s.sock")
	srv, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close("test over", time.Second) })
	return srv
}

func dialTest(t testing.TB, srv *Server, name string) *Client {
	t.Helper()
	c, err := Dial(ClientOptions{Socket: srv.opts.Socket, Name: name, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	select {
	case <-c.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("no snapshot within 10s")
	}
	return c
}

func syncAll(t testing.TB, srv *Server, clients ...*Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range clients {
		if err := c.SyncLocal(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// assertSame compares a client's whole view with the server's, including
// every MAC's address read through the client's read-only mapping.
func assertSame(t testing.TB, srv *Server, c *Client) {
	t.Helper()
	if got, want := c.Routes(), srv.Routes(); !slices.Equal(got, want) {
		t.Fatalf("client %s routes differ:\n got %v\nwant %v", c.opts.Name, got, want)
	}
	got, want := c.MACs(), srv.MACs()
	if !slices.Equal(got, want) {
		t.Fatalf("client %s has %d MACs, server %d", c.opts.Name, len(got), len(want))
	}
	for _, m := range want {
		a, err := c.LookupMAC(m)
		b, _ := srv.LookupMAC(m)
		if err != nil || a != b {
			t.Fatalf("client %s reads %s = %v (%v), server has %v", c.opts.Name, m, a, err, b)
		}
	}
}

func mac(i int) entry.MAC {
	return entry.MAC{0x02, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

func route(i int, dev string) entry.Route {
	return entry.Route{
		Prefix:  netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24),
		Gateway: netip.AddrFrom4([4]byte{192, 168, byte(i), 1}),
		Dev:     dev,
	}
}

// churn applies n random changes, each of which the server accepts.
func churn(t testing.TB, srv *Server, rng *rand.Rand, n int) {
	t.Helper()
	for range n {
		i := rng.IntN(500)
		var err error
		switch rng.IntN(7) {
		case 0, 1:
			if _, ok := srv.GetRoute(route(i, "x").Prefix); ok {
				err = srv.Apply(entry.RouteChange(entry.Update, route(i, fmt.Sprintf("eth%d", rng.IntN(4)))))
			} else {
				err = srv.Apply(entry.RouteChange(entry.Create, route(i, "eth0")))
			}
		case 2:
			if _, ok := srv.GetRoute(route(i, "x").Prefix); ok {
				err = srv.Apply(entry.RouteChange(entry.Delete, entry.Route{Prefix: route(i, "x").Prefix}))
			}
		case 3, 4:
			ip := netip.AddrFrom4([4]byte{10, 9, byte(rng.IntN(256)), byte(i)})
			if _, lerr := srv.LookupMAC(mac(i)); lerr == nil {
				err = srv.Apply(entry.MACChange(entry.Update, mac(i), ip))
			} else {
				err = srv.Apply(entry.MACChange(entry.Create, mac(i), ip))
			}
		case 5:
			if _, lerr := srv.LookupMAC(mac(i)); lerr == nil {
				err = srv.Apply(entry.MACChange(entry.Delete, mac(i), netip.Addr{}))
			}
		case 6:
			if rng.IntN(200) == 0 {
				err = srv.Apply(entry.FlushOf([]entry.Table{entry.MACs, entry.Both}[rng.IntN(2)]))
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestConvergence(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	rng := rand.New(rand.NewPCG(1, 2))
	churn(t, srv, rng, 200)
	a, b := dialTest(t, srv, "a"), dialTest(t, srv, "b")
	churn(t, srv, rng, 5000)
	late := dialTest(t, srv, "late")
	churn(t, srv, rng, 2000)
	syncAll(t, srv, a, b, late)
	for _, c := range []*Client{a, b, late} {
		assertSame(t, srv, c)
	}
	infos := serverClients(srv)
	if len(infos) != 3 {
		t.Fatalf("server lists %d clients, want 3", len(infos))
	}
	for _, ci := range infos {
		if ci.PID != int32(os.Getpid()) || ci.Lag != 0 || ci.State != "live" {
			t.Errorf("client info %+v: want our pid, lag 0, live", ci)
		}
	}
}

func TestBatching(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	c := dialTest(t, srv, "batch")
	for i := range 20000 {
		if err := srv.Apply(entry.MACChange(entry.Create, mac(i), netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, srv, c)
	assertSame(t, srv, c)
	// 20000 changes of 7 bytes fit in three 64 KiB packets. The writer
	// sends whatever is there when it wakes, so the count depends on how
	// the two goroutines interleave; it must still be far from one each.
	if p := serverStat(srv, "packets_sent"); p > 5000 {
		t.Errorf("%d packets for 20000 changes: not batching", p)
	}
}

// TestHeldChanges: the changes of an Origin that holds them go out in a
// few large packets once a packet's worth is ready, all of them reach the
// clients by Send, and a sync waits for held changes without a Send.
func TestHeldChanges(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	c := dialTest(t, srv, "held")
	o := srv.Origin("test")
	p0 := serverStat(srv, "packets_sent")
	o.Hold()
	for i := range 20000 {
		if err := o.Apply(entry.MACChange(entry.Create, mac(i), netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, srv, c) // no Send: the sync sends what is held
	assertSame(t, srv, c)
	// 20000 changes of 7 bytes are three 64 KiB chunks, each sent once
	// sealed; a writer that wakes for one may find a part of the next.
	if p := serverStat(srv, "packets_sent") - p0; p > 20 {
		t.Errorf("%d packets for 20000 held changes", p)
	}
	if err := o.Apply(entry.RouteChange(entry.Create, route(1, "eth1"))); err != nil {
		t.Fatal(err)
	}
	o.Send()
	deadline := time.Now().Add(10 * time.Second)
	for len(c.Routes()) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("a held change did not reach the client after Send")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSlowClientResync stops reading at one client while the log wraps:
// the server's memory stays bounded by the log, the other client is not
// held up, and the slow one converges by snapshot once it reads again.
func TestSlowClientResync(t *testing.T) {
	srv := newTestServer(t, ServerOptions{LogBytes: 4 * chunkSize})
	fast := dialTest(t, srv, "fast")
	slow := dialTest(t, srv, "slow")
	for i := range 1000 {
		if err := srv.Apply(entry.MACChange(entry.Create, mac(i), netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}))); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, srv, fast, slow)
	// Holding the slow client's lock parks its receive loop in applyBatch:
	// it stops reading, its socket fills, and the log wraps past it. Publish
	// until it lags by far more than the log and any socket buffer hold
	// (the log holds about 37 k of these records; a lag of 500 k cannot be
	// buffered anywhere), so the overrun does not depend on timing.
	slow.mu.Lock()
	lag := func() uint64 {
		for _, ci := range serverClients(srv) {
			if ci.Name == "slow" {
				return ci.Lag
			}
		}
		return 0
	}
	for i := 0; lag() < 500_000; i++ {
		if i > 10_000_000 {
			slow.mu.Unlock()
			t.Fatalf("slow client lags only %d changes after %d updates", lag(), i)
		}
		if err := srv.Apply(entry.MACChange(entry.Update, mac(i%1000), netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}))); err != nil {
			slow.mu.Unlock()
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := fast.SyncLocal(ctx); err != nil {
		slow.mu.Unlock()
		t.Fatal(err)
	}
	slow.mu.Unlock()
	syncAll(t, srv, fast, slow)
	assertSame(t, srv, fast)
	assertSame(t, srv, slow)
	var overruns uint64
	for _, s := range srv.Stats() {
		if s.Name == "slow_client_resyncs" {
			overruns = s.Value
		}
	}
	if overruns == 0 {
		t.Errorf("the slow client was never resynced: log not bounded?")
	}
}

func TestGarbageClientDroppedAlone(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	good := dialTest(t, srv, "good")
	if err := srv.Apply(entry.RouteChange(entry.Create, route(1, "eth0"))); err != nil {
		t.Fatal(err)
	}
	packets := [][]byte{
		{},                      // empty
		[]byte("hello world!!"), // short, no magic
		make([]byte, 100),       // bad magic
		append([]byte{'R', 9}, make([]byte, 14)...), // other version
	}
	var ack [HeaderSize]byte
	PutHeader(ack[:], Header{Kind: KindAck, Seq: 1 << 60}) // acks the future
	packets = append(packets, ack[:])
	var batch [HeaderSize]byte
	PutHeader(batch[:], Header{Kind: KindBatch, Count: 1}) // servers take no batches
	packets = append(packets, batch[:])
	for i, p := range packets {
		uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: srv.opts.Socket, Net: "unixpacket"})
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			// Half of them say hello first, so the garbage arrives mid-session.
			writePacket(uc, Header{Kind: KindHello}, []byte("bad"))
		}
		uc.Write(p)
		uc.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, MaxPacket+1)
		for {
			if _, _, err := readPacket(uc, buf); err != nil {
				break // the server closed it
			}
		}
		uc.Close()
	}
	if err := srv.Apply(entry.RouteChange(entry.Create, route(2, "eth1"))); err != nil {
		t.Fatal(err)
	}
	syncAll(t, srv, good)
	assertSame(t, srv, good)
	if n := len(serverClients(srv)); n != 1 {
		t.Fatalf("%d clients remain, want only the good one", n)
	}
}

func TestServerQuitTellsClients(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	c := dialTest(t, srv, "q")
	if err := srv.Apply(entry.MACChange(entry.Create, mac(1), netip.MustParseAddr("2001:db8::1"))); err != nil {
		t.Fatal(err)
	}
	srv.Close("bye", time.Second)
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("client did not end after server quit")
	}
	if err := c.Err(); err != nil {
		t.Fatalf("session ended with %v, want nil after a quit", err)
	}
	if got := c.MACs(); len(got) != 1 {
		t.Fatalf("client lost the change sent before the quit: %v", got)
	}
	if _, err := os.Stat(srv.opts.Socket); !os.IsNotExist(err) {
		t.Fatalf("socket file still there after quit: %v", err)
	}
}

func TestStaleSocketReplacedLiveRefused(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	if _, err := listen(srv.opts.Socket, 0o600); err == nil {
		t.Fatal("a second listener took a live server's socket")
	}
	stale := filepath.Join(t.TempDir(), "stale.sock")
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: stale, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close() // leaves the file, like a killed server
	ln2, err := listen(stale, 0o600)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	fi, _ := os.Stat(stale)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	ln2.Close()
}

// TestSyncTimeoutNamesLaggards: a sync that times out says, in rtm's
// words, which client is behind and where, and wraps the deadline.
func TestSyncTimeoutNamesLaggards(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	slow := dialTest(t, srv, "sleepy")
	syncAll(t, srv, slow)
	slow.mu.Lock() // parks its receive loop: it applies and acks nothing
	defer slow.mu.Unlock()
	for i := range 3 {
		if err := srv.Apply(entry.MACChange(entry.Create, mac(i), netip.AddrFrom4([4]byte{10, 1, 0, byte(i)}))); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := srv.Sync(ctx)
	want := fmt.Sprintf("1 client behind: sleepy (pid %d) at change 0 of 3", os.Getpid())
	if err == nil || err.Error() != want || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("sync: %v\nwant %q wrapping the deadline", err, want)
	}
}

// serverClients is the server's list of clients.
func serverClients(s *Server) []ClientInfo {
	cs, _ := s.Clients()
	return cs
}

// TestClientWarmsUp: a connected client grows its tables for a stream
// once its snapshot is some milliseconds old, from a few pages' worth
// to the store's capacity here (under streamFloor), and keeps its
// session: the read deadline that woke it is gone, so a change a while
// later arrives on the same connection.
func TestClientWarmsUp(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	c := dialTest(t, srv, "warm")
	room := func() tableRoom {
		c.mu.RLock()
		defer c.mu.RUnlock()
		return c.room
	}
	want := tableRoom{macs: 1 << 16, routes: 1 << 14, macCap: 1 << 16, routeCap: 1 << 14}
	for deadline := time.Now().Add(10 * time.Second); room() != want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("room %+v 10 s after the snapshot, want %+v", room(), want)
		}
	}
	c.mu.RLock()
	slots := len(c.macs.slots)
	c.mu.RUnlock()
	if slots != macSetSize(1<<16) {
		t.Fatalf("%d key slots after warming up, want %d", slots, macSetSize(1<<16))
	}
	time.Sleep(100 * time.Millisecond) // well past warmDelay
	if err := srv.Apply(entry.MACChange(entry.Create, mac(1), netip.AddrFrom4([4]byte{10, 0, 0, 1}))); err != nil {
		t.Fatal(err)
	}
	syncAll(t, srv, c)
	assertSame(t, srv, c)
	if n := clientStat(c, "snapshots"); n != 1 {
		t.Fatalf("%d snapshots: the session did not survive its warm-up", n)
	}
}

// TestFullServerTriedAgain: a server with no place left says so as a
// refusal that may pass later (ErrBusy, not ErrRefused): a client that
// waits for the server tries again and gets in when a place frees, and
// one that does not wait is told why.
func TestFullServerTriedAgain(t *testing.T) {
	srv := newTestServer(t, ServerOptions{MaxClients: 1})
	first := dialTest(t, srv, "first")
	_, err := Dial(ClientOptions{Socket: srv.opts.Socket, Name: "now", Logf: t.Logf})
	if !errors.Is(err, ErrBusy) || errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "too many clients: this server admits 1") {
		t.Fatalf("a client past --max-clients: %v, want ErrBusy", err)
	}
	time.AfterFunc(300*time.Millisecond, func() { first.Close() })
	c, err := Dial(ClientOptions{Socket: srv.opts.Socket, Name: "waits", Wait: 20 * time.Second, Logf: t.Logf})
	if err != nil {
		t.Fatalf("a client that waits for a place: %v", err)
	}
	defer c.Close()
	select {
	case <-c.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("no snapshot")
	}
}

// TestReplacedStoreRefused: a client maps only the store its server
// welcomed it to: another file moved to the path (by whoever can write
// its directory) is refused, though its owner is the server's uid.
func TestReplacedStoreRefused(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	if err := srv.Apply(entry.Change{Op: entry.Create, Table: entry.MACs, MAC: mac(1), IP: netip.MustParseAddr("10.0.0.2")}); err != nil {
		t.Fatal(err)
	}
	path := srv.opts.Store.Path
	other := rtmtest.StorePath(t)
	st, err := store.Open(store.Options{Path: other, Capacity: 1 << 10, RouteCapacity: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateMAC(mac(1), netip.MustParseAddr("10.0.0.1")); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := os.Rename(path, path+".orig"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path + ".orig") })
	if err := os.Rename(other, path); err != nil {
		t.Fatal(err)
	}
	_, err = Dial(ClientOptions{Socket: srv.opts.Socket, Name: "fooled", Logf: t.Logf})
	if err == nil || !strings.Contains(err.Error(), path+" is not the server's store") {
		t.Fatalf("a client welcomed to a replaced store: %v", err)
	}
	if err := os.Rename(path+".orig", path); err != nil {
		t.Fatal(err)
	}
	c := dialTest(t, srv, "after")
	if ip, err := c.LookupMAC(mac(1)); err != nil || ip != netip.MustParseAddr("10.0.0.2") {
		t.Fatalf("with the server's store back: %v %v", ip, err)
	}
}

// TestFullBacklogIsBusy: a socket whose queue of connections not yet
// accepted is full (a flood, or a server too busy to accept) is a busy
// server, which a client that waits tries again, not a refusal; and a
// live one, which a second server does not take for a dead one's.
func TestFullBacklogIsBusy(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	var held []*net.UnixConn // never accepted: the queue fills
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range 8 {
		c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: sock, Net: "unixpacket"})
		if err != nil {
			break
		}
		held = append(held, c)
	}
	_, err = Dial(ClientOptions{Socket: sock, Name: "late"})
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "its queue of new connections is full") {
		t.Fatalf("a client at a full queue: %v, want ErrBusy", err)
	}
	if ln, err := listen(sock, 0o600); err == nil || !errors.Is(err, ErrSocketInUse) {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("a second server on a busy listener's socket: %v, want ErrSocketInUse", err)
	}
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("the busy listener's socket was removed: %v", err)
	}
}

// TestRefusalBeforeHello: a server out of descriptors accepts a client,
// refuses it and closes before the client's hello comes; the hello then
// fails (EPIPE), and the client reads the refusal waiting for it instead
// of reporting the broken pipe: busy, to try again, with the reason.
func TestRefusalBeforeHello(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: sock, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	refused := make(chan error, 1)
	go func() {
		c, err := ln.AcceptUnix()
		if err == nil {
			err = errors.Join(writePacket(c, Header{Kind: KindError, Flags: FlagRetry}, []byte("the server is busy: out of file descriptors")), c.Close())
		}
		refused <- err
	}()
	beforeHello = func() {
		if err := <-refused; err != nil {
			t.Error(err)
		}
	}
	defer func() { beforeHello = nil }()
	_, err = Dial(ClientOptions{Socket: sock, Name: "late"})
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "out of file descriptors") {
		t.Fatalf("a hello after the refusal: %v, want ErrBusy with the server's reason", err)
	}
}

// TestRemovedStoreSaidSo: a store removed under its server (a mistaken
// rm) leaves clients unable to map it; each is told the store is gone,
// not that no server listens, and the server says so once, then again
// as it quits, since the tables end with it.
func TestRemovedStoreSaidSo(t *testing.T) {
	var mu sync.Mutex
	var logs []string
	logf := func(format string, a ...any) {
		mu.Lock()
		logs = append(logs, fmt.Sprintf(format, a...))
		mu.Unlock()
	}
	path := rtmtest.StorePath(t)
	srv, err := Start(ServerOptions{
		Socket: filepath.Join(t.TempDir(), "s.sock"),
		Store:  store.Options{Path: path, Capacity: 1 << 10, RouteCapacity: 1 << 10},
		Logf:   logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	dialTest(t, srv, "before")
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		_, err := Dial(ClientOptions{Socket: srv.opts.Socket, Name: "after"})
		if !errors.Is(err, ErrNoStore) || errors.Is(err, ErrBusy) {
			t.Fatalf("a client of a server whose store was removed: %v, want ErrNoStore", err)
		}
	}
	if err := srv.Close("test over", time.Second); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	all := strings.Join(logs, "\n")
	mu.Unlock()
	if n := strings.Count(all, "was removed while the server runs"); n != 1 {
		t.Errorf("the server said %d times that its store was removed, want once:\n%s", n, all)
	}
	if !strings.Contains(all, "its tables were not kept") {
		t.Errorf("the server quit without saying its tables were lost:\n%s", all)
	}
}

// TestAdmission: a uid that may only read is admitted while more than an
// eighth of the places are free, all but one for a server of fewer than
// 8; the server's uid up to the last place.
func TestAdmission(t *testing.T) {
	for _, tc := range []struct{ most, readers int64 }{{1, 1}, {2, 1}, {7, 6}, {8, 7}, {16, 14}, {1024, 896}} {
		s := &Server{uid: 1000, opts: ServerOptions{MaxClients: int(tc.most)}}
		n := int64(0)
		for s.admit(65534) == nil {
			n++
		}
		if n != tc.readers {
			t.Errorf("--max-clients %d: %d readers admitted, want %d", tc.most, n, tc.readers)
		}
		for s.admit(1000) == nil {
			n++
		}
		if n != tc.most {
			t.Errorf("--max-clients %d: %d admitted in all, want %d", tc.most, n, tc.most)
		}
		s.release()
		if err := s.admit(65534); tc.most > 1 && (err == nil || !strings.Contains(err.Error(), "too many clients for a uid that may only read")) {
			t.Errorf("--max-clients %d, one place free: a reader: %v", tc.most, err)
		}
	}
}

// TestAskerAdmission: a uid that may only read asks on all but an eighth
// of the places for questions; the server's uid on all of them.
func TestAskerAdmission(t *testing.T) {
	s := &Server{uid: 1000}
	n := 0
	for s.admitAsker(65534) == nil {
		n++
	}
	if n != maxHandshakes-maxHandshakes/8 {
		t.Errorf("%d questions of a reader at once, want %d", n, maxHandshakes-maxHandshakes/8)
	}
	if err := s.admitAsker(65534); err == nil || !strings.Contains(err.Error(), "a uid that may only read asks on 56 of them") {
		t.Errorf("a reader's question past its share: %v", err)
	}
	for s.admitAsker(1000) == nil {
		n++
	}
	if n != maxHandshakes {
		t.Errorf("%d questions at once in all, want %d", n, maxHandshakes)
	}
}

// TestAskersGiveBack: a question whose welcome cannot be sent (its asker
// gone at once) gives its place back: after more of them than may ask at
// once, a question is still answered.
func TestAskersGiveBack(t *testing.T) {
	srv := newTestServer(t, ServerOptions{Logf: func(string, ...any) {}})
	hello := make([]byte, HeaderSize, HeaderSize+8)
	PutHeader(hello, Header{Kind: KindHello, Flags: FlagQueryOnly})
	hello = append(hello, "gone"...)
	for range 2 * maxHandshakes {
		c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: srv.opts.Socket, Net: "unixpacket"})
		if err != nil {
			t.Fatal(err)
		}
		c.Write(hello)
		c.Close()
	}
	// The server may still be taking the last of them: busy for a while,
	// not for good.
	var err error
	if !rtmtest.WaitFor(10*time.Second, func() bool {
		var info ServerInfo
		err = Ask(srv.opts.Socket, nil, QueryInfo, &info)
		return err == nil
	}) {
		t.Fatalf("a question after %d that left at once: %v (%d askers counted)", 2*maxHandshakes, err, srv.askers.Load())
	}
}

// TestStalledSnapshotLetGo: a client that takes none of its snapshot lets
// it go once the server shares a newer one, so that readers that never
// read, each connecting after the tables changed by more than their size,
// do not each hold a copy of the tables (0.7 MB a reader with 100 k MACs
// before); once such a client reads again, it gets the tables whole, as
// they are then.
func TestStalledSnapshotLetGo(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	srv.snapshotStall.Store(int64(100 * time.Millisecond))
	n, routes := fillPastSocket(t, srv)
	ip := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	stat := func(name string) uint64 {
		for _, s := range srv.Stats() {
			if s.Name == name {
				return s.Value
			}
		}
		t.Fatalf("no stat %s", name)
		return 0
	}
	var stalled []*net.UnixConn
	for k := range 3 {
		uc := helloRaw(t, srv, fmt.Sprintf("stalled%d", k))
		stalled = append(stalled, uc)
		if !rtmtest.WaitFor(5*time.Second, func() bool { cs, _ := srv.Clients(); return len(cs) == k+1 }) {
			t.Fatalf("stalled client %d never connected", k)
		}
		for i := range n + routes + 1 { // the next client needs a snapshot of its own
			if err := srv.Apply(entry.MACChange(entry.Update, mac(i%n), ip(i+k+1))); err != nil {
				t.Fatal(err)
			}
		}
	}
	dialTest(t, srv, "reader")
	if !rtmtest.WaitFor(10*time.Second, func() bool { return stat("snapshots_dropped_stalled") == 3 }) {
		cs, _ := srv.Clients()
		t.Fatalf("%d outdated snapshots let go by stalled clients, want 3; %+v; sent %d", stat("snapshots_dropped_stalled"), cs, stat("snapshots_sent"))
	}
	if err := srv.Apply(entry.MACChange(entry.Delete, mac(0), netip.Addr{})); err != nil {
		t.Fatal(err)
	}
	want := srv.log.published.Load()

	// The first stalled client reads: after the part of its first
	// snapshot its socket held, a whole snapshot of the tables as they
	// are, then what changed since.
	uc := stalled[0]
	uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, MaxPacket)
	begins, records, entries := 0, uint32(0), uint64(0)
	for {
		_, h, err := readPacket(uc, buf)
		if err != nil {
			t.Fatalf("after %d snapshot begins: %v", begins, err)
		}
		switch {
		case h.Kind == KindSnapshotBegin:
			begins++
			records, entries = 0, binary.LittleEndian.Uint64(buf[HeaderSize:])+binary.LittleEndian.Uint64(buf[HeaderSize+8:])
		case h.Kind == KindBatch && h.Flags&FlagSnapshot != 0:
			records += h.Count
		case h.Kind == KindSnapshotEnd:
			if begins != 2 || uint64(records) != entries || h.Seq+uint64(h.Count) != want {
				t.Fatalf("snapshot end: %d begins, %d records of %d entries, seq %d + %d past it, want 2 begins, the server at %d", begins, records, entries, h.Seq, h.Count, want)
			}
			if all := uint64(n + routes); entries != all && entries != all-1 {
				t.Fatalf("a snapshot of %d entries, want %d or, past the delete, %d", entries, n+routes, n+routes-1)
			}
			return
		}
	}
}

// TestSilentClientHoldsOnePacket: a connection that says hello and reads
// nothing holds about one packet of its snapshot in the kernel, not a
// socket buffer's worth (512 KiB: 1,000 such connections pinned half a
// gigabyte), an ack it sends without reading changing nothing; once it
// reads, it gets the whole snapshot, and a streaming buffer.
func TestSilentClientHoldsOnePacket(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	n, routes := fillPastSocket(t, srv)
	uc := helloRaw(t, srv, "silent")
	if err := writePacket(uc, Header{Kind: KindAck}, nil); err != nil {
		t.Fatal(err)
	}
	// What the kernel holds for the client is on the server's end of the
	// connection (SIOCOUTQ: the packets' size in the kernel's memory).
	var conn *serverConn
	held := func() int {
		if cs := *srv.conns.Load(); len(cs) == 1 {
			conn = cs[0]
			return unread(conn.uc)
		}
		return 0
	}
	if !rtmtest.WaitFor(10*time.Second, func() bool { return held() >= MaxPacket/2 }) {
		t.Fatalf("the server never sent the silent client a full packet: %d bytes held", held())
	}
	time.Sleep(200 * time.Millisecond) // were it to send more, it would
	if h := held(); h >= 2*MaxPacket || conn.grown.Load() {
		t.Fatalf("the kernel held %d bytes for a client that read nothing (its buffer grown: %v), want one packet (%d bytes and the kernel's own)", h, conn.grown.Load(), MaxPacket)
	}
	buf := make([]byte, MaxPacket)
	var records uint32
	var entries uint64
	uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, h, err := readPacket(uc, buf)
		if err != nil {
			t.Fatalf("the snapshot, after %d of %d records: %v", records, entries, err)
		}
		switch h.Kind {
		case KindSnapshotBegin:
			entries = binary.LittleEndian.Uint64(buf[HeaderSize:]) + binary.LittleEndian.Uint64(buf[HeaderSize+8:])
		case KindBatch:
			records += h.Count
		}
		if h.Kind == KindSnapshotEnd {
			break
		}
	}
	if uint64(records) != entries || entries != uint64(n+routes) {
		t.Fatalf("a snapshot of %d records of %d entries, want %d", records, entries, n+routes)
	}
	if !conn.grown.Load() {
		t.Fatal("the client read its snapshot, and its send buffer is still the first one")
	}
}

// TestSilentClientGetsTheGoodbye: a client that had read nothing when
// its server quit (stopped as it started) still gets the rest of its
// snapshot and the goodbye once it reads, as long as they fit a
// streaming socket buffer: the quit gives its connection that buffer,
// not the first one's single packet, which would leave the client to
// find a lost server rather than one that quit.
func TestSilentClientGetsTheGoodbye(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	const macs, routes = 20_000, 3_000 // some 200 KB of snapshot: packets, under a streaming buffer (416 KiB at the kernel's default limit)
	fillTables(t, srv, macs, routes)
	uc := helloRaw(t, srv, "stopped")
	held := func() int {
		if cs := *srv.conns.Load(); len(cs) == 1 {
			return unread(cs[0].uc)
		}
		return 0
	}
	if !rtmtest.WaitFor(10*time.Second, func() bool { return held() >= MaxPacket/2 }) {
		t.Fatalf("the server never sent the silent client a full packet: %d bytes held", held())
	}
	if cs := *srv.conns.Load(); len(cs) != 1 || cs[0].grown.Load() {
		t.Fatal("the silent client's send buffer grew before the quit: the test proves nothing")
	}
	// The quit waits for the client, which reads only once it is over.
	if err := srv.Close("test quit", time.Second); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, MaxPacket)
	var records uint32
	var kinds []Kind
	uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		body, h, err := readPacket(uc, buf)
		if err != nil {
			t.Fatalf("after %d packets (%v), %d records: %v; want the snapshot and a goodbye", len(kinds), kinds, records, err)
		}
		kinds = append(kinds, h.Kind)
		if h.Kind == KindBatch {
			records += h.Count
		}
		if h.Kind == KindShutdown {
			if got := string(body); got != "test quit" {
				t.Fatalf("the goodbye says %q, want %q", got, "test quit")
			}
			break
		}
	}
	if records != macs+routes {
		t.Fatalf("%d records before the goodbye, want the snapshot's %d", records, macs+routes)
	}
}

// fillPastSocket gives srv 60 k MACs and 10 k routes: 0.6 MB of snapshot,
// more than a client's socket buffer holds (setBuffers: 512 KiB).
func fillPastSocket(t *testing.T, srv *Server) (macs, routes int) {
	t.Helper()
	const n, r = 60_000, 10_000
	fillTables(t, srv, n, r)
	return n, r
}

// fillTables gives srv macs MACs and routes routes (mac(i), route(i)).
func fillTables(t *testing.T, srv *Server, macs, routes int) {
	t.Helper()
	for i := range macs {
		if err := srv.Apply(entry.MACChange(entry.Create, mac(i), netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range routes {
		if err := srv.Apply(entry.RouteChange(entry.Create, route(i, "eth0"))); err != nil {
			t.Fatal(err)
		}
	}
}

// helloRaw connects to srv as a bare socket that says hello as name and
// does nothing else the test does not.
func helloRaw(t *testing.T, srv *Server, name string) *net.UnixConn {
	t.Helper()
	uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: srv.opts.Socket, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uc.Close() })
	if err := writePacket(uc, Header{Kind: KindHello}, []byte(name)); err != nil {
		t.Fatal(err)
	}
	return uc
}

// TestAnswerOutlivesWritersDeadline: a write deadline is the socket's,
// so one the writer set for a stalled snapshot can cut short a pong or a
// reply the reader goroutine is writing (seen once in fifteen runs of a
// paused client, which was then dropped). The reader's write is tried
// again until the writer takes its deadline off, and ends only with the
// goodbye's.
func TestAnswerOutlivesWritersDeadline(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) *net.UnixConn {
		f := os.NewFile(uintptr(fd), "pair")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c.(*net.UnixConn)
	}
	c := &serverConn{uc: conn(fds[0]), quit: make(chan struct{})}
	peer := conn(fds[1])
	c.limitWrite(time.Now().Add(-time.Second)) // as sendHeld leaves it when its send times out
	go func() {
		time.Sleep(20 * time.Millisecond)
		c.limitWrite(time.Time{})
	}()
	if err := c.answer(Header{Kind: KindPong, Seq: 7}, nil); err != nil {
		t.Fatalf("a pong past the writer's deadline: %v", err)
	}
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, h, err := readPacket(peer, make([]byte, MaxPacket)); err != nil || h.Kind != KindPong || h.Seq != 7 {
		t.Fatalf("the peer read %+v, %v; want the pong", h, err)
	}
	// Saying goodbye, the goodbye's deadline holds: a write it ends is
	// not tried again.
	c.deadline = time.Now().Add(-time.Second)
	close(c.quit)
	c.limitWrite(time.Time{})
	if err := c.answer(Header{Kind: KindPong, Seq: 8}, nil); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a pong past the goodbye's deadline: %v", err)
	}
}

// TestResyncIntoAFullSocketLetGo: a client that lets its socket fill and
// then asks for a resync held the snapshot its writer took at the
// snapshot's first packet, with no deadline: the begin is sent as the
// rest of the snapshot is, and let go once a newer snapshot is shared.
func TestResyncIntoAFullSocketLetGo(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	srv.snapshotStall.Store(int64(100 * time.Millisecond))
	ip := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}) }
	const n = 1000
	for i := range n {
		if err := srv.Apply(entry.MACChange(entry.Create, mac(i), ip(i))); err != nil {
			t.Fatal(err)
		}
	}
	uc := helloRaw(t, srv, "resyncer")
	uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, MaxPacket)
	for {
		_, h, err := readPacket(uc, buf)
		if err != nil {
			t.Fatal(err)
		}
		if h.Kind == KindSnapshotEnd {
			break
		}
	}
	// It reads no more. Changes, one at a time, until its writer is idle
	// with the socket past its buffer: the next packet would wait.
	var c *serverConn
	for _, sc := range *srv.conns.Load() {
		c = sc
	}
	rc, err := c.uc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	queued := func() (out, buf int) {
		rc.Control(func(fd uintptr) {
			out, _ = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
			buf, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
		})
		return out, buf
	}
	// Idle for good, not in the moment between its last look and its
	// sleep.
	idle := func() bool {
		for range 5 {
			if !c.idle.Load() {
				return false
			}
			time.Sleep(2 * time.Millisecond)
		}
		return true
	}
	// fill reports whether it got the writer there. It may instead leave
	// it waiting on the full socket with a change still to send (a step's
	// changes spanning two chunks), where a resync would wait behind that
	// change: the client then reads all it was sent, and it tries again.
	fill := func() bool {
		for i, step := 0, 100; i < 1_000_000; i += step {
			for k := range step {
				if err := srv.Apply(entry.MACChange(entry.Update, mac((i+k)%n), ip(i+k+n))); err != nil {
					t.Fatal(err)
				}
			}
			if !rtmtest.WaitFor(2*time.Second, idle) {
				return false
			}
			out, size := queued()
			if out >= size {
				return true
			}
			// The writer sends a step's changes in one packet (it
			// coalesces them), which goes if the socket is under its
			// buffer: near the buffer's end, small packets, to stop just
			// past it.
			step = 100
			if out < size-size/8 {
				step = 2000
			}
		}
		t.Fatal("the socket never filled")
		return false
	}
	for try := 0; !fill(); try++ {
		if try == 5 {
			t.Fatal("the writer never stopped with the socket full and nothing to send")
		}
		for {
			uc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if _, _, err := readPacket(uc, buf); err != nil {
				break
			}
		}
	}
	if err := writePacket(uc, Header{Kind: KindResync}, nil); err != nil {
		t.Fatal(err)
	}
	// The tables change by more than their size, and a new client takes
	// a snapshot of its own: the resyncer's is outdated.
	time.Sleep(50 * time.Millisecond)
	for i := range n + 1 {
		if err := srv.Apply(entry.MACChange(entry.Update, mac(i%n), ip(i))); err != nil {
			t.Fatal(err)
		}
	}
	dialTest(t, srv, "later")
	if !rtmtest.WaitFor(10*time.Second, func() bool {
		for _, s := range srv.Stats() {
			if s.Name == "snapshots_dropped_stalled" {
				return s.Value == 1
			}
		}
		return false
	}) {
		t.Fatal("the resyncer's writer holds its snapshot at the begin")
	}
}

// TestInfoWithFPMLock: Info asks SetFPM's function without holding the
// server's lock, which an importer takes to apply changes while it holds
// its own, the lock that function takes: show info asked while zebra's
// routes came deadlocked the server.
func TestInfoWithFPMLock(t *testing.T) {
	srv := newTestServer(t, ServerOptions{})
	var importer sync.Mutex // the FPM importer's lock
	asked, holding := make(chan struct{}), make(chan struct{})
	srv.SetFPM(func() FPMState {
		close(asked)
		importer.Lock()
		defer importer.Unlock()
		return FPMState{Listen: "127.0.0.1:2620"}
	})
	origin := srv.Origin("fpm")
	applied := make(chan error, 1)
	go func() {
		// The importer applies a route while it holds its lock, once Info
		// has begun to ask for its state.
		importer.Lock()
		defer importer.Unlock()
		close(holding)
		<-asked
		applied <- origin.Apply(entry.RouteChange(entry.Create, entry.Route{Prefix: netip.MustParsePrefix("10.1.0.0/16"), Dev: "eth0"}))
	}()
	<-holding
	info := make(chan ServerInfo, 1)
	go func() { i, _ := srv.Info(); info <- i }()
	select {
	case err := <-applied:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		// Not t.Fatal, nor a panic: the server's Close at the test's end
		// would wait for the lock for good too.
		fmt.Fprintln(os.Stderr, "--- FAIL: TestInfoWithFPMLock: the importer's change waited 10 s for the server's lock, which Info held while it waited for the importer's: a deadlock")
		os.Exit(1)
	}
	if i := <-info; i.FPM == nil || i.FPM.Listen != "127.0.0.1:2620" || i.Routes != 1 {
		t.Fatalf("info %+v, FPM %+v", i, i.FPM)
	}
}
