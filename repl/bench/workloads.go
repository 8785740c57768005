package bench

import (
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"rtm/store/entry"
)

// The workloads B1–B9 of the targets (TARGETS.md). Each returns its rows;
// a workload with a limit measures the limit's run right after each of
// its own runs, so that each pair shares the machine's speed of the
// moment.

// lines is the number of changes in the full tables.
func (b *bench) lines() int { return b.o.macs + b.o.routes }

// loadFull returns the full server holding the full tables, loading
// them unless it holds them already, and waits for every client.
func (b *bench) loadFull() (*instance, error) {
	in, err := b.fullTables()
	if err != nil || in.holds(b.o.macs, b.o.routes) {
		return in, err
	}
	if err := in.flush(); err != nil {
		return nil, err
	}
	if _, err := in.fill(b.fullFiles); err != nil {
		return nil, err
	}
	return in, in.sync(120 * time.Second)
}

// B1: replay the full tables into the server, no clients.
func (b *bench) runB1() ([]Row, error) {
	in, err := b.fullTables()
	if err != nil {
		return nil, err
	}
	var rates []float64
	for range b.o.runs {
		if err := in.flush(); err != nil {
			return nil, err
		}
		d, err := in.fill(b.fullFiles)
		if err != nil {
			return nil, err
		}
		rates = append(rates, float64(b.lines())/d.Seconds())
	}
	return []Row{figure("B1", "lines applied, no clients", "/s", rates).
		judge(">= 2 M/s", func(r Row) bool { return r.Median >= 2e6 })}, nil
}

// snapshotReport starts a client of the full server, lets it apply the
// snapshot and returns its report.
func (b *bench) snapshotReport(in *instance) (clientReport, error) {
	c, err := b.spawn("rtm", []string{"--socket", in.socket})
	if err != nil {
		return clientReport{}, err
	}
	defer b.stop(c)
	var rep clientReport
	if err := c.ask(b.ctx, "connect", 120*time.Second, nil); err != nil {
		return rep, err
	}
	return rep, c.ask(b.ctx, "report", 60*time.Second, &rep)
}

// B6: segment size, server RSS and a fresh client's RSS, full tables.
func (b *bench) runB6() ([]Row, error) {
	in, err := b.loadFull()
	if err != nil {
		return nil, err
	}
	info, _ := in.srv.Info()
	seg := float64(info.StoreBytes) / (1 << 20)
	var clientRSS []float64
	for range b.o.runs {
		rep, err := b.snapshotReport(in)
		if err != nil {
			return nil, err
		}
		clientRSS = append(clientRSS, float64(rep.RSSKiB)/1024)
	}
	srvRSS := float64(rssKiB("self")) / 1024
	return []Row{
		figure("B6", "segment size", "MiB", []float64{seg}).judge("<= 64 MiB", func(r Row) bool { return r.Median <= 64 }),
		figure("B6", "server RSS", "MiB", []float64{srvRSS}).judge("<= 200 MiB", func(r Row) bool { return r.Median <= 200 }),
		figure("B6", "client RSS", "MiB", clientRSS).judge("<= 150 MiB", func(r Row) bool { return r.Median <= 150 }),
	}, nil
}

// B3: a new client process connects and applies the full snapshot.
func (b *bench) runB3() ([]Row, error) {
	in, err := b.loadFull()
	if err != nil {
		return nil, err
	}
	var ds []float64
	for range b.o.runs {
		rep, err := b.snapshotReport(in)
		if err != nil {
			return nil, err
		}
		if rep.MACs != b.o.macs || rep.Routes != b.o.routes {
			return nil, fmt.Errorf("snapshot had %d MACs and %d routes, want %d and %d", rep.MACs, rep.Routes, b.o.macs, b.o.routes)
		}
		ds = append(ds, rep.Seconds)
	}
	return []Row{figure("B3", "connect to snapshot applied", "s", ds).
		judge("<= 0.25 s", func(r Row) bool { return r.Median <= 0.25 })}, nil
}

