package repl

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"rtm/proto"
	"rtm/store/entry"
)

// catchUpRemote answers every request at once, as applied, and makes a
// catch-up wait until its context ends: a client whose own copy of the
// tables lags behind the server's.
type catchUpRemote struct {
	seq      uint64
	catching chan struct{} // closed when CatchUp first begins
	once     sync.Once
}

func (r *catchUpRemote) Request(_ context.Context, _ uint64, _ []byte, n int, _ bool) (<-chan proto.Reply, error) {
	r.seq += uint64(n)
	ch := make(chan proto.Reply, 1)
	ch <- proto.Reply{Published: r.seq, Ran: n, Conn: 1}
	return ch, nil
}

func (r *catchUpRemote) CatchUp(ctx context.Context, _, _ uint64) error {
	r.once.Do(func() { close(r.catching) })
	<-ctx.Done()
	return context.Cause(ctx)
}

func (r *catchUpRemote) ServerStats(context.Context) ([]proto.Stat, error) { return nil, nil }
func (r *catchUpRemote) Routes() []entry.Route                             { return nil }
func (r *catchUpRemote) GetRoute(netip.Prefix) (entry.Route, bool)         { return entry.Route{}, false }
func (r *catchUpRemote) MatchRoute(netip.Addr) (entry.Route, bool)         { return entry.Route{}, false }
func (r *catchUpRemote) MACs() []entry.MAC                                 { return nil }
func (r *catchUpRemote) LookupMAC(entry.MAC) (netip.Addr, error) {
	return netip.Addr{}, entry.ErrNotFound
}
func (r *catchUpRemote) Clients(context.Context) ([]proto.ClientInfo, error) {
	return nil, nil
}
func (r *catchUpRemote) Info(context.Context) (proto.ServerInfo, error) {
	return proto.ServerInfo{}, nil
}
func (r *catchUpRemote) Stats() []proto.Stat             { return nil }
func (r *catchUpRemote) Sync(context.Context) error      { return nil }
func (r *catchUpRemote) SyncLocal(context.Context) error { return nil }

// TestStoppedWhileCatchingUp: a batch whose every change was answered,
// stopped as the client waits for its own copy of the tables, says that
// every change was applied, not only that it was interrupted (a program
// reading it would run the batch again, and meet "exists" errors).
func TestStoppedWhileCatchingUp(t *testing.T) {
	r := &catchUpRemote{catching: make(chan struct{})}
	var stderr strings.Builder
	in := NewInterp(r, new(strings.Builder), Options{Mode: "client", Stderr: &stderr})
	done := make(chan error, 1)
	go func() {
		done <- in.RunReader("<stdin>", strings.NewReader("C,10.1.1.0/24,192.168.1.1,eth0\nC,10.1.2.0/24,192.168.1.1,eth0\n"))
	}()
	select {
	case <-r.catching:
	case err := <-done:
		t.Fatalf("the replay ended before it caught up: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no catch-up")
	}
	in.Abandon(errors.New("interrupted by SIGINT"), true)
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the replay did not end when stopped")
	}
	msg := stderr.String()
	if err != nil {
		msg += err.Error()
	}
	if !strings.Contains(msg, "every change sent was applied; interrupted by SIGINT") {
		t.Errorf("stopped while catching up: %q", msg)
	}
}

// quitRemote is a server that says goodbye (proto.QuitError.Final) as the
// batch arrives, before answering it: its answer says the batch was not
// applied, and the session's end stops the replay's waits at once.
type quitRemote struct {
	catchUpRemote
	in *Interp
}

func (r *quitRemote) Request(context.Context, uint64, []byte, int, bool) (<-chan proto.Reply, error) {
	qe := &proto.QuitError{Reason: "server lab got terminated", Final: true}
	ch := make(chan proto.Reply, 1)
	ch <- proto.Reply{Err: fmt.Errorf("%w, %w (%w)", proto.ErrNoReply, proto.ErrNotApplied, qe)}
	r.in.Abandon(qe, false)
	return ch, nil
}

// TestGoodbyeBeforeAnswer: when a server's goodbye both ends the wait for
// an answer and answers the batch as not applied, the answer is what the
// replay reports: the first line not applied, not a range of lines that
// may or may not have been (the wait's end came first in a select half
// the time).
func TestGoodbyeBeforeAnswer(t *testing.T) {
	for i := range 50 {
		r := &quitRemote{}
		var stderr strings.Builder
		r.in = NewInterp(r, new(strings.Builder), Options{Mode: "client", Stderr: &stderr})
		err := r.in.RunReader("<stdin>", strings.NewReader("C,10.1.1.0/24,192.168.1.1,eth0\nC,10.1.2.0/24,192.168.1.1,eth0\n"))
		msg := stderr.String()
		if err != nil {
			msg += err.Error()
		}
		if want := "<stdin>:1: not applied, nor any line after it: the server quit: server lab got terminated"; !strings.Contains(msg, want) {
			t.Fatalf("run %d: %q, want %q", i, msg, want)
		}
	}
}

