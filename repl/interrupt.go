package repl

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// interrupter lets another goroutine (a signal handler: Ctrl-C at the
// prompt, or the end of the process) stop the command that runs: a wait
// in progress ends at once, a replay stops before its next line.
type interrupter struct {
	interrupted atomic.Bool
	mu          sync.Mutex
	cancel      context.CancelCauseFunc // of the wait in progress
}

// Interrupt stops the command that runs. Safe for concurrent use.
func (i *interrupter) Interrupt() {
	i.interrupted.Store(true)
	i.mu.Lock()
	if i.cancel != nil {
		i.cancel(ErrInterrupted)
	}
	i.mu.Unlock()
}

// stopped reports whether Interrupt was called since the last reset.
func (i *interrupter) stopped() bool { return i.interrupted.Load() }

// reset readies it for the next command typed at the prompt.
func (i *interrupter) reset() { i.interrupted.Store(false) }

// wait returns a context for a wait of at most timeout that Interrupt
// ends; done releases it.
// Its cause (context.Cause) says which ended it, in words a message can
// carry: ErrInterrupted, or the time waited.
func (i *interrupter) wait(timeout time.Duration) (context.Context, func()) {
	timed, stop := context.WithTimeoutCause(context.Background(), timeout, fmt.Errorf("nothing after %v", timeout))
	ctx, cancel := context.WithCancelCause(timed)
	i.mu.Lock()
	i.cancel = cancel
	i.mu.Unlock()
	if i.interrupted.Load() {
		cancel(ErrInterrupted)
	}
	return ctx, func() {
		i.mu.Lock()
		i.cancel = nil
		i.mu.Unlock()
		cancel(nil)
		stop()
	}
}
