package repl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"rtm/proto"
	"rtm/store/entry"
)

// A client's changes are made by the server, the only writer of the
// store. The forwarder sends them as requests of binary changes (parsed
// here, applied there without going back up into the language) and
// reports the server's answers as the server's own prompt would. Lines
// replayed from a stream go in batches, several in flight, so a script
// piped through a client costs no round trip per line; a command the
// client answers itself first settles: it waits until every change sent
// before it has been applied by the server and has reached this client's
// own tables, so it sees what came before it.

const (
	// maxInflight bounds the requests awaiting replies: enough to keep
	// the server busy while the client reads and parses the next lines,
	// and no more than the socket holds without a send waiting
	// (proto.MaxInflight says why).
	maxInflight = proto.MaxInflight
	// replyTimeout bounds the wait for one reply or for the catch-up.
	replyTimeout = time.Minute
)

// forwarder is the client's side of its changes: the batch being filled,
// the batches in flight, and where each of their changes came from.
type forwarder struct {
	remote    Remote
	stop      *interrupter
	keepGoing bool
	// wait is how long a batch waits for a connection to the server
	// (--wait); a change typed at the prompt waits until Ctrl-C, saying
	// so after a second (notice).
	wait   time.Duration
	notice func(format string, args ...any)
	typed  bool // the change being sent was typed: one, not a batch

	epoch     uint64      // the replay the requests belong to
	batch     []byte      // changes encoded with their values
	n         int         // changes in batch
	locs      lineSpans   // where each change of the batch came from
	inflight  []sentBatch // oldest first
	free      [][]byte    // batch buffers to reuse
	seq, conn uint64      // the server's sequence after the last reply, and its connection
	caughtUp  uint64      // the sequence this client has caught up with
	// failed counts the failures of the stream being replayed, which a
	// keep-going replay reports as they come (report); nil at the prompt.
	failed *int
	report func(err error, failed *int, sourced *sourcedFailures)
	// answer, if set, is told the outcome of every change, in order, as
	// its reply is taken: a framed stream answers each line. Failures
	// then neither stop the stream nor skip later requests.
	answer func(error)
}

type sentBatch struct {
	reply <-chan proto.Reply
	body  []byte
	locs  lineSpans
}

// lineSpans records where each change of a batch came from as runs of
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
func (f *forwarder) newEpoch() { f.epoch++ }

// add adds a change read at loc to the batch, sending the batch when it
// is full. The error is an earlier change's, whose failure stops the
// replay.
func (f *forwarder) add(loc Location, c entry.Change) error {
	if len(f.batch)+proto.MaxRecord > proto.MaxRequest {
		if err := f.send(); err != nil {
			return err
		}
	}
	f.append(loc, c)
	return nil
}

// append adds c, read at loc, to the batch. A batch buffer is made whole
// the first time: grown by append, each request's buffer was three or
// four fresh allocations and copies.
func (f *forwarder) append(loc Location, c entry.Change) {
	if f.batch == nil {
		f.batch = make([]byte, 0, proto.MaxRequest)
	}
	f.batch = proto.AppendChange(f.batch, c, true)
	f.n++
	f.locs.add(loc)
}

// send sends the batch, once fewer than maxInflight are in flight. The
// replies that have come are taken first: after a lost connection
// nothing more is sent.
func (f *forwarder) send() error {
	if f.n == 0 {
		return nil
	}
	var err error
	for len(f.inflight) > 0 && err == nil {
		select {
		case r := <-f.inflight[0].reply:
			err = f.took(r)
			continue
		default:
		}
		if len(f.inflight) < maxInflight {
			break
		}
		err = f.awaitOldest()
	}
	body, locs, n := f.batch, f.locs, f.n
	f.batch, f.locs, f.n = nil, lineSpans{}, 0
	if k := len(f.free); k > 0 {
		f.batch, f.free = f.free[k-1], f.free[:k-1]
	}
	if err != nil {
		return err
	}
	ctx, done := f.sendContext()
	ch, err := f.remote.Request(ctx, f.epoch, body, n, !f.keepGoing && f.answer == nil)
	done()
	if err != nil {
		return f.notSent(locs, err)
	}
	f.inflight = append(f.inflight, sentBatch{reply: ch, body: body, locs: locs})
	return nil
}

// sendContext bounds the wait for a connection to the server: a batch
// waits --wait; a typed change waits until Ctrl-C, and says after a
// second that it waits.
func (f *forwarder) sendContext() (context.Context, func()) {
	if !f.typed {
		cause := fmt.Errorf("none within --wait %v", f.wait)
		if f.wait <= 0 {
			cause = errors.New("not waiting for one (--wait 0)")
		}
		return context.WithTimeoutCause(context.Background(), f.wait, cause)
	}
	ctx, done := f.stop.wait(replyTimeout)
	t := time.AfterFunc(time.Second, func() { f.notice("waiting for the server to come back (Ctrl-C gives up)") })
	return ctx, func() { t.Stop(); done() }
}

