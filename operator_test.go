package main

// Operating a running server from any shell: changes sent by clients,
// one-shot commands, dump and restore, show info and the counters.

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"rtm/proto/framed"
	"rtm/repl/rtmtest"
)

// TestClientChangesOneOrder: the server and a client change the same
// route in turn while two other clients watch: both watchers see every
// change, in the same order, and every table ends the same.
func TestClientChangesOneOrder(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.server()
	srv.must("C,10.1.0.0/16,192.168.0.1,eth0")
	writer := in.client("writer")
	var watchers []*proc
	for _, n := range []string{"w1", "w2"} {
		w := start(t, "client", "--watch", "--socket", in.socket, "--client-name", n)
		watchers = append(watchers, w)
	}
	in.waitClients(srv, 3)
	// Connected is not yet loaded: a watcher's snapshot may be taken after
	// changes that then never show as lines. Each prints it when it has it.
	for i, w := range watchers {
		if !rtmtest.WaitFor(10*time.Second, func() bool { return strings.Contains(w.out.String(), "# snapshot: ") }) {
			t.Fatalf("watcher %d printed no snapshot: %s", i+1, w.errb.String())
		}
	}
	const rounds = 200
	for i := range rounds {
		srv.send(fmt.Sprintf("U,10.1.0.0/16,192.168.%d.1,eth0", i%250))
		writer.send(fmt.Sprintf("U,10.1.0.0/16,192.168.%d.2,eth1", i%250))
	}
	srv.must("sync")
	writer.must("sync local")
	var seqs [][]string
	for _, w := range watchers {
		var got []string
		if !rtmtest.WaitFor(20*time.Second, func() bool {
			got = nil
			for _, l := range strings.Split(w.out.String(), "\n") {
				if strings.Contains(l, "10.1.0.0/16") {
					got = append(got, l)
				}
			}
			return len(got) >= 2*rounds
		}) {
			t.Fatalf("watcher saw %d of %d changes; its stderr:\n%s\nits output:\n%s", len(got), 2*rounds, w.errb.String(), tail(w.out.String(), 20))
		}
		seqs = append(seqs, got)
	}
	for i := range seqs[0] {
		if seqs[0][i] != seqs[1][i] {
			t.Fatalf("watchers differ at change %d: %q and %q", i+1, seqs[0][i], seqs[1][i])
		}
	}
	want := srv.must("show routes")
	if got := writer.must("show routes"); got != want {
		t.Fatalf("writer's table %q, server's %q", got, want)
	}
	stats := srv.must("show stats")
	if statValue(stats, "changes_from_server") != rounds+1 || statValue(stats, "changes_from_clients") != rounds {
		t.Fatalf("changes per origin:\n%s", stats)
	}
	if clients := srv.must("show clients"); !strings.Contains(clients, "writer id ") || !strings.Contains(clients, fmt.Sprintf(" changes %d writes yes ", rounds)) {
		t.Fatalf("show clients does not count the writer's changes:\n%s", clients)
	}
	// A client asks the server what only the server knows.
	if got := writer.must("show clients"); !strings.Contains(got, "w1 id ") || !strings.Contains(got, "w2 id ") {
		t.Fatalf("show clients at a client:\n%s", got)
	}
	if got := writer.must("show info"); !strings.Contains(got, "instance  "+in.name) || !strings.Contains(got, "routes    1 of ") {
		t.Fatalf("show info at a client:\n%s", got)
	}
	writer.must("expect count clients 3")
}

