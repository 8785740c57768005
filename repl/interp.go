package repl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"rtm/proto"
	"rtm/store/entry"
)

// DefaultSyncTimeout bounds `sync` when neither the command nor Options
// give a timeout.
const DefaultSyncTimeout = 10 * time.Second

// Options configure an Interp.
type Options struct {
	Mode string // "server" or "client": names the prompt and the history file
	Name string // the instance name, shown in the prompt
	// KeepGoing makes a replay report every failing line (to Stderr) and
	// fail at its end, instead of stopping at the first error.
	KeepGoing   bool
	SyncTimeout time.Duration // for `sync` without TIMEOUT; 0 means DefaultSyncTimeout
	// Console carries the prompt and other goroutines' output; Interactive
	// uses it. Nil: Interactive makes one on os.Stdout.
	Console *Console
	// Stderr receives the errors a keep-going replay reports, and replay
	// progress when it is a terminal. Nil means os.Stderr.
	Stderr io.Writer
	// Wait is how long a client's replayed changes wait for a connection
	// to the server (rtm client --wait); a change typed at the prompt
	// waits until Ctrl-C.
	Wait time.Duration
}

// Interp runs commands against an engine and writes their results to an
// io.Writer. It is used by one goroutine at a time; only Interrupt and its
// Console are for concurrent use.
type Interp struct {
	engine  Tables
	changer Changer    // the engine applies changes itself (the server)
	fw      *forwarder // or the server does (a client); neither: refused
	out     io.Writer
	buf     []byte // results not yet written; flushed a line at a time
	nolf    int    // in.buf[:nolf] holds no line end (emit looked)
	// bufFrom is the line of a replay whose answer in.buf starts with:
	// an output error, noticed when the buffer is written, names the
	// lines whose answers it lost.
	bufFrom Location
	// held is the engine that holds a replay's changes (Batcher.Hold):
	// they are sent before anything that may wait, a write among them.
	held    Batcher
	opts    Options
	parser  parser
	frames  []frame // the files and streams being replayed, innermost last
	sources Sources // the files among them, to refuse cycles
	prog    progress
	stop    interrupter
	here    Location // where the line that runs was read

	// busy is held while a stream is being run, except while its reader
	// waits for input: by then every answer has been written. Quiesce
	// takes it to end the process without losing output.
	busy    sync.Mutex
	running atomic.Pointer[streamPos] // the stream being replayed, innermost
	writing atomic.Bool               // output is being written (Running)
	failed  atomic.Int64              // lines that failed in replays, for the exit status
	written atomic.Int64              // bytes of output written, which Quiesce watches move

	batching bool // a stream is replayed: a client's changes may go in batches
	typed    bool // the lines are a person's, typed at a terminal: a long wait is said
}

// Interrupt stops the command that is running: a sync stops waiting, a
// replay stops before its next line; either returns ErrInterrupted. The
// prompt uses it for Ctrl-C while a command runs. Safe for concurrent use.
func (in *Interp) Interrupt() { in.stop.Interrupt() }

// streamPos is how far a replay has gone, read by another goroutine when
// the replay cannot be stopped (Running).
type streamPos struct {
	name string
	line atomic.Int64 // the last line started
}

// keepGoing makes failed lines reported, not the end of the replay, from
// now on (--keep-going), for the changes a client sends too.
func (in *Interp) keepGoing() { in.setKeepGoing(true) }

// setKeepGoing sets --keep-going's rule and returns the one before.
func (in *Interp) setKeepGoing(on bool) (was bool) {
	was, in.opts.KeepGoing = in.opts.KeepGoing, on
	if in.fw != nil {
		in.fw.keepGoing = on
	}
	return was
}

// Running says which line a replay started last, if one runs (no line
// after it has run), and whether output is being written: a replay that
// cannot be stopped is held up by its output or by its input. Safe for
// concurrent use.
func (in *Interp) Running() (last Location, writing, ok bool) {
	pos := in.running.Load()
	if pos == nil {
		return Location{}, false, false
	}
	line := int(pos.line.Load())
	return Location{File: pos.name, Line: line}, in.writing.Load(), line > 0
}

// Abandon stops the replay that runs because its lines can no longer be
// applied (a client's server quit, a signal): it reports the line it
// would run next, and every line after it, not applied for cause, and
// fails; with quietIdle, not if it was only waiting for its next line.
func (in *Interp) Abandon(cause error, quietIdle bool) { in.stop.abandon(cause, quietIdle) }

// frame is one file or stream being replayed.
type frame struct {
	name string // as in messages
	dir  string // base of relative `source` paths ("" for the cwd)
}

