package repl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"rtm/store/entry"
	"sync"
	"sync/atomic"
	"time"
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
}

// Interp runs commands against an engine and writes their results to an
// io.Writer. It is used by one goroutine at a time; only its Console is
// for concurrent use.
type Interp struct {
	e       Tables
	c       Changer // the engine changes the tables itself (the server)
	r       Remote  // or the server does (a client); neither: refused
	out     io.Writer
	buf     []byte // results not yet written; flushed a line at a time
	opts    Options
	p       parser
	frames  []frame // the files and streams being replayed, innermost last
	sources Sources // the files among them, to refuse cycles
	prog    progress

	// Interrupt may come from another goroutine (a signal handler).
	interrupted atomic.Bool
	cancelMu    sync.Mutex
	cancel      context.CancelFunc // of the sync wait in progress

	// busy is held while a stream is being run, except while its reader
	// waits for input: by then every answer has been written. Quiesce
	// takes it to end the process without losing output.
	busy   sync.Mutex
	failed atomic.Int64 // lines that failed in replays, for the exit status

	fw       forwarding // a client's changes in flight to the server
	batching bool       // a stream is replayed: changes may go in batches

	// RunRemote's lines parsed ahead, and their MACs; reused.
	ahead     []parsedLine
	aheadMACs [replayAhead]entry.MAC
}

// Interrupt stops the command that is running: a sync stops waiting, a
// replay stops before its next line; either returns ErrInterrupted. The
// prompt uses it for Ctrl-C while a command runs. Safe for concurrent use.
func (in *Interp) Interrupt() {
	in.interrupted.Store(true)
	in.cancelMu.Lock()
	if in.cancel != nil {
		in.cancel()
	}
	in.cancelMu.Unlock()
}

// frame is one file or stream being replayed.
type frame struct {
	name string // as in messages
	dir  string // base of relative `source` paths ("" for the cwd)
}

// NewInterp returns an interpreter over e writing results to out (nil:
// os.Stdout). Changes are made if e is also a Changer, else refused.
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
	in := &Interp{e: e, out: out, opts: opts}
	in.c, _ = e.(Changer)
	if in.c == nil {
		in.r, _ = e.(Remote)
	}
	in.prog.init(opts.Stderr)
	return in
}

// outFlushAt is how much output may wait in the buffer: big enough that
// `show macs` over a million entries makes few writes.
const outFlushAt = 64 << 10

// emit writes buffered output once there is enough of it, cutting at a
// line end so concurrent Console output lands between lines.
func (in *Interp) emit() error {
	if len(in.buf) < outFlushAt {
		return nil
	}
	return in.write(bytes.LastIndexByte(in.buf, '\n') + 1)
}

// flush writes all buffered output.
func (in *Interp) flush() error { return in.write(len(in.buf)) }

func (in *Interp) write(n int) error {
	if n == 0 {
		return nil
	}
	in.prog.clear()
	_, err := in.out.Write(in.buf[:n])
	in.buf = append(in.buf[:0], in.buf[n:]...)
	if err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// Exec runs one command. Relative `source` paths are taken from the file
// being replayed, else from the current directory.
func (in *Interp) Exec(cmd *Command) error {
	in.newEpoch()
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
	case KindCreate, KindUpdate, KindDelete, KindReplace:
		return in.change(cmd)
	case KindShow:
		return in.show(cmd)
	case KindLookup:
		ip, err := in.e.LookupMAC(cmd.MAC)
		if err != nil {
			return engineError("lookup", cmd.MAC.String(), err)
		}
		if cmd.JSON {
			in.buf = append(appendMACJSON(in.buf, cmd.MAC, ip), '\n')
			return nil
		}
		in.buf = appendMACLine(in.buf, cmd.MAC, ip)
		return nil
	case KindRoute:
		r, ok := in.e.MatchRoute(cmd.IP)
		if !ok {
			return fmt.Errorf("route %s: no matching route", cmd.IP)
		}
		if cmd.JSON {
			in.buf = append(appendRouteJSON(in.buf, r), '\n')
			return nil
		}
		in.buf = append(r.AppendTo(in.buf), '\n')
		return nil
	case KindFlush:
		if in.r != nil {
			return in.remoteChange(cmd)
		}
		if in.c == nil {
			return engineError(cmd.String(), "", errReadOnly)
		}
		if err := in.c.Flush(cmd.Table != TableMACs, cmd.Table != TableRoutes); err != nil {
			return engineError(cmd.String(), "", err)
		}
		return nil
	case KindSource:
		return in.source(cmd.Arg)
	case KindSync:
		return in.sync(cmd.Timeout)
	case KindExpect:
		return in.expect(cmd)
	case KindHelp:
		in.buf = append(append(in.buf, helpText(cmd.Arg)...), '\n')
		return nil
	case KindQuit:
		return ErrQuit
	case KindDump:
		return in.dump()
	}
	return fmt.Errorf("command kind %d not runnable", cmd.Kind)
}

