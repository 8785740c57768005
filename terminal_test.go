package main

// rtm at a terminal, as a person uses it: the real binary under a
// pseudo-terminal, a server and a client each at their prompt.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"rtm/repl/rtmtest"
)

// startTerm starts rtm on a terminal of its own, with its own history.
func startTerm(t *testing.T, args ...string) *rtmtest.Term {
	t.Helper()
	cmd := exec.Command(rtmBin, args...)
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+t.TempDir())
	return rtmtest.StartTerm(t, cmd)
}

// TestTerminalSession: a server and a client each at a terminal. The
// server's banner invites help; changes typed at either prompt reach
// both; a client connecting is announced at the server's prompt without
// garbling it; an error is printed and the prompt returns; Ctrl-D quits
// the client (the server goes on), and then the server (status 0).
func TestTerminalSession(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := startTerm(t, append([]string{"server"}, in.flags()...)...)
	srv.Expect("(created): 0 routes, 0 MACs. Type help.")
	srv.Expect("rtm(" + in.name + ")> ")
	srv.Run("C,10.1.1.0/24,192.168.1.1,eth0", "rtm("+in.name+")> ")
	srv.Line("help dump")
	srv.Expect("dump prints both tables as create lines")
	srv.Expect("rtm(" + in.name + ")> ")

	cl := startTerm(t, "client", "--socket", in.socket, "--client-name", "person")
	// Given only a socket, the client names the instance by it.
	cl.Expect("rtm-client(" + in.socket + ")> ")
	srv.Expect(") connected")
	cl.Run("C,10.2.0.0/16,-,eth1", "rtm-client("+in.socket+")> ")
	cl.Line("show routes")
	cl.Expect("10.1.1.0/24 via 192.168.1.1 dev eth0")
	cl.Expect("10.2.0.0/16 dev eth1")
	cl.Line("D,10.9.0.0/16")
	cl.Expect("error: delete route 10.9.0.0/16: not found")
	cl.Expect("rtm-client(" + in.socket + ")> ")

	// Tab completes from the grammar: a table, then its words.
	srv.Send("show rou\t")
	srv.Expect("show routes ")
	srv.Send("cou\t")
	srv.Expect("show routes count ")
	srv.Send("\r")
	srv.Expect("\n2\r\n")
	srv.Line("show clients")
	srv.Expect("person id ")
	srv.Expect(" changes 1 writes yes ")

	cl.Send("\x04") // Ctrl-D
	if code := cl.Exit(); code != 0 {
		t.Fatalf("client exit %d after Ctrl-D", code)
	}
	srv.Expect(") disconnected")
	srv.Line("show clients count")
	srv.Expect("\n0\r\n")
	srv.Send("\x04")
	if code := srv.Exit(); code != 0 {
		t.Fatalf("server exit %d after Ctrl-D", code)
	}
}