// NewInterp returns an interpreter over e writing results to out (nil:
// os.Stdout). Changes are applied if e is a Changer, sent to the server if
// it is a Remote, else refused.
func NewInterp(e Tables, out io.Writer, opts Options) *Interp {
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.SyncTimeout <= 0 {
		opts.SyncTimeout = DefaultSyncTimeout
	}
	if opts.Mode == "" {
		opts.Mode = "server"
	}
	if out == nil {
		out = os.Stdout
	}
	in := &Interp{engine: e, out: out, opts: opts}
	in.sources.Stopped = in.stop.stopped
	in.changer, _ = e.(Changer)
	if r, ok := e.(Remote); ok && in.changer == nil {
		in.fw = &forwarder{remote: r, stop: &in.stop, keepGoing: opts.KeepGoing, wait: opts.Wait, report: in.report, notice: in.notice}
	}
	in.prog.init(opts.Stderr)
	return in
}

// outFlushAt is how much output may wait in the buffer: big enough that
// `show macs` over a million entries makes few writes.
const outFlushAt = 64 << 10

// emit writes buffered output once there is enough of it, cutting at a
// line end so concurrent Console output lands between lines.
//
// A JSON listing is one line: emit remembers how far it found no line
// end, so that each call looks only at what was added since (looking at
// the whole buffer each time made `show routes json` of 100 k routes
// take minutes).
func (in *Interp) emit() error {
	if len(in.buf) < outFlushAt {
		return nil
	}
	n := bytes.LastIndexByte(in.buf[in.nolf:], '\n') + 1
	if n == 0 {
		in.nolf = len(in.buf)
		return nil
	}
	return in.write(in.nolf + n)
}

// hold has b hold the changes made from now on (Batcher.Hold), until
// sendHeld or the replay's end.
func (in *Interp) hold(b Batcher) {
	b.Hold()
	in.held = b
}

// sendHeld sends the changes held, if any.
func (in *Interp) sendHeld() {
	if in.held != nil {
		in.held.Send()
		in.held = nil
	}
}

// outputLost locates err, if it is an output error not yet located: at
// here, the line after which the write failed, naming the answers lost.
func (in *Interp) outputLost(err error, here Location) error {
	var oe *OutputError
	if err == nil || !errors.As(err, &oe) || errors.As(err, new(*LineError)) {
		return err
	}
	return at(here, fmt.Errorf("%w: %s", oe, in.lostAnswers(here)))
}

// sayLost says that the answers before the error a replay ended with
// were not all written either (err the failed write).
func (in *Interp) sayLost(err error) {
	in.prog.clear()
	fmt.Fprintln(in.opts.Stderr, in.outputLost(err, in.here))
}

// lostAnswers says whose answers a failed write of the buffer lost, the
// write made after the line at here ran: those from bufFrom's on.
func (in *Interp) lostAnswers(here Location) string {
	switch {
	case in.bufFrom == here:
		return "its answer was not all written (the line ran)"
	case in.bufFrom.File == here.File:
		return fmt.Sprintf("the answers of lines %d to %d were not all written (the lines ran)", in.bufFrom.Line, here.Line)
	}
	return fmt.Sprintf("the answers from %s to this line were not all written (the lines ran)", in.bufFrom)
}

// writePiece is the most output one Write carries.
const writePiece = 64 << 10

// flush writes all buffered output.
func (in *Interp) flush() error { return in.write(len(in.buf)) }

func (in *Interp) write(n int) error {
	if n == 0 {
		return nil
	}
	// A reader that does not read would hold the changes up too, every
	// client's (a held Origin has the writers send whole packets only).
	in.sendHeld()
	in.prog.clear()
	// In pieces of whole lines, so that an ending sees a long answer
	// (show macs of a million) move while a slow reader takes it.
	var err error
	for b := in.buf[:n]; len(b) > 0 && err == nil; {
		k := len(b)
		if k > writePiece {
			if i := bytes.LastIndexByte(b[:writePiece], '\n'); i >= 0 {
				k = i + 1
			} else if i := bytes.IndexByte(b[writePiece:], '\n'); i >= 0 {
				k = writePiece + i + 1
			}
		}
		in.writing.Store(true)
		_, err = in.out.Write(b[:k])
		in.writing.Store(false)
		in.written.Add(int64(k))
		b = b[k:]
	}
	in.buf = append(in.buf[:0], in.buf[n:]...)
	in.nolf = 0
	if err != nil {
		return &OutputError{Err: err}
	}
	return nil
}

// Exec runs one command. Relative `source` paths are taken from the file
// being replayed, else from the current directory.
func (in *Interp) Exec(cmd *Command) error {
	in.newEpoch()
	in.here = Location{}
	err := in.exec(cmd)
	if ferr := in.flush(); err == nil {
		err = ferr
	}
	return err
}

