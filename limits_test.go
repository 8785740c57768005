package main

// Resource limits: a server out of file descriptors.

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"rtm/proto"
	"rtm/repl/rtmtest"
)

// helloPacket is a client hello as the wire carries it: header 'R', the
// protocol version, kind hello, then the name.
func helloPacket(name string) []byte {
	return append([]byte{'R', proto.Version, byte(proto.KindHello), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, name...)
}

// rawSession opens a bare connection and says hello.
func rawSession(t *testing.T, sock string) *net.UnixConn {
	t.Helper()
	uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: sock, Net: "unixpacket"})
	if err != nil {
		t.Fatalf("connect %s: %v", sock, err)
	}
	t.Cleanup(func() { uc.Close() })
	if _, err := uc.Write(helloPacket("raw")); err != nil {
		t.Fatal(err)
	}
	return uc
}

// refusalOf opens a session at sock and returns the first packet it is
// answered, within 5 seconds.
func refusalOf(t *testing.T, sock string) (proto.Header, string) {
	t.Helper()
	uc := rawSession(t, sock)
	defer uc.Close()
	buf := make([]byte, 70000)
	uc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := uc.Read(buf)
	if err != nil {
		t.Fatalf("no answer to a session: %v", err)
	}
	h, err := proto.ParseHeader(buf[:n])
	if err != nil {
		t.Fatalf("answer to a session: %v", err)
	}
	return h, string(buf[proto.HeaderSize:n])
}

// welcomed reports whether the server's welcome (kind 2) arrives within d.
func welcomed(uc *net.UnixConn, d time.Duration) bool {
	buf := make([]byte, 70000)
	uc.SetReadDeadline(time.Now().Add(d))
	defer uc.SetReadDeadline(time.Time{})
	n, err := uc.Read(buf)
	return err == nil && n >= 16 && buf[0] == 'R' && buf[2] == 2
}

// TestServerFDExhaustion runs `rtm server` under prlimit --nofile=32 and
// connects more sessions than it can hold: the server logs the accept
// failure naming the socket and the cause, and tells the session it
// cannot take why, at once, as a refusal to try again later (not a
// silence in the listen queue); it keeps serving the clients it has (each
// one's whole view, MAC addresses read through its own mapping, equals
// the tables the changes describe). An `rtm client` is told the limit and
// exits 1; one started with --wait connects once descriptors are freed,
// as does a new session; and the server is still running.
func TestServerFDExhaustion(t *testing.T) {
	t.Parallel()
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit not installed")
	}
	in := newInstance(t)
	p := startCmd(t, exec.Command(prlimit, append([]string{"--nofile=32:32", rtmBin, "server", "--framed"}, in.flags()...)...))
	p.must("")
	m := newModel()
	rng := rand.New(rand.NewPCG(41, 42))
	p.must(m.gen(rng, 500)...)
	var good []*proc
	for i := range 3 {
		good = append(good, in.client(fmt.Sprintf("good-%d", i)))
	}
	var raws []*net.UnixConn
	var refused *net.UnixConn
	for len(raws) < 64 {
		uc := rawSession(t, in.socket)
		if !welcomed(uc, 500*time.Millisecond) {
			refused = uc
			break
		}
		raws = append(raws, uc)
	}
	if refused == nil {
		t.Fatal("64 sessions accepted under a 32-descriptor limit")
	}
	// welcomed read the answer: ask again for what it was.
	if h, body := refusalOf(t, in.socket); h.Kind != proto.KindError || h.Flags&proto.FlagRetry == 0 || !strings.Contains(body, "out of file descriptors (its limit: 32 open files") {
		t.Fatalf("a session past the limit was answered %v (flags %#x) %q, not refused to try again naming the limit", h.Kind, h.Flags, body)
	}
	if !rtmtest.WaitFor(5*time.Second, func() bool { return strings.Contains(p.errb.String(), "too many open files") }) {
		t.Fatalf("no report of the exhaustion: %s", p.errb)
	}
	logged := p.errb.String()
	if !strings.Contains(logged, "accept on "+in.socket) {
		t.Fatalf("the report does not name the socket: %s", logged)
	}
	// A session slow to say hello still finds the refusal, not a reset.
	slow, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: in.socket, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	slow.Write(helloPacket("slow")) // refused already, perhaps: the answer is there
	slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	answer := make([]byte, 70000)
	if n, err := slow.Read(answer); err != nil || n < proto.HeaderSize || answer[2] != byte(proto.KindError) || !strings.Contains(string(answer[proto.HeaderSize:n]), "out of file descriptors") {
		t.Fatalf("a session 50 ms slow to say hello, refused: %v %q", err, answer[:max(n, 0)])
	}
	slow.Close()
	// A client is told why, and fails, without waiting for a welcome:
	// not even behind sessions that neither read their refusal nor close.
	for range 8 {
		rawSession(t, in.socket)
	}
	r := runRTM(t, "show routes\n", "client", "--socket", in.socket)
	if r.code != 1 || !strings.Contains(r.stderr, "out of file descriptors (its limit: 32 open files; raise it with ulimit -n") || strings.Contains(r.stderr, "no welcome") {
		t.Fatalf("client against a server out of descriptors: exit %d, stderr %q", r.code, r.stderr)
	}
	// One that waits for its server tries again until it is let in.
	waiter := start(t, "client", "--framed", "--socket", in.socket, "--client-name", "waiter", "--wait", "30s")
	// The server still serves the clients it has.
	p.must(m.gen(rng, 2000)...)
	for _, c := range good {
		assertLines(t, "client while the server is out of descriptors", sortedLines(c.must("sync local", "show routes", "show macs")), m.lines())
	}
	for _, uc := range raws[:4] {
		uc.Close()
	}
	waiter.must("") // answered once the snapshot is in
	assertLines(t, "client that waited for descriptors", sortedLines(waiter.must("sync local", "show routes", "show macs")), m.lines())
	if !welcomed(rawSession(t, in.socket), 5*time.Second) {
		t.Fatalf("a new session not welcomed after descriptors were freed: %s", p.errb)
	}
	if p.fp.Exited() {
		t.Fatalf("server exited: %s: %s", p.fp.Status(), p.errb)
	}
	t.Logf("server held %d sessions (3 clients + %d bare) under RLIMIT_NOFILE=32; report: %s", len(good)+len(raws), len(raws), firstLine(logged, "too many open files"))
}

