package main

// Signals: SIGINT and SIGTERM end a server and its clients cleanly;
// SIGUSR1 makes a client take a fresh snapshot; SIGUSR2 logs counters.

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"rtm/proto/framed"
	"rtm/repl/rtmtest"
	"rtm/store"

	"golang.org/x/sys/unix"
)

func TestCleanQuitOnSignal(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			in := newInstance(t)
			srv := in.server()
			c := in.client("x")
			srv.must("C,00:1a:2b:3c:4d:5e,10.1.1.7", "sync")
			srv.signal(sig)
			if code := srv.exited(10 * time.Second); code != 0 {
				t.Fatalf("server exit %d after %v: %s", code, sig, srv.errb)
			}
			// The client ends with it: its input was still open, so it
			// says that nothing from its next line on was applied.
			if code := c.exited(10 * time.Second); code != 1 || !strings.Contains(c.errb.String(), "not applied, nor any line after it: the server quit: server "+in.name+" got") {
				t.Fatalf("client exit %d after the server quit, want 1 and its next line not applied: %s", code, c.errb)
			}
			if _, err := os.Stat(in.socket); !os.IsNotExist(err) {
				t.Errorf("socket left after %v: %v", sig, err)
			}
		})
	}
}

// TestSignalAsTheServerStarts: SIGTERM sent the moment a server's socket
// appears, before it serves (its banner, a kernel's routes imported, a
// store repaired), ends it as cleanly as later: status 0, the socket
// removed, the store closed clean. SIGHUP there is a checkpoint, and the
// server serves on. Their default action killed it (143, 129) and left
// both as after a crash, every time.
func TestSignalAsTheServerStarts(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP} {
		for round := range 5 {
			in := newInstance(t)
			cmd := exec.Command(rtmBin, append([]string{"server"}, in.flags()...)...)
			errb, exited := startStarting(t, cmd, in.socket)
			cmd.Process.Signal(sig)
			if sig == syscall.SIGHUP {
				if !rtmtest.WaitFor(10*time.Second, func() bool { return strings.Contains(errb.String(), "checkpoint: store "+in.store+" synced") }) {
					t.Errorf("%v round %d: no checkpoint: %s", sig, round, errb.String())
				}
				select {
				case err := <-exited:
					t.Fatalf("%v round %d: the server ended (%v): %s", sig, round, err, errb.String())
				default:
				}
				cmd.Process.Signal(syscall.SIGTERM)
			}
			var err error
			select {
			case err = <-exited:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("%v round %d: still running 10 s after SIGTERM", sig, round)
			}
			if err != nil {
				t.Fatalf("%v round %d: %v, want status 0: %s", sig, round, err, errb.String())
			}
			if _, err := os.Stat(in.socket); !os.IsNotExist(err) {
				t.Errorf("%v round %d: socket left: %v", sig, round, err)
			}
			r := runRTM(t, "", append([]string{"server", "--exit-at-eof"}, in.flags()...)...)
			if r.code != 0 || strings.Contains(r.stderr, "not closed cleanly") {
				t.Errorf("%v round %d: the next start: exit %d, %q", sig, round, r.code, r.stderr)
			}
		}
	}
}

