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
type stuckEngine struct{ *memEngine }

func (stuckEngine) Sync(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestInterruptStopsSync: Ctrl-C at the prompt (Interrupt) ends a sync
// that would wait for its whole timeout.
func TestInterruptStopsSync(t *testing.T) {
	in := NewInterp(stuckEngine{newMemEngine()}, io.Discard, Options{Stderr: io.Discard})
	go func() {
		time.Sleep(50 * time.Millisecond)
		in.Interrupt()
	}()
	done := make(chan error, 1)
	go func() { done <- in.RunReader("lab.rtm", strings.NewReader("sync 1h\n")) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("got %v, want ErrInterrupted", err)
		}
		if !strings.HasPrefix(err.Error(), "lab.rtm:1: ") {
			t.Errorf("interrupted sync does not name its line: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Interrupt did not stop the sync")
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
