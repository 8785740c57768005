package scenario

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"rtm/proto/framed"
	"rtm/repl"
)

// waitForServer is how long a client started while the server is down
// keeps trying to reach it (rtm client --wait): longer than any
// scenario, which ends the client with everything else.
const waitForServer = 24 * time.Hour

// checkpointPrefix starts the line a server logs when SIGHUP has synced
// its store, or failed to.
const checkpointPrefix = "checkpoint: "

// child is a process of the scenario: a server or a client, driven with
// the framed protocol.
type child struct {
	*framed.Proc
	name    string // "server", "client a"
	started repl.Location
	paused  bool
	// ready: it has had its first snapshot, so it reads its input. A
	// client started while the server is down is not ready until it
	// reaches a server.
	ready bool
	// lost: it lost the server (or never reached it) and has not been
	// seen back since: listed by a running server, with its snapshot.
	lost        bool
	synced      int       // the scenario's change count when it last synced
	checkpoints *logLines // a server's checkpoint lines
}

func (s *scenario) spawn(name string, args []string, stderr io.Writer) (*child, error) {
	cmd := exec.Command(s.opts.Binary, args...)
	cmd.Stderr = stderr
	// A process group of its own keeps a terminal's Ctrl-C for the
	// runner, which then cleans up; Pdeathsig ends the child if the
	// runner dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p, err := framed.Start(name, cmd)
	if err != nil {
		return nil, err
	}
	c := &child{Proc: p, name: name}
	s.procs = append(s.procs, c)
	return c, nil
}

func (s *scenario) startServer(fresh bool) error {
	args := []string{"server", "--framed", "--exit-at-eof", "--socket", s.socket, "--store", s.store}
	if fresh {
		args = append(args, "--fresh")
	}
	log := &logLines{prefix: checkpointPrefix}
	c, err := s.spawn("server", args, log)
	if err != nil {
		return err
	}
	c.checkpoints = log
	// The server reads its first line once it listens.
	if _, err := c.do(s.ctx, "", s.opts.Timeout); err != nil {
		return err
	}
	c.ready = true
	s.server, s.serverEnded = c, ""
	return nil
}

// stopServer quits the server cleanly.
func (s *scenario) stopServer() error {
	c := s.server
	s.server, s.serverEnded = nil, "it did not restart"
	if _, err := c.do(s.ctx, "quit", s.opts.Timeout); err != nil {
		return err
	}
	if err := c.wait(s.ctx, s.opts.Timeout); err != nil {
		return err
	}
	if code := c.ExitCode(); code != 0 {
		return &processError{where: "server", msg: "the server quit with " + c.Status() + "; want status 0"}
	}
	return nil
}

// clientsEnd waits for the clients to exit after a clean server quit
// (the server tells them to). One that cannot hear it is killed: it was
// not connected to that server (it lost it, or never reached it, while
// paused), or it was paused and the goodbye was dropped.
func (s *scenario) clientsEnd(loc repl.Location) error {
	for _, n := range slices.Clone(s.order) {
		c := s.clients[n]
		s.forget(n, fmt.Sprintf("it ended when the server quit at %s; client start %s starts it again", loc, n))
		c.resume()
		if c.lost {
			c.kill(syscall.SIGKILL)
		}
		if c.wait(s.ctx, s.opts.Timeout) != nil {
			if s.ctx.Err() != nil {
				return &processError{where: c.name, msg: "interrupted", err: s.ctx.Err()}
			}
			s.logf("%s did not exit when the server quit (a client paused then may miss the goodbye): killed\n", c.name)
			c.kill(syscall.SIGKILL)
		}
	}
	return nil
}

