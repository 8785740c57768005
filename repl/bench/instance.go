package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"rtm/proto"
	"rtm/repl"
	"rtm/store"
	"rtm/store/entry"
)

// instance is one rtm server of the benchmark, built by proto.Start as
// `rtm server` builds it: a store sized to the tables it will hold, a
// socket, and the command language replaying workload files into it.
type instance struct {
	name   string
	socket string
	srv    *proto.Server
	in     *repl.Interp
	ctx    context.Context
}

// shmPath names a file of this benchmark in the store directory
// (proto.StoreDir: /dev/shm unless RTM_STORE_DIR moves it): its stores
// and the raw table it measures them against, side by side.
func shmPath(name string) string {
	return filepath.Join(proto.StoreDir(), fmt.Sprintf("rtm-bench-%d-%s", os.Getpid(), name))
}

// removeStore removes a store of this benchmark, with the lock file and
// temporary files a server killed on the way leaves.
func removeStore(path string) { store.RemoveFiles(path) }

// startInstance starts a server whose store holds macs MACs and routes
// routes with the same headroom as the full tables (1/8), so that a
// small table is small.
func (b *bench) startInstance(name string, macs, routes int) (*instance, error) {
	socket := filepath.Join(b.dir, name+".sock")
	srv, err := proto.Start(proto.ServerOptions{
		Name: name, Socket: socket, Unlink: true, Fresh: true,
		Store: store.Options{
			Path:          shmPath(name),
			Capacity:      headroom(macs),
			RouteCapacity: headroom(routes),
		},
	})
	if err != nil {
		return nil, err
	}
	go srv.Serve()
	in := &instance{
		name: name, socket: socket, srv: srv, ctx: b.ctx,
		in: repl.NewInterp(srv.Origin("server"), io.Discard, repl.Options{Mode: "server", Name: name, Stderr: b.log}),
	}
	b.instances = append(b.instances, in)
	return in, nil
}

// headroom is the capacity of a store meant to hold n entries.
func headroom(n int) int { return n + n/8 }

// close quits the server: its clients are told, its socket and its store
// are removed.
func (in *instance) close() {
	in.srv.Close("benchmark over", time.Second)
}

// stopInstance closes a server started for one workload, after printing
// its counters when RTM_BENCH_STATS is set.
func (b *bench) stopInstance(in *instance) {
	b.printStats(in)
	in.close()
	b.instances = slices.DeleteFunc(b.instances, func(x *instance) bool { return x == in })
}

// fullTables returns the server of B1–B8, started on first use, and
// writes the files that fill it.
func (b *bench) fullTables() (*instance, error) {
	if b.full != nil {
		return b.full, nil
	}
	t, err := b.writeTables("full", b.o.macs, b.o.routes)
	if err != nil {
		return nil, err
	}
	in, err := b.startInstance("full", b.o.macs, b.o.routes)
	if err != nil {
		return nil, err
	}
	b.full, b.fullFiles = in, t
	return in, nil
}

// file is a generated workload: a replayable file and its line count.
type file struct {
	path  string
	lines int
}

// writeFile writes n lines made by line into the benchmark's directory.
func (b *bench) writeFile(name string, n int, line func(buf []byte, i int) []byte) (file, error) {
	f := file{path: filepath.Join(b.dir, name), lines: n}
	out, err := os.Create(f.path)
	if err != nil {
		return f, err
	}
	w := bufio.NewWriterSize(out, 1<<20)
	var buf []byte
	for i := range n {
		buf = append(line(buf[:0], i), '\n')
		w.Write(buf)
	}
	return f, errors.Join(w.Flush(), out.Close())
}

// workloadMAC is the i-th MAC of every workload.
func workloadMAC(i int) entry.MAC {
	return entry.MAC{0x02, byte(i >> 32), byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

// workloadIP is the address the i-th MAC is created with.
func workloadIP(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

// macCreate and routeCreate are the i-th create lines of the workloads.
func macCreate(buf []byte, i int) []byte {
	buf = workloadMAC(i).AppendTo(append(buf, "C,"...))
	return workloadIP(i).AppendTo(append(buf, ','))
}

func routeCreate(buf []byte, i int) []byte {
	p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(1 + i>>16), byte(i >> 8), byte(i), 0}), 24)
	buf = p.AppendTo(append(buf, "C,"...))
	return fmt.Appendf(buf, ",192.168.%d.1,eth%d", i%250, i%4)
}

