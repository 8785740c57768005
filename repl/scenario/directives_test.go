package scenario

import (
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
		{line: "client signal a USR1", want: directive{op: opClientSignal, name: "a", sig: syscall.SIGUSR1}},
		{line: "client signal a sighup", want: directive{op: opClientSignal, name: "a", sig: syscall.SIGHUP}},
		{line: "client pause a", want: directive{op: opClientPause, name: "a"}},
		{line: "client resume a", want: directive{op: opClientResume, name: "a"}},
		{line: "server kill", want: directive{op: opServerKill, sig: syscall.SIGKILL}},
		{line: "server kill QUIT", want: directive{op: opServerKill, sig: syscall.SIGQUIT}},
		{line: "server signal HUP", want: directive{op: opServerSignal, sig: syscall.SIGHUP}},
		{line: "Server Signal usr1", want: directive{op: opServerSignal, sig: syscall.SIGUSR1}},
		{line: "server restart", want: directive{op: opServerRestart}},
		{line: "server restart --fresh", want: directive{op: opServerRestart, fresh: true}},
		{line: "SERVER RESTART --FRESH", want: directive{op: opServerRestart, fresh: true}},
		{line: "at a expect route 10.1.1.0/24 via 192.168.1.1", want: directive{op: opAt, name: "a", cmd: "expect route 10.1.1.0/24 via 192.168.1.1"}},
		{line: "at  b   show macs", want: directive{op: opAt, name: "b", cmd: "show macs"}},
		{line: "at Server expect count clients 2", want: directive{op: opAt, name: "server", cmd: "expect count clients 2"}},

		{line: "client", err: "want client start"},
		{line: "client start", err: "want a client NAME"},
		{line: "client frob a", err: `unknown "frob"; want client start`},
		{line: "client strat a", err: `client: unknown "strat"; did you mean start? want client start`},
		{line: "server restrat", err: `server: unknown "restrat"; did you mean restart? want server kill`},
		{line: "client start a b", err: `unexpected "b"`},
		{line: "client start server", err: `"server" names the server`},
		{line: "client start a/b", err: "want letters, digits"},
		{line: "client start " + strings.Repeat("n", 65), err: "client name is 65 bytes long; at most 64 are allowed"},
		{line: "client kill a HUP", err: `signal "HUP": want KILL, TERM, INT, QUIT or ABRT (one that ends rtm; client signal sends one it survives)`},
		{line: "client kill a KILL now", err: `unexpected "now"`},
		{line: "client signal a", err: "want a SIGNAL, HUP or USR1"},
		{line: "client signal a KILL", err: `signal "KILL": want HUP or USR1 (one rtm survives; client kill ends it)`},
		{line: "client signal a USR1 USR1", err: `unexpected "USR1"`},
		{line: "server", err: "want server kill"},
		{line: "server start", err: `unknown "start"`},
		{line: "server restart now", err: `unexpected "now"`},
		{line: "server restart --fresh --fresh", err: `unexpected "--fresh"`},
		{line: "server kill USR1", err: `signal "USR1"`},
		{line: "server signal", err: "want a SIGNAL"},
		{line: "server signal TERM", err: `signal "TERM": want HUP or USR1`},
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

// TestUsageListsDirectives: rtm test -h documents every directive the
// parser accepts.
func TestUsageListsDirectives(t *testing.T) {
	for _, d := range []string{
		"client start NAME", "client stop NAME", "client kill NAME [SIGNAL]", "client signal NAME SIGNAL",
		"client pause NAME", "client resume NAME", "server kill [SIGNAL]", "server signal SIGNAL",
		"server restart [--fresh]", "at NAME COMMAND",
	} {
		if !strings.Contains(usage, "\n  "+d+" ") {
			t.Errorf("rtm test -h does not document %q", d)
		}
	}
}
