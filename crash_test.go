package main

// A server killed with SIGKILL and restarted on the same store: nothing
// it acknowledged is lost, nothing torn or invented appears, and clients
// live through it.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"rtm/proto"
	"rtm/proto/framed"
	"rtm/repl/rtmtest"
	"rtm/store"
	"rtm/store/entry"
)

// TestServerCrashRestart kills the server with SIGKILL while it answers a
// stream of changes, and restarts it on the same store: the store
// validates, and its tables are exactly what the server acknowledged
// before the kill (every change answered, the ones before a sync also
// applied at a client), plus at most the one change in flight. The client
// reconnects and converges to them.
func TestServerCrashRestart(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.server()
	watcher := in.client("w")
	rng := rand.New(rand.NewPCG(3, 9))
	m := newModel()
	srv.must(m.gen(rng, 2000)...)
	srv.must("sync")
	assertLines(t, "client before the crash", sortedLines(watcher.must("show routes", "show macs")), m.lines())
	synced := m.clone()

	// Still answering when it dies: each change is sent once the one
	// before it was answered, and counted when its own answer arrives.
	lines := m.gen(rng, 20000)
	var answered atomic.Int64
	streamed := make(chan error, 1)
	go func() {
		for _, l := range lines {
			if _, err := srv.fp.Do(context.Background(), l, time.Minute); err != nil {
				streamed <- err
				return
			}
			answered.Add(1)
		}
		streamed <- nil
	}()
	killAt := int64(1000 + rng.IntN(4000))
	if !rtmtest.WaitFor(time.Minute, func() bool { return answered.Load() >= killAt }) {
		t.Fatalf("the server answered %d changes in a minute: %s", answered.Load(), srv.errb)
	}
	srv.signal(syscall.SIGKILL)
	<-srv.done
	if err := <-streamed; !errors.Is(err, framed.ErrExited) {
		t.Fatalf("the stream ended with %v, not with the server's death", err)
	}
	n := int(answered.Load())

	srv2 := in.server()
	after := sortedLines(in.dump())
	want := synced.clone()
	for _, l := range lines[:n] {
		want.apply(l)
	}
	if !slices.Equal(after, want.lines()) {
		inFlight := want.clone()
		inFlight.apply(lines[n])
		if !slices.Equal(after, inFlight.lines()) {
			assertLines(t, fmt.Sprintf("restarted server (killed after 2000 changes synced and %d more answered)", n), after, want.lines())
		}
	}
	// The old client reconnects by itself (the server lists it, and it
	// reports the loss and the reconnection) and resyncs to the same state.
	in.waitClients(srv2, 1)
	awaitReconnects(t, watcher, 1)
	got := sortedLines(watcher.must("sync local", "show routes", "show macs"))
	assertLines(t, "reconnected client", got, after)
	if !strings.Contains(srv2.errb.String(), "not closed cleanly") {
		t.Errorf("restarted server did not report the crash recovery: %s", srv2.errb)
	}
	t.Logf("killed after %d changes answered; the restarted server holds %d entries", n, len(after))
}

func TestStaleSocketReplaced(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.server()
	srv.must("C,10.1.1.0/24,192.168.1.1,eth0")
	srv.signal(syscall.SIGKILL)
	<-srv.done
	if _, err := os.Stat(in.socket); err != nil {
		t.Fatalf("a killed server should leave its socket file: %v", err)
	}
	in.server()
	if got := in.dump(); !strings.Contains(got, "10.1.1.0/24 via 192.168.1.1 dev eth0") {
		t.Fatalf("restarted server lost the route: %q", got)
	}
}