// B4: a client process looks up random MACs through its read-only
// mapping; its limit L4 is the raw seqlock loop, in another process, over
// the same table: the store's own MAC slots, mapped read-only. The same
// loop over a copy of those slots in a file of its own is measured too:
// the two differ only in where the kernel put their pages.
func (b *bench) runB4() ([]Row, error) {
	in, err := b.loadFull()
	if err != nil {
		return nil, err
	}
	c, err := b.spawn("rtm", []string{"--socket", in.socket})
	if err != nil {
		return nil, err
	}
	defer b.stop(c)
	if err := c.ask(b.ctx, "connect", 120*time.Second, nil); err != nil {
		return nil, err
	}
	var raw *child
	if b.o.limits {
		if raw, err = b.startRawLookup(in); err != nil {
			return nil, err
		}
		defer b.removeRawTables()
		defer b.stop(raw)
	}
	cmd := "lookup " + strconv.Itoa(b.o.lookups)
	var rates, byKey, batched, limits, copies []float64
	for run := range b.o.runs {
		var rep, lim lookupReport
		// Every other run the limit goes first, so that neither side is
		// always the one that runs right after the setup.
		asks := []func() error{
			func() error { return c.ask(b.ctx, cmd, 600*time.Second, &rep) },
			func() error {
				if raw == nil {
					return nil
				}
				return raw.ask(b.ctx, cmd, 600*time.Second, &lim)
			},
		}
		if run%2 == 1 {
			slices.Reverse(asks)
		}
		for _, ask := range asks {
			if err := ask(); err != nil {
				return nil, err
			}
		}
		rates, byKey = append(rates, rep.Rate), append(byKey, rep.KeyRate)
		batched, limits = append(batched, rep.BatchRate), append(limits, lim.Rate)
		copies = append(copies, lim.CopyRate)
	}
	l4 := figure("L4", fmt.Sprintf("raw seqlock lookups, one core, %s entries, the store's own slots", count(b.o.macs)), "/s", limits)
	l4c := figure("L4", "the same over a copy of the slots in a file of its own", "/s", copies)
	return b.bounded([]Row{
		figure("B4", "lookups, one core, one at a time (Lookup: a MAC in)", "/s", rates).against(l4),
		figure("B4", "lookups, one core, one at a time (LookupKey: keys made once, as L4's)", "/s", byKey).against(l4).
			judge(">= 0.85x limit", func(r Row) bool { return r.Ratio >= 0.85 }),
		figure("B4", "the same, vs L4 over the copy", "/s", byKey).against(l4c),
		figure("B4", "lookups, one core, LookupMany", "/s", batched).against(l4),
	}, l4, l4c), nil
}

// bounded returns a workload's rows followed by its limits' rows, or,
// when the limits are not measured (--limits=false, for a profile of
// rtm alone), the rows without limits, ratios or verdicts on a ratio.
func (b *bench) bounded(rows []Row, limits ...Row) []Row {
	if b.o.limits {
		return append(rows, limits...)
	}
	var out []Row
	for _, r := range rows {
		r.LimitMetric, r.Limit, r.Ratio, r.RatioMin, r.RatioMax, r.RatioRuns = "", 0, 0, 0, 0, nil
		if strings.Contains(r.Target, "limit") {
			r.Met = nil
		}
		// B2's second row differs from its first by its limit alone.
		if !slices.ContainsFunc(out, func(x Row) bool { return x.ID == r.ID && slices.Equal(x.Runs, r.Runs) }) {
			out = append(out, r)
		}
	}
	return out
}

// clientsAndReceivers starts K clients of in, and K raw receivers for
// the limit unless the limits are not measured (nil, which
// stopRawReceivers accepts). stop ends both.
func (b *bench) clientsAndReceivers(in *instance) (clients []*child, raw *rawReceivers, stop func(), err error) {
	if clients, err = b.startClients(in, b.o.clients); err != nil {
		return nil, nil, nil, err
	}
	if b.o.limits {
		if raw, err = b.startRawReceivers(b.o.clients); err != nil {
			b.stop(clients...)
			return nil, nil, nil, err
		}
	}
	return clients, raw, func() { b.stopRawReceivers(raw); b.stop(clients...) }, nil
}

// timedFill replays the full tables and returns the changes per second
// that reached each client: until every one acknowledged the last.
func (b *bench) timedFill(in *instance, clients []*child) (float64, error) {
	t0 := time.Now()
	if _, err := in.fill(b.fullFiles); err != nil {
		return 0, err
	}
	if err := in.waitAcked(clients, in.srv.Published(), 120*time.Second); err != nil {
		return 0, err
	}
	return float64(b.lines()) / time.Since(t0).Seconds(), nil
}