// awaitOldest waits for the reply to the oldest batch in flight and
// takes it.
func (f *forwarder) awaitOldest() error {
	ctx, done := f.stop.wait(replyTimeout)
	defer done()
	select {
	case r := <-f.inflight[0].reply:
		return f.took(r)
	case <-ctx.Done():
		// The session's end both answers the requests in flight and
		// ends the wait: an answer that is there is taken first.
		select {
		case r := <-f.inflight[0].reply:
			return f.took(r)
		default:
		}
		return f.unknown(f.waitError("the server's answer"))
	}
}

// took takes the reply r to the oldest batch in flight: its failures are
// reported (kept going) or returned (the first one, which stops the
// replay).
func (f *forwarder) took(r proto.Reply) error {
	b := f.inflight[0]
	if r.Err != nil {
		if qe := finalGoodbye(r.Err); qe != nil {
			return f.notApplied(qe)
		}
		return f.unknown(r.Err)
	}
	f.inflight = f.inflight[1:]
	f.free = append(f.free, b.body[:0])
	// Replies come in order: the last one's sequence is the server's, on
	// the connection it came on; a new connection numbers afresh.
	if r.Conn != f.conn {
		f.caughtUp = 0
	}
	f.seq, f.conn = r.Published, r.Conn
	if r.Skipped {
		// The server skips an epoch's requests after its first failure,
		// which stopped the replay; a skip taken as the replay goes on
		// is lines lost, which must not pass for applied.
		return at(b.locs.at(0), noneAfter{errors.New("not applied, nor any line after it: the server skipped it, as an earlier line of this input had failed")})
	}
	for i, fl := range r.Failures {
		err := at(b.locs.at(fl.Index), changeError(changeAt(b.body, fl.Index), errors.New(fl.Msg)))
		switch {
		case f.answer != nil:
			from := 0
			if i > 0 {
				from = r.Failures[i-1].Index + 1
			}
			f.answerAll(from, fl.Index, nil)
			f.answer(err)
		case !f.keepGoing || f.failed == nil:
			return err
		default:
			f.report(err, f.failed, nil) // a line's own failure, not a file's summary
		}
	}
	if f.answer != nil {
		from := 0
		if k := len(r.Failures); k > 0 {
			from = r.Failures[k-1].Index + 1
		}
		f.answerAll(from, b.locs.n, nil)
	}
	return nil
}

// answerAll answers the changes from up to (not including) to with err.
func (f *forwarder) answerAll(from, to int, err error) {
	for range max(to-from, 0) {
		f.answer(err)
	}
}

// unknown says that the changes of every batch in flight may or may not
// have been applied: the connection was lost, or no answer came. That is
// one range, from the first line not answered to the last line sent;
// nothing after it was sent. A program that resumes from the first line
// named loses nothing.
func (f *forwarder) unknown(cause error) error {
	if errors.Is(cause, ErrInterrupted) {
		// Lines of unknown fate are no quiet end, even when Ctrl-C or a
		// signal left them so: the range is reported, and fails.
		cause = errStopped
	}
	first, last, n := f.inflight[0].locs.at(0), Location{}, 0
	for _, b := range f.inflight {
		last = b.locs.at(b.locs.n - 1)
		n += b.locs.n
		f.free = append(f.free, b.body[:0])
	}
	f.inflight = nil
	what := fmt.Sprintf("lines %d to %d may or may not have been applied", first.Line, last.Line)
	if first == last {
		what = fmt.Sprintf("line %d may or may not have been applied", first.Line)
	}
	if f.answer == nil {
		after := ", and none after them was"
		if first == last {
			after = ", and none after it was"
		}
		return at(first, noneAfter{fmt.Errorf("%s%s: %w", what, after, cause)})
	}
	// A framed stream fails every line of the range at once, and goes on:
	// lines after them may be applied yet, by the next connection.
	err := at(first, fmt.Errorf("%s: %w", what, cause))
	f.answerAll(0, n, err)
	return nil
}

// notApplied says that no batch in flight was applied, nor anything
// after them: the server's goodbye said it had answered every request it
// applied (proto.QuitError.Final), and these had no answer.
func (f *forwarder) notApplied(cause error) error {
	first, n := f.inflight[0].locs.at(0), 0
	for _, b := range f.inflight {
		n += b.locs.n
		f.free = append(f.free, b.body[:0])
	}
	f.inflight = nil
	switch {
	case f.answer != nil:
		f.answerAll(0, n, at(first, fmt.Errorf("not applied: %w", cause)))
		return nil
	case f.typed:
		return at(first, fmt.Errorf("not applied: %w", cause))
	}
	return at(first, noneAfter{fmt.Errorf("not applied, nor any line after it: %w", cause)})
}