// TestKillsDuringReplay SIGKILLs the server at a random moment of a large
// replay, 20 times (200 with RTM_LONG=1), each round with its own seed.
// After each kill the restarted server's consistency check passes and its
// tables equal those of some prefix of the replay: the kill never left a
// torn or invented entry. Two clients live through all the kills and end
// equal to the last server.
//
// About one kill in forty lands inside a store write. The default run
// takes the whole path (kill, recovery, check, clients' return) twenty
// times; the hunt for the rare moment is RTM_LONG's: a store that skips
// its repair fails 3 default runs in 8 and nearly every long one, and
// store's TestCrashAtFailpoints, which kills at each failpoint, every
// time.
func TestKillsDuringReplay(t *testing.T) {
	t.Parallel()
	kills, n := rtmtest.Size(20, 200), 60_000
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
		wrote := srv.stream(lines)
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
		assertLines(t, "client after the kills", sortedLines(w.must("sync local", "show routes", "show macs")), want)
		t.Logf("client %s reconnected %d times", names[i], countLines(w.out.String()+w.errb.String(), "reconnected to"))
	}
	t.Logf("%d kills, %d while the replay was still being written; lines applied at the kill of %d: %s",
		kills, midReplay, n, stats(positions))
}

func stats(sorted []int) string {
	if len(sorted) == 0 {
		return "none"
	}
	slices.Sort(sorted)
	return fmt.Sprintf("median %d, min %d, max %d", sorted[len(sorted)/2], sorted[0], sorted[len(sorted)-1])
}

// TestClientsSurviveRestarts kills and restarts the server 20 times under
// a stream of changes with three clients attached. During each outage the
// clients still answer lookups from their mapping, with the value the
// restarted server then holds; after each restart every client
// reconnects; at the end every client equals the server.
func TestClientsSurviveRestarts(t *testing.T) {
	t.Parallel()
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
		wrote := srv.stream(lines)
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
	if !rtmtest.WaitFor(10*time.Second, func() bool {
		want = sortedLines(in.dump())
		return slices.Contains(want, sentinel+" 10.255.254.1")
	}) {
		t.Fatal("the server never applied the last changes")
	}
	for i, c := range clients {
		got := sortedLines(c.must("sync local", "show routes", "show macs"))
		if n := countLines(c.out.String()+c.errb.String(), "reconnected to"); n != restarts {
			t.Errorf("client %d reconnected %d times, want %d", i, n, restarts)
		}
		assertLines(t, fmt.Sprintf("client %d after %d restarts", i, restarts), got, want)
	}
	t.Logf("%d restarts; 3 clients answered lookups during each outage (all three within %s µs)", restarts, stats(outageAnswers))
}

// TestClientRemapsNewStore: the server dies and its store is removed, so
// the next server creates a new one (a new generation). The client must
// map the new segment: lookups answer from it, not from the old mapping.
func TestClientRemapsNewStore(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.server()
	srv.must("C,00:1a:2b:3c:4d:5e,10.1.1.7")
	c := in.client("remap")
	if got := c.must("lookup 00:1a:2b:3c:4d:5e"); !strings.Contains(got, "10.1.1.7") {
		t.Fatalf("lookup before: %q", got)
	}
	srv.signal(syscall.SIGKILL)
	<-srv.done
	// During the outage the client answers from its last mapping.
	if got := c.must("lookup 00:1a:2b:3c:4d:5e"); !strings.Contains(got, "10.1.1.7") {
		t.Fatalf("lookup during the outage: %q", got)
	}
	if err := os.Remove(in.store); err != nil {
		t.Fatal(err)
	}
	srv2 := in.server()
	srv2.must("C,00:1a:2b:3c:4d:5e,10.9.9.9")
	in.waitClients(srv2, 1)
	awaitReconnects(t, c, 1)
	if got := c.must("sync local", "lookup 00:1a:2b:3c:4d:5e"); !strings.Contains(got, "10.9.9.9") {
		t.Fatalf("client still reads the old segment: %q (stderr %s)", got, c.errb)
	}
	if !strings.Contains(c.errb.String(), "remapped") {
		t.Errorf("client did not report the new generation: %s", c.errb)
	}
}