// startClient starts a client. With the server running it returns once
// the client has its snapshot; with the server down, at once: the client
// waits for the server, and the next server restart waits for it.
func (s *scenario) startClient(loc repl.Location, name string) error {
	args := []string{"client", "--framed", "--socket", s.socket, "--client-name", name}
	waiting := s.server == nil
	if waiting {
		args = append(args, "--wait", waitForServer.String())
	}
	c, err := s.spawn("client "+name, args, nil)
	if err != nil {
		return err
	}
	c.started, c.synced = loc, s.changes
	if waiting {
		c.lost = true
		s.logf("        %s waits for the server (%s)\n", c.name, s.serverEnded)
	} else {
		// A client reads its first line once it has its snapshot.
		if _, err := c.do(s.ctx, "", s.opts.Timeout); err != nil {
			return err
		}
		c.ready = true
	}
	s.clients[name] = c
	s.order = append(s.order, name)
	delete(s.ended, name)
	return nil
}

// kill signals c and waits for it to exit.
func (s *scenario) kill(c *child, sig syscall.Signal) error {
	c.kill(sig)
	c.resume() // a stopped process acts on any signal but KILL once continued
	return c.wait(s.ctx, s.opts.Timeout)
}

// awaitStopped waits until every thread of c is stopped (state T in
// /proc/PID/task/*/stat), so that c reads nothing after client pause.
func (s *scenario) awaitStopped(c *child) error {
	deadline := time.Now().Add(s.opts.Timeout)
	for !c.stopped() {
		if c.Exited() {
			return &processError{where: c.name, msg: c.name + " exited unexpectedly: " + c.Status()}
		}
		if time.Now().After(deadline) {
			return &processError{where: c.name, msg: fmt.Sprintf("%s not stopped %v after SIGSTOP", c.name, s.opts.Timeout)}
		}
		if err := s.sleep(c.name, time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

// stopped reports whether every thread of c is stopped.
func (c *child) stopped() bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", c.Pid()))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			return false // a thread that just ended; look again
		}
		// "TID (COMM) STATE ...": COMM may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

// do sends one line and returns the process's answer, failures phrased
// for the report.
func (c *child) do(ctx context.Context, line string, timeout time.Duration) ([]string, error) {
	out, err := c.Do(ctx, line, timeout)
	var ae *framed.AnswerError
	switch {
	case err == nil:
		return out, nil
	case errors.As(err, &ae):
		return out, &processError{where: c.name, msg: ae.Msg}
	case errors.Is(err, framed.ErrExited):
		return out, &processError{where: c.name, msg: c.name + " exited instead of answering: " + c.Status(), err: err}
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return out, &processError{where: c.name, msg: fmt.Sprintf("%s did not answer within %v", c.name, timeout), err: err}
	}
	return out, &processError{where: c.name, msg: "interrupted", err: err}
}

// wait waits for c to exit.
func (c *child) wait(ctx context.Context, timeout time.Duration) error {
	if err := c.Wait(ctx, timeout); err != nil {
		if ctx.Err() != nil {
			return &processError{where: c.name, msg: "interrupted", err: err}
		}
		return &processError{where: c.name, msg: fmt.Sprintf("%s still running %v after it was told to exit", c.name, timeout), err: err}
	}
	return nil
}

// kill signals c's process group: the process and anything it started.
func (c *child) kill(sig syscall.Signal) { c.Signal(sig) }

func (c *child) resume() {
	if c.paused {
		c.Signal(syscall.SIGCONT)
		c.paused = false
	}
}

// logLines watches what a process writes to stderr for lines that start
// with prefix: it counts them and keeps the last.
type logLines struct {
	prefix string

	mu      sync.Mutex
	partial []byte
	n       int
	last    string
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := slices.Index(l.partial, '\n')
		if i < 0 {
			break
		}
		if line := string(l.partial[:i]); strings.HasPrefix(line, l.prefix) {
			l.n, l.last = l.n+1, line
		}
		l.partial = l.partial[i+1:]
	}
	if len(l.partial) == 0 {
		l.partial = nil
	}
	return len(p), nil
}

// count returns how many such lines were written, and the last.
func (l *logLines) count() (int, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, l.last
}