// noneAfter marks the error of lines not applied, or of unknown fate,
// after which no line was sent: it names the line a program resumes
// from, and a stop of the replay that follows has nothing to add to it.
type noneAfter struct{ error }

func (e noneAfter) Unwrap() error { return e.error }

// settledAt is the end of a replay stopped at the line at loc: the error
// of the lines still in flight (settled), and the stop's own (stop) unless
// settled names the first line not applied already, when a second line
// would name a later one. A catch-up the server's quitting cut short adds
// nothing to a stop: every change sent was answered, and the stop names
// the first line not run.
func settledAt(settled, stop error) error {
	switch {
	case errors.As(settled, new(noneAfter)):
		return settled
	case errors.Is(settled, proto.ErrSessionEnded) && !errors.As(settled, new(*LineError)):
		return stop // (a line's own failure is kept)
	}
	return errors.Join(settled, stop)
}

// finalGoodbye is the server's goodbye in err if it said that it applies
// no request it has not answered (proto.QuitError.Final), else nil.
func finalGoodbye(err error) *proto.QuitError {
	var qe *proto.QuitError
	if errors.As(err, &qe) && qe.Final {
		return qe
	}
	return nil
}

// notSent is unknown for a batch that could not be sent: with batches
// still unanswered, their range; else the batch and everything after it
// were not applied.
func (f *forwarder) notSent(locs lineSpans, cause error) error {
	// Answers that came before the loss are taken first: the fate of
	// their lines is known, and the range names only the others.
	if err := f.takeReady(); err != nil {
		return err
	}
	if len(f.inflight) > 0 {
		// The replies before a goodbye all came before it: with one that
		// says no more were applied, the rest were not.
		settle := f.unknown
		if qe := finalGoodbye(cause); qe != nil {
			settle = func(error) error { return f.notApplied(qe) }
		}
		if err := settle(cause); err != nil {
			return err
		}
	}
	switch {
	case f.answer != nil:
		f.answerAll(0, locs.n, at(locs.at(0), fmt.Errorf("not applied: %w", cause)))
		return nil
	case f.typed:
		return at(locs.at(0), fmt.Errorf("not applied: %w", cause))
	}
	return at(locs.at(0), noneAfter{fmt.Errorf("not applied, nor any line after it: %w", cause)})
}

// takeReady takes the replies already here to the batches in flight,
// oldest first, without waiting for the others.
func (f *forwarder) takeReady() error {
	for len(f.inflight) > 0 {
		select {
		case r := <-f.inflight[0].reply:
			if err := f.took(r); err != nil {
				return err
			}
		default:
			return nil
		}
	}
	return nil
}

// changeAt decodes change i of a request body, to name it in a message.
func changeAt(body []byte, i int) entry.Change {
	d := proto.Decoder{Values: true}
	d.Reset(body, uint32(i+1))
	var c entry.Change
	for range i + 1 {
		d.Next(&c)
	}
	return c
}

// settle sends the batch, waits for every reply and then until this
// client's tables hold what the replies made: after it, a command the
// client answers itself sees every change sent before it.
func (f *forwarder) settle() error {
	err := f.send()
	for len(f.inflight) > 0 {
		// After a failure the rest are skipped by the server; take their
		// replies all the same, so nothing is left in flight.
		if e := f.awaitOldest(); err == nil {
			err = e
		}
	}
	if err != nil || f.seq <= f.caughtUp {
		return err
	}
	ctx, done := f.stop.wait(replyTimeout)
	defer done()
	if err := f.remote.CatchUp(ctx, f.conn, f.seq); err != nil {
		if errors.Is(err, proto.ErrSessionEnded) && !f.stop.stopped() {
			return err // the server quit, which it says
		}
		// Every reply came: what is left unknown is this client's copy,
		// not the server's tables.
		return fmt.Errorf("every change sent was applied; %w", f.waitError("this client's copy of the tables"))
	}
	f.caughtUp = f.seq
	return nil
}

// one makes the change read at loc at the server and waits for it: at
// the prompt, in the framed protocol, and for `expect error`. Its failure
// is its own error, not a report.
func (f *forwarder) one(loc Location, c entry.Change) error {
	if err := f.settle(); err != nil {
		return err
	}
	failed := f.failed
	f.failed, f.typed = nil, true
	defer func() { f.failed, f.typed = failed, false }()
	// An epoch of its own: the failure of an earlier change must not make
	// the server skip this one.
	f.newEpoch()
	f.append(loc, c)
	err := f.settle()
	var le *LineError
	if errors.As(err, &le) && le.File == loc.File && le.Line == loc.Line {
		return le.Err
	}
	return err
}

// waitError says why a wait for what ended: ErrInterrupted, or why the
// input was abandoned (the server quit).
func (f *forwarder) waitError(what string) error {
	if f.stop.stopped() {
		return f.stop.err()
	}
	return fmt.Errorf("no answer: gave up waiting for %s after %v", what, replyTimeout)
}
