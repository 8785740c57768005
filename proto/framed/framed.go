// Package framed is rtm's machine interface over a process's stdin and
// stdout, and the driver that speaks it. A program writes one command per
// line; after each line the process writes the line's output, then
// exactly one terminator line:
//
//	\x00ok
//	\x00err<TAB>message, its newlines replaced by spaces
//
// Blank and comment lines get a terminator too, so driver and process
// stay in lockstep and a blank line is a readiness probe. rtm's output
// never starts with NUL, so a terminator cannot be taken for output.
//
// `rtm server --framed` and `rtm client --framed` serve it; `rtm test`
// drives its processes with Proc, and so do the benchmark and the
// multi-process tests. Both ends are here, so they cannot drift apart.
package framed

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

const (
	okLine    = "\x00ok"
	errPrefix = "\x00err\t"
)

// Terminator returns the line, newline included, that ends the answer to
// one command: ok for a nil err, else err's message on one line.
func Terminator(err error) string {
	if err == nil {
		return okLine + "\n"
	}
	return errPrefix + strings.ReplaceAll(err.Error(), "\n", " ") + "\n"
}

// parseTerminator says whether line (without its newline) ends an
// answer, and the error message if it ends a failed one.
func parseTerminator(line string) (isEnd, failed bool, msg string) {
	switch {
	case line == okLine:
		return true, false, ""
	case strings.HasPrefix(line, errPrefix):
		return true, true, line[len(errPrefix):]
	}
	return false, false, ""
}

// Answers splits what a process wrote in reply to a stream of lines into
// one Answer per line, in order; output after the last terminator is
// left out. A program that writes many lines before it reads uses it.
func Answers(stdout string) []Answer {
	var out []Answer
	var lines []string
	for _, line := range strings.SplitAfter(stdout, "\n") {
		if !strings.HasSuffix(line, "\n") {
			break
		}
		line = strings.TrimSuffix(line, "\n")
		end, failed, msg := parseTerminator(line)
		if !end {
			lines = append(lines, line)
			continue
		}
		out = append(out, Answer{Out: lines, Failed: failed, Msg: msg})
		lines = nil
	}
	return out
}

// Handler runs one line, writing its output to w. Its error is the
// line's answer; stop ends Serve after that answer.
type Handler func(line []byte, w io.Writer) (stop bool, err error)

// ErrStopped is returned by Serve when a Handler asked it to stop.
var ErrStopped = errors.New("framed: stopped by a command")

// Serve runs the lines of r through h, writing each line's output and its
// terminator to w and flushing them before it reads the next line. It
// returns nil at the end of r, ErrStopped when h stops it, or the error
// that kept it from reading or writing.
func Serve(r io.Reader, w io.Writer, h Handler) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, rerr := br.ReadBytes('\n')
		if len(line) == 0 {
			if rerr == io.EOF {
				return nil
			}
			return fmt.Errorf("read commands: %w", rerr)
		}
		stop, err := h(line, bw)
		bw.WriteString(Terminator(err))
		if ferr := bw.Flush(); ferr != nil {
			return fmt.Errorf("write results: %w", ferr)
		}
		if stop {
			return ErrStopped
		}
	}
}