// TestCtrlDWhileACommandRuns: Ctrl-D typed while a command runs never
// hangs rtm: the command finishes or is cancelled, then rtm quits
// cleanly. At a server replaying a large file; at a server waiting on a
// sync that a stopped client holds up; at a client whose change waits
// for a server that is down.
func TestCtrlDWhileACommandRuns(t *testing.T) {
	t.Parallel()
	big := filepath.Join(t.TempDir(), "big.rtm")
	if err := os.WriteFile(big, []byte(macCreatesText(400_000)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("source", func(t *testing.T) {
		in := newInstance(t)
		srv := startTerm(t, append([]string{"server", "--capacity", "500000"}, in.flags()...)...)
		srv.Expect("rtm(" + in.name + ")> ")
		cl := in.client("watcher") // announced at the prompt while the replay runs
		srv.Line("source " + big)
		time.Sleep(100 * time.Millisecond)
		srv.Send("\x04")
		if code := srv.Exit(); code != 0 {
			t.Fatalf("server exit %d after Ctrl-D during source", code)
		}
		cl.exited(10 * time.Second)
	})
	t.Run("sync", func(t *testing.T) {
		_, srv, _ := heldSync(t, "5s")
		srv.Send("\x04")
		if code := srv.Exit(); code != 0 {
			t.Fatalf("server exit %d after Ctrl-D during sync", code)
		}
	})
	// A line half typed when Ctrl-D comes is not run: Ctrl-D quits. So
	// does Ctrl-D after whole lines typed ahead, which are not run either.
	for name, typed := range map[string]string{"cut line": "D,10.1.0.0/16", "lines typed ahead": "D,10.1.0.0/16\rshow routes\r"} {
		t.Run(name, func(t *testing.T) {
			in, srv, _ := heldSync(t, "1m")
			srv.Send(typed)
			time.Sleep(100 * time.Millisecond)
			srv.Send("\x04")
			if code := srv.Exit(); code != 0 {
				t.Fatalf("server exit %d after Ctrl-D during sync", code)
			}
			again := in.server()
			if got := again.must("show routes"); got != "10.1.0.0/16 dev eth0\n" {
				t.Fatalf("after Ctrl-D with %q typed: %q; the terminal showed:\n%q", typed, got, srv.Since())
			}
		})
	}
	// Ctrl-C drops them, as the terminal drops what it still holds.
	t.Run("typed ahead, Ctrl-C", func(t *testing.T) {
		in, srv, _ := heldSync(t, "1m")
		srv.Send("D,10.1.0.0/16\r")
		time.Sleep(100 * time.Millisecond)
		srv.Send("\x03")
		srv.Expect("error: sync: interrupted")
		srv.Expect("rtm(" + in.name + ")> ")
		srv.Line("show routes count")
		srv.Expect("show routes count\r\n1\r\n") // not 0: the delete was dropped
	})
	// Lines typed while a command runs run after it, in order.
	t.Run("typed ahead", func(t *testing.T) {
		_, srv, stopped := heldSync(t, "1m")
		srv.Send("C,10.2.0.0/16,-,eth0\rshow routes count\r")
		time.Sleep(100 * time.Millisecond)
		stopped.signal(syscall.SIGCONT)
		srv.Expect("\n2\r\n")
		srv.Send("\x04")
		if code := srv.Exit(); code != 0 {
			t.Fatalf("server exit %d", code)
		}
	})
	t.Run("client", func(t *testing.T) {
		in := newInstance(t)
		srv := in.server()
		cl := startTerm(t, "client", "--socket", in.socket)
		cl.Expect("rtm-client(" + in.socket + ")> ")
		srv.signal(syscall.SIGKILL)
		<-srv.done
		cl.Line("C,10.1.0.0/16,-,eth0")
		cl.Expect("waiting for the server to come back")
		cl.Send("\x04")
		// Quitting says nothing of the wait it ended, but the change it
		// kept from the server is reported.
		cl.Expect("error: not applied: send to the server: not connected to the server: interrupted")
		if code := cl.Exit(); code == -1 {
			t.Fatal("client did not exit after Ctrl-D")
		}
	})
}

// heldSync starts a server at a terminal with a route and a stopped
// client, and has it run `sync TIMEOUT`, which waits for that client.
func heldSync(t *testing.T, timeout string) (*instance, *rtmtest.Term, *proc) {
	in := newInstance(t)
	srv := startTerm(t, append([]string{"server"}, in.flags()...)...)
	srv.Expect("rtm(" + in.name + ")> ")
	stopped := in.client("stopped")
	stopped.signal(syscall.SIGSTOP)
	t.Cleanup(func() { stopped.signal(syscall.SIGKILL) })
	srv.Run("C,10.1.0.0/16,-,eth0", "rtm("+in.name+")> ")
	srv.Line("sync " + timeout)
	srv.Expect("sync " + timeout + "\r\n")
	time.Sleep(100 * time.Millisecond)
	return in, srv, stopped
}

// TestCtrlCEndsASourceThatWaits: a source whose writer has gone quiet (a
// FIFO held open) is interrupted by Ctrl-C, after the lines it had, and
// the prompt comes back; Ctrl-D during one quits.
func TestCtrlCEndsASourceThatWaits(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	in := newInstance(t)
	srv := startTerm(t, append([]string{"server"}, in.flags()...)...)
	prompt := "rtm(" + in.name + ")> "
	srv.Expect(prompt)
	for _, key := range []string{"\x03", "\x04"} {
		srv.Line("source " + fifo)
		w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		w.WriteString("C,10.1.0.0/16,-,eth0\nshow routes count\n") // and then nothing
		srv.Expect("\n1\r\n")
		srv.Send(key)
		if key == "\x04" {
			if code := srv.Exit(); code != 0 {
				t.Fatalf("server exit %d after Ctrl-D during a source that waits", code)
			}
			break
		}
		srv.Expect("error: " + fifo + ":3: interrupted")
		srv.Expect(prompt)
		srv.Run("D,10.1.0.0/16", prompt)
	}
}

// TestPasteManyLines: lines pasted at the prompt all run, in order, while
// the first ones run: the rest of a paste longer than readline reads at
// once comes as it was typed, CRs and all, and is no end of file.
func TestPasteManyLines(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := startTerm(t, append([]string{"server"}, in.flags()...)...)
	prompt := "rtm(" + in.name + ")> "
	srv.Expect(prompt)
	var paste strings.Builder
	for i := range 400 {
		fmt.Fprintf(&paste, "C,10.%d.%d.0/24,-,eth0\r", i/256, i%256)
	}
	paste.WriteString("show routes count\r")
	srv.Send(paste.String())
	srv.ExpectWithin("\n400\r\n", 60*time.Second)
	srv.Send("\x04")
	if code := srv.Exit(); code != 0 {
		t.Fatalf("server exit %d", code)
	}
}

// TestPasteALongLine: a line longer than any command, pasted at the
// prompt, is refused whole, and the terminal is shown a bounded amount:
// readline draws the line again at each key it takes, so 10,000
// characters were 55 MB to the terminal, and seconds to minutes of
// drawing. Cut where rtm stops taking keys, this line would be a change.
func TestPasteALongLine(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := startTerm(t, append([]string{"server"}, in.flags()...)...)
	prompt := "rtm(" + in.name + ")> "
	srv.Expect(prompt)
	before := srv.Shown()
	srv.Send("C,10.2.0.0/16,-,eth0" + strings.Repeat(" ", 8000) + "x\r")
	srv.ExpectWithin("error: a line of more than 1024 characters, which no command is: not run", time.Minute)
	srv.Expect(prompt)
	if shown := srv.Shown() - before; shown > 2<<20 {
		t.Errorf("a pasted line of 8,021 characters showed %d bytes on the terminal", shown)
	}
	srv.Line("show routes count")
	srv.Expect("show routes count\r\n0\r\n")
	srv.Expect(prompt)
	srv.Run("C,10.3.0.0/16,-,eth0", prompt) // the next line is taken as usual
	// The length is the editor's: a line emptied by Ctrl-W, or by Ctrl-A
	// Ctrl-K, takes keys again, and what is typed then runs.
	srv.Send(strings.Repeat("y", 1030) + "\x17")
	srv.Run("C,10.4.0.0/16,-,eth0", prompt)
	srv.Send("#" + strings.Repeat("z", 1000) + "\x01\x0b")
	srv.Run("C,10.5.0.0/16,-,eth0", prompt)
	srv.Line("show routes")
	srv.Expect("show routes\r\n10.3.0.0/16 dev eth0\r\n10.4.0.0/16 dev eth0\r\n10.5.0.0/16 dev eth0\r\n")
	srv.Send("\x04")
	if code := srv.Exit(); code != 0 {
		t.Fatalf("server exit %d", code)
	}
}

// TestTabCompletesAtAnUnsizedTerminal: a terminal that reports 0 columns
// (script(1)'s, a serial line) completes as a sized one does, and lists
// the candidates at a second Tab.
func TestTabCompletesAtAnUnsizedTerminal(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	cmd := exec.Command(rtmBin, append([]string{"server"}, in.flags()...)...)
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+t.TempDir())
	srv := rtmtest.StartTermSize(t, cmd, 0, 0)
	srv.Expect("rtm(" + in.name + ")> ")
	srv.Send("show rou\t")
	srv.Expect("show routes ")
	srv.Send("\t\t")
	srv.Expect("within")
	srv.Send("\x15\x04") // clear the line, then Ctrl-D
	if code := srv.Exit(); code != 0 {
		t.Fatalf("server exit %d after Ctrl-D", code)
	}
}

// TestCtrlCWhileChoicesShow: Ctrl-C while Tab's choices are listed
// cancels the line, as at any other time: it only closed the list, and
// Enter then ran what was typed.
func TestCtrlCWhileChoicesShow(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := startTerm(t, append([]string{"server"}, in.flags()...)...)
	srv.Expect("rtm(" + in.name + ")> ")
	srv.Send("show \t")
	srv.Expect("clients")
	mark := srv.Shown()
	srv.Send("\x03")
	srv.Send("show info\r")
	srv.ExpectWithin("\nversion ", 5*time.Second)
	if shown := srv.From(mark); strings.Contains(shown, "error:") {
		t.Errorf("the line typed before Ctrl-C ran, or stayed:\n%q", shown)
	}
	srv.Send("\x04")
	if code := srv.Exit(); code != 0 {
		t.Fatalf("server exit %d after Ctrl-D", code)
	}
}

// TestSourceThatQuitsAtThePrompt: with --keep-going, a source typed at
// the prompt whose file fails a line and then quits reports the line,
// then the count, and the server quits, with status 1 as a line failed
// (it quit without the count).
func TestSourceThatQuitsAtThePrompt(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	script := filepath.Join(t.TempDir(), "q.rtm")
	os.WriteFile(script, []byte("D,10.9.0.0/16\nquit\nC,10.1.0.0/16,-,eth0\n"), 0o644)
	srv := startTerm(t, append([]string{"server", "--keep-going"}, in.flags()...)...)
	srv.Expect("rtm(" + in.name + ")> ")
	srv.Line("source " + script)
	srv.Expect(script + ":1: delete route 10.9.0.0/16: not found")
	srv.ExpectWithin(script+": 1 of 2 lines failed", 5*time.Second)
	if code := srv.Exit(); code != 1 {
		t.Fatalf("server exit %d after a typed source quit, want 1: a line failed", code)
	}
}

// TestCtrlCCancelsAWait: at a client's prompt, Ctrl-C ends at once a
// change waiting for a server that is down (which says after a second
// that it waits), a question for that server, and a sync held up by a
// stopped client or a server that is down (which says so too, and names
// itself as it ends); the prompt returns and the client goes on.
func TestCtrlCCancelsAWait(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.server()
	stopped := in.client("stopped")
	stopped.signal(syscall.SIGSTOP)
	defer stopped.signal(syscall.SIGKILL)
	cl := startTerm(t, "client", "--socket", in.socket)
	prompt := "rtm-client(" + in.socket + ")> "
	cl.Expect(prompt)
	cl.Run("C,10.9.0.0/16,-,eth0", prompt) // the stopped client cannot have it
	cl.Line("sync 1m")
	cl.ExpectWithin("sync: waiting, for up to 1m0s (Ctrl-C gives up)", 10*time.Second)
	before := cl.Shown()
	cl.Send("\x03")
	cl.Expect("error: sync: interrupted")
	if shown := cl.From(before); !strings.Contains(shown, "error: sync: interrupted") || strings.Contains(shown, "^Cerror") {
		t.Errorf("the report of Ctrl-C on the line of the terminal's ^C: %q", shown)
	}
	cl.Expect(prompt)
	// Not typed, the wait is not said: the result alone, on stderr.
	if r := runRTM(t, "", "client", "--socket", in.socket, "-c", "sync 2s"); r.code != 1 || strings.Contains(r.stderr, "waiting") || !strings.Contains(r.stderr, "-c:1: sync timed out after 2s") {
		t.Errorf("-c sync held up: exit %d, stderr %q", r.code, r.stderr)
	}

	srv.signal(syscall.SIGKILL)
	<-srv.done
	cl.Line("C,10.1.0.0/16,-,eth0")
	cl.Expect("waiting for the server to come back (Ctrl-C gives up)")
	cl.Send("\x03")
	// Said in words, not as a Go context's error.
	cl.Expect("error: not applied: send to the server: not connected to the server: interrupted")
	cl.Expect(prompt)
	// So does a question only the server answers.
	cl.Line("show clients")
	time.Sleep(200 * time.Millisecond)
	cl.Send("\x03")
	cl.ExpectWithin("error: show clients: interrupted", 5*time.Second) // its own bound is 10 s
	cl.Expect(prompt)
	// And a sync, while the server is down.
	cl.Line("sync")
	cl.ExpectWithin("sync: waiting, for up to 10s (Ctrl-C gives up)", 10*time.Second)
	cl.Send("\x03")
	cl.ExpectWithin("error: sync: interrupted", 5*time.Second)
	cl.Expect(prompt)
	cl.Line("show routes count")
	cl.Expect("\n1\r\n")
	cl.Send("\x04")
	if code := cl.Exit(); code != 0 {
		t.Fatalf("client exit %d after Ctrl-D", code)
	}
}

// TestCtrlDWithOutputPiped: rtm server | tee log, at a terminal. Lines
// typed run, and a typo is reported without ending the server, as at the
// prompt: stdin is the person's, even though stdout is not a terminal.
// Ctrl-D quits it (status 0, as at the prompt). A watching client whose
// stdout is piped (rtm client --watch | less) reads nothing from the
// terminal, which is the pager's: keys typed there are no commands (they
// were, taken from the pager: its q an unknown command), and Ctrl-C ends
// the watch. (A piped stdin keeps a server serving, and a client
// watching, at its end.)
func TestCtrlDWithOutputPiped(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	cmd := exec.Command(rtmBin, append([]string{"server"}, in.flags()...)...)
	cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+t.TempDir())
	var out syncBuffer
	cmd.Stdout = &out
	srv := rtmtest.StartTerm(t, cmd)
	srv.Expect("rtm server " + in.name + ": socket ")
	srv.Send("C,10.1.1.0/33,192.168.1.1,eth0\rC,10.1.1.0/24,192.168.1.1,eth0\rshow routes count\r")
	if !rtmtest.WaitFor(rtmtest.Wait, func() bool { return out.String() == "1\n" }) {
		t.Fatalf("the lines typed did not run: stdout %q; the terminal shows:\n%q", out.String(), srv.Since())
	}
	srv.Expect("<stdin>:1: create route: bad prefix")

	wcmd := exec.Command(rtmBin, "client", "--socket", in.socket, "--watch")
	wcmd.Env = cmd.Env
	var wout syncBuffer
	wcmd.Stdout = &wout
	watcher := rtmtest.StartTerm(t, wcmd)
	if !rtmtest.WaitFor(rtmtest.Wait, func() bool { return strings.Contains(wout.String(), "# snapshot: 1 routes") }) {
		t.Fatalf("the watcher had no snapshot: %q; its terminal shows:\n%q", wout.String(), watcher.Since())
	}
	srv.Send("C,10.2.0.0/16,-,eth1\r")
	if !rtmtest.WaitFor(rtmtest.Wait, func() bool { return strings.Contains(wout.String(), "10.2.0.0/16") }) {
		t.Fatalf("the watcher did not see the change: %q; its terminal shows:\n%q", wout.String(), watcher.Since())
	}
	watcher.Send("q\rC,10.3.0.0/16,-,eth1\r\x04")
	srv.Send("C,10.4.0.0/16,-,eth1\r")
	if !rtmtest.WaitFor(rtmtest.Wait, func() bool { return strings.Contains(wout.String(), "10.4.0.0/16") }) {
		t.Fatalf("the watcher ended, or stopped watching, when keys were typed at its terminal: %q; its terminal shows:\n%q", wout.String(), watcher.Since())
	}
	if r := runRTM(t, "", "client", "--socket", in.socket, "-c", "show routes within 10.3.0.0/16"); r.stdout != "" {
		t.Fatalf("a line typed at the terminal of a watcher whose output is piped was run: %q", r.stdout)
	}
	watcher.Send("\x03")
	if code := watcher.Exit(); code != 0 || strings.Contains(watcher.Since(), "unknown command") {
		t.Fatalf("watching client exit %d after Ctrl-C; its terminal shows:\n%q", code, watcher.Since())
	}

	srv.Send("\x04")
	if code := srv.Exit(); code != 0 {
		t.Fatalf("server exit %d after Ctrl-D, with a line typed that failed: want 0, as at the prompt; the terminal showed:\n%q", code, srv.Since())
	}
	if shown := srv.Since(); strings.Contains(shown, "lines failed") {
		t.Fatalf("a typed session ended with a count of failed lines, which the prompt does not give:\n%s", shown)
	}
}