// TestTruncatedStoreRefused: a server finding its store truncated exits
// with a message naming the file and the cause, and leaves the file be.
func TestTruncatedStoreRefused(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.server()
	srv.send("C,10.1.1.0/24,192.168.1.1,eth0", "quit")
	if code := srv.wait(10 * time.Second); code != 0 {
		t.Fatalf("server exit %d: %s", code, srv.errb)
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

// TestClientBatchKills ends the server at random moments of a batch
// piped through `rtm client` (50 times in batches of 20,000 lines; 200 of
// 200,000 with RTM_LONG=1): by SIGKILL, one time in four by SIGTERM, a
// clean quit, after which a client once exited 0 with the rest of its
// batch never read; and one time in four the client is sent SIGINT or
// SIGTERM instead, after which it exited 0 with part of the batch
// applied. Whatever the moment, the client either applied the
// whole batch (exit 0), could not reach the server (nothing applied), or
// names one range of lines whose fate it does not know, from the first
// unacknowledged line to the last line sent, and says that none after it
// was applied: every line before the range is in the restarted server's
// tables, and none after it. A program that resumes from the first line
// of the range loses nothing, with --keep-going too. After a clean quit
// there is no such range: the client names the first line not applied.
func TestClientBatchKills(t *testing.T) {
	t.Parallel()
	kills, n := rtmtest.Size(50, 200), rtmtest.Size(20_000, 200_000)
	file := filepath.Join(t.TempDir(), "batch.rtm")
	if err := os.WriteFile(file, []byte(macCreatesText(n)), 0o644); err != nil {
		t.Fatal(err)
	}
	in := newInstance(t)
	srv := in.streamServer("--capacity", strconv.Itoa(n+n/4))
	// present reads which lines the server holds, then empties it.
	present := func() []bool {
		r := runRTM(t, "show macs\nflush\n", "client", "--socket", in.socket, "--client-name", "check")
		if r.code != 0 {
			t.Fatalf("check client: exit %d: %s", r.code, r.stderr)
		}
		have := make([]bool, n)
		for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if l == "" {
				continue
			}
			m, err := entry.ParseMAC(strings.Fields(l)[0])
			if err != nil {
				t.Fatalf("show macs line %q: %v", l, err)
			}
			have[m.Uint64()&0xffffffff] = true
		}
		return have
	}
	notSentRE := regexp.MustCompile(`(?m)^<stdin>:(\d+): not applied, nor any line after it: `)
	rangeRE := regexp.MustCompile(`(?m)^<stdin>:(\d+): (?:lines (\d+) to (\d+)|line (\d+)) may or may not have been applied, and none after (?:them|it) was: `)
	rng := rand.New(rand.NewPCG(31, 41))
	var whole time.Duration
	var unknown []int
	outcomes := map[string]int{}
	for r := 0; r <= kills; r++ {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		args := []string{"client", "--socket", in.socket, "--client-name", "batch"}
		if r%8 == 1 {
			// --keep-going goes on past lines that fail on their own,
			// not past the server's loss: the same one range, and the
			// same lines in. (It named one more range, which it called
			// the last, for each batch it then failed to send.)
			args = append(args, "--keep-going")
		}
		cmd := exec.Command(rtmBin, args...)
		cmd.Stdin = f
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		began := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if r == 0 {
			// Round 0 measures a whole batch, to kill within it after.
			if err := cmd.Wait(); err != nil {
				t.Fatalf("whole batch: %v: %s", err, stderr.String())
			}
			whole = time.Since(began)
			f.Close()
			if have := present(); slices.Contains(have, false) {
				t.Fatalf("a whole batch left lines out")
			}
			continue
		}
		time.Sleep(time.Duration(rng.Int64N(int64(whole) + 1)))
		switch r % 4 {
		case 0, 1:
			srv.signal(syscall.SIGKILL)
		case 2:
			srv.signal(syscall.SIGTERM)
		case 3:
			// The client is told to stop instead: it must say as much of
			// what it did not run.
			cmd.Process.Signal([]os.Signal{syscall.SIGINT, syscall.SIGTERM}[r/4%2])
		}
		if r%4 != 3 {
			<-srv.done
		}
		waitCmd(t, cmd, 30*time.Second, stderr.String)
		f.Close()
		if r%4 != 3 {
			srv = in.streamServer()
		}
		have := present()
		msg := strings.TrimSpace(stderr.String())
		if bye, line := strings.Index(msg, "; exiting"), strings.Index(msg, "<stdin>:"); r%4 == 2 && bye >= 0 && line >= 0 && line < bye {
			// The goodbye says why; the line error after it is the last
			// word, which a script reads with tail -1.
			t.Errorf("round %d: the line error came before the server's goodbye: %q", r, msg)
		}
		if k := len(notSentRE.FindAllString(msg, -1)) + len(rangeRE.FindAllString(msg, -1)); k > 1 {
			// A program resumes from the line named: a second, later
			// one would have it skip the lines between.
			t.Errorf("round %d: %d lines name where the batch stopped, where one names the first line not applied: %q", r, k, msg)
		}
		if strings.Contains(msg, "context ") {
			t.Errorf("round %d: a Go context's error instead of words: %s", r, msg)
		}
		first, last := 1, 0 // the lines named; none by default
		switch m := rangeRE.FindStringSubmatch(msg); {
		case cmd.ProcessState.ExitCode() == 0:
			outcomes["whole batch"]++
			first, last = n+1, n
		case m != nil:
			outcomes["range named"]++
			if m[4] != "" { // one line
				m[2], m[3] = m[4], m[4]
			}
			first, _ = strconv.Atoi(m[2])
			last, _ = strconv.Atoi(m[3])
			if m[1] != m[2] || first < 1 || last < first || last > n {
				t.Fatalf("round %d: a range that makes no sense: %s", r, msg)
			}
			if r%4 == 2 && strings.Contains(msg, "; exiting") {
				// A server that quits cleanly answers every request it
				// applied before its goodbye, and applies none after: a
				// client that got the goodbye knows the fate of every
				// line. (One the server could not flush to within its
				// shutdown timeout, on a loaded machine, gets none.)
				t.Fatalf("round %d: the server quit cleanly, and its goodbye came, yet the client named lines of unknown fate: %q", r, msg)
			}
			unknown = append(unknown, last-first+1)
		case notSentRE.MatchString(msg):
			outcomes["the rest not sent"]++
			first, _ = strconv.Atoi(notSentRE.FindStringSubmatch(msg)[1])
			last = first - 1
		case strings.HasPrefix(msg, "rtm client: ") && !strings.Contains(msg, "<stdin>"):
			outcomes["server gone before the client had its snapshot"]++
		case r%4 == 3 && strings.HasPrefix(msg, "every change sent was applied; interrupted by SIG"):
			// Told to stop after the last reply, as it waited for its
			// own copy of the tables: every line is in.
			outcomes["all applied, stopped as the client caught up"]++
			first, last = n+1, n
		case r%4 == 3 && cmd.ProcessState.ExitCode() == -1 && msg == "":
			// Ended by the signal itself, as any program is before it
			// takes signals: it had run no line yet.
			outcomes["client ended by the signal before its first line"]++
		default:
			t.Fatalf("round %d: exit %d without a range of lines: %s", r, cmd.ProcessState.ExitCode(), msg)
		}
		for i, ok := range have {
			line := i + 1
			switch {
			case line < first && !ok:
				t.Fatalf("round %d: line %d, before the range %d to %d, was not applied: %s", r, line, first, last, msg)
			case line > last && ok:
				t.Fatalf("round %d: line %d, after the range %d to %d, was applied: %s", r, line, first, last, msg)
			}
		}
	}
	srv.signal(syscall.SIGKILL)
	t.Logf("%d kills in batches of %d lines (a whole batch took %v): %v; lines of unknown fate: %s; lines lost outside the range: 0",
		kills, n, whole.Round(time.Millisecond), outcomes, stats(unknown))
}

// TestFramedClientKills SIGKILLs the server at random moments of a batch
// fed to a --framed client (5 kills of 100,000 lines; 20 of 200,000 with
// RTM_LONG=1), and restarts it at once. The client answers every line,
// in order, without a stall: the lines whose fate it cannot know all at
// once, with one range, and after the reconnect it goes on with the next
// line. Every line answered ok is in the server's tables; every line
// after the range that failed was not applied.
func TestFramedClientKills(t *testing.T) {
	t.Parallel()
	kills, n := rtmtest.Size(5, 20), rtmtest.Size(100_000, 200_000)
	script := macCreatesText(n)
	in := newInstance(t)
	srv := in.streamServer("--capacity", strconv.Itoa(n+n/4))
	rng := rand.New(rand.NewPCG(5, 9))
	var took, outcomes []int
	for r := range kills {
		cmd := exec.Command(rtmBin, "client", "--framed", "--wait", "20s", "--socket", in.socket, "--client-name", "framed")
		cmd.Stdin = strings.NewReader(script)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		began := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rng.IntN(30)) * time.Millisecond)
		srv.signal(syscall.SIGKILL)
		<-srv.done
		srv = in.streamServer()
		waitCmd(t, cmd, 30*time.Second, func() string {
			return fmt.Sprintf("round %d: the framed client stalled: %d answers", r, len(framed.Answers(stdout.String())))
		})
		took = append(took, int(time.Since(began).Milliseconds()))
		answers := framed.Answers(stdout.String())
		if len(answers) != n {
			t.Fatalf("round %d: %d answers to %d lines: %s", r, len(answers), n, stderr.String())
		}
		check := runRTM(t, "show macs\nflush\n", "client", "--socket", in.socket, "--client-name", "check")
		have := map[string]bool{}
		for _, l := range strings.Split(check.stdout, "\n") {
			if f := strings.Fields(l); len(f) == 2 {
				have[f[0]] = true
			}
		}
		ranged := 0
		for i, a := range answers {
			m := macN(i).String()
			switch {
			case a.Failed && strings.Contains(a.Msg, "none after"):
				// The stream goes on after a reconnect: later lines may
				// well be applied.
				t.Fatalf("round %d: line %d's answer says no later line was applied: %s", r, i+1, a.Msg)
			case !a.Failed && !have[m]:
				t.Fatalf("round %d: line %d was answered ok and is not in the tables", r, i+1)
			case a.Failed && strings.Contains(a.Msg, "may or may not have been applied"):
				ranged++
			case a.Failed && have[m]:
				t.Fatalf("round %d: line %d failed (%s) and is in the tables", r, i+1, a.Msg)
			}
		}
		outcomes = append(outcomes, ranged)
	}
	srv.signal(syscall.SIGKILL)
	slices.Sort(took)
	t.Logf("%d kills of a %d-line framed batch: every line answered; lines of unknown fate per kill %v; run time median %d ms, max %d ms", kills, n, outcomes, took[len(took)/2], took[len(took)-1])
}