// B2: the full replay with K clients, until every client acknowledged
// the last change. Its limit L2 is the raw fan-out of as many 32-byte
// records to K receivers, in packets of the mean size rtm sent in that
// run, and in 16 KiB packets.
func (b *bench) runB2() ([]Row, error) {
	in, err := b.fullTables()
	if err != nil {
		return nil, err
	}
	clients, raw, stop, err := b.clientsAndReceivers(in)
	if err != nil {
		return nil, err
	}
	defer stop()
	var rates, sizes, limits, limits16, serverCPU, clientCPU, bound []float64
	var lim, lim16 float64
	pids := []int{os.Getpid()} // the server is this process
	for _, c := range clients {
		pids = append(pids, c.Cmd.Process.Pid)
	}
	cpu := make([]float64, len(pids))
	for range b.o.runs {
		if err := in.flushFor(clients); err != nil {
			return nil, err
		}
		p0, by0 := in.counter("packets_sent"), in.counter("bytes_sent")
		for i, pid := range pids {
			cpu[i] = cpuSeconds(pid)
		}
		rate, err := b.timedFill(in, clients)
		if err != nil {
			return nil, err
		}
		for i, pid := range pids {
			cpu[i] = (cpuSeconds(pid) - cpu[i]) / float64(b.lines())
		}
		serverCPU, clientCPU = append(serverCPU, cpu[0]), append(clientCPU, sum(cpu[1:]))
		bound = append(bound, float64(runtime.NumCPU())/sum(cpu))
		packets, bytes := in.counter("packets_sent")-p0, in.counter("bytes_sent")-by0
		if packets == 0 {
			return nil, fmt.Errorf("the server counted no packets")
		}
		size := int(bytes / packets)
		if raw != nil {
			if lim, err = raw.fanout(b.lines(), size); err != nil {
				return nil, err
			}
			if lim16, err = raw.fanout(b.lines(), 16<<10); err != nil {
				return nil, err
			}
		}
		rates, sizes = append(rates, rate), append(sizes, float64(size))
		limits, limits16 = append(limits, lim), append(limits16, lim16)
	}
	k := b.o.clients
	l2 := figure("L2", fmt.Sprintf("raw fan-out to %d receivers, 32 B records in packets of rtm's mean size", k), "/s", limits)
	l216 := figure("L2", fmt.Sprintf("raw fan-out to %d receivers, 32 B records in 16 KiB packets", k), "/s", limits16)
	goal := func(r Row) bool { return r.Ratio >= 0.35 }
	rows := b.bounded([]Row{
		figure("B2", "changes reaching each client", "/s", rates).against(l2).judge(">= 0.35x limit", goal),
		figure("B2", "changes reaching each client (vs 16 KiB packets)", "/s", rates).against(l216).judge(">= 0.35x limit", goal),
	}, l2, l216)
	summed := fmt.Sprintf("summed over %d clients", k)
	if k == 1 {
		summed = "summed over 1 client"
	}
	// What the processes' CPU allows: B2 cannot pass the rate at which
	// every core runs the server's and the clients' work without a pause.
	return append(rows,
		figure("B2", "rtm's mean packet size", "B", sizes),
		figure("B2", "server CPU per change (the replay and its writers)", "s", serverCPU),
		figure("B2", "clients' CPU per change, "+summed, "s", clientCPU),
		figure("B2", fmt.Sprintf("the bound of that CPU on %d cores (cores ÷ all CPU per change)", runtime.NumCPU()), "/s", bound)), nil
}

