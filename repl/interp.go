package repl

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"rtm/store"
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
	aheadMACs [replayAhead]store.MAC
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

// RunFile replays the script at path, stopping at the first error (a
// *LineError naming the file and line) unless Options.KeepGoing is set.
// A `quit` in it ends the replay with ErrQuit.
func (in *Interp) RunFile(path string) error {
	in.busy.Lock()
	defer in.busy.Unlock()
	in.newEpoch()
	err := in.runFile(path)
	if ferr := in.flush(); err == nil {
		err = ferr
	}
	in.prog.done(len(in.frames) == 0)
	return in.tally(err)
}

// RunReader replays a stream; name stands for it in messages ("<stdin>").
// Relative `source` paths are taken from the current directory.
//
// The stream is a conversation: whenever no complete line is waiting,
// every answer so far is written before the next read, so a program that
// writes a command and waits gets its whole answer, while a large file
// replayed from a pipe is flushed only once per buffer.
func (in *Interp) RunReader(name string, r io.Reader) error {
	in.busy.Lock()
	defer in.busy.Unlock()
	in.newEpoch()
	in.frames = append(in.frames, frame{name: name})
	err := in.runStream(name, &waitingReader{r: r, in: in})
	in.frames = in.frames[:len(in.frames)-1]
	if ferr := in.flush(); err == nil {
		err = ferr
	}
	in.prog.done(len(in.frames) == 0)
	return in.tally(err)
}

// waitingReader releases the Interp's busy lock while it waits for
// input, which it only does once every answer has been written.
type waitingReader struct {
	r  io.Reader
	in *Interp
}

func (w *waitingReader) Read(p []byte) (int, error) {
	w.in.busy.Unlock()
	n, err := w.r.Read(p)
	w.in.busy.Lock()
	return n, err
}

