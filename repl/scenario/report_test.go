package scenario

import (
	"errors"
	"strings"
	"testing"
	"time"

	"rtm/repl"
)

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

func TestErrorReport(t *testing.T) {
	e := &Error{
		Loc:   repl.Location{File: "scripts/x.rtm", Line: 12},
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

	// A line with bytes a terminal would act on is shown escaped.
	e = &Error{Loc: repl.Location{File: "s.rtm", Line: 2}, Text: "client start \x00\x1b[31m\xff", Msg: "bad name"}
	if got, want := e.Error(), "s.rtm:2: client start \\x00\\x1b[31m\\xff\n    bad name\n"; got != want {
		t.Errorf("report of a line with control bytes: %q, want %q", got, want)
	}

	// A directive names its process itself: no "at server:".
	e = &Error{Loc: repl.Location{File: "s.rtm", Line: 3}, Where: "server", Text: "server kill", Msg: "the server is not running: killed"}
	if got, want := e.Error(), "s.rtm:3: server kill\n    the server is not running: killed\n"; got != want {
		t.Errorf("directive report:\n%q\nwant:\n%q", got, want)
	}
}

// TestTally: a line per scenario, a failure's report indented under its
// FAIL line, and the count at the end.
// TestErrorReportLongLine: a failing line of a binary file, or a very
// long one, is shown by its start and its length, not whole.
func TestErrorReportLongLine(t *testing.T) {
	e := &Error{Loc: repl.Location{File: "bin.rtm", Line: 1}, Text: strings.Repeat("\x00", 5000), Msg: "unknown command"}
	first, _, _ := strings.Cut(e.Error(), "\n")
	if len(first) > 1000 || !strings.HasSuffix(first, "… (5000 bytes)") {
		t.Errorf("the header of a 5000-byte line: %d bytes, ending %q", len(first), first[max(0, len(first)-40):])
	}
}

func TestTally(t *testing.T) {
	var b strings.Builder
	tl := tally{w: &b}
	tl.add(Result{Path: "a.rtm", Duration: 120 * time.Millisecond})
	tl.add(Result{Path: "b.rtm", Duration: 2 * time.Second, Err: &Error{Loc: repl.Location{File: "b.rtm", Line: 2}, Where: "server", Text: "D,10.1.1.0/24", Msg: "delete route 10.1.1.0/24: not found"}})
	tl.add(Result{Path: "c.rtm", Err: errors.New("plain")})
	tl.summary()
	want := `ok   a.rtm (0.12s)
FAIL b.rtm (2.00s)
    b.rtm:2: at server: D,10.1.1.0/24
        delete route 10.1.1.0/24: not found
FAIL c.rtm (0.00s)
    plain
1 passed, 2 failed
`
	if b.String() != want {
		t.Errorf("output:\n%s\nwant:\n%s", b.String(), want)
	}
}