// lostRemote loses the connection before answering: a crash, no goodbye.
type lostRemote struct{ catchUpRemote }

func (r *lostRemote) Request(context.Context, uint64, []byte, int, bool) (<-chan proto.Reply, error) {
	ch := make(chan proto.Reply, 1)
	ch <- proto.Reply{Err: fmt.Errorf("%w (connection reset)", proto.ErrNoReply)}
	return ch, nil
}

// TestUnknownFate: the lines of a batch whose answer never came are named
// as one range, or as the one line it was.
func TestUnknownFate(t *testing.T) {
	for input, want := range map[string]string{
		"C,10.1.1.0/24,192.168.1.1,eth0\n":                                 "<stdin>:1: line 1 may or may not have been applied, and none after it was: ",
		"C,10.1.1.0/24,192.168.1.1,eth0\nC,10.1.2.0/24,192.168.1.1,eth0\n": "<stdin>:1: lines 1 to 2 may or may not have been applied, and none after them was: ",
	} {
		var stderr strings.Builder
		err := NewInterp(&lostRemote{}, new(strings.Builder), Options{Mode: "client", Stderr: &stderr}).RunReader("<stdin>", strings.NewReader(input))
		if err == nil || !strings.Contains(err.Error()+stderr.String(), want) {
			t.Errorf("%q: %v %q, want %q", input, err, stderr.String(), want)
		}
	}
}

// skipRemote answers every request as skipped, as a server does the
// requests of an epoch after its first failure.
type skipRemote struct{ catchUpRemote }

func (r *skipRemote) Request(context.Context, uint64, []byte, int, bool) (<-chan proto.Reply, error) {
	ch := make(chan proto.Reply, 1)
	ch <- proto.Reply{Skipped: true}
	return ch, nil
}

// TestSkippedIsNotApplied: lines the server skipped are reported as not
// applied, never taken for applied.
func TestSkippedIsNotApplied(t *testing.T) {
	var stderr strings.Builder
	err := NewInterp(&skipRemote{}, new(strings.Builder), Options{Mode: "client", Stderr: &stderr}).
		RunReader("<stdin>", strings.NewReader("C,10.1.1.0/24,192.168.1.1,eth0\nC,10.1.2.0/24,192.168.1.1,eth0\n"))
	want := "<stdin>:1: not applied, nor any line after it: the server skipped it"
	if err == nil || !strings.Contains(err.Error()+stderr.String(), want) {
		t.Errorf("%v %q, want %q", err, stderr.String(), want)
	}
}

// countingLost is lostRemote counting the batches sent to it.
type countingLost struct {
	lostRemote
	sent int
}

func (r *countingLost) Request(ctx context.Context, epoch uint64, body []byte, n int, bail bool) (<-chan proto.Reply, error) {
	r.sent++
	return r.lostRemote.Request(ctx, epoch, body, n, bail)
}

