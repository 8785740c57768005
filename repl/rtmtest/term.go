package rtmtest

// Term: a command on a pseudo-terminal, driven as a person at a terminal
// would drive it: it types, and waits for what the terminal shows. It
// owns the terminal and the process; both end with the test.

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// Wait bounds every wait for the terminal or the process.
const Wait = 20 * time.Second

// Term is a process on a pseudo-terminal and what it showed there.
type Term struct {
	t    *testing.T
	Cmd  *exec.Cmd
	tty  *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	mark int // Expect searches from here

	waitOnce sync.Once
	exited   chan struct{} // closed once Cmd.Wait has returned
}

// wait reaps the process once, whoever asks first.
func (p *Term) wait() <-chan struct{} {
	p.waitOnce.Do(func() {
		go func() {
			p.Cmd.Wait()
			close(p.exited)
		}()
	})
	return p.exited
}

// StartTerm starts cmd on a 40×200 terminal with TERM=xterm; the process is
// killed, and the terminal closed, when the test ends.
func StartTerm(t *testing.T, cmd *exec.Cmd) *Term {
	t.Helper()
	return StartTermSize(t, cmd, 40, 200)
}

// StartTermSize is StartTerm on a terminal of rows×cols; 0×0 is what a
// terminal whose size was never set reports (script(1)'s, a serial line).
func StartTermSize(t *testing.T, cmd *exec.Cmd, rows, cols uint16) *Term {
	t.Helper()
	p := &Term{t: t, Cmd: cmd, exited: make(chan struct{})}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "TERM=xterm")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: rows, Cols: cols})
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
			if err != nil { // EIO once the process and its children are gone
				return
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.wait()
		tty.Close()
	})
	return p
}

// Expect waits for s on the terminal after the last match, and fails the
// test, showing the terminal, if it does not come.
func (p *Term) Expect(s string) {
	p.t.Helper()
	p.ExpectWithin(s, Wait)
}

// ExpectWithin is Expect waiting at most d: for what must come before
// something slower would bring it anyway (a timeout of the process's).
func (p *Term) ExpectWithin(s string, d time.Duration) {
	p.t.Helper()
	if !WaitFor(d, func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		i := strings.Index(p.out.String()[p.mark:], s)
		if i >= 0 {
			p.mark += i + len(s)
		}
		return i >= 0
	}) {
		p.t.Fatalf("no %q on the terminal after %v; it shows:\n%q", s, d, p.Since())
	}
}

// Since returns what the terminal showed after the last match.
func (p *Term) Since() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()[p.mark:]
}

// From returns what the terminal showed from byte n on (Shown).
func (p *Term) From(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()[n:]
}

// Shown is how many bytes the terminal has shown so far.
func (p *Term) Shown() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Len()
}

// Send types s as it is: "\r" is the return key, "\x04" Ctrl-D.
func (p *Term) Send(s string) {
	p.t.Helper()
	if _, err := p.tty.Write([]byte(s)); err != nil {
		p.t.Fatal(err)
	}
}

// Line types s and the return key.
func (p *Term) Line(s string) { p.Send(s + "\r") }

// Run types line and the return key, and waits for the prompt that
// comes after the line has run: readline draws the prompt again at every
// key typed, so the prompt alone may be one drawn while the line was
// still being typed.
func (p *Term) Run(line, prompt string) {
	p.t.Helper()
	p.Line(line)
	p.Expect(line + "\r\n")
	p.Expect(prompt)
}

// Exit waits for the process to end and returns its exit status.
func (p *Term) Exit() int {
	p.t.Helper()
	select {
	case <-p.wait():
		return p.Cmd.ProcessState.ExitCode()
	case <-time.After(Wait):
		p.t.Fatalf("still running after %v; the terminal shows:\n%q", Wait, p.Since())
		return -1
	}
}
