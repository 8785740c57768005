package repl_test

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"rtm/repl"
	"rtm/repl/rtmtest"
)

// TestMain: the test binary re-executed in the role "prompt" runs the
// prompt instead of the tests.
func TestMain(m *testing.M) { rtmtest.Main(m, rtmtest.Roles{"prompt": promptProcess}, nil) }

// promptProcess is the process under the pseudo-terminal: a server prompt
// over the lab tables. SIGUSR1 makes another goroutine print through the
// console, as a client connecting would.
func promptProcess() int {
	e := repl.NewTestEngine()
	console := repl.NewConsole(os.Stdout)
	in := repl.NewInterp(e, os.Stdout, repl.Options{Mode: "server", Name: "lab", Console: console})
	if err := in.RunReader("setup", strings.NewReader(repl.LabSetup)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		for range sig {
			console.Printf("client lab-7 connected")
		}
	}()
	if err := in.Interactive(console); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// startPrompt starts the prompt process on a terminal, with its own
// history directory, and waits for its prompt.
func startPrompt(t *testing.T) (p *rtmtest.Term, state string) {
	t.Helper()
	state = t.TempDir()
	p = rtmtest.StartTerm(t, rtmtest.Child(t, "prompt", "XDG_STATE_HOME="+state))
	p.Expect("rtm(lab)> ")
	return p, state
}

// TestPromptSession: the prompt shows, commands print their results and
// errors, Ctrl-D quits with status 0, and the history is kept in a file
// of a private directory.
func TestPromptSession(t *testing.T) {
	p, state := startPrompt(t)
	p.Send("show routes\r")
	p.Expect("10.1.1.0/24 via 192.168.1.1 dev eth0")
	p.Expect("rtm(lab)> ")
	p.Send("C,10.1.1.0/24,192.168.1.1,eth0\r")
	p.Expect("error: create route 10.1.1.0/24: already exists")
	p.Expect("rtm(lab)> ")
	p.Send("\x04")
	if code := p.Exit(); code != 0 {
		t.Fatalf("Ctrl-D: exit status %d", code)
	}
	hist := filepath.Join(state, "rtm", "history-server")
	b, err := os.ReadFile(hist)
	if err != nil {
		t.Fatal(err)
	}
	if want := "show routes\nC,10.1.1.0/24,192.168.1.1,eth0\n"; string(b) != want {
		t.Errorf("history %q, want %q", b, want)
	}
	fi, err := os.Stat(filepath.Dir(hist))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("history dir: %v, %v; want mode 0700", fi.Mode(), err)
	}
}

func TestPromptQuit(t *testing.T) {
	p, _ := startPrompt(t)
	p.Send("quit\r")
	if code := p.Exit(); code != 0 {
		t.Fatalf("quit: exit status %d", code)
	}
}

// TestPromptCompletion: Tab completes command words, table names and keys
// already in the tables.
func TestPromptCompletion(t *testing.T) {
	p, _ := startPrompt(t)
	p.Send("sh\t")
	p.Expect("ow ")
	p.Send("rou\t")
	p.Expect("tes ")
	p.Send("\r")
	p.Expect("10.1.0.0/16 via 192.168.1.2 dev eth1")
	p.Expect("rtm(lab)> ")
	p.Send("lookup 00:1a\t")
	p.Expect(":2b:3c:4d:5e")
	p.Send("\r")
	p.Expect("00:1a:2b:3c:4d:5e 10.1.1.7")
	p.Send("D,2001\t")
	p.Expect(":db8:1::/48")
	p.Send("\r")
	p.Expect("rtm(lab)> ")
	p.Send("expect no route 2001:db8:1::/48\r")
	p.Expect("rtm(lab)> ")
	if s := p.Since(); strings.Contains(s, "error") {
		t.Errorf("completed delete did not run: %q", s)
	}
}

// TestPromptCtrlC: Ctrl-C drops the line being typed, and the prompt
// stays.
func TestPromptCtrlC(t *testing.T) {
	p, _ := startPrompt(t)
	p.Send("C,10.9.0.0/16,192.168.1.1,eth0")
	p.Expect("eth0")
	p.Send("\x03")
	p.Expect("^C")
	p.Expect("rtm(lab)> ")
	p.Send("\x03")
	p.Expect("rtm(lab)> ")
	p.Send("expect no route 10.9.0.0/16\r")
	p.Expect("rtm(lab)> ")
	p.Send("quit\r")
	if code := p.Exit(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if s := p.Since(); strings.Contains(s, "error") {
		t.Errorf("cancelled line ran: %q", s)
	}
}

// TestPromptAsyncOutput: a message printed by another goroutine while a
// line is half typed appears on its own line, the prompt and the typed
// text are redrawn after it, and the line completes intact.
func TestPromptAsyncOutput(t *testing.T) {
	p, _ := startPrompt(t)
	p.Send("show rou")
	p.Expect("show rou")
	p.Cmd.Process.Signal(syscall.SIGUSR1)
	p.Expect("client lab-7 connected")
	p.Expect("rtm(lab)> show rou")
	p.Send("tes\r")
	p.Expect("10.1.1.0/24 via 192.168.1.1 dev eth0")
	p.Send("quit\r")
	if code := p.Exit(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
}