// TestSIGQUITQuitsAtOnce: SIGQUIT (Ctrl-\ at a terminal) ends a server
// at once, as a crash does, with one line and status 131: not with Go's
// dump of every goroutine's stack. Its client keeps its tables and waits
// for the next server, which checks the store and carries on.
func TestSIGQUITQuitsAtOnce(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := startTerm(t, append([]string{"server"}, in.flags()...)...)
	prompt := "rtm(" + in.name + ")> "
	srv.Expect(prompt)
	srv.Run("C,10.1.1.0/24,192.168.1.1,eth0", prompt)
	cl := in.client("stays")
	srv.Cmd.Process.Signal(syscall.SIGQUIT)
	srv.Expect("rtm: SIGQUIT: quitting at once, as after a crash")
	if code := srv.Exit(); code != 131 {
		t.Fatalf("server exit %d after SIGQUIT, want 131", code)
	}
	if shown := srv.Since(); strings.Contains(shown, "goroutine ") {
		t.Fatalf("a stack dump after SIGQUIT:\n%s", shown)
	}
	again := in.server()
	if !strings.Contains(again.errb(), "not closed cleanly") {
		t.Errorf("the next server did not check the store: %s", again.errb())
	}
	if got := cl.must("sync local", "show routes"); got != "10.1.1.0/24 via 192.168.1.1 dev eth0\n" {
		t.Errorf("the client after the server's SIGQUIT and restart: %q", got)
	}
	// The same while a client starts, waiting for a server that is not
	// there (--wait): before its session and its own signals are set up.
	// SIGABRT (a scenario's "client kill NAME ABRT") the same way: one
	// line, status 134, where Go's runtime printed some 300 lines.
	waiting := func(sig syscall.Signal) (int, string) {
		cmd := exec.Command(rtmBin, "client", "--socket", filepath.Join(t.TempDir(), "none.sock"), "--wait", "30s")
		cmd.Stdin = strings.NewReader("show routes\n")
		var errb syncBuffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Well into its wait: Go's runtime takes SIGQUIT from the first
		// instruction, so no mask in /proc tells when rtm's handler is in.
		time.Sleep(500 * time.Millisecond)
		cmd.Process.Signal(sig)
		waitCmd(t, cmd, 10*time.Second, errb.String)
		return cmd.ProcessState.ExitCode(), errb.String()
	}
	if code, errb := waiting(syscall.SIGQUIT); code != 131 || strings.Contains(errb, "goroutine ") {
		t.Errorf("a client waiting for its server, after SIGQUIT: exit %d, stderr %.300q", code, errb)
	}
	if code, errb := waiting(syscall.SIGABRT); code != 134 || errb != "rtm: SIGABRT: quitting at once, as after a crash (the next server checks the store)\n" {
		t.Errorf("a client waiting for its server, after SIGABRT: exit %d, stderr %.300q", code, errb)
	}
}
