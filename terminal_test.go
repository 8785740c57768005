package main

// rtm at a terminal, as a person uses it: the real binary under a
// pseudo-terminal, a server and a client each at their prompt.

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

// term is rtm running on a pseudo-terminal, and what it showed there.
type term struct {
	t    *testing.T
	cmd  *exec.Cmd
	tty  *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	mark int // expect searches from here
	done chan struct{}
}

func startTerm(t *testing.T, args ...string) *term {
	t.Helper()
	p := &term{t: t, done: make(chan struct{})}
	p.cmd = exec.Command(rtmBin, args...)
	p.cmd.Env = append(os.Environ(), "XDG_STATE_HOME="+t.TempDir(), "TERM=xterm")
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
	return p
}

// expect waits for s on the terminal after the last match.
func (p *term) expect(s string) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		p.mu.Lock()
		i := strings.Index(p.out.String()[p.mark:], s)
		if i >= 0 {
			p.mark += i + len(s)
		}
		shown := p.out.String()[p.mark:]
		p.mu.Unlock()
		if i >= 0 {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no %q on the terminal after 20s; it shows:\n%q", s, shown)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// line types a line and the return key.
func (p *term) line(s string) { p.tty.WriteString(s + "\r") }

// exited waits for the process to exit and returns its status.
func (p *term) exited() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.t.Fatalf("still running 20s after it was told to quit:\n%q", p.out.String())
	}
	p.cmd.Wait()
	return p.cmd.ProcessState.ExitCode()
}

// TestTerminalSession: a server and a client each at a terminal. The
// server's banner invites help; changes typed at either prompt reach
// both; a client connecting is announced at the server's prompt without
// garbling it; an error is printed and the prompt returns; Ctrl-D quits
// the client (the server goes on), and then the server (status 0).
func TestTerminalSession(t *testing.T) {
	in := newInstance(t)
	srv := startTerm(t, append([]string{"server"}, in.flags()...)...)
	srv.expect("(created): 0 routes, 0 MACs. Type help.")
	srv.expect("rtm(" + in.name + ")> ")
	srv.line("C,10.1.1.0/24,192.168.1.1,eth0")
	srv.expect("rtm(" + in.name + ")> ")
	srv.line("help dump")
	srv.expect("dump prints both tables as create lines")
	srv.expect("rtm(" + in.name + ")> ")

	cl := startTerm(t, "client", "--socket", in.socket, "--client-name", "person")
	// Given only a socket, the client names the instance by it.
	cl.expect("rtm-client(" + in.socket + ")> ")
	srv.expect(") connected")
	cl.line("C,10.2.0.0/16,-,eth1")
	cl.expect("rtm-client(" + in.socket + ")> ")
	cl.line("show routes")
	cl.expect("10.1.1.0/24 via 192.168.1.1 dev eth0")
	cl.expect("10.2.0.0/16 dev eth1")
	cl.line("D,10.9.0.0/16")
	cl.expect("error: delete route 10.9.0.0/16: not found")
	cl.expect("rtm-client(" + in.socket + ")> ")

	srv.line("show routes count")
	srv.expect("\n2\r\n")
	srv.line("show clients")
	srv.expect("person id ")
	srv.expect(" changes 1 writes yes ")

	cl.tty.Write([]byte{4}) // Ctrl-D
	if code := cl.exited(); code != 0 {
		t.Fatalf("client exit %d after Ctrl-D", code)
	}
	srv.expect(") disconnected")
	srv.line("show clients count")
	srv.expect("0")
	srv.tty.Write([]byte{4})
	if code := srv.exited(); code != 0 {
		t.Fatalf("server exit %d after Ctrl-D", code)
	}
}
