package repl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
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
	in.busy.Lock()
	defer in.busy.Unlock()
	bw := bufio.NewWriterSize(w, 64<<10)
	saved := in.out
	in.out = bw
	defer func() { in.out = saved }()
	br := bufio.NewReaderSize(&waitingReader{r: r, in: in}, 64<<10)
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

// child is the driver's end: an rtm process a scenario runs, spoken to
// with the framed protocol. Its stderr is kept for failure reports.
type child struct {
	name    string // "server", "client a"
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	answers chan answer
	done    chan struct{} // closed when it has exited
	abandon chan struct{} // closed at cleanup: nobody reads answers any more
	stderr  *tailBuffer
	paused  bool
	synced  int // the scenario's change count when it last synced
}

// answer is what a process wrote for one line.
type answer struct {
	out    []string
	failed bool
	msg    string // why it failed
}

func (c *child) readAnswers(r *os.File) {
	defer r.Close()
	defer close(c.answers)
	br := bufio.NewReaderSize(r, 64<<10)
	var out []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		var a answer
		switch {
		case line == framedOK:
			a = answer{out: out}
		case strings.HasPrefix(line, framedErr):
			a = answer{out: out, failed: true, msg: line[len(framedErr):]}
		default:
			out = append(out, line)
			continue
		}
		out = nil
		select {
		case c.answers <- a:
		case <-c.abandon:
			return
		}
	}
}

// do sends one line and returns the process's answer to it.
func (c *child) do(ctx context.Context, line string, timeout time.Duration) ([]string, error) {
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		return nil, c.gone(ctx)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case a, ok := <-c.answers:
		switch {
		case !ok:
			return nil, c.gone(ctx)
		case a.failed:
			return a.out, &processError{where: c.name, msg: a.msg}
		}
		return a.out, nil
	case <-t.C:
		return nil, &processError{where: c.name, msg: fmt.Sprintf("%s did not answer within %v", c.name, timeout), err: context.DeadlineExceeded}
	case <-ctx.Done():
		return nil, &processError{where: c.name, msg: "interrupted", err: ctx.Err()}
	}
}

// gone reports a process that exited instead of answering.
func (c *child) gone(ctx context.Context) error {
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
	}
	err := errors.New("exited")
	return &processError{where: c.name, msg: c.name + " exited instead of answering: " + c.status(), err: err}
}

// wait waits for c to exit.
func (c *child) wait(ctx context.Context, timeout time.Duration) error {
	select {
	case <-c.done:
		return nil
	case <-time.After(timeout):
		return &processError{where: c.name, msg: fmt.Sprintf("%s still running %v after it was told to exit", c.name, timeout), err: context.DeadlineExceeded}
	case <-ctx.Done():
		return &processError{where: c.name, msg: "interrupted", err: ctx.Err()}
	}
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// status says how c ended ("exit status 1", "signal: killed").
func (c *child) status() string {
	if !c.exited() {
		return "still running"
	}
	return c.cmd.ProcessState.String()
}

// kill signals c's process group: the process and anything it started.
func (c *child) kill(sig syscall.Signal) {
	if !c.exited() {
		syscall.Kill(-c.cmd.Process.Pid, sig)
	}
}

func (c *child) resume() {
	if c.paused {
		c.kill(syscall.SIGCONT)
		c.paused = false
	}
}

// tailBuffer keeps the last tailMax bytes a process wrote to stderr.
type tailBuffer struct {
	mu sync.Mutex
	b  []byte
}

const tailMax = 64 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > tailMax {
		t.b = append(t.b[:0], t.b[len(t.b)-tailMax:]...)
	}
	return len(p), nil
}

// tail returns the last n lines, leaving out those that start with skip.
func (t *tailBuffer) tail(n int, skip string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := strings.Split(strings.TrimRight(string(t.b), "\n"), "\n")
	lines = slices.DeleteFunc(lines, func(l string) bool { return strings.HasPrefix(l, skip) })
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimLeft(strings.Join(lines, "\n"), "\n")
}