func (in *Interp) exec(cmd *Command) error {
	switch cmd.Kind {
	case KindNone:
		return nil
	case KindChange:
		return in.change(&cmd.Change)
	case KindShow:
		return in.show(cmd)
	case KindLookup:
		ip, err := in.engine.LookupMAC(cmd.MAC)
		if err != nil {
			return &opError{what: "lookup " + cmd.MAC.String(), msg: entry.Reason(err), err: err}
		}
		if cmd.JSON {
			in.buf = append(appendMACJSON(in.buf, cmd.MAC, ip), '\n')
			return nil
		}
		in.buf = appendMACLine(in.buf, cmd.MAC, ip)
		return nil
	case KindRoute:
		r, ok := in.engine.MatchRoute(cmd.IP)
		if !ok {
			return fmt.Errorf("route %s: no matching route", cmd.IP)
		}
		if cmd.JSON {
			in.buf = append(appendRouteJSON(in.buf, r), '\n')
			return nil
		}
		in.buf = append(appendRouteForm(in.buf, r), '\n')
		return nil
	case KindSource:
		return in.source(cmd.Arg)
	case KindSync:
		return in.sync(cmd.Local, cmd.Timeout)
	case KindExpect:
		return in.expect(cmd)
	case KindHelp:
		in.buf = append(in.buf, helpText(cmd.Arg)...)
		if in.fw != nil && cmd.Arg == "" {
			in.buf = append(in.buf, clientHelp...)
		}
		in.buf = append(in.buf, '\n')
		return nil
	case KindQuit:
		return ErrQuit
	case KindDump:
		return in.dump()
	}
	return fmt.Errorf("command kind %d not runnable", cmd.Kind)
}

// change makes one change: through the engine, through the server, or
// not at all. The engine enforces exists and not found; the messages are
// phrased here, only on failure, so the success path does not format.
func (in *Interp) change(c *entry.Change) error {
	switch {
	case in.fw != nil:
		return in.fw.one(in.here, *c)
	case in.changer == nil:
		return changeError(*c, errReadOnly)
	}
	if err := in.changer.Apply(*c); err != nil {
		return changeError(*c, err)
	}
	return nil
}

// notice tells the person at the prompt (or stderr) what the command that
// runs is waiting for.
func (in *Interp) notice(format string, args ...any) {
	if in.opts.Console != nil {
		in.opts.Console.Printf(format, args...)
		return
	}
	fmt.Fprintf(in.opts.Stderr, format+"\n", args...)
}

// newEpoch starts a new replay or a new line at the prompt.
func (in *Interp) newEpoch() {
	if in.fw != nil {
		in.fw.newEpoch()
	}
}

// settle waits until every change a client sent has been answered and
// has reached its own tables; nothing at the server.
func (in *Interp) settle() error {
	if in.fw == nil {
		return nil
	}
	return in.fw.settle()
}

// sync waits until every client has applied every change made so far
// (local: until this process's copy has); a client asks the server.
func (in *Interp) sync(local bool, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = in.opts.SyncTimeout
	}
	ctx, done := in.stop.wait(timeout)
	defer done()
	if in.stop.stopped() {
		return in.stop.err()
	}
	wait := in.engine.Sync
	if local {
		wait = in.engine.SyncLocal
	}
	if in.typed {
		// At the prompt, a wait of more than a second (a client behind,
		// a server that is down) is said, with how to end it.
		t := time.AfterFunc(time.Second, func() { in.notice("sync: waiting, for up to %s (Ctrl-C gives up)", timeout) })
		defer t.Stop()
	}
	if err := wait(ctx); err != nil {
		if in.stop.stopped() {
			if in.stop.cause() != nil {
				return in.stop.err() // the input was abandoned, and says why
			}
			return fmt.Errorf("sync: %w", ErrInterrupted)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("sync timed out after %s: %w", timeout, err)
		}
		if errors.Is(err, proto.ErrServerQuit) {
			return err // the server quit as it waited, and says why
		}
		return fmt.Errorf("sync: %w", err)
	}
	return nil
}

// RunLine parses and runs one line found at loc. Errors come back as
// *LineError at loc (an error inside a sourced file keeps its own
// location); ErrQuit comes back bare.
func (in *Interp) RunLine(loc Location, line []byte) error {
	// Busy as a replay is: an ending waits for it (Quiesce), and knows
	// when it still runs.
	in.busy.Lock()
	defer in.busy.Unlock()
	in.newEpoch()
	var cmd Command
	err := in.runLine(loc, line, &cmd)
	if ferr := in.flush(); err == nil {
		err = ferr
	}
	return err
}

func (in *Interp) runLine(loc Location, line []byte, cmd *Command) error {
	return in.runParsed(loc, cmd, in.parser.parseInto(line, cmd))
}

// runParsed runs a line parsed into cmd, or reports perr, the error that
// parsing it gave. A client replaying a stream sends its changes in
// batches; anything else waits for the changes sent before it.
func (in *Interp) runParsed(loc Location, cmd *Command, perr error) error {
	if perr == nil && cmd.Kind == KindNone {
		return nil
	}
	if perr == nil && in.batching && in.fw != nil && cmd.Kind == KindChange {
		return in.fw.add(loc, cmd.Change)
	}
	// A change sent before this line that failed comes first.
	if err := in.settle(); err != nil {
		return err
	}
	if perr != nil {
		return &LineError{File: loc.File, Line: loc.Line, Err: perr}
	}
	in.here = loc
	return at(loc, in.exec(cmd))
}