func firstLine(s, substr string) string {
	for l := range strings.Lines(s) {
		if strings.Contains(l, substr) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// rssKB is a process's resident set, from /proc.
func rssKB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.Atoi(strings.Fields(v)[0])
			return kb
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// TestIdleClientsBounded: a server holding 200,000 MACs, with 1,000
// clients that said hello and never read (not even their snapshot) and
// 1,000 connections that never say hello. Its memory grows by less than
// a bound written here, whatever the size of the tables (the snapshot is
// one copy, shared; an idle connection keeps no 64 KiB buffer), a normal
// client is served within 10 times its time on an idle server (the
// silent connections cannot keep it out), and past --max-clients a
// client is refused with the reason.
func TestIdleClientsBounded(t *testing.T) {
	// Not parallel: it holds 2,000 connections open and compares a
	// client's time on a busy server with its time on a quiet one.
	const macs, idle = 200_000, 1000
	in := newInstance(t)
	srv := in.server("--capacity", strconv.Itoa(macs*5/4))
	if r := runRTM(t, macCreatesText(macs), "client", "--socket", in.socket); r.code != 0 {
		t.Fatalf("fill: %s", r.stderr)
	}
	showInfo := func() time.Duration {
		var ds []time.Duration
		for range 3 {
			t0 := time.Now()
			if r := runRTM(t, "", "client", "--socket", in.socket, "-c", "show info"); r.code != 0 {
				t.Fatalf("show info: %s", r.stderr)
			}
			ds = append(ds, time.Since(t0))
		}
		slices.Sort(ds)
		return ds[1]
	}
	quiet := showInfo()
	pid := srv.fp.Pid()
	before := rssKB(t, pid)
	var conns []*net.UnixConn
	for i := range 2 * idle {
		uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: in.socket, Net: "unixpacket"})
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, uc)
		if i%2 == 0 {
			uc.Write(helloPacket(fmt.Sprintf("idle-%d", i/2)))
		}
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	in.waitClients(srv, idle)
	busy := showInfo()
	during := rssKB(t, pid)
	const boundKB = 64 << 10 // 2,000 connections in 64 MiB: 32 KiB each
	if grew := during - before; grew > boundKB {
		t.Errorf("server RSS grew by %d KiB with %d idle clients and %d silent connections, bound %d KiB", grew, idle, idle, boundKB)
	}
	if busy > 10*quiet+time.Second/2 {
		t.Errorf("show info took %v beside the idle connections, %v without (want at most 10 times)", busy, quiet)
	}
	// Past --max-clients: the server admits 1,024 by default.
	extra := make([]*net.UnixConn, 0, 24)
	for range 24 {
		if uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: in.socket, Net: "unixpacket"}); err == nil {
			uc.Write(helloPacket("extra"))
			extra = append(extra, uc)
		}
	}
	in.waitClients(srv, proto.DefaultMaxClients)
	r := runRTM(t, "", "client", "--socket", in.socket, "-c", "show info")
	for _, c := range extra {
		c.Close()
	}
	if r.code == 0 || !strings.Contains(r.stderr, "too many clients: this server admits 1024 (rtm server --max-clients)\n(--wait DURATION tries again for that long)") {
		t.Errorf("a client past --max-clients: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	in.waitClients(srv, 0)
	t.Logf("server RSS %d KiB with %d MACs; %d KiB with %d idle clients and %d silent connections (+%.1f KiB each); %d KiB after they went; show info %v idle, %v beside them",
		before, macs, during, idle, idle, float64(during-before)/(2*idle), rssKB(t, pid), quiet, busy)
}

// TestSyncFloodBounded: a client that asks for sync after sync and never
// reads an answer holds up its own connection, not the server's memory.
// Each sync ended the one before, whose answer then waited in a goroutine
// of its own on a socket nobody read: 200,000 of them grew a server to
// 1 GB. Now the server reads the next sync only once the one before has
// answered, so the flood stops in the peer's socket. The server stays
// small and serves everyone else, and the peer's answers, once it reads,
// come one for each sync the server took.
func TestSyncFloodBounded(t *testing.T) {
	t.Parallel()
	const syncs = 30_000
	in := newInstance(t)
	srv := in.server()
	pid := srv.fp.Pid()
	before := rssKB(t, pid)
	uc := rawSession(t, in.socket)
	if !welcomed(uc, 5*time.Second) {
		t.Fatal("no welcome")
	}
	pkt := make([]byte, proto.HeaderSize+9)
	pkt[proto.HeaderSize] = byte(proto.QuerySync)
	binary.LittleEndian.PutUint64(pkt[proto.HeaderSize+1:], uint64(time.Hour))
	sent := 0
	for ; sent < syncs; sent++ {
		proto.PutHeader(pkt, proto.Header{Kind: proto.KindQuery, Seq: uint64(sent + 1)})
		uc.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := uc.Write(pkt); err != nil {
			break // the server stopped reading this connection
		}
	}
	if r := runRTM(t, "C,10.1.0.0/16,-,eth0\nshow info\n", "client", "--socket", in.socket); r.code != 0 {
		t.Errorf("another client beside the flood: exit %d, stderr %q", r.code, r.stderr)
	}
	srv.must("expect count routes 1")
	const boundKB = 16 << 10
	if grew := rssKB(t, pid) - before; grew > boundKB {
		t.Errorf("server RSS grew by %d KiB after %d syncs never read, bound %d KiB", grew, sent, boundKB)
	}
	// The peer reads at last: each sync the server took was answered,
	// in order, the last one waiting still.
	replies, last := 0, uint64(0)
	buf := make([]byte, proto.MaxPacket)
	for {
		uc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, err := uc.Read(buf)
		if err != nil {
			break
		}
		if n >= proto.HeaderSize && buf[2] == byte(proto.KindReply) {
			seq := binary.LittleEndian.Uint64(buf[8:])
			if seq <= last {
				t.Fatalf("reply to sync %d after the reply to %d", seq, last)
			}
			replies, last = replies+1, seq
		}
	}
	if replies == 0 || replies >= sent {
		t.Errorf("%d replies to %d syncs sent: want one for each but the last, which waits", replies, sent)
	}
	t.Logf("%d syncs sent before the server stopped reading them, %d answered; RSS %d KiB before, %d KiB after", sent, replies, before, rssKB(t, pid))
	srv.must("C,10.2.0.0/16,-,eth0") // still serving
}

// TestLeavingDuringSnapshot: sessions that read the start of a snapshot
// of 200,000 MACs and close, while the server is still writing it to
// them. Each is logged as disconnected, as a client that ends then is
// (Ctrl-C, a one-shot command): not "dropped", which the log keeps for
// clients the server ends for a fault.
func TestLeavingDuringSnapshot(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.streamServer("--capacity", "300000")
	if r := runRTM(t, macCreatesText(200_000), "client", "--socket", in.socket); r.code != 0 {
		t.Fatalf("loading the MACs: exit %d: %s", r.code, r.stderr)
	}
	const sessions = 10
	buf := make([]byte, 70000)
	for range sessions {
		uc := rawSession(t, in.socket)
		uc.SetReadDeadline(time.Now().Add(5 * time.Second))
		for range 2 { // the welcome, and the snapshot's first packet
			if _, err := uc.Read(buf); err != nil {
				t.Fatal(err)
			}
		}
		uc.Close()
	}
	left := func() int { return strings.Count(srv.errb(), "client raw (pid ") - sessions }
	if !rtmtest.WaitFor(10*time.Second, func() bool { return left() >= sessions }) {
		t.Fatalf("the server logged %d of %d sessions' ends:\n%s", left(), sessions, srv.errb())
	}
	raw := fmt.Sprintf("client raw (pid %d) ", os.Getpid())
	if log := srv.errb(); strings.Contains(log, "dropped") || strings.Count(log, raw+"disconnected") != sessions {
		t.Errorf("sessions that left during their snapshot, logged otherwise than disconnected:\n%s", log)
	}
}
