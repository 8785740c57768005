package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"rtm/proto"
	"rtm/repl"
)

// Error is a failed scenario: the line, the process that failed it, why,
// and what the processes logged.
type Error struct {
	Loc   repl.Location // the failing line; zero if the scenario failed before its first line
	Where string        // "server", "client NAME", or "" for the runner
	Text  string        // the line, comment removed
	Msg   string        // what went wrong, as the process or the runner said it
	Hint  string        // a likely cause, if the runner sees one
	Logs  []ProcessLog
	Err   error // the cause when it is not a process's answer (context.Canceled when interrupted)
}

// ProcessLog is the end of what one process wrote to stderr.
type ProcessLog struct {
	Name   string // "server (pid 123)", "client a (pid 124)"
	Stderr string
}

func (e *Error) Unwrap() error { return e.Err }

// Error is the report rtm test prints under FAIL: the line, then the
// expectation's want and got on lines of their own, then the logs.
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Loc.Line > 0:
		fmt.Fprintf(&b, "%s: ", e.Loc)
	case e.Loc.File != "":
		fmt.Fprintf(&b, "%s: ", e.Loc.File)
	}
	if w, _ := repl.FirstWord([]byte(e.Text)); e.Where != "" && !isDirectiveWord(w) {
		fmt.Fprintf(&b, "at %s: ", e.Where)
	}
	if len(e.Text) > maxShown {
		// A line of a binary file, or a very long one: its start says
		// which, and the message under it what is wrong.
		b.WriteString(proto.Printable([]byte(e.Text[:maxShown])))
		fmt.Fprintf(&b, "… (%d bytes)", len(e.Text))
	} else {
		b.WriteString(proto.Printable([]byte(e.Text))) // a NUL or broken UTF-8 in the file, escaped
	}
	b.WriteByte('\n')
	if want, got, ok := splitWantGot(e.Msg); ok {
		fmt.Fprintf(&b, "    want: %s\n    got:  %s\n", want, got)
	} else {
		fmt.Fprintf(&b, "    %s\n", e.Msg)
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, "    (%s)\n", e.Hint)
	}
	for _, l := range e.Logs {
		fmt.Fprintf(&b, "%s stderr:\n%s", l.Name, indent(l.Stderr, "    "))
	}
	return b.String()
}

// maxShown bounds the failing line a report shows.
const maxShown = 120

// splitWantGot finds the two sides of a failed expectation, which says
// "expect failed: want X, got Y".
func splitWantGot(msg string) (want, got string, ok bool) {
	_, rest, ok := strings.Cut(msg, repl.ErrExpect.Error()+": want ")
	if !ok {
		return "", "", false
	}
	i := strings.LastIndex(rest, ", got ")
	if i < 0 {
		return "", "", false
	}
	return rest[:i], rest[i+len(", got "):], true
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(prefix)
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// processError is a process's refusal of a line, or its failure to answer.
type processError struct {
	where string // "server", "client a"
	msg   string
	hint  string
	err   error // set when the process did not answer (exited, timed out, interrupted)
}

func (e *processError) Error() string { return e.where + ": " + e.msg }
func (e *processError) Unwrap() error { return e.err }

// bannerPrefix starts the line a server writes when it starts: the
// runner made the instance, so the line tells a failure report nothing.
const bannerPrefix = "rtm server default: socket "

// failure builds the report of a failed line.
func (s *scenario) failure(loc repl.Location, text string, err error) *Error {
	se := &Error{Loc: loc, Text: text, Msg: err.Error(), Err: err}
	var pe *processError
	if errors.As(err, &pe) {
		se.Where, se.Msg, se.Hint, se.Err = pe.where, pe.msg, pe.hint, pe.err
	}
	if errors.Is(err, context.Canceled) {
		se.Msg = "interrupted"
	}
	for _, c := range s.procs {
		if t := c.StderrTail(10, bannerPrefix); t != "" {
			se.Logs = append(se.Logs, ProcessLog{Name: fmt.Sprintf("%s (pid %d)", c.name, c.Pid()), Stderr: t})
		}
	}
	return se
}

// tally is what rtm test prints: a line per scenario as it ends, and the
// count at the end.
type tally struct {
	w              io.Writer
	passed, failed int
}

// add prints the ok or FAIL line of one scenario, and a failure's report
// under it.
func (t *tally) add(res Result) {
	secs := res.Duration.Seconds()
	if res.Err == nil {
		t.passed++
		fmt.Fprintf(t.w, "ok   %s (%.2fs)\n", res.Path, secs)
		return
	}
	t.failed++
	fmt.Fprintf(t.w, "FAIL %s (%.2fs)\n%s", res.Path, secs, indent(res.Err.Error(), "    "))
}

// summary prints the last line: "N passed, N failed".
func (t *tally) summary() {
	fmt.Fprintf(t.w, "%d passed, %d failed\n", t.passed, t.failed)
}
