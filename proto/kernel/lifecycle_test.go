package kernel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// TestLifecycle: closing an importer (of the kernel or of zebra) or an
// installer ends all its goroutines, and a closed one refuses work
// instead of hanging.
func TestLifecycle(t *testing.T) {
	newNS(t)
	veth(t, "veth0", "veth1")
	ip(t, "link", "set", "lo", "up")
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

		// An FPM importer stops with zebra connected, and after Close
		// its Run returns at once.
		f, err := NewFPMImporter(newMapSink(), FPMOptions{Addr: netip.MustParseAddrPort("127.0.0.1:0")})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel = context.WithCancel(context.Background())
		go func() { done <- f.Run(ctx) }()
		<-f.Ready()
		c, err := net.Dial("tcp", f.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "zebra's connection", func() (bool, string) { return stat(f.Stats(), "zebra_connected") == 1, "" })
		cancel()
		if err := <-done; err != nil {
			t.Errorf("FPM Run after cancel: %v", err)
		}
		c.Close()
		f, err = NewFPMImporter(newMapSink(), FPMOptions{Addr: netip.MustParseAddrPort("127.0.0.1:0")})
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := f.Run(context.Background()); err != nil {
			t.Errorf("FPM Run after Close: %v", err)
		}
	}
	waitFor(t, 2*time.Second, "goroutines to end", func() (bool, string) {
		n := runtime.NumGoroutine()
		return n <= before, fmt.Sprintf("%d goroutines, %d before", n, before)
	})
}
