package repl

import (
	"rtm/proto/framed"

	"errors"
	"strings"
	"syscall"
	"testing"
)

func TestParseDirective(t *testing.T) {
	for _, tc := range []struct {
		line string
		want directive
		err  string // a substring of the error; "" if valid
	}{
		{line: "client start a", want: directive{op: opClientStart, name: "a"}},
		{line: "Client START web-1", want: directive{op: opClientStart, name: "web-1"}},
		{line: "client stop a", want: directive{op: opClientStop, name: "a"}},
		{line: "client kill a", want: directive{op: opClientKill, name: "a", sig: syscall.SIGKILL}},
		{line: "client kill a TERM", want: directive{op: opClientKill, name: "a", sig: syscall.SIGTERM}},
		{line: "client kill a sigint", want: directive{op: opClientKill, name: "a", sig: syscall.SIGINT}},
		{line: "client pause a", want: directive{op: opClientPause, name: "a"}},
		{line: "client resume a", want: directive{op: opClientResume, name: "a"}},
		{line: "server kill", want: directive{op: opServerKill, sig: syscall.SIGKILL}},
		{line: "server kill QUIT", want: directive{op: opServerKill, sig: syscall.SIGQUIT}},
		{line: "server restart", want: directive{op: opServerRestart}},
		{line: "at a expect route 10.1.1.0/24 via 192.168.1.1", want: directive{op: opAt, name: "a", cmd: "expect route 10.1.1.0/24 via 192.168.1.1"}},
		{line: "at  b   show macs", want: directive{op: opAt, name: "b", cmd: "show macs"}},
		{line: "at Server expect count clients 2", want: directive{op: opAt, name: "server", cmd: "expect count clients 2"}},

		{line: "client", err: "want client start"},
		{line: "client start", err: "want a client NAME"},
		{line: "client frob a", err: `unknown "frob"`},
		{line: "client start a b", err: `unexpected "b"`},
		{line: "client start server", err: `"server" names the server`},
		{line: "client start a/b", err: "want letters, digits"},
		{line: "client kill a HUP", err: `signal "HUP"`},
		{line: "client kill a KILL now", err: `unexpected "now"`},
		{line: "server", err: "want server kill"},
		{line: "server start", err: `unknown "start"`},
		{line: "server restart now", err: `unexpected "now"`},
		{line: "server kill USR1", err: `signal "USR1"`},
		{line: "at a", err: "want at NAME COMMAND"},
		{line: "at a:b show routes", err: "want letters, digits"},
	} {
		d, err := parseDirective(tc.line)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.line, err)
		case tc.err == "" && d != tc.want:
			t.Errorf("%q: got %+v, want %+v", tc.line, d, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want one saying %q", tc.line, err, tc.err)
		}
	}
}

func TestSplitWantGot(t *testing.T) {
	for _, tc := range []struct{ msg, want, got string }{
		{"expect failed: want route 10.1.1.0/24 via 192.168.1.1, got no route 10.1.1.0/24", "route 10.1.1.0/24 via 192.168.1.1", "no route 10.1.1.0/24"},
		{"expect failed: want 3 routes, got 1 route", "3 routes", "1 route"},
		{"expect failed: want an error from C,10.1.1.0/24,192.168.1.1,eth0, got success", "an error from C,10.1.1.0/24,192.168.1.1,eth0", "success"},
	} {
		want, got, ok := splitWantGot(tc.msg)
		if !ok || want != tc.want || got != tc.got {
			t.Errorf("%q: got (%q, %q, %v), want (%q, %q)", tc.msg, want, got, ok, tc.want, tc.got)
		}
	}
	if _, _, ok := splitWantGot("create route 10.1.1.0/24: already exists"); ok {
		t.Error("an error that is not an expectation split into want and got")
	}
}

// TestServeFramed: every line, blank and comment ones too, gets exactly
// one terminator after its output; errors lose the stream's location and
// their newlines; quit answers and then ends the stream.
func TestServeFramed(t *testing.T) {
	in := NewInterp(newMemEngine(), nil, Options{})
	input := strings.Join([]string{
		"C,10.1.1.0/24,192.168.1.1,eth0",
		"",
		"# a comment",
		"show routes",
		"bogus",
		"expect route 10.1.1.0/24 via 192.168.9.9",
		"quit",
		"show routes",
	}, "\n") + "\n"
	var out strings.Builder
	err := in.ServeFramed(strings.NewReader(input), &out)
	if !errors.Is(err, ErrQuit) {
		t.Fatalf("ServeFramed after quit: %v, want ErrQuit", err)
	}
	// The terminators carry the errors without this stream's location:
	// the driver knows where its lines came from.
	ok := framed.Terminator(nil)
	want := strings.Join([]string{
		ok, ok, ok,
		"10.1.1.0/24 via 192.168.1.1 dev eth0\n",
		ok,
		framed.Terminator(errors.New(`unknown command "bogus": want C,U,D,R changes or one of show, lookup, route, flush, dump, source, sync, expect, help, quit (type help)`)),
		framed.Terminator(errors.New("expect failed: want route 10.1.1.0/24 via 192.168.9.9, got route 10.1.1.0/24 via 192.168.1.1 dev eth0")),
		ok,
	}, "")
	if out.String() != want {
		t.Errorf("framed output:\n%q\nwant:\n%q", out.String(), want)
	}

	out.Reset()
	if err := in.ServeFramed(strings.NewReader("show routes"), &out); err != nil {
		t.Fatalf("ServeFramed at end of input: %v", err)
	}
	if want := "10.1.1.0/24 via 192.168.1.1 dev eth0\n" + framed.Terminator(nil); out.String() != want {
		t.Errorf("last line without newline: %q, want %q", out.String(), want)
	}
}

func TestScenarioErrorReport(t *testing.T) {
	e := &ScenarioError{
		Loc:   Location{File: "scripts/x.rtm", Line: 12},
		Where: "client a",
		Text:  "expect route 10.1.1.0/24 via 192.168.1.1 dev eth0",
		Msg:   "expect failed: want route 10.1.1.0/24 via 192.168.1.1 dev eth0, got route 10.1.1.0/24 via 192.168.1.254 dev eth1",
		Hint:  "client a has not synced since the change at scripts/x.rtm:10; a sync before the expect waits for it",
		Logs:  []ProcessLog{{Name: "server (pid 7)", Stderr: "client a (pid 8) connected"}},
	}
	want := `scripts/x.rtm:12: at client a: expect route 10.1.1.0/24 via 192.168.1.1 dev eth0
    want: route 10.1.1.0/24 via 192.168.1.1 dev eth0
    got:  route 10.1.1.0/24 via 192.168.1.254 dev eth1
    (client a has not synced since the change at scripts/x.rtm:10; a sync before the expect waits for it)
server (pid 7) stderr:
    client a (pid 8) connected
`
	if got := e.Error(); got != want {
		t.Errorf("report:\n%s\nwant:\n%s", got, want)
	}
}
