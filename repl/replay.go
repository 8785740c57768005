package repl

// Replay: scripts, sourced files and streams (piped stdin, a client's
// input) run line by line. A stream is a conversation: answers are
// written whenever no whole line is waiting. Lines already waiting are
// parsed a group at a time, and the engine told which MACs and prefixes
// they change, before they run in order; a run of change lines among them
// goes to a Grouper engine at once.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"rtm/proto"
	"rtm/store/entry"
)

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
	} else if ferr != nil {
		in.sayLost(ferr)
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
	defer in.readsFrom(r)()
	in.frames = append(in.frames, frame{name: name})
	err := in.runStream(name, &waitingReader{r: r, in: in}, false)
	in.frames = in.frames[:len(in.frames)-1]
	if ferr := in.flush(); err == nil {
		err = ferr
	} else if ferr != nil {
		in.sayLost(ferr)
	}
	in.prog.done(len(in.frames) == 0)
	return in.tally(err)
}

// readsFrom has a stop (the end of the process, Abandon) end a read of
// r, a pipe on stdin, that waits for a writer gone quiet, until done is
// called.
func (in *Interp) readsFrom(r io.Reader) (done func()) {
	if p, ok := r.(*pipeInput); ok {
		return in.stop.readFrom(p.f)
	}
	return func() {}
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

// runsALine reports whether a line runs now: busy is held, and not by a
// stream waiting for its next line.
func (in *Interp) runsALine() bool {
	if in.busy.TryLock() {
		in.busy.Unlock()
		return false
	}
	return true
}

// Quiesce waits until the stream being run is waiting for input or has
// ended, with every answer written, and then keeps it from running
// anything more. A process calls it before it exits on a signal or at the
// end of its session, so that nothing it has answered is lost. It waits
// as long as the answer's output moves, and at most timeout after it last
// did (a reader that stopped reading). It reports whether it got there.
func (in *Interp) Quiesce(timeout time.Duration) bool {
	deadline, last := time.Now().Add(timeout), in.written.Load()
	for !in.busy.TryLock() {
		if w := in.written.Load(); w != last {
			deadline, last = time.Now().Add(timeout), w
		}
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
	// Typed at the prompt, a source is a replay of its own: its progress
	// counts its lines alone, however the one before it ended.
	defer in.prog.done(len(in.frames) == 0)
	if err := in.runFile(path); err != nil {
		var le *LineError
		if errors.As(err, &le) || errors.Is(err, ErrQuit) || errors.Is(err, ErrFailed) {
			return err
		}
		if errors.Is(err, ErrSourceStopped) {
			return fmt.Errorf("source %s: %w", path, in.stop.err())
		}
		return fmt.Errorf("source: %w", err)
	}
	return nil
}

func (in *Interp) runFile(path string) error {
	// The lines before it go out now, and other origins' changes are not
	// held behind this one's: a FIFO's open waits for its writer.
	if bt, ok := in.engine.(Batcher); ok {
		bt.Send()
	}
	f, err := in.sources.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	defer in.stop.readFrom(f)()
	defer in.sources.Pop()
	in.frames = append(in.frames, frame{name: path, dir: filepath.Dir(path)})
	defer func() { in.frames = in.frames[:len(in.frames)-1] }()
	return in.runStream(path, f, false)
}

// readBufSize is the replay read buffer: large, so ReadSlice returns lines
// straight from it and the read syscalls are few. A line that does not
// fit, newline and all, is refused (errLineTooLong), unless it is blank.
const readBufSize = 1 << 20

var errLineTooLong = fmt.Errorf("a line of %d bytes or more, which no command is: skipped to its end", readBufSize)

// replayAhead is how many lines a replay parses before it runs the first
// of them, when they are waiting in its buffer: the engine can then load
// the memory of the whole group at once (Prefetcher). 64 lines did no
// better than 16 (B1, alternating builds: BENCHMARKS.md).
const replayAhead = 16

// parsedLine is a line read and parsed ahead of running it.
type parsedLine struct {
	loc Location
	cmd Command
	err error // the parse's
}

// runStream replays r line by line; framed, each line is answered with a
// terminator and a failure does not stop it (ServeFramed). Lines are parsed in the reader's
// buffer (ReadSlice); only a line longer than the buffer is copied. The
// lines already waiting in the buffer are parsed a group at a time, and
// the engine told which MACs and prefixes they change before the first
// one runs; a run of change lines among them goes to a Grouper at once,
// and they take effect in order, exactly as if parsed one by one.
func (in *Interp) runStream(name string, r io.Reader, framed bool) error {
	br := bufio.NewReaderSize(r, readBufSize)
	var (
		ahead     [replayAhead]parsedLine
		macs      [replayAhead]entry.MAC
		prefixes  [replayAhead]netip.Prefix
		n, next   int   // ahead[next:n] are still to run
		rerr      error // the read error that came with the last line read
		loc       = Location{File: name}
		failed    int             // lines of this stream that failed (--keep-going)
		sourced   sourcedFailures // and lines of the files it sourced
		pf, fetch = in.engine.(Prefetcher)
		bt, batch = in.engine.(Batcher)
		gr, group = in.changer.(Grouper)
		run       [replayAhead]*entry.Change // a run of change lines for gr
	)
	group = group && !framed && in.fw == nil
	_, typed := r.(*waitingReader) // the stream a person types, not a file
	typed = typed && in.typed
	pos := &streamPos{name: name}
	outer := in.running.Swap(pos) // a sourced file runs inside its stream
	defer in.running.Store(outer)
	if batch {
		defer func() {
			bt.Send()
			in.held = nil
		}()
	}
	// A client's changes go in batches until the stream ends or would
	// wait; their failures count in this stream's.
	savedBatching := in.batching
	in.batching = true
	defer func() { in.batching = savedBatching }()
	if in.fw != nil {
		savedFailed := in.fw.failed
		in.fw.failed = &failed
		defer func() { in.fw.failed = savedFailed }()
	}
	// read parses the next line into ahead[n]; false if there was none.
	read := func() bool {
		var line []byte
		line, rerr = br.ReadSlice('\n')
		tooLong := rerr == bufio.ErrBufferFull
		// A comment or white space may be as long as it likes: the
		// line is blank.
		blank := false
		if tooLong {
			first := line
			if loc.Line == 0 {
				first = TrimBOM(first)
			}
			first = trimSpace(first)
			// A comment is blank from its '#'; white space only while
			// the rest of the line is white space too.
			spaces := len(first) == 0
			blank = spaces || first[0] == '#'
			for rerr == bufio.ErrBufferFull {
				// No command comes near the buffer's size: the rest
				// of the line is read past, not kept, so no input
				// grows memory. A line with no end (/dev/zero) is
				// read past until a stop, which names it.
				if in.stop.stopped() {
					break
				}
				var more []byte
				more, rerr = br.ReadSlice('\n')
				if spaces {
					blank = blank && len(trimSpace(more)) == 0
				}
			}
		}
		if len(line) == 0 {
			return false
		}
		loc.Line++
		if loc.Line == 1 {
			line = TrimBOM(line)
		}
		p := &ahead[n]
		p.loc = loc
		switch {
		case blank:
			p.err = in.parser.parseInto(nil, &p.cmd)
		case tooLong:
			p.cmd, p.err = Command{}, errLineTooLong
		default:
			p.err = in.parser.parseInto(line, &p.cmd)
		}
		n++
		return true
	}
	// nextLine is where the replay goes on: the line after the last run.
	nextLine := func() Location {
		if next < n {
			return ahead[next].loc
		}
		return Location{File: name, Line: loc.Line + 1}
	}
	for {
		if next == n {
			n, next = 0, 0
			if rerr == nil && read() {
				for n < len(ahead) && rerr == nil && lineWaiting(br) {
					read()
				}
				if fetch {
					prefetchLines(pf, ahead[:n], macs[:0], prefixes[:0])
				}
			}
		}
		if next < n {
			p := &ahead[next]
			next++
			if in.stop.stopped() {
				return settledAt(in.settle(), in.stop.stoppedAt(p.loc, false))
			}
			// The change lines that follow this one, up to the first
			// other line, go to the engine as one run (Grouper).
			k := 0
			if group && isChange(p) {
				run[0], k = &p.cmd.Change, 1
				for next < n && isChange(&ahead[next]) {
					run[k] = &ahead[next].cmd.Change
					k, next = k+1, next+1
				}
			}
			pos.line.Store(int64(ahead[next-1].loc.Line)) // a run's last line
			if len(in.buf) == 0 {
				in.bufFrom = p.loc
			}
			more := next < n || lineWaiting(br) || inputPending(r)
			// A run holds its changes as line-by-line would: every line
			// but the last has more after it. Any other command sends
			// what is held first: it may wait (on an output nobody
			// reads, a sync, a source), and while a hold lasts the
			// writers send whole packets only, so every client's changes
			// would wait with it. A blank line or a comment waits for
			// nothing.
			switch change := isChange(p); {
			case !batch:
			case change && (more || k > 1):
				in.hold(bt)
			case !change && (p.err != nil || p.cmd.Kind != KindNone):
				in.sendHeld()
			}
			var err error
			switch {
			case k > 0:
				var made int
				made, err = gr.ApplyAll(run[:k])
				ticks := made - 1 // the run's last line ticks below
				if err != nil {
					// The lines after the failed one are still to run.
					failedAt := &ahead[next-k+made]
					next -= k - made - 1
					more = next < n || lineWaiting(br) || inputPending(r)
					err = at(failedAt.loc, changeError(failedAt.cmd.Change, err))
					ticks = made
				}
				for range ticks {
					in.prog.tick(name)
				}
			case framed:
				err = in.runFramed(p)
			default:
				err = in.runParsed(p.loc, &p.cmd, p.err)
			}
			if batch && !more {
				bt.Send()
				in.held = nil
			}
			fromCatchUp := false // err is the failed catch-up after the line ran
			if err == nil {
				if more {
					err = in.emit()
				} else if err = in.settle(); err == nil {
					err = in.flush()
				} else {
					fromCatchUp = true
				}
			}
			// Written only now: the answers lost may be of lines before
			// this one, which ran all the same.
			err = in.outputLost(err, ahead[next-1].loc)
			if err != nil {
				if oe := (*OutputError)(nil); more && errors.As(err, &oe) && readerGone(err) && !in.opts.KeepGoing {
					// The reader of the output went away (rtm client
					// -c 'show macs' -c C,... | head -1) with lines still
					// to run: a quiet end would lose them unsaid. (With
					// none left, the reader had what it wanted.)
					in.settle()
					return at(nextLine(), &readerWentError{line: ahead[next-1].loc.Line, err: oe})
				}
				if cause := in.sessionEnd(err); cause != nil {
					if fromCatchUp {
						// The server quit while this client caught up
						// with changes it had answered, and no line
						// waits: nothing was lost. A line that comes yet
						// meets the end itself and is named then; a
						// name now would be of a line that may not be.
						err = nil
						in.prog.tick(name)
						continue
					}
					// The line's own command met the end before it ran:
					// neither it nor any line after it was run.
					err = at(p.loc, noneAfter{fmt.Errorf("not applied, nor any line after it: %w", cause)})
				}
				if errors.Is(err, ErrQuit) {
					// A quit ends the replay, not its count of failed
					// lines (--keep-going), a sourced file's included.
					var re *replayError
					if errors.As(err, &re) {
						sourced.add(re)
					}
					if failed+sourced.lines > 0 {
						return &replayError{name: name, failed: failed, lines: p.loc.Line, sourced: sourced, quit: true}
					}
					return err
				}
				if !in.opts.KeepGoing {
					in.settle() // take the skipped replies: nothing stays in flight
					return err
				}
				if errors.As(err, new(noneAfter)) && !typed {
					// The server went away, or answered no more: the
					// error says that no line after it ran, which keeping
					// going would belie, batch after batch (--keep-going
					// is for lines that fail on their own). The files
					// that sourced this one stop too. (Lines a person
					// types go on, as at the prompt.)
					in.settle()
					re := (*replayError)(nil)
					if !errors.As(err, &re) && failed+sourced.lines == 0 {
						return err
					}
					lost := err
					if re != nil {
						lost = re.lost
					}
					in.report(err, &failed, &sourced)
					return &replayError{name: name, failed: failed, lines: p.loc.Line, sourced: sourced, lost: lost}
				}
				in.report(err, &failed, &sourced)
			}
			in.prog.tick(name)
			continue
		}
		if rerr == io.EOF || rerr == nil {
			break
		}
		if errors.Is(rerr, os.ErrDeadlineExceeded) && in.stop.stopped() {
			// Interrupt ended a read that waited (readFrom).
			stop := in.stop.stoppedAt(Location{File: name, Line: loc.Line + 1}, true)
			if failed+sourced.lines > 0 && errors.Is(stop, ErrInterrupted) {
				// A quiet end between lines: nothing was cut, but the
				// lines that failed (--keep-going) are counted, as at
				// the end of input.
				stop = &replayError{name: name, failed: failed, lines: loc.Line, sourced: sourced}
			}
			return settledAt(in.settle(), stop)
		}
		return errors.Join(in.settle(), fmt.Errorf("read %s: %w", name, rerr))
	}
	if err := in.settle(); err != nil && in.sessionEnd(err) == nil {
		// (A catch-up the server's quitting ended lost nothing: every line
		// was answered, and there were no more.)
		if !in.opts.KeepGoing {
			return err
		}
		in.report(err, &failed, &sourced)
	}
	if failed+sourced.lines > 0 {
		return &replayError{name: name, failed: failed, lines: loc.Line, sourced: sourced}
	}
	return nil
}

// sessionEnd returns the cause if err (not nil) only reports that the
// client's session ended while the replay waited (its server quit, and
// the replay was abandoned or is about to be): then no line failed and
// every line sent was answered. Otherwise it returns nil.
func (in *Interp) sessionEnd(err error) error {
	var le *LineError
	switch {
	case errors.As(err, &le):
		return nil
	case errors.Is(err, proto.ErrSessionEnded):
		return err
	case err == ErrInterrupted:
		return in.stop.cause()
	}
	return nil
}

// isChange says whether p is a change that parsed: such lines run as a
// group (Grouper).
func isChange(p *parsedLine) bool { return p.err == nil && p.cmd.Kind == KindChange }

// prefetchLines tells pf the MACs and the prefixes that the changes among
// lines will look up.
func prefetchLines(pf Prefetcher, lines []parsedLine, macs []entry.MAC, prefixes []netip.Prefix) {
	for i := range lines {
		c := &lines[i].cmd
		switch {
		case lines[i].err != nil || c.Kind != KindChange:
		case c.Change.Table == entry.MACs:
			macs = append(macs, c.Change.MAC)
		case c.Change.Table == entry.Routes && c.Change.Op != entry.Flush:
			prefixes = append(prefixes, c.Change.Route.Prefix)
		}
	}
	if len(macs) > 1 {
		pf.PrefetchMACs(macs)
	}
	if len(prefixes) > 1 {
		pf.PrefetchRoutes(prefixes)
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

// inputPending reports whether a read of r would return at once: bytes
// are waiting in the pipe or socket it reads, or left in the file. Then
// the replay goes on as if they were lines in its buffer, and neither
// answers nor changes are sent on until the reader would block: a
// stream written faster than it is replayed is one batch, not one per
// pipe's worth. A reader it cannot ask is never pending.
func inputPending(r io.Reader) bool {
	if w, ok := r.(*waitingReader); ok {
		r = w.r
	}
	sc, ok := r.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var n int32
	// TIOCINQ is FIONREAD: the bytes a read would return now. It never
	// blocks, so it is made raw, for the reason stdin.go gives.
	rc.Control(func(fd uintptr) {
		syscall.RawSyscall(unix.SYS_IOCTL, fd, unix.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	})
	return n > 0
}

// tally counts the line that stopped a replay. Lines a keep-going replay
// reported were counted as they failed; an interrupted replay, or one
// whose output could not be written, failed no line.
func (in *Interp) tally(err error) error {
	var re *replayError
	var oe *OutputError // no line failed: the output could not be written
	if err != nil && !errors.As(err, &re) && !errors.As(err, &oe) && !errors.Is(err, ErrQuit) && !errors.Is(err, ErrInterrupted) {
		in.failed.Add(1)
	}
	return err
}

// report prints an error of a keep-going replay and counts the line that
// failed; a sourced file's summary counts, in sourced, the lines that
// failed in it and in the files it sourced, which were reported already.
func (in *Interp) report(err error, failed *int, sourced *sourcedFailures) {
	var re *replayError
	if errors.As(err, &re) && sourced != nil {
		sourced.add(re)
		return
	}
	*failed++
	in.failed.Add(1)
	if ferr := in.flush(); ferr != nil {
		var le *LineError
		here := in.here
		if errors.As(err, &le) {
			here = Location{File: le.File, Line: le.Line}
		}
		err = errors.Join(err, in.outputLost(ferr, here))
	}
	in.prog.clear()
	in.sendHeld() // a stderr nobody reads holds nothing up but this
	fmt.Fprintln(in.opts.Stderr, err)
}
