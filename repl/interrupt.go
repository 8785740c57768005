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
}

// Interrupt stops the command that runs. Safe for concurrent use.
func (i *interrupter) Interrupt() {
	i.interrupted.Store(true)
	i.mu.Lock()
	if i.cancel != nil {
		i.cancel(errStopped)
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
	i.mu.Unlock()
	if i.interrupted.Load() {
		cancel(errStopped)
	}
	return ctx, func() {
		i.mu.Lock()
		i.cancel = nil
		i.mu.Unlock()
		cancel(nil)
		stop()
	}
}
