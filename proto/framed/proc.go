package framed

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

// Proc is a child process driven through the framed protocol: lines go
// to its stdin, answers come back from its stdout, and what it writes to
// stderr is kept for reports. It is used by one goroutine at a time,
// apart from Signal, Exited and the accessors of what it wrote.
type Proc struct {
	Name string // as in messages: "server", "client a"
	Cmd  *exec.Cmd

	stdin   io.WriteCloser
	answers chan reply
	done    chan struct{} // closed once the process has exited and its output is read
	abandon chan struct{} // closed by Kill: nobody reads answers any more
	once    sync.Once
	stdout  *Buffer // every output line, answers' and otherwise
	stderr  *Buffer

	// expected holds one entry per line written and not yet answered, in
	// order: the answers come back in the order the lines went out.
	mu       sync.Mutex
	expected []*expectation
}

// expectation is a line waiting for its answer. An answer nobody waits
// for (the line was sent with Send, or its Do gave up) is dropped, so a
// late answer is never taken for the next line's.
type expectation struct {
	drop   bool
	gaveUp chan struct{} // closed when the Do that sent the line stops waiting
}

type reply struct {
	Answer
	exp *expectation
}

// Answer is what a process wrote for one line.
type Answer struct {
	Out    []string // the output lines
	Failed bool
	Msg    string // why it failed
}

// AnswerError is a line the process answered with an error.
type AnswerError struct {
	Proc string // the process's name
	Msg  string
}

func (e *AnswerError) Error() string { return e.Proc + ": " + e.Msg }

// ErrExited says the process exited instead of answering.
var ErrExited = errors.New("exited")

// Start starts cmd with its stdin and stdout as the protocol's pipes and
// its stderr kept (the last 1 MiB). A cmd.Stderr set by the caller gets a
// copy. If cmd.SysProcAttr asks for a process group of its own, Signal
// and Kill reach the whole group.
func Start(name string, cmd *exec.Cmd) (*Proc, error) {
	p := &Proc{
		Name: name, Cmd: cmd,
		answers: make(chan reply), done: make(chan struct{}), abandon: make(chan struct{}),
		stdout: NewBuffer(1 << 20), stderr: NewBuffer(1 << 20),
	}
	if cmd.Stderr != nil {
		cmd.Stderr = io.MultiWriter(p.stderr, cmd.Stderr)
	} else {
		cmd.Stderr = p.stderr
	}
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	// A pipe of our own, not StdoutPipe: Wait must not close it before
	// the last answer, written just before the exit, has been read.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = pw
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	read := make(chan struct{})
	go func() { p.readAnswers(pr); close(read) }()
	go func() {
		cmd.Wait()
		<-read
		close(p.done)
	}()
	return p, nil
}

func (p *Proc) readAnswers(r *os.File) {
	defer r.Close()
	defer close(p.answers)
	br := bufio.NewReaderSize(r, 64<<10)
	var out []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if line != "" {
				p.stdout.Write([]byte(line))
			}
			return
		}
		line = strings.TrimSuffix(line, "\n")
		end, failed, msg := parseTerminator(line)
		if !end {
			p.stdout.Write([]byte(line + "\n"))
			out = append(out, line)
			continue
		}
		a := Answer{Out: out, Failed: failed, Msg: msg}
		out = nil
		e := p.next()
		if e == nil || e.drop {
			continue
		}
		select {
		case p.answers <- reply{a, e}:
		case <-e.gaveUp:
		case <-p.abandon:
			return
		}
	}
}

// expect records a line about to be written.
func (p *Proc) expect(drop bool) *expectation {
	e := &expectation{drop: drop, gaveUp: make(chan struct{})}
	p.mu.Lock()
	p.expected = append(p.expected, e)
	p.mu.Unlock()
	return e
}

// next takes the oldest line still waiting for its answer (nil if none:
// output the process wrote on its own).
func (p *Proc) next() *expectation {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.expected) == 0 {
		return nil
	}
	e := p.expected[0]
	p.expected = p.expected[1:]
	return e
}