// TestCtrlCAsTheServerStarts: while the server starts, here as it
// imports 40,000 kernel routes (--from-kernel), Ctrl-C (SIGINT) at a
// terminal quits it cleanly once it has started: there is no command for
// it to interrupt, and the person meant to stop the start. (It killed
// the server, status 130, before signals were held; held, it was taken
// as a Ctrl-C at the prompt, and the server served on.) A first SIGTERM
// there is said, as the start goes on; a second quits at once, as after
// a crash (status 143): a start held up for long can still be ended.
func TestCtrlCAsTheServerStarts(t *testing.T) {
	t.Parallel()
	ns := newNetns(t, "192.0.2.2/24", "2001:db8::2/64")
	routes := make([]string, 40_000) // a start of some 200 ms here
	for i := range routes {
		routes[i] = fmt.Sprintf("route add 10.%d.%d.0/24 via 192.0.2.1", i>>8, i&0xff)
	}
	ip := exec.Command("ip", "-n", ns.name, "-batch", "-")
	ip.Stdin = strings.NewReader(strings.Join(routes, "\n") + "\n")
	if out, err := ip.CombinedOutput(); err != nil {
		t.Fatalf("ip -batch: %v: %s", err, out)
	}
	in := newInstance(t)
	args := append([]string{"netns", "exec", ns.name, rtmBin, "server", "--from-kernel", "--fresh"}, in.flags()...)
	cmd := exec.Command("ip", args...)
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+t.TempDir())
	term := rtmtest.StartTerm(t, cmd)
	waitSocket(t, in.socket)
	term.Cmd.Process.Signal(syscall.SIGINT)
	if code := term.Exit(); code != 0 {
		t.Fatalf("exit %d after SIGINT as it started, want 0: %q", code, term.From(0))
	}
	if _, err := os.Stat(in.socket); !os.IsNotExist(err) {
		t.Errorf("socket left: %v", err)
	}

	cmd = exec.Command("ip", args...)
	errb, exited := startStarting(t, cmd, in.socket)
	cmd.Process.Signal(syscall.SIGTERM)
	if !rtmtest.WaitFor(10*time.Second, func() bool {
		return strings.Contains(errb.String(), "rtm: SIGTERM: quitting once started (SIGTERM again quits at once)")
	}) {
		t.Fatalf("no word of the held SIGTERM: %s", errb.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("still running 10 s after a second SIGTERM: %s", errb.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 143 || !strings.Contains(errb.String(), "rtm: SIGTERM again: quitting at once, as after a crash") {
		t.Errorf("a second SIGTERM as it started: exit %d, want 143 at once: %s", code, errb.String())
	}
}

// startStarting starts the server cmd and returns once its socket file
// is there, as it still starts; with its stderr, and a channel that
// gets the end of its Wait.
func startStarting(t *testing.T, cmd *exec.Cmd, socket string) (*syncBuffer, <-chan error) {
	t.Helper()
	errb := new(syncBuffer)
	cmd.Stderr = errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	waitSocket(t, socket)
	return errb, exited
}

// waitSocket waits, polling every 100 µs, until the socket file at path
// is there: a server then is still starting (it listens before it serves).
func waitSocket(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no socket %s after 20 s", path)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// TestClientSignalAsItStarts: SIGUSR1, SIGUSR2 or SIGHUP to a client that
// has not started yet (here, waiting for its server, --wait) is held and
// taken once it runs: their default action killed it (a watcher sent
// SIGUSR1 just after its snapshot, under load, died of it).
func TestClientSignalAsItStarts(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	cmd := exec.Command(rtmBin, "client", "--socket", in.socket, "--wait", "30s", "-c", "show routes count")
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	time.Sleep(300 * time.Millisecond) // started, waiting for its server
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGHUP} {
		cmd.Process.Signal(sig)
	}
	select {
	case err := <-exited:
		t.Fatalf("the client ended (%v) on a signal as it waited for its server: %s", err, errb.String())
	case <-time.After(300 * time.Millisecond):
	}
	srv := in.server()
	defer srv.signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil || out.String() != "0\n" {
			t.Fatalf("the client: %v, stdout %q, stderr %s", err, out.String(), errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the client did not end 20 s after its server came: %s", errb.String())
	}
}

// TestClientQuitsOnSignal: SIGINT and SIGTERM end a client cleanly, and
// the server sees it leave.
func TestClientQuitsOnSignal(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.streamServer()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		name := "sig-" + strconv.Itoa(int(sig))
		c := in.client(name)
		c.signal(sig)
		if code := c.exited(10 * time.Second); code != 0 {
			t.Fatalf("client exit %d after %v: %s", code, sig, c.errb)
		}
		if !rtmtest.WaitFor(5*time.Second, func() bool {
			return strings.Contains(srv.errb.String(), name+" (pid") && strings.Contains(srv.errb.String(), "disconnected")
		}) {
			t.Fatalf("server did not see %s leave: %s", name, srv.errb)
		}
	}
}

// TestClientOutlivesSIGHUP: a running client ignores SIGHUP, as a server
// does, so that a watcher or a --to-kernel client outlives the terminal
// that started it; it still answers, and SIGTERM still ends it.
func TestClientOutlivesSIGHUP(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.server()
	srv.must("C,10.1.1.0/24,192.168.1.1,eth0")
	c := in.client("hup")
	c.signal(syscall.SIGHUP)
	srv.must("C,10.1.2.0/24,192.168.1.1,eth0")
	if got := c.must("sync local", "show routes count"); got != "2\n" {
		t.Fatalf("the client after SIGHUP: %q; want it running, with both routes", got)
	}
	c.signal(syscall.SIGTERM)
	if code := c.exited(10 * time.Second); code != 0 {
		t.Fatalf("client exit %d after SIGHUP, then SIGTERM: %s", code, c.errb)
	}
}

// TestClientSIGUSR1Resync: SIGUSR1 makes a client drop its copy and take a
// fresh snapshot; the server counts the request and the copy is complete.
func TestClientSIGUSR1Resync(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.server()
	srv.must("C,10.1.1.0/24,192.168.1.1,eth0", "C,00:1a:2b:3c:4d:5e,10.1.1.7")
	c := in.client("usr1")
	c.signal(syscall.SIGUSR1)
	requested := regexp.MustCompile(`resyncs_requested +1\n`)
	if !rtmtest.WaitFor(10*time.Second, func() bool { return requested.MatchString(srv.must("show stats")) }) {
		t.Fatalf("server never saw the resync request: %s", srv.must("show stats"))
	}
	got := sortedLines(c.must("sync local", "show routes", "show macs"))
	assertLines(t, "client after SIGUSR1", got, []string{"00:1a:2b:3c:4d:5e 10.1.1.7", "10.1.1.0/24 via 192.168.1.1 dev eth0"})
	if !strings.Contains(c.errb.String(), "SIGUSR1") {
		t.Errorf("client did not say what it did: %q", c.errb)
	}
}

// TestResyncNeverGoesBack: a watcher resynced by SIGUSR1 just after
// changes prints that nothing changed. The server hands out the last
// snapshot it took, older than those changes, and the changes since
// after it; a watcher gave its diff against that old cut, so it printed
// the flushed routes created again and then the flush (a kernel
// installer would have put them back for a moment). Now the client
// gives its subscribers the tables once it has the changes that were in
// the log when its snapshot was sent.
func TestResyncNeverGoesBack(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.server()
	srv.must("C,10.1.0.0/16,-,eth0", "C,10.2.0.0/16,-,eth0", "C,10.3.0.0/16,-,eth0")
	w := start(t, "client", "--watch", "--socket", in.socket, "--client-name", "w")
	if !rtmtest.WaitFor(10*time.Second, func() bool { return strings.Contains(w.out.String(), "# snapshot: 3 routes") }) {
		t.Fatalf("the watcher printed no snapshot: %s", w.errb)
	}
	// Two changes since the watcher's snapshot: fewer than the tables
	// hold, so the server hands that snapshot out again.
	srv.must("flush", "C,10.9.0.0/16,-,eth0", "sync")
	for _, want := range []string{"flush  # seq 4\n", "C,10.9.0.0/16,-,eth0  # seq 5\n"} {
		if !rtmtest.WaitFor(10*time.Second, func() bool { return strings.Contains(w.out.String(), want) }) {
			t.Fatalf("the watcher never printed %q: %s", want, w.out)
		}
	}
	before := w.out.String()
	w.signal(syscall.SIGUSR1)
	if !rtmtest.WaitFor(10*time.Second, func() bool { return strings.Contains(w.out.String(), "# resync: ") }) {
		t.Fatalf("no resync after SIGUSR1: %s %s", w.out, w.errb)
	}
	srv.must("C,10.4.0.0/16,-,eth0", "sync") // a mark after the resync's lines
	if !rtmtest.WaitFor(10*time.Second, func() bool { return strings.Contains(w.out.String(), "C,10.4.0.0/16") }) {
		t.Fatalf("the watcher never printed the change after its resync: %s", w.out)
	}
	after := strings.TrimPrefix(w.out.String(), before)
	if want := "# resync: 0 added, 0 changed, 0 removed (seq 5)\nC,10.4.0.0/16,-,eth0  # seq 6\n"; after != want {
		t.Errorf("after SIGUSR1 the watcher printed\n%s\nwant\n%s", after, want)
	}
}

// TestSIGTERMEndsEveryProcess: whatever an rtm process is doing, SIGTERM
// ends it within a second (asserted here with room to spare for a loaded
// machine; the times are logged): a server pouring a replay, a server
// whose client is stopped, a client waiting on a sync, a client pouring
// a batch, a client that lost its server and waits to reconnect, a
// watching client.
func TestSIGTERMEndsEveryProcess(t *testing.T) {
	// Not parallel: it bounds the time each process takes to end, which
	// other tests' load would stretch.
	var times []string
	timeExit := func(name string, p *proc) {
		t.Helper()
		t0 := time.Now()
		p.signal(syscall.SIGTERM)
		p.exited(3 * time.Second)
		times = append(times, fmt.Sprintf("%s %v", name, time.Since(t0).Round(time.Millisecond)))
	}
	lines := macCreates(300_000)

	in := newInstance(t)
	srv := in.streamServer("--capacity", "400000")
	srv.stream(lines)
	time.Sleep(20 * time.Millisecond)
	timeExit("server mid-replay", srv)

	srv = in.streamServer("--fresh")
	stopped := in.client("stopped")
	stopped.signal(syscall.SIGSTOP)
	waiter := in.client("waiter")
	waiter.send("C,10.1.0.0/16,-,eth0", "sync 30s")
	time.Sleep(50 * time.Millisecond)
	timeExit("client waiting on a sync", waiter)
	batch := start(t, "client", "--socket", in.socket, "--client-name", "batch")
	batch.stream(lines)
	time.Sleep(20 * time.Millisecond)
	timeExit("client pouring a batch", batch)
	watcher := start(t, "client", "--socket", in.socket, "--client-name", "watcher", "--watch")
	time.Sleep(50 * time.Millisecond)
	timeExit("watching client", watcher)
	timeExit("server with a stopped client", srv)
	stopped.signal(syscall.SIGKILL)

	srv = in.streamServer("--fresh")
	lost := in.client("lost")
	srv.signal(syscall.SIGKILL)
	<-srv.done
	time.Sleep(50 * time.Millisecond)
	timeExit("client waiting to reconnect", lost)
	t.Logf("time from SIGTERM to exit: %s", strings.Join(times, ", "))
}

// TestSIGUSR2Counters: SIGUSR2 makes a server, and a client whose input
// takes no command (on </dev/null, as a --to-kernel client runs in the
// background), log their counters on stderr, and go on.
func TestSIGUSR2Counters(t *testing.T) {
	in := newInstance(t)
	srv := in.server()
	srv.must("C,10.1.1.0/24,192.168.1.1,eth0", "C,00:1a:2b:3c:4d:5e,10.1.1.7")
	cmd := exec.Command(rtmBin, "client", "--watch", "--socket", in.socket, "--client-name", "bg")
	errb := framed.NewBuffer(64 << 10)
	cmd.Stderr = errb
	if err := cmd.Start(); err != nil { // stdin: /dev/null
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if !rtmtest.WaitFor(10*time.Second, func() bool { return strings.Contains(srv.errb.String(), "client bg (pid") }) {
		t.Fatalf("the client never connected: %s", srv.errb)
	}
	srv.must("sync")
	// Connected, it may not have taken SIGUSR2 yet (Go's runtime ignores
	// it until then), and it is sent again.
	if !rtmtest.WaitFor(10*time.Second, func() bool {
		cmd.Process.Signal(syscall.SIGUSR2)
		time.Sleep(20 * time.Millisecond)
		return strings.Contains(errb.String(), "SIGUSR2: counters: routes=1 macs=1 applied=2 ")
	}) {
		t.Fatalf("the client's stderr after SIGUSR2: %q", errb.String())
	}
	srv.signal(syscall.SIGUSR2)
	if !rtmtest.WaitFor(10*time.Second, func() bool {
		return strings.Contains(srv.errb.String(), "SIGUSR2: counters: routes=1 macs=1 ") && strings.Contains(srv.errb.String(), " clients=1 ")
	}) {
		t.Fatalf("the server's stderr after SIGUSR2: %q", srv.errb.String())
	}
	if got := srv.must("show clients count"); got != "1\n" {
		t.Fatalf("after SIGUSR2, show clients count: %q", got)
	}
}

// TestSignalCutsAServerReplay: SIGTERM to a server replaying a batch
// from its stdin, then SIGINT to one replaying it as its --script. The
// server says which line it did not apply, nor any after it, and exits
// 1; its store holds exactly the lines before that one, the script's
// too. (It said nothing and exited 0, and a script that loaded a setup
// so could not tell it got part of it.) The batch is a file, which the
// replay never waits for: a signal always finds lines still to run.
func TestSignalCutsAServerReplay(t *testing.T) {
	t.Parallel()
	const total = 1_000_000
	batch := filepath.Join(t.TempDir(), "batch.rtm")
	if err := os.WriteFile(batch, []byte(macCreatesText(total)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sig            syscall.Signal
		script, framed bool
	}{{syscall.SIGTERM, false, false}, {syscall.SIGINT, true, false}, {syscall.SIGTERM, false, true}} {
		in := newInstance(t)
		args := append([]string{"server", "--exit-at-eof", "--capacity", strconv.Itoa(total)}, in.flags()...)
		name := "<stdin>"
		switch {
		case tc.script:
			args, name = append(args, "--script", batch), batch
		case tc.framed:
			args, name = append(args, "--framed"), "<framed>"
		}
		cmd := exec.Command(rtmBin, args...)
		if !tc.script {
			f, err := os.Open(batch)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			cmd.Stdin = f
		}
		var errb syncBuffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The store's header says how far the replay is, at once: a
		// client asking would take a snapshot of what is there, longer
		// as the replay goes on, and on a loaded machine the replay could
		// end first.
		if !rtmtest.WaitFor(20*time.Second, func() bool {
			st, err := store.Inspect(in.store)
			return err == nil && st.MACs >= 1000
		}) {
			t.Fatalf("the server never applied its first lines: %s", errb.String())
		}
		cmd.Process.Signal(tc.sig)
		waitCmd(t, cmd, 20*time.Second, errb.String)
		cutRE := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `:(\d+): not applied, nor any line after it: interrupted by ` + unix.SignalName(tc.sig) + `$`)
		m := cutRE.FindStringSubmatch(errb.String())
		if code := cmd.ProcessState.ExitCode(); code != 1 || m == nil || strings.Contains(errb.String(), "removed store") {
			t.Fatalf("%v mid-replay: exit %d; want 1, stderr naming the line not applied, and the store kept: %s", tc.sig, code, errb.String())
		}
		line, _ := strconv.Atoi(m[1])
		srv := in.server()
		if got := strings.TrimSpace(srv.must("show macs count")); got != strconv.Itoa(line-1) {
			t.Errorf("%v: the server named line %d as the first not applied; its store holds %s MACs, want %d", tc.sig, line, got, line-1)
		}
		srv.signal(syscall.SIGTERM)
		srv.exited(10 * time.Second)
	}
	// A server that read its piped stdin to the end serves on: a signal
	// then cuts nothing, and it ends quietly, with status 0.
	in := newInstance(t)
	cmd := exec.Command(rtmBin, append([]string{"server"}, in.flags()...)...)
	cmd.Stdin = strings.NewReader("C,10.1.0.0/16,192.168.1.1,eth0\n")
	var errb syncBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !rtmtest.WaitFor(20*time.Second, func() bool {
		r := runRTM(t, "", "client", "--socket", in.socket, "-c", "show routes count")
		return strings.TrimSpace(r.stdout) == "1"
	}) {
		t.Fatalf("the server never applied its line: %s", errb.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	waitCmd(t, cmd, 20*time.Second, errb.String)
	if code := cmd.ProcessState.ExitCode(); code != 0 || strings.Contains(errb.String(), "<stdin>") {
		t.Fatalf("SIGTERM to a server serving on after its stdin's end: exit %d; want 0, and no word of its input: %s", code, errb.String())
	}
}

// TestSignalAtAPromptEndsQuietly: SIGTERM to a server or a client at its
// prompt, and SIGINT to a server whose stdin is a terminal and stdout a
// pipe (rtm server | tee log: lines a person types), end it with status
// 0 and no word of lines not run: a person's input is never cut. (For a
// while they waited 2 s and said their input was not read to its end.)
func TestSignalAtAPromptEndsQuietly(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := startTerm(t, append([]string{"server"}, in.flags()...)...)
	srv.Expect("rtm(" + in.name + ")> ")
	cl := startTerm(t, "client", "--socket", in.socket)
	cl.Expect("rtm-client(")
	for _, p := range []*rtmtest.Term{cl, srv} {
		p.Cmd.Process.Signal(syscall.SIGTERM)
		if code := p.Exit(); code != 0 || strings.Contains(p.Since(), "not read") {
			t.Errorf("%s at its prompt, SIGTERM: exit %d; want 0, and no word of its input; the terminal shows:\n%q", p.Cmd.Args[1], code, p.Since())
		}
	}

	in2 := newInstance(t)
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	cmd := exec.Command(rtmBin, append([]string{"server"}, in2.flags()...)...)
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+t.TempDir())
	cmd.Stdout = outW
	typed := rtmtest.StartTerm(t, cmd)
	outW.Close()
	go io.Copy(io.Discard, outR)
	typed.Expect("(created): 0 routes, 0 MACs")
	typed.Line("C,10.1.0.0/16,192.168.1.1,eth0")
	if !rtmtest.WaitFor(rtmtest.Wait, func() bool {
		r := runRTM(t, "", "client", "--socket", in2.socket, "-c", "show routes count")
		return strings.TrimSpace(r.stdout) == "1"
	}) {
		t.Fatalf("the typed line never ran; the terminal shows:\n%q", typed.Since())
	}
	typed.Cmd.Process.Signal(syscall.SIGINT)
	if code := typed.Exit(); code != 0 || strings.Contains(typed.Since(), "not read") {
		t.Errorf("rtm server | cat at a terminal, SIGINT: exit %d; want 0, and no word of its input; the terminal shows:\n%q", code, typed.Since())
	}

	// rtm client | cat at a terminal, idle between typed lines.
	in3 := newInstance(t)
	in3.server()
	outR, outW, err = os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	cmd = exec.Command(rtmBin, "client", "--socket", in3.socket)
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+t.TempDir())
	cmd.Stdout = outW
	typedClient := rtmtest.StartTerm(t, cmd)
	outW.Close()
	var out syncBuffer
	go io.Copy(&out, outR)
	typedClient.Line("show routes count")
	if !rtmtest.WaitFor(rtmtest.Wait, func() bool { return out.String() == "0\n" }) {
		t.Fatalf("the typed line was not answered: %q; the terminal shows:\n%q", out.String(), typedClient.Since())
	}
	typedClient.Cmd.Process.Signal(syscall.SIGTERM)
	if code := typedClient.Exit(); code != 0 || strings.Contains(typedClient.Since(), "not read") {
		t.Errorf("rtm client | cat at a terminal, SIGTERM: exit %d; want 0, and no word of its input; the terminal shows:\n%q", code, typedClient.Since())
	}
}

// TestSignalCutsATypedSource: SIGTERM to a server at its prompt while a
// `source` typed there waits (a sync behind a stopped client) names the
// line it cut and the signal, as a batch does, and no line after it
// runs; the store keeps the lines before. (It said only "sync:
// interrupted", as Ctrl-C does, which leaves the prompt.)
func TestSignalCutsATypedSource(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := startTerm(t, append([]string{"server"}, in.flags()...)...)
	srv.Expect("rtm(" + in.name + ")> ")
	stopped := in.client("stopped")
	stopped.signal(syscall.SIGSTOP)
	defer stopped.signal(syscall.SIGCONT)
	lines := macCreates(2000)
	script := filepath.Join(t.TempDir(), "big.rtm")
	text := strings.Join(lines[:1000], "\n") + "\nsync 60s\n" + strings.Join(lines[1000:], "\n") + "\n"
	if err := os.WriteFile(script, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	srv.Line("source " + script)
	srv.Expect("sync: waiting")
	srv.Cmd.Process.Signal(syscall.SIGTERM)
	if code, shows := srv.Exit(), srv.Since(); code != 0 || !strings.Contains(shows, script+":1001: interrupted by SIGTERM") {
		t.Fatalf("SIGTERM to a server at its prompt, a typed source waiting: exit %d; want 0, naming the line and the signal; the terminal shows:\n%q", code, shows)
	}
	stopped.signal(syscall.SIGCONT)
	if got := in.server().must("show macs count"); got != "1000\n" {
		t.Fatalf("after the cut source the store holds %q MACs; want the 1000 before the cut", got)
	}
}

// TestSignalDuringALongAnswerAtThePrompt: SIGTERM to a client at its
// prompt while `show macs count` counts a million MACs (longer than an
// ending waits for an answer) ends it with status 0, not with a crash:
// the store's mapping, which the count still reads, stays mapped until
// the process exits. (It was unmapped under the count: SIGSEGV, a Go
// stack dump, status 2.)
func TestSignalDuringALongAnswerAtThePrompt(t *testing.T) {
	t.Parallel()
	const macs = 1_000_000
	in := newInstance(t)
	in.server("--capacity", strconv.Itoa(macs*5/4))
	if r := runRTM(t, macCreatesText(macs), "client", "--socket", in.socket); r.code != 0 {
		t.Fatalf("fill: %s", r.stderr)
	}
	for _, wait := range []time.Duration{450 * time.Millisecond, 600 * time.Millisecond} {
		cl := startTerm(t, "client", "--socket", in.socket)
		cl.Expect("rtm-client(")
		cl.Line("show macs count")
		cl.Expect("show macs count\r\n")
		time.Sleep(wait)
		cl.Cmd.Process.Signal(syscall.SIGTERM)
		if code := cl.Exit(); code != 0 || strings.Contains(cl.Since(), "fatal error") {
			t.Fatalf("SIGTERM %v into a count of %d MACs at the prompt: exit %d; want 0; the terminal shows:\n%.2000q", wait, macs, code, cl.Since())
		}
	}
}