// B7: B2 with one more client, stopped by SIGSTOP throughout. Each run
// is a pair, in turn first: the replay to the K clients alone, and the
// replay with a fresh client stopped before it starts, killed after it;
// the ratio is the pair's, so both share the machine's speed of the
// moment. The server's growth is measured from the first stop. Last, one
// more client is stopped through a replay and then let go: it must
// catch up.
func (b *bench) runB7() ([]Row, error) {
	in, err := b.fullTables()
	if err != nil {
		return nil, err
	}
	live, err := b.startClients(in, b.o.clients)
	if err != nil {
		return nil, err
	}
	defer b.stop(live...)
	fill := func() (float64, error) {
		if err := in.flushFor(live); err != nil {
			return 0, err
		}
		return b.timedFill(in, live)
	}
	var before int64 = -1
	// stopped starts a client, stops it and runs f; kill ends the client
	// afterwards, or else it is returned still stopped.
	stopped := func(f func() error, kill bool) (*child, error) {
		cs, err := b.startClients(in, 1)
		if err != nil {
			return nil, err
		}
		slow := cs[0]
		if before < 0 {
			before = int64(rssKiB("self"))
		}
		slow.Signal(syscall.SIGSTOP)
		if err = f(); err != nil || kill {
			slow.Kill()
			b.stop(slow)
			return nil, err
		}
		return slow, nil
	}
	var ratios, growth []float64
	for run := range b.o.runs {
		var alone, with float64
		steps := []func() error{
			func() (err error) { alone, err = fill(); return err },
			func() error {
				_, err := stopped(func() (err error) { with, err = fill(); return err }, true)
				return err
			},
		}
		if run%2 == 1 {
			slices.Reverse(steps)
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return nil, err
			}
		}
		ratios = append(ratios, with/alone)
		growth = append(growth, float64(int64(rssKiB("self"))-before)/1024)
	}
	slow, err := stopped(func() error { _, err := fill(); return err }, false)
	if err != nil {
		return nil, err
	}
	defer b.stop(slow)
	t0 := time.Now()
	slow.Signal(syscall.SIGCONT)
	if err := in.waitAcked([]*child{slow}, in.srv.Published(), 30*time.Second); err != nil {
		return nil, err
	}
	converge := time.Since(t0).Seconds()
	return []Row{
		figure("B7", "others' rate vs B2 (the same replay without the stopped client, run by run)", "x", ratios).judge(">= 0.9x", func(r Row) bool { return r.Median >= 0.9 }),
		figure("B7", "server RSS growth", "MiB", growth).judge("<= 64 MiB", func(r Row) bool { return r.Median <= 64 }),
		figure("B7", "stopped client converges after SIGCONT", "s", []float64{converge}).
			judge("<= 1 s", func(r Row) bool { return r.Median <= 1 }),
	}, nil
}

// B5: one change at idle until the slowest of K clients has applied it
// (its acknowledgement follows the apply). Its limit L5 is a raw one-byte
// ping to K receivers until the slowest ack, measured the same way.
func (b *bench) runB5() ([]Row, error) {
	in, err := b.loadFull()
	if err != nil {
		return nil, err
	}
	_, raw, stop, err := b.clientsAndReceivers(in)
	if err != nil {
		return nil, err
	}
	defer stop()
	m := workloadMAC(0)
	var p50s, p99s, l50s, l99s []float64
	for range b.o.runs {
		ds := make([]float64, 0, b.o.samples)
		for i := range b.o.samples {
			ip := netip.AddrFrom4([4]byte{172, 17, byte(i >> 8), byte(i)})
			t0 := time.Now()
			if err := in.srv.Apply(entry.MACChange(entry.Update, m, ip)); err != nil {
				return nil, err
			}
			// Every client of this server is one of ours and live: the
			// server's sync, woken by each ack, tells when the slowest
			// has the change.
			if err := in.sync(5 * time.Second); err != nil {
				return nil, err
			}
			ds = append(ds, time.Since(t0).Seconds())
			time.Sleep(2 * time.Millisecond) // idle between changes
		}
		p50, p99 := percentiles(ds)
		var l50, l99 float64
		if raw != nil {
			lim, err := raw.latency(b.o.samples)
			if err != nil {
				return nil, err
			}
			l50, l99 = percentiles(lim)
		}
		p50s, p99s, l50s, l99s = append(p50s, p50), append(p99s, p99), append(l50s, l50), append(l99s, l99)
	}
	k := b.o.clients
	l5 := figure("L5", fmt.Sprintf("raw ping p50, slowest of %d receivers' acks", k), "s", l50s)
	l599 := figure("L5", fmt.Sprintf("raw ping p99, slowest of %d receivers' acks", k), "s", l99s)
	return b.bounded([]Row{
		figure("B5", "latency p50, slowest client", "s", p50s).against(l5).
			judge("<= 2.5x limit", func(r Row) bool { return r.Ratio <= 2.5 }),
		figure("B5", "latency p99, slowest client", "s", p99s).against(l599).
			judge("<= 1 ms", func(r Row) bool { return r.Median <= 1e-3 }),
	}, l5, l599), nil
}

