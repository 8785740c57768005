package repl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"rtm/proto"
)

// A client's changes are made by the server (the only writer of the
// store): the Interp sends them as requests and prints the server's
// answers. Lines replayed from a stream go in batches, several in flight,
// so a script piped through a client costs no round trip per line; a
// command the client answers itself waits first until every change sent
// before it has been applied by the server and has reached this client's
// own tables, so it sees what came before it.

// Remote is the engine of a client: the server runs its changes.
type Remote interface {
	// Request sends n command lines (each ending in '\n') to be run in
	// order; the reply arrives on the channel. With bail the request
	// stops at its first failure and the later requests of its epoch
	// are skipped.
	Request(epoch uint64, lines []byte, n int, bail bool) (<-chan proto.Reply, error)
	// CatchUp waits until the client has applied every change up to seq.
	CatchUp(ctx context.Context, seq uint64) error
}

const (
	// batchBytes is when a batch of lines is sent; with a line of up to
	// maxForwarded bytes more it stays inside a packet.
	batchBytes = 56 << 10
	// maxForwarded bounds a change sent as written. A valid change is
	// shorter by far; a longer line is parsed here, to say what is wrong.
	maxForwarded = 4 << 10
	// maxInflight bounds the requests awaiting replies: enough to keep
	// the server busy while the client reads and parses the next lines.
	maxInflight = 4
	// replyTimeout bounds the wait for one reply or for the catch-up.
	replyTimeout = time.Minute
)

// forwarding is the Interp's state of the requests of one stream.
type forwarding struct {
	epoch    uint64    // the replay the requests belong to
	lines    []byte    // the batch being filled
	locs     lineSpans // where each line of the batch came from
	inflight []sentBatch
	seq      uint64 // the server's sequence after the last reply
	caughtUp uint64 // the sequence this client has caught up with
	failed   *int   // the failures of the stream being replayed, reported as they come
}

type sentBatch struct {
	reply <-chan proto.Reply
	locs  lineSpans
}

// lineSpans records where each line of a batch came from as runs of
// consecutive lines of one file: a batch of a thousand lines of a script
// costs one entry, not a thousand.
type lineSpans struct {
	spans []lineSpan
	n     int // lines
}

type lineSpan struct {
	first Location
	n     int
}

func (s *lineSpans) add(loc Location) {
	if k := len(s.spans) - 1; k >= 0 && s.spans[k].first.File == loc.File && s.spans[k].first.Line+s.spans[k].n == loc.Line {
		s.spans[k].n++
	} else {
		s.spans = append(s.spans, lineSpan{first: loc, n: 1})
	}
	s.n++
}

// at returns where line i came from; past the end, the last line's.
func (s *lineSpans) at(i int) Location {
	i = min(i, s.n-1)
	for _, sp := range s.spans {
		if i < sp.n {
			return Location{File: sp.first.File, Line: sp.first.Line + i}
		}
		i -= sp.n
	}
	return Location{}
}

// newEpoch starts a new replay or a new line at the prompt: a failure of
// an earlier one no longer skips anything.
func (in *Interp) newEpoch() { in.fw.epoch++ }

// forward adds a change read at loc to the batch, sending the batch when
// it is full. The error is an earlier line's, whose failure stops the
// replay.
func (in *Interp) forward(loc Location, cmd *Command) error {
	return in.forwardLine(loc, cmd.AppendTo(nil))
}

// forwardLine is forward of a change as written (trimmed, no comment).
func (in *Interp) forwardLine(loc Location, text []byte) error {
	in.fw.lines = append(append(in.fw.lines, text...), '\n')
	in.fw.locs.add(loc)
	if len(in.fw.lines) < batchBytes {
		return nil
	}
	return in.sendBatch()
}

func (in *Interp) sendBatch() error {
	if in.fw.locs.n == 0 {
		return nil
	}
	var err error
	for len(in.fw.inflight) >= maxInflight && err == nil {
		err = in.awaitOldest()
	}
	if err != nil {
		in.fw.lines, in.fw.locs = in.fw.lines[:0], lineSpans{}
		return err
	}
	ch, err := in.r.Request(in.fw.epoch, in.fw.lines, in.fw.locs.n, !in.opts.KeepGoing)
	locs := in.fw.locs
	in.fw.lines, in.fw.locs = in.fw.lines[:0], lineSpans{}
	if err != nil {
		return at(locs.at(0), err)
	}
	in.fw.inflight = append(in.fw.inflight, sentBatch{reply: ch, locs: locs})
	return nil
}

// awaitOldest takes the reply to the oldest batch in flight: its output
// is printed, its failures reported (kept going) or returned (the first
// one, which stops the replay).
func (in *Interp) awaitOldest() error {
	b := in.fw.inflight[0]
	in.fw.inflight = in.fw.inflight[1:]
	ctx, done := in.waitContext(replyTimeout)
	defer done()
	var r proto.Reply
	select {
	case r = <-b.reply:
	case <-ctx.Done():
		return at(b.locs.at(0), in.waitError("the server's answer", ctx))
	}
	if r.Err != nil {
		first, last := b.locs.at(0), b.locs.at(b.locs.n-1)
		return at(first, fmt.Errorf("lines %d to %d: %w", first.Line, last.Line, r.Err))
	}
	in.fw.seq = max(in.fw.seq, r.Published)
	in.buf = append(in.buf, r.Output...)
	for _, f := range r.Failures {
		err := at(b.locs.at(f.Line), errors.New(f.Msg))
		if !in.opts.KeepGoing || in.fw.failed == nil {
			return err
		}
		*in.fw.failed += in.report(err)
	}
	return nil
}

