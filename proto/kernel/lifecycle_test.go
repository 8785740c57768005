package kernel

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// TestLifecycle: closing an importer or installer ends all its
// goroutines, and a closed one refuses work instead of hanging.
func TestLifecycle(t *testing.T) {
	newNS(t)
	veth(t, "veth0", "veth1")
	before := runtime.NumGoroutine()
	for range 3 {
		in, err := NewInstaller(InstallerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := in.Apply(set(route("192.0.2.0/24", "", "veth0"))); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := in.Apply(set(route("192.0.2.0/24", "", "veth0"))); !errors.Is(err, ErrClosed) {
			t.Errorf("SetRoute after Close: %v, want ErrClosed", err)
		}

		im, err := NewImporter(newMapSink(), ImporterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- im.Run(ctx) }()
		<-im.Ready()
		if err := im.Run(ctx); err == nil {
			t.Error("a second Run succeeded")
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run after cancel: %v", err)
		}

		im, err = NewImporter(newMapSink(), ImporterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		im.Close()
		if err := im.Run(context.Background()); err != nil {
			t.Errorf("Run after Close: %v", err)
		}
	}
	waitFor(t, 2*time.Second, "goroutines to end", func() (bool, string) {
		n := runtime.NumGoroutine()
		return n <= before, fmt.Sprintf("%d goroutines, %d before", n, before)
	})
}