// Quiesce waits, for at most timeout, until the stream being run is
// waiting for input or has ended, with every answer written, and then
// keeps it from running anything more. A process calls it before it
// exits on a signal or at the end of its session, so that nothing it has
// answered is lost. It reports whether it got there in time.
func (in *Interp) Quiesce(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for !in.busy.TryLock() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// Failed is the number of lines that failed in replays so far (scripts,
// piped stdin, sourced files): non-zero means the exit status must be.
func (in *Interp) Failed() int { return int(in.failed.Load()) }

// source runs `source FILE`.
func (in *Interp) source(arg string) error {
	path := arg
	if !filepath.IsAbs(path) && len(in.frames) > 0 {
		path = filepath.Join(in.frames[len(in.frames)-1].dir, path)
	}
	if err := in.runFile(path); err != nil {
		var le *LineError
		if errors.As(err, &le) || errors.Is(err, ErrQuit) || errors.Is(err, ErrFailed) {
			return err
		}
		return fmt.Errorf("source: %w", err)
	}
	return nil
}

func (in *Interp) runFile(path string) error {
	f, err := in.sources.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	defer in.sources.Pop()
	in.frames = append(in.frames, frame{name: path, dir: filepath.Dir(path)})
	defer func() { in.frames = in.frames[:len(in.frames)-1] }()
	return in.runStream(path, f)
}

var utf8BOM = []byte("\ufeff")

// readBufSize is the replay read buffer: large, so ReadSlice returns lines
// straight from it and the read syscalls are few.
const readBufSize = 1 << 20

// replayAhead is how many lines a replay parses before it runs the first
// of them, when they are waiting in its buffer: the engine can then load
// the memory of the whole group at once (Prefetcher).
const replayAhead = 16

// parsedLine is a line read and parsed ahead of running it.
type parsedLine struct {
	loc Location
	cmd Command
	err error  // the parse's
	fwd []byte // a change a client forwards unparsed (forwardable), else nil
	buf []byte // fwd's storage, reused
}

// runStream replays r line by line. Lines are parsed in the reader's
// buffer (ReadSlice); only a line longer than the buffer is copied. The
// lines already waiting in the buffer are parsed a group at a time, and
// the engine told which MACs they change before the first one runs; they
// still run one by one, in order, exactly as if parsed one by one.
func (in *Interp) runStream(name string, r io.Reader) error {
	br := bufio.NewReaderSize(r, readBufSize)
	var (
		ahead     [replayAhead]parsedLine
		macs      [replayAhead]store.MAC
		n, next   int   // ahead[next:n] are still to run
		rerr      error // the read error that came with the last line read
		long      []byte
		loc       = Location{File: name}
		failed    int
		pf, fetch = in.e.(Prefetcher)
	)
	// A client's changes go in batches until the stream ends or would
	// wait; their failures count in this stream's.
	savedBatching, savedFailed := in.batching, in.fw.failed
	in.batching, in.fw.failed = true, &failed
	defer func() { in.batching, in.fw.failed = savedBatching, savedFailed }()
	// read parses the next line into ahead[n]; false if there was none.
	read := func() bool {
		var line []byte
		line, rerr = br.ReadSlice('\n')
		if rerr == bufio.ErrBufferFull {
			long = append(long[:0], line...)
			for rerr == bufio.ErrBufferFull {
				line, rerr = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) == 0 {
			return false
		}
		loc.Line++
		if loc.Line == 1 {
			// Editors on some systems start a UTF-8 file with a
			// byte-order mark; like a CR before the newline, it is
			// not part of the command.
			line = bytes.TrimPrefix(line, utf8BOM)
		}
		p := &ahead[n]
		p.loc, p.fwd = loc, nil
		if t := in.forwardable(line); t != nil {
			p.buf = append(p.buf[:0], t...)
			p.fwd = p.buf
		} else {
			p.err = in.p.parseInto(line, &p.cmd)
		}
		n++
		return true
	}
	for {
		if next == n {
			n, next = 0, 0
			if rerr == nil && read() {
				for n < len(ahead) && rerr == nil && lineWaiting(br) {
					read()
				}
				if fetch {
					prefetch(pf, ahead[:n], macs[:0])
				}
			}
		}
		if next < n {
			p := &ahead[next]
			next++
			if in.interrupted.Load() {
				return errors.Join(in.settle(), at(p.loc, ErrInterrupted))
			}
			var err error
			if p.fwd != nil {
				err = in.forwardLine(p.loc, p.fwd)
			} else {
				err = in.runParsed(p.loc, &p.cmd, p.err)
			}
			if err == nil {
				if next < n || lineWaiting(br) {
					err = in.emit()
				} else if err = in.settle(); err == nil {
					err = in.flush()
				}
			}
			if err != nil {
				if errors.Is(err, ErrQuit) {
					return err
				}
				if !in.opts.KeepGoing {
					in.settle() // take the skipped replies: nothing stays in flight
					return err
				}
				failed += in.report(err)
			}
			in.prog.tick(name)
			continue
		}
		if rerr == io.EOF || rerr == nil {
			break
		}
		return errors.Join(in.settle(), fmt.Errorf("read %s: %w", name, rerr))
	}
	if err := in.settle(); err != nil {
		if !in.opts.KeepGoing {
			return err
		}
		failed += in.report(err)
	}
	if failed > 0 {
		return &replayError{name: name, failed: failed, lines: loc.Line}
	}
	return nil
}

// prefetch tells pf the MACs that the changes among lines will look up.
func prefetch(pf Prefetcher, lines []parsedLine, macs []store.MAC) {
	for i := range lines {
		if c := &lines[i].cmd; lines[i].fwd == nil && c.Table == TableMACs && lines[i].err == nil && c.IsWrite() {
			macs = append(macs, c.MAC)
		}
	}
	if len(macs) > 1 {
		pf.PrefetchMACs(macs)
	}
}

// lineWaiting reports whether a whole line is buffered, so the next read
// returns without waiting for input.
func lineWaiting(br *bufio.Reader) bool {
	n := br.Buffered()
	if n == 0 {
		return false
	}
	b, _ := br.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

// tally counts the line that stopped a replay. Lines a keep-going replay
// reported were counted as they failed; an interrupted replay failed no
// line.
func (in *Interp) tally(err error) error {
	var re *replayError
	if err != nil && !errors.As(err, &re) && !errors.Is(err, ErrQuit) && !errors.Is(err, ErrInterrupted) {
		in.failed.Add(1)
	}
	return err
}

// report prints an error of a keep-going replay and returns how many
// failed lines it stands for: a sourced file's summary counts the lines
// that failed in it, which were reported already.
func (in *Interp) report(err error) int {
	var re *replayError
	if errors.As(err, &re) {
		return re.failed
	}
	in.failed.Add(1)
	if ferr := in.flush(); ferr != nil {
		err = errors.Join(err, ferr)
	}
	in.prog.clear()
	fmt.Fprintln(in.opts.Stderr, err)
	return 1
}
