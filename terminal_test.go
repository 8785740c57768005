package main

// rtm at a terminal, as a person uses it: the real binary under a
// pseudo-terminal, a server and a client each at their prompt.

import (
	"os"
	"os/exec"
	"testing"

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
	in := newInstance(t)
	srv := startTerm(t, append([]string{"server"}, in.flags()...)...)
	srv.Expect("(created): 0 routes, 0 MACs. Type help.")
	srv.Expect("rtm(" + in.name + ")> ")
	srv.Line("C,10.1.1.0/24,192.168.1.1,eth0")
	srv.Expect("rtm(" + in.name + ")> ")
	srv.Line("help dump")
	srv.Expect("dump prints both tables as create lines")
	srv.Expect("rtm(" + in.name + ")> ")

	cl := startTerm(t, "client", "--socket", in.socket, "--client-name", "person")
	// Given only a socket, the client names the instance by it.
	cl.Expect("rtm-client(" + in.socket + ")> ")
	srv.Expect(") connected")
	cl.Line("C,10.2.0.0/16,-,eth1")
	cl.Expect("rtm-client(" + in.socket + ")> ")
	cl.Line("show routes")
	cl.Expect("10.1.1.0/24 via 192.168.1.1 dev eth0")
	cl.Expect("10.2.0.0/16 dev eth1")
	cl.Line("D,10.9.0.0/16")
	cl.Expect("error: delete route 10.9.0.0/16: not found")
	cl.Expect("rtm-client(" + in.socket + ")> ")

	srv.Line("show routes count")
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
