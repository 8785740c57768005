package repl

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The framed protocol: `rtm test` drives its server and client processes
// through their stdin and stdout, one line at a time. After each line the
// process writes the line's output, then exactly one terminator line:
//
//	\x00ok
//	\x00err<TAB>message, its newlines replaced by spaces
//
// Blank and comment lines get a terminator too, so the driver and the
// process stay in lockstep and a blank line is a readiness probe. Output
// never starts with NUL, so a terminator cannot be mistaken for output.
const (
	framedOK  = "\x00ok"
	framedErr = "\x00err\t"
)

// framedName stands for the framed stream in locations. The driver knows
// the real file and line, so it is cut from messages.
const framedName = "<framed>"

// ServeFramed runs the lines of r as the framed protocol says, writing
// results and terminators to w. It returns nil at the end of r, and
// ErrQuit after `quit` (whose terminator is written first), so callers
// end as they do after a replay.
func (in *Interp) ServeFramed(r io.Reader, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	saved := in.out
	in.out = bw
	defer func() { in.out = saved }()
	br := bufio.NewReaderSize(r, 64<<10)
	loc := Location{File: framedName}
	for {
		line, rerr := br.ReadBytes('\n')
		if len(line) == 0 {
			if rerr == io.EOF {
				return nil
			}
			return fmt.Errorf("read commands: %w", rerr)
		}
		loc.Line++
		err := in.RunLine(loc, line)
		quit := errors.Is(err, ErrQuit)
		if quit {
			err = nil
		}
		bw.WriteString(terminator(err))
		if ferr := bw.Flush(); ferr != nil {
			return fmt.Errorf("write results: %w", ferr)
		}
		if quit {
			return ErrQuit
		}
	}
}

// terminator returns the line that ends the answer to one command.
func terminator(err error) string {
	if err == nil {
		return framedOK + "\n"
	}
	var le *LineError
	if errors.As(err, &le) && le.File == framedName {
		err = le.Err
	}
	return framedErr + strings.ReplaceAll(err.Error(), "\n", " ") + "\n"
}
