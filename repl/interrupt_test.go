package repl

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// stuckEngine never finishes a sync on its own: only its context ends it.
// It says when a Sync has begun, and why it ended.
type stuckEngine struct {
	*memEngine
	began chan struct{}
	ended chan error
}

func (e stuckEngine) Sync(ctx context.Context) error {
	close(e.began)
	<-ctx.Done()
	e.ended <- ctx.Err()
	return ctx.Err()
}

// TestInterruptStopsSync: Ctrl-C at the prompt (Interrupt) ends a sync
// that is waiting and would wait for its whole timeout.
func TestInterruptStopsSync(t *testing.T) {
	e := stuckEngine{newMemEngine(), make(chan struct{}), make(chan error, 1)}
	in := NewInterp(e, io.Discard, Options{Stderr: io.Discard})
	done := make(chan error, 1)
	go func() { done <- in.RunReader("lab.rtm", strings.NewReader("sync 1h\n")) }()
	select {
	case <-e.began:
	case err := <-done:
		t.Fatalf("the sync ended before it began waiting: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the sync never began")
	}
	in.Interrupt()
	select {
	case err := <-e.ended:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("the engine's sync ended with %v, want it canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Interrupt did not cancel the running sync")
	}
	err := <-done
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("got %v, want ErrInterrupted", err)
	}
	if !strings.HasPrefix(err.Error(), "lab.rtm:1: ") {
		t.Errorf("interrupted sync does not name its line: %v", err)
	}
}

// TestInterruptStopsReplay: a replay stops before its next line, and what
// ran before stays applied.
func TestInterruptStopsReplay(t *testing.T) {
	e := newMemEngine()
	in := NewInterp(e, io.Discard, Options{Stderr: io.Discard})
	in.Interrupt()
	err := in.RunReader("lab.rtm", strings.NewReader("C,10.1.1.0/24,192.168.1.1,eth0\n"))
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("got %v, want ErrInterrupted", err)
	}
	if len(e.Routes()) != 0 {
		t.Fatalf("a line ran after the interrupt: %v", e.Routes())
	}
}