// tables is the pair of files that create a table of macs MACs and
// routes routes.
type tables struct{ routes, macs file }

func (b *bench) writeTables(name string, macs, routes int) (tables, error) {
	r, err := b.writeFile(name+"-routes.rtm", routes, routeCreate)
	if err != nil {
		return tables{}, err
	}
	m, err := b.writeFile(name+"-macs.rtm", macs, macCreate)
	return tables{routes: r, macs: m}, err
}

// writeUpdates writes n updates of MACs drawn at random from the first
// macs MACs (the random keys of B8: every update may miss every cache).
func (b *bench) writeUpdates(name string, macs, n int) (file, error) {
	rng := rand.New(rand.NewPCG(uint64(macs), 3))
	return b.writeFile(name, n, func(buf []byte, i int) []byte {
		buf = workloadMAC(rng.IntN(macs)).AppendTo(append(buf, "U,"...))
		return netip.AddrFrom4([4]byte{172, 16 + byte(i>>16&15), byte(i >> 8), byte(i)}).AppendTo(append(buf, ','))
	})
}

// writeClassic writes the classic exercise: n routes and n MACs, a
// route and a MAC in turn.
func (b *bench) writeClassic(n int) (file, error) {
	return b.writeFile(fmt.Sprintf("classic-%d.rtm", n), 2*n, func(buf []byte, i int) []byte {
		if i%2 == 0 {
			return routeCreate(buf, i/2)
		}
		return macCreate(buf, i/2)
	})
}

// replay runs a file through the command language, as `rtm server
// --script` does, and returns when it read the first line.
func (in *instance) replay(f file) (start time.Time, err error) {
	r, err := os.Open(f.path)
	if err != nil {
		return time.Time{}, err
	}
	defer r.Close()
	start = time.Now()
	return start, in.in.RunReader(f.path, r)
}

// fill replays the route file, then the MAC file, and returns the time
// the two replays took.
func (in *instance) fill(t tables) (time.Duration, error) {
	t0, err := in.replay(t.routes)
	if err != nil {
		return 0, err
	}
	d := time.Since(t0)
	t0, err = in.replay(t.macs)
	return d + time.Since(t0), err
}

// sync waits until every connected client has acknowledged every change
// so far; the server wakes it on each acknowledgement.
func (in *instance) sync(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(in.ctx, timeout)
	defer cancel()
	return in.srv.Sync(ctx)
}

// flush empties both tables and waits until every client has it.
func (in *instance) flush() error {
	if err := in.srv.Apply(entry.FlushOf(entry.Both)); err != nil {
		return err
	}
	return in.sync(60 * time.Second)
}

// flushFor empties the tables and waits until the named clients have it (B7's stopped client may not).
func (in *instance) flushFor(clients []*child) error {
	if err := in.srv.Apply(entry.FlushOf(entry.Both)); err != nil {
		return err
	}
	return in.waitAcked(clients, in.srv.Published(), 60*time.Second)
}

// holds says whether the tables hold exactly macs MACs and routes routes.
func (in *instance) holds(macs, routes int) bool {
	info, _ := in.srv.Info()
	return info.MACs == macs && info.Routes == routes
}

// waitAcked waits until the named clients have acknowledged seq. Unlike
// sync it ignores other clients (B7's stopped one). It polls: 0.5 ms is
// under 0.1% of a B2 run, and a tighter loop takes CPU from the clients.
func (in *instance) waitAcked(clients []*child, seq uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		behind := 0
		infos, _ := in.srv.Clients()
		for _, c := range clients {
			i := slices.IndexFunc(infos, func(ci proto.ClientInfo) bool { return ci.Name == c.Name })
			if i < 0 || infos[i].Acked < seq {
				behind++
			}
		}
		if behind == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d clients did not acknowledge change %d within %v", behind, len(clients), seq, timeout)
		}
		if err := in.ctx.Err(); err != nil {
			return err
		}
		time.Sleep(500 * time.Microsecond)
	}
}

// counter reads one of the server's counters (`show stats`).
func (in *instance) counter(name string) uint64 {
	for _, s := range in.srv.Stats() {
		if s.Name == name {
			return s.Value
		}
	}
	return 0
}