// TestClientScriptStopsAtFirstError: a script piped through a client
// stops at its first failing line, which it names as file:line; nothing
// after it is applied, though it was in flight; --keep-going reports
// every failure, applies the rest, and still exits 1.
func TestClientScriptStopsAtFirstError(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.server()
	var lines []string
	for i := range 3000 {
		lines = append(lines, fmt.Sprintf("C,10.%d.%d.0/24,192.168.0.1,eth0", i/256, i%256))
	}
	lines[1500] = "D,10.255.0.0/16" // not found
	lines[2000] = "C,10.1.1.1/24,192.168.0.1,eth0"
	script := filepath.Join(t.TempDir(), "bulk.rtm")
	os.WriteFile(script, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	r := runRTM(t, "", "client", "--socket", in.socket, "--script", script)
	if r.code != 1 || strings.TrimSpace(r.stderr) != script+":1501: delete route 10.255.0.0/16: not found" {
		t.Fatalf("stop at the first error: exit %d, stderr %q", r.code, r.stderr)
	}
	srv.must("expect count routes 1500", "expect no route 10.5.220.0/24")
	srv.must("flush")
	r = runRTM(t, "", "client", "--keep-going", "--socket", in.socket, "--script", script)
	want := script + ":1501: delete route 10.255.0.0/16: not found\n" +
		script + ":2001: create route: bad prefix 10.1.1.1/24: host bits set (did you mean 10.1.1.0/24?)\n" +
		script + ": 2 of 3000 lines failed\n"
	if r.code != 1 || r.stderr != want {
		t.Fatalf("keep-going: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	srv.must("expect count routes 2998")
}

// TestClientOneShot: -c runs commands in order and exits; a failure names
// its -c and sets the exit status.
func TestClientOneShot(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	in.server()
	c := func(cmds ...string) result {
		args := []string{"client", "--socket", in.socket}
		for _, x := range cmds {
			args = append(args, "-c", x)
		}
		return runRTM(t, "this stdin is not read\n", args...)
	}
	r := c("C,192.0.2.0/24,-,veth0", "R,00:1a:2b:3c:4d:5e,192.0.2.7", "show routes", "lookup 00:1a:2b:3c:4d:5e")
	if r.code != 0 || r.stdout != "192.0.2.0/24 dev veth0\n00:1a:2b:3c:4d:5e 192.0.2.7\n" {
		t.Fatalf("-c: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = c("show routes count", "C,192.0.2.0/24,-,veth1", "show routes count")
	if r.code != 1 || r.stdout != "1\n" || r.stderr != "-c:2: create route 192.0.2.0/24: already exists\n" {
		t.Fatalf("-c with a failure: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := runRTM(t, "", "client", "--socket", in.socket, "--watch", "-c", "show routes"); r.code != 2 {
		t.Fatalf("-c with --watch: exit %d", r.code)
	}
}

// TestClientLinesAfterExpectError: after an `expect error` whose change
// the server refused, as wanted, a client's later lines are applied, from
// -c, a pipe that ends and a pipe held open: the refusal made the server
// skip every later request of the replay, and the client took the skips
// for success (exit 0, the changes lost).
func TestClientLinesAfterExpectError(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.server()
	srv.must("C,10.1.0.0/16,-,eth0")
	inc := filepath.Join(t.TempDir(), "dup.rtm")
	os.WriteFile(inc, []byte("C,10.1.0.0/16,-,eth0\n"), 0o644)
	lines := []string{"expect error C,10.1.0.0/16,-,eth1", "C,10.2.0.0/16,-,eth0", "expect error source " + inc, "C,10.3.0.0/16,-,eth0", "D,10.2.0.0/16", "show routes"}
	want := "10.1.0.0/16 dev eth0\n10.3.0.0/16 dev eth0\n"
	reset := func() { srv.must("D,10.3.0.0/16", "expect count routes 1") }

	args := []string{"client", "--socket", in.socket}
	for _, l := range lines {
		args = append(args, "-c", l)
	}
	if r := runRTM(t, "", args...); r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Errorf("-c: exit %d, stdout %q, stderr %q; want %q", r.code, r.stdout, r.stderr, want)
	}
	reset()
	if r := runRTM(t, strings.Join(lines, "\n")+"\n", "client", "--socket", in.socket); r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Errorf("piped: exit %d, stdout %q, stderr %q; want %q", r.code, r.stdout, r.stderr, want)
	}
	reset()
	cl := startCoproc(t, "client", "--socket", in.socket, "--client-name", "held")
	cl.write(lines...)
	if got := strings.Join(cl.await(0, 2, "show routes"), "\n") + "\n"; got != want {
		t.Errorf("held open: %q, want %q; stderr %s", got, want, cl.stderr())
	}
	srv.must("expect route 10.3.0.0/16", "expect no route 10.2.0.0/16")
}

// TestFramedSourceAfterAFailedOne: at a --framed client, a source whose
// change the server refuses stops there, and a source after it runs
// whole: the server skipped its changes, as later requests of the
// failed one's replay.
func TestFramedSourceAfterAFailedOne(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.server()
	srv.must("C,10.1.0.0/16,-,eth0")
	dir := t.TempDir()
	bad, good := filepath.Join(dir, "bad.rtm"), filepath.Join(dir, "good.rtm")
	os.WriteFile(bad, []byte("C,10.1.0.0/16,-,eth0\nC,10.2.0.0/16,-,eth0\n"), 0o644)
	os.WriteFile(good, []byte("C,10.3.0.0/16,-,eth0\nC,10.4.0.0/16,-,eth0\n"), 0o644)
	cl := in.client("framed")
	if f := cl.do("source " + bad); !strings.Contains(f.err, bad+":1: create route 10.1.0.0/16: already exists") {
		t.Fatalf("source of a failing file: %+v", f)
	}
	if f := cl.do("source " + good); f.err != "" {
		t.Fatalf("source after it: %+v", f)
	}
	srv.must("expect count routes 3", "expect route 10.4.0.0/16", "expect no route 10.2.0.0/16")
}

// TestReadOnlyClient: a uid admitted with --allow-uid reads but its
// changes are refused, with the flag that would allow them; with
// --allow-write-uid they are applied.
func TestReadOnlyClient(t *testing.T) {
	in, bin := nobodyInstance(t)
	for _, tc := range []struct {
		flag   string
		code   int
		stderr string
	}{
		{"--allow-uid", 1, "<stdin>:1: create route 10.9.0.0/16: refused: uid 65534 may read but not change the tables (the server allows it with --allow-write-uid 65534)\n"},
		{"--allow-write-uid", 0, ""},
	} {
		srv := in.server(tc.flag, "65534")
		os.Chmod(in.socket, 0o666)
		os.Chmod(in.store, 0o644)
		r := asNobody(t, bin, "C,10.9.0.0/16,192.168.0.1,eth0\n", "--socket", in.socket)
		if r.code != tc.code || r.stderr != tc.stderr {
			t.Fatalf("%s: exit %d, stderr %q", tc.flag, r.code, r.stderr)
		}
		want := "expect no route 10.9.0.0/16"
		if tc.code == 0 {
			want = "expect route 10.9.0.0/16 via 192.168.0.1 dev eth0"
		}
		srv.must(want)
		srv.do("quit")
		srv.wait(10 * time.Second)
	}
}

// TestDumpRestoresExactly: the dump of a client, replayed into a fresh
// server, rebuilds the tables exactly: 100 k MACs and 10 k routes,
// connected ones among them, by default (a snapshot of many packets, a
// dump of some 3 MB, past every buffer on the way); a million MACs and a
// hundred thousand routes with RTM_LONG=1; 10 k of each with -short.
func TestDumpRestoresExactly(t *testing.T) {
	t.Parallel()
	macs, routes := rtmtest.Size(100_000, 1_000_000), rtmtest.Size(10_000, 100_000)
	if testing.Short() {
		macs, routes = 10_000, 10_000
	}
	dir := t.TempDir()
	gen := filepath.Join(dir, "gen.rtm")
	f, _ := os.Create(gen)
	w := bufio.NewWriter(f)
	for i := range routes {
		gw := fmt.Sprintf("192.0.2.%d", 1+i%250)
		if i%7 == 0 {
			gw = "-"
		}
		fmt.Fprintf(w, "C,%d.%d.%d.0/24,%s,eth%d\n", 10+i>>16, i>>8&0xff, i&0xff, gw, i%4)
	}
	for i := range macs {
		ip := fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff)
		if i%5 == 0 {
			ip = fmt.Sprintf("2001:db8::%x:%x", i>>16, i&0xffff)
		}
		fmt.Fprintf(w, "C,02:00:00:%02x:%02x:%02x,%s\n", i>>16&0xff, i>>8&0xff, i&0xff, ip)
	}
	w.Flush()
	f.Close()
	caps := []string{"--capacity", fmt.Sprint(macs + 1000), "--route-capacity", fmt.Sprint(routes + 1000)}
	a := newInstance(t)
	srvA := a.server(append(caps, "--script", gen)...)
	dump := filepath.Join(dir, "snap.rtm")
	out, _ := os.Create(dump)
	cmd := exec.Command(rtmBin, "client", "--socket", a.socket, "-c", "dump")
	cmd.Stdout = out
	if err := cmd.Run(); err != nil {
		t.Fatalf("dump: %v", err)
	}
	out.Close()
	b := newInstance(t)
	srvB := b.server(append(caps, "--fresh", "--script", dump)...)
	hash := func(p *proc) string { return p.must("show routes count", "show macs count") }
	if ha, hb := hash(srvA), hash(srvB); ha != hb || ha != fmt.Sprintf("%d\n%d\n", routes, macs) {
		t.Fatalf("counts: %q vs %q", ha, hb)
	}
	// Entry by entry: the dump of the restored server equals the first.
	again := exec.Command(rtmBin, "client", "--socket", b.socket, "-c", "dump")
	second, err := again.Output()
	if err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(dump)
	if string(first) != string(second) {
		t.Fatalf("the restored tables differ: %d bytes of dump against %d", len(second), len(first))
	}
	srvA.signal(syscall.SIGTERM)
	srvB.signal(syscall.SIGTERM)
}

// mirror is `rtm client --watch --full | rtm server --fresh`, from the
// instance src to the instance dst, as the README gives it.
type mirror struct {
	watch, server *exec.Cmd
	watchErr      *framed.Buffer
	serverErr     *framed.Buffer
}

func startMirror(t *testing.T, src, dst *instance) *mirror {
	t.Helper()
	m := &mirror{
		server:   exec.Command(rtmBin, append([]string{"server", "--fresh"}, dst.flags()...)...),
		watch:    exec.Command(rtmBin, "client", "--watch", "--full", "--wait", "30s", "--socket", src.socket, "--client-name", "mirror"),
		watchErr: framed.NewBuffer(1 << 20), serverErr: framed.NewBuffer(1 << 20),
	}
	pipe, err := m.watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	m.server.Stdin = pipe
	m.server.Stderr, m.watch.Stderr = m.serverErr, m.watchErr
	for _, c := range []*exec.Cmd{m.watch, m.server} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	}
	return m
}

// converged waits until the mirror equals its source, both quiet.
func (m *mirror) converged(t *testing.T, src, dst *instance, what string) {
	t.Helper()
	dump := func(in *instance) string {
		return runRTM(t, "", "client", "--socket", in.socket, "--wait", "10s", "-c", "sync local", "-c", "dump").stdout
	}
	var a, b string
	if !rtmtest.WaitFor(30*time.Second, func() bool { a, b = dump(src), dump(dst); return a != "" && a == b }) {
		t.Fatalf("%s: the mirror (%d lines) differs from its source (%d lines)\nwatch stderr: %s\nmirror stderr: %s",
			what, strings.Count(b, "\n"), strings.Count(a, "\n"), m.watchErr.String(), m.serverErr.String())
	}
}

// TestWatchMirrors: `rtm client --watch --full | rtm server --fresh`
// keeps the second server equal to the first whenever both are quiet,
// with nothing else to do: changes streamed while the mirror starts, a
// resync (SIGUSR1), the source killed and restarted in the middle of a
// stream, the watcher stopped (SIGSTOP) long enough to fall behind, and
// flushes.
func TestWatchMirrors(t *testing.T) {
	t.Parallel()
	n, kills := rtmtest.Size(20_000, 200_000), rtmtest.Size(2, 10)
	src, dst := newInstance(t), newInstance(t)
	srv := src.streamServer()
	md := newModel()
	rng := rand.New(rand.NewPCG(11, 12))
	// Changes stream in while the mirror starts: its first snapshot is
	// one cut of them, and every change after the cut follows it.
	wrote := srv.stream(md.gen(rng, n))
	m := startMirror(t, src, dst)
	<-wrote
	m.converged(t, src, dst, "after the start")
	m.watch.Process.Signal(syscall.SIGUSR1)
	srv.send("flush macs", "C,02:00:00:00:00:03,10.1.1.9")
	m.converged(t, src, dst, "after a resync")
	streamed := n
	for k := range kills {
		md = modelFrom(t, sortedLines(runRTM(t, "", "client", "--socket", src.socket, "-c", "show routes", "-c", "show macs").stdout))
		wrote = srv.stream(md.gen(rng, n))
		time.Sleep(time.Duration(5+rng.IntN(20)) * time.Millisecond)
		srv.signal(syscall.SIGKILL)
		<-srv.done
		<-wrote
		srv = src.streamServer()
		streamed += n
		m.converged(t, src, dst, fmt.Sprintf("after kill %d", k+1))
	}
	// The watcher stopped while the source changes and flushes: it
	// catches up when it goes on.
	m.watch.Process.Signal(syscall.SIGSTOP)
	waitStopped(t, m.watch.Process.Pid)
	md = modelFrom(t, sortedLines(runRTM(t, "", "client", "--socket", src.socket, "-c", "show routes", "-c", "show macs").stdout))
	<-srv.stream(md.gen(rng, n))
	srv.send("flush", "C,10.9.0.0/16,-,eth0")
	time.Sleep(200 * time.Millisecond)
	m.watch.Process.Signal(syscall.SIGCONT)
	streamed += n + 2
	m.converged(t, src, dst, "after the watcher was stopped")
	// Devices that Linux allows and a shell would not take as they are: a
	// quote, a '#', as the watcher prints them, with "  # seq N" after.
	srv.send(`C,10.8.1.0/24,-,a"b`, `C,10.8.2.0/24,-,"x`, "C,10.8.3.0/24,192.0.2.1,eth#1")
	m.converged(t, src, dst, "after devices with a quote and a '#'")
	t.Logf("%d changes streamed into the source, %d kills of the source, a resync, a stopped watcher: the mirror equals the source (0 differences)", streamed, kills)
}

// TestClientAsksTheServer: at a client, sync means at every client, as at
// the server (a stopped client makes it time out, in the server's words,
// with the same exit status), and show stats shows the server's counters;
// show stats local and sync local are the client's own.
func TestClientAsksTheServer(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.server()
	stopped := in.client("stopped")
	stopped.signal(syscall.SIGSTOP)
	defer stopped.signal(syscall.SIGCONT)
	r := runRTM(t, "", "client", "--socket", in.socket, "-c", "C,10.62.0.0/16,-,eth0", "-c", "sync 1s", "-c", "show clients")
	if r.code != 1 || !strings.Contains(r.stderr, "-c:2: sync timed out after 1s: 1 client behind: stopped (pid ") {
		t.Fatalf("sync at a client past a stopped one: exit %d, stderr %q", r.code, r.stderr)
	}
	if e := srv.do("sync 1s").err; !strings.Contains(e, "sync timed out after 1s: 1 client behind: stopped (pid ") {
		t.Fatalf("the same sync at the server: %q", e)
	}
	// A server that does not answer (stopped) holds a client's sync a
	// moment past its wait, not the ten seconds a question may take.
	asker := in.client("asker")
	srv.signal(syscall.SIGSTOP)
	began := time.Now()
	e := asker.do("sync 1s").err
	took := time.Since(began)
	// --wait bounds the wait for a welcome too: it took 5 s, the time a
	// client without --wait gives a server it found.
	began = time.Now()
	late := runRTM(t, "", "client", "--socket", in.socket, "--wait", "1s", "-c", "show routes count")
	lateTook := time.Since(began)
	srv.signal(syscall.SIGCONT)
	if late.code != 1 || !strings.Contains(late.stderr, "no welcome within 1s: it is stopped or overloaded\n(waited --wait 1s for it)") || lateTook > 4*time.Second {
		t.Errorf("a client of a stopped server, --wait 1s: exit %d after %v, stderr %q", late.code, lateTook, late.stderr)
	}
	if !strings.Contains(e, "sync timed out after 1s: no answer from the server (waited 1s more for it)") || took > 8*time.Second {
		t.Fatalf("sync 1s at a client of a stopped server: after %v, %q", took, e)
	}
	r = runRTM(t, "", "client", "--socket", in.socket, "-c", "sync local", "-c", "show stats", "-c", "show stats local")
	if r.code != 0 {
		t.Fatalf("sync local, show stats: exit %d: %s", r.code, r.stderr)
	}
	server, local, _ := strings.Cut(r.stdout, "\nroutes ")
	for _, want := range []string{"changes_from_clients", "clients_connected", "snapshots_sent"} {
		if !strings.Contains(server, want) {
			t.Errorf("show stats at a client lacks the server's %s:\n%s", want, server)
		}
	}
	for _, want := range []string{"applied", "packets_received", "reconnects"} {
		if !strings.Contains(local, want) || strings.Contains(server, want+" ") {
			t.Errorf("show stats local should have the client's %s, show stats not:\n%s\n---\n%s", want, server, local)
		}
	}
	// A client's help says what the server answers; names worn twice are
	// pointed out where clients are listed.
	r = runRTM(t, "", "client", "--socket", in.socket, "-c", "help")
	if !strings.Contains(r.stdout, "At this client: changes, show clients, show stats, show info and sync are the\nserver's to answer") {
		t.Errorf("client help:\n%s", r.stdout)
	}
	in.client("twin")
	in.client("twin")
	if out := srv.must("show clients"); !strings.Contains(out, "# names worn by more than one client: twin (2 clients); their ids tell them apart") {
		t.Errorf("show clients with a name worn twice:\n%s", out)
	}
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(ls[max(0, len(ls)-n):], "\n")
}
