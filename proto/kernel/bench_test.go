package kernel

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"rtm/store/entry"

	"github.com/vishvananda/netns"
)

// BenchmarkInstall measures K1: installing 100,000 routes into a fresh
// namespace, against `ip -batch` of the same `route add` lines in a
// fresh namespace of the same shape, in the same run. Each iteration
// times both; the metrics are medians over the iterations:
//
//	go test -run '^$' -bench Install -benchtime 5x ./proto/kernel
func BenchmarkInstall(b *testing.B) {
	const n = 100_000
	lines := make([]string, n)
	routes := make([]entry.Route, n)
	for i := range n {
		p := fmt.Sprintf("10.%d.%d.%d/32", i>>16, i>>8&0xff, i&0xff)
		lines[i] = "route add " + p + " via 192.0.2.1 dev veth0"
		routes[i] = route(p, "192.0.2.1", "veth0")
	}
	fresh := func(b *testing.B) {
		ns, err := netns.New()
		if err != nil {
			b.Fatal(err)
		}
		ns.Close() // the thread holds it until the next one
		veth(b, "veth0", "veth1")
		ip(b, "route", "add", "192.0.2.0/24", "dev", "veth0")
	}
	for _, mode := range []string{"reconcile", "apply-1000"} {
		b.Run(mode, func(b *testing.B) {
			newNS(b) // locks this goroutine's thread; fresh replaces the namespace
			var ipRate, rtmRate, ratio []float64
			for b.Loop() {
				b.StopTimer()
				fresh(b)
				ipTime := ipBatch(b, lines)
				fresh(b)
				in, err := NewInstaller(InstallerOptions{})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				if mode == "reconcile" {
					err = in.Reconcile(routes, nil)
				} else {
					for i := 0; i < n && err == nil; i += 1000 {
						cs := make([]entry.Change, 0, 1000)
						for _, r := range routes[i:min(i+1000, n)] {
							cs = append(cs, set(r))
						}
						err = in.Apply(cs...)
					}
				}
				rtmTime := time.Since(start)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				if got := stat(in.Stats(), "routes_installed"); got != n {
					b.Fatalf("%d routes installed, want %d", got, n)
				}
				in.Close()
				ipRate = append(ipRate, n/ipTime.Seconds())
				rtmRate = append(rtmRate, n/rtmTime.Seconds())
				ratio = append(ratio, ipTime.Seconds()/rtmTime.Seconds())
				b.Logf("ip -batch %v (%.0f routes/s), rtm %v (%.0f routes/s), %.2fx",
					ipTime.Round(time.Millisecond), n/ipTime.Seconds(), rtmTime.Round(time.Millisecond), n/rtmTime.Seconds(),
					ipTime.Seconds()/rtmTime.Seconds())
				b.StartTimer()
			}
			b.ReportMetric(median(ipRate), "ip-routes/s")
			b.ReportMetric(median(rtmRate), "rtm-routes/s")
			b.ReportMetric(median(ratio), "x-ip-batch")
		})
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// BenchmarkImport measures K2: 100,000 routes added with `ip -batch`
// while an importer follows; the time until the sink holds them all,
// against the time ip -batch took, in the same run.
func BenchmarkImport(b *testing.B) {
	const n = 100_000
	lines := make([]string, n)
	for i := range n {
		lines[i] = fmt.Sprintf("route add 10.%d.%d.%d/32 via 192.0.2.1 dev veth0", i>>16, i>>8&0xff, i&0xff)
	}
	newNS(b)
	var ratio []float64
	for b.Loop() {
		b.StopTimer()
		ns, err := netns.New()
		if err != nil {
			b.Fatal(err)
		}
		ns.Close()
		veth(b, "veth0", "veth1")
		ip(b, "route", "add", "192.0.2.0/24", "dev", "veth0")
		sink := newMapSink()
		im, err := NewImporter(sink, ImporterOptions{})
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- im.Run(context.Background()) }()
		<-im.Ready()
		b.StartTimer()
		start := time.Now()
		ipTime := ipBatch(b, lines)
		for {
			sink.mu.Lock()
			got := len(sink.routes)
			sink.mu.Unlock()
			if got == n+1 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		imTime := time.Since(start)
		b.StopTimer()
		im.Close()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		ratio = append(ratio, imTime.Seconds()/ipTime.Seconds())
		b.Logf("ip -batch %v, sink complete after %v (%.2fx), overflows %d",
			ipTime.Round(time.Millisecond), imTime.Round(time.Millisecond), imTime.Seconds()/ipTime.Seconds(),
			stat(im.Stats(), "overflows"))
		b.StartTimer()
	}
	b.ReportMetric(median(ratio), "x-ip-batch-time")
}