// TestKeepGoingStopsAtALostServer: --keep-going goes on past lines that
// fail on their own, not past the loss of the server: the replay names
// the lines of unknown fate once and stops, and so do the files that
// sourced the one it happened in, after a line of their own failed too.
// (It went on, naming a range "and none after" for each batch after.)
func TestKeepGoingStopsAtALostServer(t *testing.T) {
	sub := filepath.Join(t.TempDir(), "sub.rtm")
	if err := os.WriteFile(sub, []byte("C,10.1.1.0/33,192.168.1.1,eth0\nC,10.1.2.0/24,192.168.1.1,eth0\nsync\nC,10.1.3.0/24,192.168.1.1,eth0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, input := range []string{
		"C,10.2.1.0/24,192.168.1.1,eth0\nsync\nC,10.2.2.0/24,192.168.1.1,eth0\n",
		"source " + sub + "\nC,10.2.1.0/24,192.168.1.1,eth0\nsync\nC,10.2.2.0/24,192.168.1.1,eth0\n",
	} {
		r := &countingLost{}
		var stderr strings.Builder
		err := NewInterp(r, new(strings.Builder), Options{Mode: "client", Stderr: &stderr, KeepGoing: true}).RunReader("<stdin>", strings.NewReader(input))
		msg := stderr.String()
		if err != nil {
			msg += err.Error()
		}
		if n := strings.Count(msg, "may or may not have been applied"); n != 1 || r.sent != 1 || strings.Contains(msg, "not applied, nor") {
			t.Errorf("%q: %d batches sent, %d ranges named: %q; want one of each", input, r.sent, n, msg)
		}
	}
}

// appliedThenQuit applies each batch and then says goodbye, as a server
// that quits cleanly after answering: the replay finds its input
// abandoned at its next line.
type appliedThenQuit struct {
	catchUpRemote
	in *Interp
}

func (r *appliedThenQuit) Request(ctx context.Context, epoch uint64, body []byte, n int, bail bool) (<-chan proto.Reply, error) {
	ch, err := r.catchUpRemote.Request(ctx, epoch, body, n, bail)
	r.in.Abandon(&proto.QuitError{Reason: "server lab got terminated", Final: true}, false)
	return ch, err
}

// TestKeepGoingStopsAtAQuit: a server that quits cleanly under a
// --keep-going replay of nested files: the first line not run (the
// `sync local` whose wait the quit cut short) is the only line named,
// not followed by a later one of each file that sourced the one it was
// in, which went on.
func TestKeepGoingStopsAtAQuit(t *testing.T) {
	sub := filepath.Join(t.TempDir(), "sub.rtm")
	if err := os.WriteFile(sub, []byte("C,10.1.1.0/24,192.168.1.1,eth0\nsync local\nC,10.1.2.0/24,192.168.1.1,eth0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &appliedThenQuit{catchUpRemote: catchUpRemote{catching: make(chan struct{})}}
	var stderr strings.Builder
	r.in = NewInterp(r, new(strings.Builder), Options{Mode: "client", Stderr: &stderr, KeepGoing: true})
	err := r.in.RunReader("<stdin>", strings.NewReader("source "+sub+"\nC,10.2.1.0/24,192.168.1.1,eth0\n"))
	msg := stderr.String()
	if err != nil {
		msg += err.Error()
	}
	named := regexp.MustCompile(`(?m)^(\S+): not applied, nor any line after it`).FindAllStringSubmatch(msg, -1)
	for _, m := range named {
		if m[1] != sub+":2" {
			t.Errorf("named as the first line not applied: %s, and %s:2 before it: %q", m[1], sub, msg)
		}
	}
	if len(named) == 0 {
		t.Errorf("no line named as the first not applied: %q", msg)
	}
}

// quitAtTheEnd is a server that quits once every change of a replay was
// answered: as the client catches up with them (how: 0, the catch-up
// fails; 1, the client learns of the quit there too, as a real one does)
// or at the next question (2).
type quitAtTheEnd struct {
	catchUpRemote
	in  *Interp
	how int
}

func (r *quitAtTheEnd) quit() *proto.QuitError {
	return &proto.QuitError{Reason: "server lab got terminated", Final: true}
}

func (r *quitAtTheEnd) CatchUp(context.Context, uint64, uint64) error {
	switch r.how {
	case 1:
		r.in.Abandon(r.quit(), false)
	case 2:
		return nil
	}
	return r.quit()
}

func (r *quitAtTheEnd) ServerStats(context.Context) ([]proto.Stat, error) { return nil, r.quit() }

// TestQuitAtTheEndOfASource: the server quits as a --keep-going client
// catches up at the end of a sourced file whose every change was
// answered. No line of the file is named, nor one past its end (the
// replay named sub.rtm:3 and <stdin>:3, lines that do not exist, and
// counted them as failed); the line after the source, which did not run,
// is named once. A question that fails on its own is its own failure.
func TestQuitAtTheEndOfASource(t *testing.T) {
	sub := filepath.Join(t.TempDir(), "sub.rtm")
	if err := os.WriteFile(sub, []byte("C,10.1.1.0/24,192.168.1.1,eth0\nC,10.1.2.0/24,192.168.1.1,eth0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for how, want := range []string{
		"<stdin>:2: not applied, nor any line after it: the server quit: server lab got terminated",
		"<stdin>:2: not applied, nor any line after it: the server quit: server lab got terminated",
		"<stdin>:2: show stats: the server quit: server lab got terminated\n<stdin>: 1 of 2 lines failed",
	} {
		r := &quitAtTheEnd{catchUpRemote: catchUpRemote{catching: make(chan struct{})}, how: how}
		var stderr strings.Builder
		r.in = NewInterp(r, new(strings.Builder), Options{Mode: "client", Stderr: &stderr, KeepGoing: true})
		err := r.in.RunReader("<stdin>", strings.NewReader("source "+sub+"\nshow stats\n"))
		got := stderr.String()
		if err != nil {
			got += err.Error()
		}
		if got != want {
			t.Errorf("quit %d: said\n%s\nwant\n%s", how, got, want)
		}
	}
}
