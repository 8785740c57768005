package repl_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"rtm/repl"
)

// roleEnv makes the re-executed test binary run the prompt instead of the
// tests.
const roleEnv = "RTM_REPL_TEST_ROLE"

func TestMain(m *testing.M) {
	if os.Getenv(roleEnv) == "prompt" {
		os.Exit(promptProcess())
	}
	os.Exit(m.Run())
}

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

// ptyProc is the prompt process and what it printed on its terminal.
type ptyProc struct {
	t     *testing.T
	cmd   *exec.Cmd
	tty   *os.File
	mu    sync.Mutex
	out   bytes.Buffer
	mark  int // expect searches from here
	done  chan struct{}
	state string // XDG_STATE_HOME
}

func startPrompt(t *testing.T) *ptyProc {
	t.Helper()
	p := &ptyProc{t: t, done: make(chan struct{}), state: t.TempDir()}
	p.cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.cmd.Env = append(os.Environ(), roleEnv+"=prompt", "XDG_STATE_HOME="+p.state, "TERM=xterm")
	tty, err := pty.StartWithSize(p.cmd, &pty.Winsize{Rows: 40, Cols: 200})
	if err != nil {
		t.Fatal(err)
	}
	p.tty = tty
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				close(p.done)
				return
			}
		}
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		tty.Close()
	})
	p.expect("rtm(lab)> ")
	return p
}

// expect waits for s in the output after the last match.
func (p *ptyProc) expect(s string) {
	p.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.mu.Lock()
		i := strings.Index(p.out.String()[p.mark:], s)
		if i >= 0 {
			p.mark += i + len(s)
		}
		p.mu.Unlock()
		if i >= 0 {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no %q on the terminal after 10s; it shows:\n%q", s, p.since())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// since returns the output after the last match.
func (p *ptyProc) since() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()[p.mark:]
}

func (p *ptyProc) send(s string) {
	p.t.Helper()
	if _, err := p.tty.Write([]byte(s)); err != nil {
		p.t.Fatal(err)
	}
}

// exit waits for the process to end and returns its status.
func (p *ptyProc) exit() int {
	p.t.Helper()
	waited := make(chan error, 1)
	go func() { waited <- p.cmd.Wait() }()
	select {
	case <-waited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(10 * time.Second):
		p.t.Fatalf("prompt did not exit; terminal shows:\n%q", p.since())
		return -1
	}
}

// TestPromptSession: the prompt shows, commands print their results and
// errors, Ctrl-D quits with status 0, and the history is kept in a file
// of a private directory.
func TestPromptSession(t *testing.T) {
	p := startPrompt(t)
	p.send("show routes\r")
	p.expect("10.1.1.0/24 via 192.168.1.1 dev eth0")
	p.expect("rtm(lab)> ")
	p.send("C,10.1.1.0/24,192.168.1.1,eth0\r")
	p.expect("error: create route 10.1.1.0/24: already exists")
	p.expect("rtm(lab)> ")
	p.send("\x04")
	if code := p.exit(); code != 0 {
		t.Fatalf("Ctrl-D: exit status %d", code)
	}
	hist := filepath.Join(p.state, "rtm", "history-server")
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
	p := startPrompt(t)
	p.send("quit\r")
	if code := p.exit(); code != 0 {
		t.Fatalf("quit: exit status %d", code)
	}
}

// TestPromptCompletion: Tab completes command words, table names and keys
// already in the tables.
func TestPromptCompletion(t *testing.T) {
	p := startPrompt(t)
	p.send("sh\t")
	p.expect("ow ")
	p.send("rou\t")
	p.expect("tes ")
	p.send("\r")
	p.expect("10.1.0.0/16 via 192.168.1.2 dev eth1")
	p.expect("rtm(lab)> ")
	p.send("lookup 00:1a\t")
	p.expect(":2b:3c:4d:5e")
	p.send("\r")
	p.expect("00:1a:2b:3c:4d:5e 10.1.1.7")
	p.send("D,2001\t")
	p.expect(":db8:1::/48")
	p.send("\r")
	p.expect("rtm(lab)> ")
	p.send("expect no route 2001:db8:1::/48\r")
	p.expect("rtm(lab)> ")
	if s := p.since(); strings.Contains(s, "error") {
		t.Errorf("completed delete did not run: %q", s)
	}
}

// TestPromptCtrlC: Ctrl-C drops the line being typed, and the prompt
// stays.
func TestPromptCtrlC(t *testing.T) {
	p := startPrompt(t)
	p.send("C,10.9.0.0/16,192.168.1.1,eth0")
	p.expect("eth0")
	p.send("\x03")
	p.expect("^C")
	p.expect("rtm(lab)> ")
	p.send("\x03")
	p.expect("rtm(lab)> ")
	p.send("expect no route 10.9.0.0/16\r")
	p.expect("rtm(lab)> ")
	p.send("quit\r")
	if code := p.exit(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if s := p.since(); strings.Contains(s, "error") {
		t.Errorf("cancelled line ran: %q", s)
	}
}

// TestPromptAsyncOutput: a message printed by another goroutine while a
// line is half typed appears on its own line, the prompt and the typed
// text are redrawn after it, and the line completes intact.
func TestPromptAsyncOutput(t *testing.T) {
	p := startPrompt(t)
	p.send("show rou")
	p.expect("show rou")
	p.cmd.Process.Signal(syscall.SIGUSR1)
	p.expect("client lab-7 connected")
	p.expect("rtm(lab)> show rou")
	p.send("tes\r")
	p.expect("10.1.1.0/24 via 192.168.1.1 dev eth0")
	p.send("quit\r")
	if code := p.exit(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
}
