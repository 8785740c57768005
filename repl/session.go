package repl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Session runs a process's commands: its --script files, then its input
// (piped lines, the prompt, or the framed protocol), until the input
// ends, quit, a signal, or the end of what the process serves (a
// client's server quitting). Whatever ends it, every answer already given
// is written first.
type Session struct {
	In      *Interp
	Console *Console
	Scripts []string
	Input   Input
	// StayAtEOF keeps the process up at the end of piped input (a server
	// serving, a client watching) until Quit or Ended; not at the end of
	// typed input (Input.Typed), which is Ctrl-D: the person is done.
	StayAtEOF  bool
	Quit       <-chan os.Signal // a signal that ends the process
	Ended      <-chan struct{}  // closed when what the process serves is gone
	OutputGone <-chan struct{}  // closed when the reader of a watch went away
	// ReaderMayGo makes a closed output a quiet end (rtm client -c dump |
	// head): the reader has what it wanted. A server's is an error.
	ReaderMayGo bool
	// Abandoned, if set, says why the input is given up when Ended is
	// closed (nil: it is not). The replay then ends by reporting the line
	// it would run next, and every line after it, not applied: a batch
	// piped into a client whose server quit says what it did not run.
	Abandoned func() error
}

// Input is where a session's commands come from after its scripts.
type Input struct {
	Name   string    // stands for R in messages: "<stdin>", "-c"
	R      io.Reader // nil, and not Framed: the prompt
	Framed bool      // the framed protocol on stdin and stdout
	// Typed: R is a terminal with no prompt (stdout piped: rtm server |
	// tee log). A person types it, so a failed line is reported and the
	// next one runs, as at the prompt, instead of ending the replay.
	Typed bool
}

// Label stands for the input in messages: Name, or <framed>.
func (i Input) Label() string {
	if i.Framed {
		return framedName
	}
	return i.Name
}

// Ending is how a session ended.
type Ending struct {
	Status      int       // the exit status: 1 if any replayed line failed
	Signal      os.Signal // the signal that ended it, if one did
	StartFailed bool      // a --script failed: the process never got to serve
	LineFailed  bool      // the input's replay stopped at a line that failed
	ReaderGone  bool      // the reader of the output went away (a server's end)
	// Busy: a command still ran when the session ended (it wrote nothing
	// for quiesceTimeout: a count over millions of entries): what it
	// reads, a store's mapping, must stay mapped until the process exits.
	Busy    bool
	serveOn bool // input's: read to its end, the process serves on (StayAtEOF)
}

// quiesceTimeout bounds how long an ending waits for the command in
// progress to write more of its answer: as long as its reader takes it,
// the answer is written whole; a reader that stops leaves rtm to end,
// with the server's goodbye to its clients (ShutdownTimeout), within a
// second.
const quiesceTimeout = 400 * time.Millisecond

// Run runs the session and says how it ended.
func (s Session) Run() Ending {
	in := s.In
	result := make(chan Ending, 1)
	go func() { result <- s.input() }()
	var end Ending
	drained := false // result taken: the input's goroutine has returned
	select {
	case end = <-result:
		if end.serveOn {
			// The input was read to its end, and the process serves on
			// until a signal, its server's end or its reader's: no line
			// is left to name.
			end = Ending{}
			select {
			case end.Signal = <-s.Quit:
			case <-s.Ended:
			case <-s.OutputGone:
			}
			end.Busy = s.stop()
		}
	case sig := <-s.Quit:
		// A batch cut by a signal says which of its lines it did not
		// run, at a server as at a client (a file or a pipe: not the
		// prompt, nor lines a person types); one waiting for its next
		// line just ends. A server's replay stops at its next line at
		// once, or is stuck writing to an output nobody reads: it is
		// given as long as an answer is.
		if s.Input.Framed || s.Input.R != nil && !s.Input.Typed {
			wait := quiesceTimeout
			if s.Abandoned != nil {
				wait = abandonTimeout // a client's changes in flight fail first
			}
			end = s.abandon(result, fmt.Errorf("interrupted by %s", signalName(sig)), true, wait)
		} else if in.runsALine() {
			// At the prompt, a command that runs (a typed source of a
			// long file) says which line the signal cut, as a batch
			// does: the prompt prints it as the command returns, which
			// the process waits for, as long as for an answer.
			in.Abandon(fmt.Errorf("interrupted by %s", signalName(sig)), true)
			end.Busy = s.stop()
			select {
			case <-result:
				drained = true
			case <-time.After(quiesceTimeout):
			}
			end.Signal = sig
			break
		}
		end.Signal = sig
		end.Busy = s.stop()
	case <-s.Ended:
		if cause := s.abandoned(); cause != nil {
			end = s.abandon(result, cause, false, abandonTimeout)
		}
		end.Busy = s.stop()
	case <-s.OutputGone:
		end.Busy = s.stop()
	}
	if quittingAtOnce.Load() {
		// SIGQUIT's handler closed the prompt to restore the terminal,
		// and ends the process: no clean end after it.
		select {}
	}
	if end.Status == 0 && in.Failed() > 0 {
		// A replay that failed as the session ended: its report is on
		// its way; let it out before the process ends.
		if !drained {
			select {
			case <-result:
			case <-time.After(quiesceTimeout):
			}
		}
		end.Status = 1
	}
	return end
}

// abandonTimeout bounds the wait for an abandoned replay's report: its
// changes in flight fail at once, as the session ended.
const abandonTimeout = 2 * time.Second