// Do sends one line and returns the process's answer to it: its output,
// and an *AnswerError if the process refused the line. A process that
// exits instead of answering gives an error wrapping ErrExited; one that
// takes longer than timeout, one wrapping context.DeadlineExceeded.
func (p *Proc) Do(ctx context.Context, line string, timeout time.Duration) ([]string, error) {
	e := p.expect(false)
	defer close(e.gaveUp)
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		return nil, p.gone(ctx)
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case r, ok := <-p.answers:
			switch {
			case !ok:
				return nil, p.gone(ctx)
			case r.exp != e:
				continue // the late answer to a line whose Do gave up
			case r.Failed:
				return r.Out, &AnswerError{Proc: p.Name, Msg: r.Msg}
			}
			return r.Out, nil
		case <-t.C:
			return nil, fmt.Errorf("%s did not answer %q within %v: %w", p.Name, line, timeout, context.DeadlineExceeded)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Send writes lines without waiting for their answers, which are dropped:
// a stream the process may still be working through when the caller acts.
func (p *Proc) Send(lines ...string) error {
	for _, l := range lines {
		p.expect(true)
		if _, err := io.WriteString(p.stdin, l+"\n"); err != nil {
			return fmt.Errorf("%s: write %q: %w", p.Name, l, err)
		}
	}
	return nil
}

// gone reports a process that exited instead of answering.
func (p *Proc) gone(ctx context.Context) error {
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
	}
	return fmt.Errorf("%s exited instead of answering: %s: %w", p.Name, p.Status(), ErrExited)
}

// CloseInput closes the process's stdin: end of input.
func (p *Proc) CloseInput() error { return p.stdin.Close() }

// Wait waits up to timeout for the process to exit.
func (p *Proc) Wait(ctx context.Context, timeout time.Duration) error {
	select {
	case <-p.done:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("%s still running %v after it was told to exit: %w", p.Name, timeout, context.DeadlineExceeded)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed once the process has exited and its output is read.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitCode is the exit status, -1 while running or after a signal.
func (p *Proc) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.Cmd.ProcessState.ExitCode()
}

// Status says how the process ended ("exit status 1", "signal: killed").
func (p *Proc) Status() string {
	if !p.Exited() {
		return "still running"
	}
	return p.Cmd.ProcessState.String()
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Signal sends sig to the process, or to its process group when it has
// one of its own (so that anything it started gets it too).
func (p *Proc) Signal(sig syscall.Signal) {
	if p.Exited() {
		return
	}
	if a := p.Cmd.SysProcAttr; a != nil && a.Setpgid {
		syscall.Kill(-p.Pid(), sig)
		return
	}
	p.Cmd.Process.Signal(sig)
}

// Kill ends the process (a stopped one too), waits for it, and stops
// reading its answers. Safe to call more than once.
func (p *Proc) Kill() {
	p.Signal(syscall.SIGKILL)
	p.Signal(syscall.SIGCONT)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
	p.once.Do(func() { close(p.abandon) })
}

// Stdout is every line the process wrote to stdout so far, answers'
// output included, terminators left out.
func (p *Proc) Stdout() string { return p.stdout.String() }

// Stderr is what the process wrote to stderr so far (its last 1 MiB).
func (p *Proc) Stderr() string { return p.stderr.String() }

// StderrTail returns the last n lines of stderr, leaving out lines that
// start with skip (if skip is not empty).
func (p *Proc) StderrTail(n int, skip string) string {
	lines := strings.Split(strings.TrimRight(p.stderr.String(), "\n"), "\n")
	if skip != "" {
		lines = slices.DeleteFunc(lines, func(l string) bool { return strings.HasPrefix(l, skip) })
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimLeft(strings.Join(lines, "\n"), "\n")
}

// Buffer keeps the last bytes written to it, up to a limit. Safe for
// concurrent use.
type Buffer struct {
	mu    sync.Mutex
	b     []byte
	limit int
}

// NewBuffer returns a Buffer that keeps the last limit bytes.
func NewBuffer(limit int) *Buffer { return &Buffer{limit: limit} }

func (t *Buffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.limit {
		t.b = append(t.b[:0], t.b[len(t.b)-t.limit:]...)
	}
	return len(p), nil
}

func (t *Buffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
