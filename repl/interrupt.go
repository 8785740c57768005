package repl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// errStopped is the cause of a wait Interrupt ended. It reads as
// ErrInterrupted but is not it: a wait that ends so returns
// ErrInterrupted itself, while a change it kept from the server is
// reported not applied, with this as the reason, even as the prompt
// quits (Ctrl-D), which says nothing of an ErrInterrupted.
var errStopped = errors.New("interrupted")

// interrupter lets another goroutine (a signal handler: Ctrl-C at the
// prompt, or the end of the process) stop the command that runs: a wait
// in progress ends at once, a replay stops before its next line.
type interrupter struct {
	interrupted atomic.Bool
	mu          sync.Mutex
	cancel      context.CancelCauseFunc // of the wait in progress
	reads       map[*os.File]bool       // sources read now (readFrom)
	abandoned   error                   // why the input was given up (abandon), if it was
	quietIdle   bool                    // abandon's: an input that waits for its next line ends quietly
}

// Interrupt stops the command that runs. Safe for concurrent use.
func (i *interrupter) Interrupt() { i.stop() }

// abandon stops the command that runs because its input can no longer
// be served (a client's server quit, a signal): the line the replay
// would run next, and every line after it, are reported not applied for
// cause. With quietIdle, an input that was waiting for its next line
// (a conversation between lines) ends quietly instead: nothing was cut.
func (i *interrupter) abandon(cause error, quietIdle bool) {
	i.mu.Lock()
	if i.abandoned == nil {
		i.abandoned, i.quietIdle = cause, quietIdle
	}
	i.mu.Unlock()
	i.stop()
}

func (i *interrupter) stop() {
	i.mu.Lock()
	i.interrupted.Store(true)
	if i.cancel != nil {
		i.cancel(i.why())
	}
	for f := range i.reads {
		f.SetReadDeadline(time.Now())
	}
	i.mu.Unlock()
}

// readFrom has Interrupt end a read of f that waits (a FIFO, a pipe, a
// terminal: a source whose writer is slow or gone quiet) until done is
// called: the read fails with os.ErrDeadlineExceeded.
func (i *interrupter) readFrom(f *os.File) (done func()) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.reads == nil {
		i.reads = make(map[*os.File]bool)
	}
	i.reads[f] = true
	if i.interrupted.Load() {
		f.SetReadDeadline(time.Now())
	}
	return func() {
		i.mu.Lock()
		delete(i.reads, f)
		i.mu.Unlock()
	}
}

// why is what ends a wait: errStopped, or why the input was abandoned.
// i.mu is held.
func (i *interrupter) why() error {
	if i.abandoned != nil {
		return i.abandoned
	}
	return errStopped
}

// stoppedAt is the error of a replay stopped before the line at loc, idle
// if it was waiting for that line: ErrInterrupted, or, once the input was
// abandoned, that line and every line after it not applied, and why.
func (i *interrupter) stoppedAt(loc Location, idle bool) error {
	i.mu.Lock()
	cause, quiet := i.abandoned, i.quietIdle && idle
	i.mu.Unlock()
	if cause != nil && !quiet {
		// noneAfter: the files that sourced this one stop at it too,
		// with nothing to add (--keep-going named the first line not
		// applied once a level).
		return at(loc, noneAfter{fmt.Errorf("not applied, nor any line after it: %w", cause)})
	}
	return at(loc, ErrInterrupted)
}

// err is what a command that a stop ended returns: ErrInterrupted, or
// why the input was abandoned (the server quit, a signal), which is no
// quiet end.
func (i *interrupter) err() error {
	if cause := i.cause(); cause != nil {
		return cause
	}
	return ErrInterrupted
}

// cause is why the input was abandoned; nil if it was not.
func (i *interrupter) cause() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.abandoned
}

// stopped reports whether Interrupt was called since the last reset.
func (i *interrupter) stopped() bool { return i.interrupted.Load() }

// reset readies it for the next command typed at the prompt.
func (i *interrupter) reset() { i.interrupted.Store(false) }

// wait returns a context for a wait of at most timeout that Interrupt
// ends; done releases it.
// Its cause (context.Cause) says which ended it, in words a message can
// carry: errStopped, or the time waited.
func (i *interrupter) wait(timeout time.Duration) (context.Context, func()) {
	timed, stop := context.WithTimeoutCause(context.Background(), timeout, fmt.Errorf("nothing after %v", timeout))
	ctx, cancel := context.WithCancelCause(timed)
	i.mu.Lock()
	i.cancel = cancel
	if i.interrupted.Load() {
		cancel(i.why())
	}
	i.mu.Unlock()
	return ctx, func() {
		i.mu.Lock()
		i.cancel = nil
		i.mu.Unlock()
		cancel(nil)
		stop()
	}
}