// abandon ends the replay for cause (Interp.Abandon) and returns how it
// ended, once it has said what it did not run, or once wait has passed.
func (s Session) abandon(result <-chan Ending, cause error, quietIdle bool, wait time.Duration) Ending {
	s.In.Abandon(cause, quietIdle)
	select {
	case end := <-result:
		return end
	case <-time.After(wait):
		// A write to an output nobody reads, or a read that cannot be
		// ended early: the lines after are lost all the same.
		msg := fmt.Sprintf("%s: not read to its end: %v\n", s.Input.Label(), cause)
		switch last, writing, ok := s.In.Running(); {
		case ok && writing:
			msg = fmt.Sprintf("%s: not read to its end: stopped at line %d, its answers not all written (nothing reads them); no line after it was run: %v\n", last.File, last.Line, cause)
		case ok:
			msg = fmt.Sprintf("%s: not read to its end: stopped waiting for the line after line %d: %v\n", last.File, last.Line, cause)
		}
		boundedWrite(s.In.opts.Stderr, msg)
		return Ending{Status: 1}
	}
}

// boundedWrite writes msg to w unless that takes longer than
// quiesceTimeout: an ending's last words go where they can, and a stderr
// that nobody reads (2>&1 into the same stalled pipe) cannot keep the
// process from ending.
func boundedWrite(w io.Writer, msg string) {
	done := make(chan struct{})
	go func() {
		io.WriteString(w, msg)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(quiesceTimeout):
	}
}

// signalName is SIGINT for syscall.SIGINT.
func signalName(sig os.Signal) string {
	if n, ok := sig.(syscall.Signal); ok {
		if name := unix.SignalName(n); name != "" {
			return name
		}
	}
	return sig.String()
}

func (s Session) abandoned() error {
	if s.Abandoned == nil {
		return nil
	}
	return s.Abandoned()
}

// stop ends the command in progress once its answer is written, and
// says whether it still runs, having written nothing for quiesceTimeout.
func (s Session) stop() (busy bool) {
	s.In.Interrupt()
	busy = !s.In.Quiesce(quiesceTimeout)
	s.Console.Close()
	return busy
}

func (s Session) input() Ending {
	in := s.In
	for _, path := range s.Scripts {
		err := in.RunFile(path)
		switch {
		case err == nil:
		case errors.Is(err, ErrQuit):
			in.reportQuit(err)
			return Ending{}
		case errors.Is(err, ErrFailed):
			// --keep-going: each failed line was reported; the exit status
			// will say so, and the session goes on.
			in.reportEnd(err)
		default:
			in.reportEnd(err)
			// A script a signal cut did not fail, nor one whose output
			// could not be written (its reader went away): the store
			// keeps what it applied, as the message says.
			gone := readerWent(err)
			failed := !errors.Is(err, ErrInterrupted) && in.stop.cause() == nil && !gone && !errors.As(err, new(*OutputError))
			return Ending{Status: 1, StartFailed: failed, ReaderGone: gone}
		}
	}
	var err error
	switch {
	case s.Input.Framed:
		err = in.ServeFramed(stdinReader(), os.Stdout)
	case s.Input.R == nil:
		err = in.Interactive(s.Console)
	default:
		if s.Input.Typed {
			in.keepGoing()
			in.typed = true
		}
		err = in.RunReader(s.Input.Name, s.Input.R)
		if err == nil && s.StayAtEOF && !s.Input.Typed {
			// End of piped input does not end a server (clients still need
			// it; a script ends it with quit) nor a watching client.
			return Ending{serveOn: true}
		}
	}
	failedLines, onlyFailed := err.(*replayError)
	switch {
	case err == nil:
	case s.Input.Typed && onlyFailed:
		// Typed, as at the prompt: each failed line was reported as it
		// failed, and a person's mistakes are not the session's failure,
		// nor its exit status.
		in.failed.Add(-int64(failedLines.failed + failedLines.sourced.lines))
	case errors.Is(err, ErrQuit):
		in.reportQuit(err)
	case onlyInterrupted(err):
		// Stopped between lines (a signal to a batch waiting for its
		// next): nothing was cut.
	case s.ReaderMayGo && readerGone(err):
		// The reader of the output went away: nobody wants the rest.
	default:
		in.reportEnd(err)
		gone := readerWent(err)
		return Ending{Status: 1, ReaderGone: gone, LineFailed: !gone && errors.As(err, new(*LineError))}
	}
	return Ending{}
}

// reportQuit prints the count of failed lines of a replay that quit
// (--keep-going); a bare quit says nothing.
func (in *Interp) reportQuit(err error) {
	if re := (*replayError)(nil); errors.As(err, &re) {
		in.reportEnd(re)
	}
}

// onlyInterrupted says whether err is an interruption and nothing else:
// every error it joins is one.
func onlyInterrupted(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !onlyInterrupted(e) {
				return false
			}
		}
		return len(j.Unwrap()) > 0
	}
	return errors.Is(err, ErrInterrupted)
}

// readerGone reports whether err is the output's reader going away.
func readerGone(err error) bool {
	var oe *OutputError
	return errors.As(err, &oe) && errors.Is(oe.Err, syscall.EPIPE)
}

// readerWent reports whether err ended a replay as the output's reader
// went away: at its last answer (readerGone), or with lines still to run
// (readerWentError).
func readerWent(err error) bool { return readerGone(err) || errors.As(err, new(*readerWentError)) }

// reportEnd prints the error that ended a replay; an interrupted one was
// ended on purpose.
func (in *Interp) reportEnd(err error) {
	if !errors.Is(err, ErrInterrupted) {
		fmt.Fprintln(in.opts.Stderr, err)
	}
}
