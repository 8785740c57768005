package repl

import (
	"errors"
	"io"

	"rtm/proto/framed"
)

// framedName stands for the framed stream in locations. The driver knows
// the real file and line, so it is cut from messages.
const framedName = "<framed>"

// ServeFramed runs the lines of r with the framed protocol (package
// framed), writing results and terminators to w. It is a replay like any
// stream (answers written whenever no whole line is waiting, a client's
// changes sent in batches, several in flight), where every line, blank
// and comment lines too, is answered in order with its terminator, and a
// failed line is answered, counted for the exit status, and does not stop
// it. It returns nil at the end of r, and ErrQuit after `quit` (whose
// terminator is written first), so callers end as they do after a replay.
func (in *Interp) ServeFramed(r io.Reader, w io.Writer) error {
	in.busy.Lock()
	defer in.busy.Unlock()
	saved := in.out
	in.out = w
	defer func() { in.out = saved }()
	if in.fw != nil {
		in.fw.answer = in.answer
		defer func() { in.fw.answer = nil }()
	}
	in.newEpoch()
	defer in.readsFrom(r)()
	in.frames = append(in.frames, frame{name: framedName})
	err := in.runStream(framedName, &waitingReader{r: r, in: in}, true)
	in.frames = in.frames[:len(in.frames)-1]
	if ferr := in.flush(); err == nil {
		err = ferr
	}
	return err
}

// runFramed runs one line of a framed stream and answers it, or, for a
// client's change, sends it: its answer comes with the reply to its batch
// (forwarder.answer), before any later line's, since every other line
// waits for the changes sent before it. Only quit and a failure to write
// end the stream.
func (in *Interp) runFramed(p *parsedLine) error {
	if in.fw != nil && p.err == nil && p.cmd.Kind == KindChange {
		return in.fw.add(p.loc, p.cmd.Change)
	}
	if err := in.settle(); err != nil {
		in.answer(err)
		return nil
	}
	var err error
	switch {
	case p.err != nil:
		err = &LineError{File: p.loc.File, Line: p.loc.Line, Err: p.err}
	case p.cmd.Kind != KindNone:
		// What this line runs (a sourced file's changes) is not the
		// stream's to answer line by line.
		if in.fw != nil {
			in.fw.answer = nil
			defer func() { in.fw.answer = in.answer }()
		}
		in.here = p.loc
		err = at(p.loc, in.exec(&p.cmd))
		// A failure stops what its line runs, not the lines after it:
		// they go in an epoch of their own, which the server does not skip.
		in.newEpoch()
	}
	if errors.Is(err, ErrQuit) {
		in.answer(nil)
		return ErrQuit
	}
	in.answer(err)
	return nil
}

// answer writes a framed line's terminator after its output, and counts a
// failure for the exit status.
func (in *Interp) answer(err error) {
	if err != nil {
		in.failed.Add(1)
		var le *LineError
		if errors.As(err, &le) && le.File == framedName {
			err = le.Err
		}
	}
	in.buf = append(in.buf, framed.Terminator(err)...)
}