// TestClientLosesServerBeforeSnapshot: a server that goes away while a
// piped client waits for its first snapshot ends that client at once
// (no --wait) or after --wait, with the reason; it never waits forever.
func TestClientLosesServerBeforeSnapshot(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	in.server().wait(10 * time.Second) // leaves a store a welcome can name
	st, err := store.Inspect(in.store)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: in.socket, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// A server that welcomes, begins a snapshot and dies.
	go func() {
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			buf := make([]byte, 1024)
			c.Read(buf) // the hello
			welcome := binary.LittleEndian.AppendUint64(nil, st.Generation)
			var hdr [proto.HeaderSize]byte
			proto.PutHeader(hdr[:], proto.Header{Kind: proto.KindWelcome})
			c.Write(append(hdr[:], append(welcome, in.store...)...))
			proto.PutHeader(hdr[:], proto.Header{Kind: proto.KindSnapshotBegin})
			c.Write(append(hdr[:], make([]byte, 16)...))
			c.Close()
		}
	}()
	for _, wait := range []string{"0s", "300ms"} {
		t0 := time.Now()
		r := runCmd(t, exec.Command(rtmBin, "client", "--socket", in.socket, "--wait", wait), "show routes\n", 20*time.Second)
		if r.code != 1 || !strings.Contains(r.stderr, "before its first snapshot") {
			t.Errorf("--wait %s: exit %d after %v, stderr %q", wait, r.code, time.Since(t0), r.stderr)
		}
	}
}
