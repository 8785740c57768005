package repl

import (
	"errors"
	"fmt"
	"slices"

	"rtm/store/entry"
)

var (
	// ErrQuit is returned when `quit` runs; callers treat it as a clean end.
	ErrQuit = errors.New("quit")
	// ErrInterrupted ends a command stopped by Interp.Interrupt (Ctrl-C
	// while it runs at the prompt).
	ErrInterrupted = errors.New("interrupted")
	// ErrExpect is wrapped by every failed expectation.
	ErrExpect = errors.New("expect failed")
	// ErrFailed is wrapped by the error a keep-going replay returns at its
	// end when some lines failed (each was reported as it happened).
	ErrFailed = errors.New("replay failed")
)

// errReadOnly is the refusal of a change by an engine that cannot make
// one.
var errReadOnly error = readOnlyError{}

type readOnlyError struct{}

func (readOnlyError) Error() string {
	return "refused: this engine only reads; make changes at the server"
}
func (readOnlyError) Unwrap() error { return entry.ErrReadOnly }

// OutputError is a failure to write a command's output: the reader of
// stdout went away (EPIPE), or the disk is full.
type OutputError struct{ Err error }

func (e *OutputError) Error() string { return "write output: " + e.Err.Error() }
func (e *OutputError) Unwrap() error { return e.Err }

// readerWentError ends a replay whose output's reader went away after
// the answer of line, with lines still to run: they were not. It does
// not unwrap to the OutputError, which a client takes for a quiet end.
type readerWentError struct {
	line int
	err  *OutputError
}

func (e *readerWentError) Error() string {
	return fmt.Sprintf("not run, nor any line after it: the reader of the output went away at line %d (%v)", e.line, e.err)
}

// LineError locates an error at a line of a script, of stdin or of the
// prompt. Callers find it with errors.As.
type LineError struct {
	File string
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// Location is a line of a script: where a command came from.
type Location struct {
	File string
	Line int
}

func (l Location) String() string { return fmt.Sprintf("%s:%d", l.File, l.Line) }

// at wraps err with loc, unless it is located already (an error inside a
// sourced file names that file) or is not an error of this line.
func at(loc Location, err error) error {
	if err == nil || located(err) {
		return err
	}
	return &LineError{File: loc.File, Line: loc.Line, Err: err}
}

// located reports whether err needs no location of this line. It is apart
// from at so that the success path does not allocate the errors.As target.
func located(err error) bool {
	var le *LineError
	var re *replayError
	return errors.Is(err, ErrQuit) || errors.As(err, &le) || errors.As(err, &re)
}

// replayError ends a keep-going replay in which lines failed: failed of
// its own lines, and the lines of the files it sourced that sourced
// counts (each was reported at its file:line, and they are not its own).
type replayError struct {
	name          string
	failed, lines int
	sourced       sourcedFailures
	quit          bool // ended by quit, which it also is (ErrQuit)
	// lost is the error (a noneAfter) of the lines whose fate is unknown
	// or that were not applied as the server went away, which ended the
	// replay: the files that sourced this one stop at it too.
	lost error
}

// sourcedFailures counts the failed lines of the files a replay sourced
// (at any depth), and names the files they were in, each once.
type sourcedFailures struct {
	lines int
	files []string
}

// add counts the failures of re, a replay of a sourced file.
func (s *sourcedFailures) add(re *replayError) {
	s.lines += re.failed + re.sourced.lines
	for _, f := range re.sourced.files {
		s.addFile(f)
	}
	if re.failed > 0 {
		s.addFile(re.name)
	}
}

func (s *sourcedFailures) addFile(name string) {
	if !slices.Contains(s.files, name) {
		s.files = append(s.files, name)
	}
}

func (e *replayError) Error() string {
	if e.sourced.lines == 0 {
		return fmt.Sprintf("%s: %d of %d lines failed", e.name, e.failed, e.lines)
	}
	lines := "lines"
	if e.failed+e.sourced.lines == 1 {
		lines = "line"
	}
	where := "a file it sourced"
	if len(e.sourced.files) > 1 {
		where = fmt.Sprintf("%d files it sourced", len(e.sourced.files))
	}
	if e.failed == 0 {
		return fmt.Sprintf("%s: %d %s failed, in %s", e.name, e.sourced.lines, lines, where)
	}
	return fmt.Sprintf("%s: %d %s failed: %d of its %d lines, %d in %s", e.name, e.failed+e.sourced.lines, lines, e.failed, e.lines, e.sourced.lines, where)
}

func (e *replayError) Unwrap() []error {
	errs := []error{ErrFailed}
	if e.quit {
		errs = append(errs, ErrQuit)
	}
	if e.lost != nil {
		errs = append(errs, e.lost)
	}
	return errs
}

// opError is an engine's refusal of a command, phrased for the person who
// typed it: "create route 10.1.1.0/24: already exists".
type opError struct {
	what string // "create route 10.1.1.0/24"
	msg  string
	err  error
}

func (e *opError) Error() string { return e.what + ": " + e.msg }
func (e *opError) Unwrap() error { return e.err }

// changeError phrases the refusal of change c, by the engine or by the
// server: "create route 10.1.1.0/24: already exists", "flush: …".
func changeError(c entry.Change, err error) error {
	what := c.Op.String()
	switch {
	case c.Op == entry.Flush:
		what = string(c.AppendTo(nil))
	case c.Table == entry.MACs:
		what += " MAC " + c.MAC.String()
	default:
		what += " route " + c.Route.Prefix.String()
	}
	return &opError{what: what, msg: entry.Reason(err), err: err}
}
