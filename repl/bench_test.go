package repl

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"rtm/proto"
	"rtm/store"
	"rtm/store/entry"
)

// nopEngine accepts every change and holds nothing: BenchmarkReplay
// measures the language, not a table.
type nopEngine struct{}

func (nopEngine) Apply(entry.Change) error                            { return nil }
func (nopEngine) Routes() []entry.Route                               { return nil }
func (nopEngine) GetRoute(netip.Prefix) (entry.Route, bool)           { return entry.Route{}, false }
func (nopEngine) MatchRoute(netip.Addr) (entry.Route, bool)           { return entry.Route{}, false }
func (nopEngine) MACs() []entry.MAC                                   { return nil }
func (nopEngine) LookupMAC(entry.MAC) (netip.Addr, error)             { return netip.Addr{}, entry.ErrNotFound }
func (nopEngine) Clients(context.Context) ([]proto.ClientInfo, error) { return nil, nil }
func (nopEngine) Info(context.Context) (proto.ServerInfo, error)      { return proto.ServerInfo{}, nil }
func (nopEngine) Stats() []proto.Stat                                 { return nil }
func (nopEngine) Sync(context.Context) error                          { return nil }
func (nopEngine) SyncLocal(context.Context) error                     { return nil }

// macLines and routeLines are distinct lines of the B1 workload's shape.
func macLines(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		m := entry.MACFromUint64(0x020000000000 + uint64(i))
		out[i] = fmt.Appendf(nil, "C,%s,10.%d.%d.%d\n", m, i>>16&255, i>>8&255, i&255)
	}
	return out
}

func routeLines(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "C,10.%d.%d.0/24,192.168.%d.1,eth%d\n", i>>8&255, i&255, i&255, i%4)
	}
	return out
}

func benchParse(b *testing.B, lines [][]byte) {
	var (
		p   parser
		cmd Command
	)
	b.ReportAllocs()
	b.SetBytes(int64(len(lines[0])))
	i := 0
	for b.Loop() {
		if err := p.parseInto(lines[i%len(lines)], &cmd); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkParseMACLine(b *testing.B)   { benchParse(b, macLines(4096)) }
func BenchmarkParseRouteLine(b *testing.B) { benchParse(b, routeLines(4096)) }

// BenchmarkReplay: 1 M lines (900 k MAC creates, 100 k route creates)
// through RunReader into an engine that does nothing.
func BenchmarkReplay(b *testing.B) {
	const total, routes = 1_000_000, 100_000
	var data bytes.Buffer
	for _, l := range routeLines(routes) {
		data.Write(l)
	}
	for _, l := range macLines(total - routes) {
		data.Write(l)
	}
	in := NewInterp(nopEngine{}, nil, Options{Stderr: &bytes.Buffer{}})
	b.ReportAllocs()
	b.SetBytes(int64(data.Len()))
	for b.Loop() {
		if err := in.RunReader("bench", bytes.NewReader(data.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// replayServer starts a server whose store holds macs MACs and routes
// routes, with no clients, and returns it with an Interp over it.
func replayServer(b *testing.B, macs, routes int) (*proto.Server, *Interp) {
	name := fmt.Sprintf("rtm-bench-replay-%d", os.Getpid())
	srv, err := proto.Start(proto.ServerOptions{
		Name:   name,
		Socket: filepath.Join(b.TempDir(), "sock"),
		Store:  store.Options{Path: filepath.Join(proto.StoreDir(), name), Capacity: macs + macs/8, RouteCapacity: max(routes, 1)},
		Unlink: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close("done", time.Second) })
	return srv, NewInterp(srv.Origin("server"), nil, Options{Stderr: &bytes.Buffer{}})
}

// BenchmarkReplayServer: 1 M MAC creates through RunReader into a real
// server (a store of 1 M MACs in the store directory, no clients), flushed
// between runs: the B1 workload's MAC half, in process.
func BenchmarkReplayServer(b *testing.B) {
	const total = 1_000_000
	srv, in := replayServer(b, total, 0)
	var data bytes.Buffer
	for _, l := range macLines(total) {
		data.Write(l)
	}
	b.ReportAllocs()
	b.SetBytes(int64(data.Len()))
	for b.Loop() {
		b.StopTimer()
		if err := srv.Apply(entry.FlushOf(entry.MACs)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := in.RunReader("bench", bytes.NewReader(data.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkReplayClassic: lines of B9's shape, 10 k route creates and
// 10 k MAC creates in turn (this package's generators, not rtm bench's), through RunReader into a real server with no clients,
// both tables flushed between runs: the server's replay of the classic
// workload, without the pipe and the writers of rtm bench's B9.
func BenchmarkReplayClassic(b *testing.B) {
	const n = 10_000
	srv, in := replayServer(b, n, n)
	var data bytes.Buffer
	routes, macs := routeLines(n), macLines(n)
	for i := range n {
		data.Write(routes[i])
		data.Write(macs[i])
	}
	b.ReportAllocs()
	b.SetBytes(int64(data.Len()))
	for b.Loop() {
		b.StopTimer()
		for _, t := range []entry.Table{entry.MACs, entry.Routes} {
			if err := srv.Apply(entry.FlushOf(t)); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		if err := in.RunReader("bench", bytes.NewReader(data.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*n*b.N), "ns/change")
}

// BenchmarkReplayServerUpdates: 1 M updates of random MACs of a store of
// 1 M, no clients: B8's server side, in process.
func BenchmarkReplayServerUpdates(b *testing.B) {
	const total = 1_000_000
	_, in := replayServer(b, total, 0)
	var data bytes.Buffer
	for _, l := range macLines(total) {
		data.Write(l)
	}
	if err := in.RunReader("fill", bytes.NewReader(data.Bytes())); err != nil {
		b.Fatal(err)
	}
	data.Reset()
	rng := rand.New(rand.NewPCG(8, 8))
	for i := range total {
		m := entry.MACFromUint64(0x020000000000 + uint64(rng.IntN(total)))
		fmt.Fprintf(&data, "U,%s,172.16.%d.%d\n", m, i>>8&255, i&255)
	}
	b.ReportAllocs()
	b.SetBytes(int64(data.Len()))
	for b.Loop() {
		if err := in.RunReader("bench", bytes.NewReader(data.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
