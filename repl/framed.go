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
// framed), writing results and terminators to w. It returns nil at the
// end of r, and ErrQuit after `quit` (whose terminator is written first),
// so callers end as they do after a replay.
func (in *Interp) ServeFramed(r io.Reader, w io.Writer) error {
	in.busy.Lock()
	defer in.busy.Unlock()
	saved := in.out
	defer func() { in.out = saved }()
	loc := Location{File: framedName}
	err := framed.Serve(&waitingReader{r: r, in: in}, w, func(line []byte, out io.Writer) (bool, error) {
		in.out = out
		loc.Line++
		err := in.RunLine(loc, line)
		var le *LineError
		if errors.As(err, &le) && le.File == framedName {
			err = le.Err
		}
		if errors.Is(err, ErrQuit) {
			return true, nil
		}
		return false, err
	})
	if errors.Is(err, framed.ErrStopped) {
		return ErrQuit
	}
	return err
}