// B8: cost per change (random MAC updates until every client acked) on
// the full tables and on a small table, each in a store sized to its
// content, with K clients on each.
func (b *bench) runB8() ([]Row, error) {
	smallMACs := min(10_000, b.o.macs/10)
	smallRoutes := max(1, b.o.routes*smallMACs/b.o.macs)
	small, err := b.startInstance("small", smallMACs, smallRoutes)
	if err != nil {
		return nil, err
	}
	defer b.stopInstance(small)
	t, err := b.writeTables("small", smallMACs, smallRoutes)
	if err != nil {
		return nil, err
	}
	if _, err := small.fill(t); err != nil {
		return nil, err
	}
	full, err := b.loadFull()
	if err != nil {
		return nil, err
	}
	updSmall, err := b.writeUpdates("small-updates.rtm", smallMACs, b.o.updates)
	if err != nil {
		return nil, err
	}
	updFull, err := b.writeUpdates("full-updates.rtm", b.o.macs, b.o.updates)
	if err != nil {
		return nil, err
	}
	var clients []*child
	defer func() { b.stop(clients...) }()
	for _, in := range []*instance{small, full} {
		cs, err := b.startClients(in, b.o.clients)
		clients = append(clients, cs...)
		if err != nil {
			return nil, err
		}
	}
	cost := func(in *instance, f file) (float64, error) {
		t0, err := in.replay(f)
		if err != nil {
			return 0, err
		}
		if err := in.sync(120 * time.Second); err != nil {
			return 0, err
		}
		return time.Since(t0).Seconds() / float64(f.lines), nil
	}
	var smallCost, fullCost, ratios []float64
	for run := range b.o.runs {
		var cs, cf float64
		var err error
		// Alternate which table goes first, so neither always runs on a
		// warmer or a busier machine.
		if run%2 == 0 {
			if cs, err = cost(small, updSmall); err == nil {
				cf, err = cost(full, updFull)
			}
		} else if cf, err = cost(full, updFull); err == nil {
			cs, err = cost(small, updSmall)
		}
		if err != nil {
			return nil, err
		}
		smallCost, fullCost, ratios = append(smallCost, cs), append(fullCost, cf), append(ratios, cf/cs)
	}
	return []Row{
		figure("B8", fmt.Sprintf("cost per change, %s / %s table", count(b.o.macs), count(smallMACs)), "x", ratios).
			judge("<= 1.3x", func(r Row) bool { return r.Median <= 1.3 }),
		figure("B8", fmt.Sprintf("cost per change, %s table", count(smallMACs)), "s", smallCost),
		figure("B8", fmt.Sprintf("cost per change, %s table", count(b.o.macs)), "s", fullCost),
	}, nil
}

// B9: the classic exercise, N routes and N MACs, a route and a MAC in
// turn, to K clients connected first. First as users run it (real
// processes, userpath.go); then in-process, as rtm bench's own server
// replays files: the same lines replayed by this process into a server
// whose store is sized for them, from the first line until every client
// has acknowledged the last. The second leaves out what the first counts
// beside it: the pipe into the server, the server's stdin, and its
// answer after sync.
func (b *bench) runB9() ([]Row, error) {
	rows, err := b.runB9User()
	if err != nil {
		return rows, err
	}
	n := b.o.n
	in, err := b.startInstance("classic", n, n)
	if err != nil {
		return nil, err
	}
	defer b.stopInstance(in)
	f, err := b.writeClassic(n)
	if err != nil {
		return nil, err
	}
	clients, err := b.startClients(in, b.o.clients)
	if err != nil {
		return nil, err
	}
	defer b.stop(clients...)
	var per, total []float64
	for range b.o.runs {
		if err := in.flush(); err != nil {
			return nil, err
		}
		t0, err := in.replay(f)
		if err != nil {
			return nil, err
		}
		if err := in.sync(120 * time.Second); err != nil {
			return nil, err
		}
		all := time.Since(t0).Seconds()
		per, total = append(per, all/float64(f.lines)), append(total, all)
	}
	what := fmt.Sprintf("in-process: %s routes + %s MACs replayed by rtm bench's server to %d clients", count(n), count(n), b.o.clients)
	return append(rows,
		figure("B9", what+", per change", "s", per).judge("<= 1.0 µs", func(r Row) bool { return r.Median <= 1e-6 }),
		figure("B9", what+", total", "s", total),
	), nil
}