// settle sends the batch, waits for every reply and then until this
// client's tables hold what the replies made: after it, a command the
// client answers itself sees every change sent before it.
func (in *Interp) settle() error {
	if in.r == nil {
		return nil
	}
	err := in.sendBatch()
	for len(in.fw.inflight) > 0 {
		// After a failure the rest are skipped by the server; take their
		// replies all the same, so nothing is left in flight.
		if e := in.awaitOldest(); err == nil {
			err = e
		}
	}
	if err != nil || in.fw.seq <= in.fw.caughtUp {
		return err
	}
	ctx, done := in.waitContext(replyTimeout)
	defer done()
	if err := in.r.CatchUp(ctx, in.fw.seq); err != nil {
		return in.waitError("this client's copy of the tables", ctx)
	}
	in.fw.caughtUp = in.fw.seq
	return nil
}

// remoteChange runs one change at the server and waits for it: at the
// prompt, and for `expect error`.
func (in *Interp) remoteChange(cmd *Command) error {
	if err := in.settle(); err != nil {
		return err
	}
	in.fw.lines = append(cmd.AppendTo(in.fw.lines), '\n')
	in.fw.locs.add(Location{})
	failed := in.fw.failed
	in.fw.failed = nil // the failure is this command's error, not a report
	defer func() { in.fw.failed = failed }()
	err := in.settle()
	var le *LineError
	if errors.As(err, &le) && le.File == "" {
		return le.Err
	}
	return err
}

// waitContext is a context for a wait that Interrupt (Ctrl-C) ends.
func (in *Interp) waitContext(timeout time.Duration) (context.Context, func()) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	in.cancelMu.Lock()
	in.cancel = cancel
	in.cancelMu.Unlock()
	if in.interrupted.Load() {
		cancel()
	}
	return ctx, func() {
		in.cancelMu.Lock()
		in.cancel = nil
		in.cancelMu.Unlock()
		cancel()
	}
}

// waitError says why a wait for what ended.
func (in *Interp) waitError(what string, ctx context.Context) error {
	if in.interrupted.Load() {
		return ErrInterrupted
	}
	return fmt.Errorf("no answer: gave up waiting for %s after %v: %w", what, replyTimeout, ctx.Err())
}

// RunRemote runs the lines of a client's request at the server: changes,
// and show clients or show info (what only the server knows). Anything
// else a client runs itself, and the server refuses it: a client must not
// make the server read files (source) or wait (sync). Like a replay, it
// parses a group of lines ahead and tells the engine their MACs before
// running them one by one. The output goes to w.
func (in *Interp) RunRemote(lines []byte, w io.Writer, after func(i int, err error) bool) {
	saved := in.out
	in.out = w
	defer func() { in.out = saved }()
	pf, fetch := in.e.(Prefetcher)
	if in.ahead == nil {
		in.ahead = make([]parsedLine, replayAhead)
	}
	for i := 0; len(lines) > 0; {
		n := 0
		for n < len(in.ahead) && len(lines) > 0 {
			end := bytes.IndexByte(lines, '\n')
			if end < 0 {
				end = len(lines) - 1 // the caller ends every line; be safe if not
			}
			p := &in.ahead[n]
			p.fwd = nil
			p.err = in.p.parseInto(lines[:end+1], &p.cmd)
			lines = lines[end+1:]
			n++
		}
		if fetch {
			prefetch(pf, in.ahead[:n], in.aheadMACs[:0])
		}
		for k := range n {
			if !after(i, in.runRemote(&in.ahead[k])) {
				return
			}
			i++
		}
	}
}

// runRemote runs one parsed line of a client's request.
func (in *Interp) runRemote(p *parsedLine) error {
	if p.err != nil {
		return p.err
	}
	cmd := &p.cmd
	switch {
	case cmd.Kind == KindNone, cmd.IsWrite():
	case cmd.Kind == KindShow && (cmd.Table == TableClients || cmd.Table == TableInfo):
	default:
		return fmt.Errorf("%s: a client runs this itself; it asks the server only for changes, show clients and show info", cmd.String())
	}
	err := in.exec(cmd)
	if ferr := in.flush(); err == nil {
		err = ferr
	}
	return err
}

// StartServer starts a server (proto.Start) whose clients' lines run on
// the same path as its own: each client gets an Interp of its own over
// the server seen from that client. rtm server and rtm bench start their
// servers with it.
func StartServer(o proto.ServerOptions) (*proto.Server, error) {
	o.Commands = func(origin *proto.Origin) proto.Commands {
		return NewInterp(origin, io.Discard, Options{Mode: "server", Name: o.Name})
	}
	return proto.Start(o)
}