// change runs C/U/D. The engine enforces exists/not-found; the messages
// are phrased here, only on failure, so the success path does not format.
func (in *Interp) change(cmd *Command) error {
	if in.r != nil {
		return in.remoteChange(cmd)
	}
	err := errReadOnly
	if cmd.Table == TableRoutes {
		if in.c != nil {
			switch cmd.Kind {
			case KindCreate:
				err = in.c.CreateRoute(cmd.Route)
			case KindUpdate:
				err = in.c.UpdateRoute(cmd.Route)
			case KindReplace:
				err = in.c.ReplaceRoute(cmd.Route)
			default:
				err = in.c.DeleteRoute(cmd.Route.Prefix)
			}
		}
		if err != nil {
			return engineError(opNames[cmd.Kind]+" route", cmd.Route.Prefix.String(), err)
		}
		return nil
	}
	if in.c != nil {
		switch cmd.Kind {
		case KindCreate:
			err = in.c.CreateMAC(cmd.MAC, cmd.IP)
		case KindUpdate:
			err = in.c.UpdateMAC(cmd.MAC, cmd.IP)
		case KindReplace:
			err = in.c.ReplaceMAC(cmd.MAC, cmd.IP)
		default:
			err = in.c.DeleteMAC(cmd.MAC)
		}
	}
	if err != nil {
		return engineError(opNames[cmd.Kind]+" MAC", cmd.MAC.String(), err)
	}
	return nil
}

func (in *Interp) sync(timeout time.Duration) error {
	if timeout <= 0 {
		timeout = in.opts.SyncTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	in.cancelMu.Lock()
	in.cancel = cancel
	in.cancelMu.Unlock()
	defer func() {
		in.cancelMu.Lock()
		in.cancel = nil
		in.cancelMu.Unlock()
	}()
	if in.interrupted.Load() {
		return ErrInterrupted
	}
	if err := in.e.Sync(ctx); err != nil {
		if in.interrupted.Load() {
			return ErrInterrupted
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("sync timed out after %s: %w", timeout, err)
		}
		return fmt.Errorf("sync: %w", err)
	}
	return nil
}

// RunLine parses and runs one line found at loc. Errors come back as
// *LineError at loc (an error inside a sourced file keeps its own
// location); ErrQuit comes back bare.
func (in *Interp) RunLine(loc Location, line []byte) error {
	in.newEpoch()
	var cmd Command
	err := in.runLine(loc, line, &cmd)
	if ferr := in.flush(); err == nil {
		err = ferr
	}
	return err
}

func (in *Interp) runLine(loc Location, line []byte, cmd *Command) error {
	if t := in.forwardable(line); t != nil {
		return in.forwardLine(loc, t)
	}
	return in.runParsed(loc, cmd, in.p.parseInto(line, cmd))
}

// forwardable returns the change a client sends to the server as it is
// written (the server parses it, and refuses it in the same words,
// anyway), or nil for a line the client runs itself.
func (in *Interp) forwardable(line []byte) []byte {
	if !in.batching || in.r == nil {
		return nil
	}
	t := trimSpace(stripComment(line))
	if len(t) == 0 || len(t) > maxForwarded {
		return nil
	}
	if _, _, ok := cutOp(t); !ok {
		return nil
	}
	return t
}

// runParsed runs a line parsed into cmd, or reports perr, the error that
// parsing it gave.
func (in *Interp) runParsed(loc Location, cmd *Command, perr error) error {
	if err := perr; err != nil {
		// A change sent before this line that failed comes first.
		if serr := in.settle(); serr != nil {
			return serr
		}
		return &LineError{File: loc.File, Line: loc.Line, Err: err}
	}
	if cmd.Kind == KindNone {
		return nil
	}
	if in.batching && in.r != nil && cmd.IsWrite() {
		return in.forward(loc, cmd)
	}
	if err := in.settle(); err != nil {
		return err
	}
	return at(loc, in.exec(cmd))
}
