package repl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"rtm/proto"
	"rtm/store"
)

// Bench is `rtm bench`: it runs the workloads B1–B8 of the performance
// targets with real processes. This process is the server (store, socket,
// replay); clients are child processes of the same binary (`rtm bench
// child`), so every change crosses a real socket and every lookup reads
// the real shared segment.
func Bench(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "child" {
		return benchChild(args[1:], stdout, stderr)
	}
	var o benchOptions
	fs := flag.NewFlagSet("rtm bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.runs, "runs", 5, "runs of each workload; the table shows median, min and max")
	fs.IntVar(&o.macs, "macs", 1_000_000, "MAC entries in the workload")
	fs.IntVar(&o.routes, "routes", 100_000, "routes in the workload")
	fs.IntVar(&o.clients, "clients", 4, "client processes for fan-out and latency")
	fs.IntVar(&o.lookups, "lookups", 20_000_000, "lookups per B4 run")
	fs.StringVar(&o.only, "only", "", "comma-separated workloads to run, e.g. B2,B4 (default all)")
	fs.BoolVar(&o.json, "json", false, "print results as JSON")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: rtm bench [flags]\n\nRuns the workloads of the performance targets with real processes and prints\nmedian, min and max of --runs runs next to each target.\n\n%s\nFlags:\n", benchTargetsText())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := o.check(); err != nil {
		fmt.Fprintln(stderr, "rtm bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := newBench(ctx, o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "rtm bench:", err)
		return 1
	}
	results, err := b.run()
	b.close()
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(results)
	} else {
		printBench(stdout, results)
	}
	if err != nil {
		fmt.Fprintln(stderr, "rtm bench:", err)
		return 1
	}
	return 0
}

type benchOptions struct {
	runs, macs, routes, clients, lookups int
	only                                 string
	json                                 bool
}

func (o *benchOptions) check() error {
	switch {
	case o.runs < 1:
		return errors.New("--runs must be at least 1")
	case o.macs < 1000 || o.macs > 1<<26:
		return errors.New("--macs must be between 1000 and 67108864")
	case o.routes < 1 || o.routes > 1<<22:
		return errors.New("--routes must be between 1 and 4194304")
	case o.clients < 1 || o.clients > 256:
		return errors.New("--clients must be between 1 and 256")
	}
	for _, w := range strings.Split(o.only, ",") {
		if w != "" && !slices.ContainsFunc(benchTargets, func(t benchTarget) bool { return strings.EqualFold(t.id, w) }) {
			return fmt.Errorf("--only: no workload %q (have B1 to B8)", w)
		}
	}
	return nil
}

func (o *benchOptions) wants(id string) bool {
	if o.only == "" {
		return true
	}
	return slices.ContainsFunc(strings.Split(o.only, ","), func(w string) bool { return strings.EqualFold(w, id) })
}

type benchTarget struct {
	id, what, target string
}

var benchTargets = []benchTarget{
	{"B1", "apply: replay MAC + route creates, no clients", ">= 2 M lines/s"},
	{"B2", "fan-out: the same replay until every client acked", ">= 1 M changes/s per client"},
	{"B3", "snapshot: new client gets the full tables", "<= 0.25 s"},
	{"B4", "lookup: random MACs from a client, one core", ">= 12 M/s"},
	{"B5", "latency: one change until the slowest client applied it", "p50 <= 150 µs, p99 <= 1 ms"},
	{"B6", "memory: full tables", "segment <= 64 MiB, server RSS <= 200 MiB, client RSS <= 150 MiB"},
	{"B7", "slow client: B2 with one more client stopped", ">= 0.9x B2; growth <= 64 MiB; converges <= 1 s"},
	{"B8", "scaling: cost per change, small vs full table", "within 1.5x"},
}

func benchTargetsText() string {
	var b strings.Builder
	for _, t := range benchTargets {
		fmt.Fprintf(&b, "  %s  %-58s target %s\n", t.id, t.what, t.target)
	}
	return b.String()
}

// BenchResult is one measured figure of one workload.
type BenchResult struct {
	ID     string    `json:"id"`
	Metric string    `json:"metric"`
	Unit   string    `json:"unit"`
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Runs   []float64 `json:"runs"`
	Target string    `json:"target"`
	Met    *bool     `json:"met,omitempty"`
}

func benchSummary(id, metric, unit, target string, runs []float64, met func(median float64) bool) BenchResult {
	s := slices.Clone(runs)
	slices.Sort(s)
	r := BenchResult{ID: id, Metric: metric, Unit: unit, Runs: runs, Target: target}
	if len(s) > 0 {
		r.Median, r.Min, r.Max = s[len(s)/2], s[0], s[len(s)-1]
		if len(s)%2 == 0 {
			r.Median = (s[len(s)/2-1] + s[len(s)/2]) / 2
		}
		if met != nil {
			ok := met(r.Median)
			r.Met = &ok
		}
	}
	return r
}

func printBench(w io.Writer, results []BenchResult) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "workload\tmetric\tmedian\tmin\tmax\ttarget\tmet")
	for _, r := range results {
		met := "-"
		if r.Met != nil {
			met = map[bool]string{true: "yes", false: "NO"}[*r.Met]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Metric,
			benchHuman(r.Median, r.Unit), benchHuman(r.Min, r.Unit), benchHuman(r.Max, r.Unit), r.Target, met)
	}
	tw.Flush()
}

func benchHuman(v float64, unit string) string {
	switch unit {
	case "/s":
		switch {
		case v >= 1e6:
			return fmt.Sprintf("%.2f M/s", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%.1f k/s", v/1e3)
		}
		return fmt.Sprintf("%.0f /s", v)
	case "s":
		switch {
		case v < 1e-3:
			return fmt.Sprintf("%.0f µs", v*1e6)
		case v < 1:
			return fmt.Sprintf("%.1f ms", v*1e3)
		}
		return fmt.Sprintf("%.2f s", v)
	case "MiB":
		return fmt.Sprintf("%.1f MiB", v)
	case "x":
		return fmt.Sprintf("%.2fx", v)
	}
	return fmt.Sprintf("%g %s", v, unit)
}

// bench is the server side of a benchmark session: a private store and
// socket, the generated workload files and the child processes.
type bench struct {
	ctx      context.Context
	o        benchOptions
	log      io.Writer
	dir      string
	srv      *proto.Server
	in       *Interp
	children []*benchProc
	seq      int

	macFile, routeFile, updateFile string
}

func newBench(ctx context.Context, o benchOptions, log io.Writer) (*bench, error) {
	dir, err := os.MkdirTemp("", "rtm-bench-")
	if err != nil {
		return nil, err
	}
	b := &bench{ctx: ctx, o: o, log: log, dir: dir}
	b.srv, err = proto.Start(proto.ServerOptions{
		Name: "bench", Socket: filepath.Join(dir, "bench.sock"), Unlink: true, Fresh: true,
		Store: store.Options{
			Path:          fmt.Sprintf("/dev/shm/rtm-bench-%d", os.Getpid()),
			Capacity:      o.macs + o.macs/8,
			RouteCapacity: o.routes + o.routes/8,
		},
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go b.srv.Serve()
	b.in = NewInterp(b.srv, io.Discard, Options{Mode: "server", Name: "bench"})
	b.macFile, b.routeFile, b.updateFile = filepath.Join(dir, "macs.rtm"), filepath.Join(dir, "routes.rtm"), filepath.Join(dir, "updates.rtm")
	if err := b.generate(); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *bench) close() {
	for _, p := range b.children {
		p.kill()
	}
	if b.srv != nil {
		b.srv.Close("benchmark over", time.Second)
	}
	os.RemoveAll(b.dir)
}

func benchMAC(i int) store.MAC {
	return store.MAC{0x02, byte(i >> 32), byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

// generate writes the workload files: MAC creates, route creates, and
// MAC updates over the first entries (for latency and scaling).
func (b *bench) generate() error {
	write := func(path string, n int, line func(buf []byte, i int) []byte) error {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(f, 1<<20)
		var buf []byte
		for i := range n {
			buf = append(line(buf[:0], i), '\n')
			w.Write(buf)
		}
		return errors.Join(w.Flush(), f.Close())
	}
	return errors.Join(
		write(b.macFile, b.o.macs, func(buf []byte, i int) []byte {
			buf = benchMAC(i).AppendTo(append(buf, "C,"...))
			return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).AppendTo(append(buf, ','))
		}),
		write(b.routeFile, b.o.routes, func(buf []byte, i int) []byte {
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(1 + i>>16), byte(i >> 8), byte(i), 0}), 24)
			buf = p.AppendTo(append(buf, "C,"...))
			return fmt.Appendf(buf, ",192.168.%d.1,eth%d", i%250, i%4)
		}),
		// A million updates: long enough that B8's two timings are not
		// lost in the noise of a shared machine.
		write(b.updateFile, 1_000_000, func(buf []byte, i int) []byte {
			buf = benchMAC(i % 10_000).AppendTo(append(buf, "U,"...))
			return netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)}).AppendTo(append(buf, ','))
		}),
	)
}

func (b *bench) replay(path string) (lines int, d time.Duration, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	cr := &benchLineCounter{r: f}
	t0 := time.Now()
	err = b.in.RunReader(path, cr)
	return cr.lines, time.Since(t0), err
}

type benchLineCounter struct {
	r     io.Reader
	lines int
}

func (c *benchLineCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for _, x := range p[:n] {
		if x == '\n' {
			c.lines++
		}
	}
	return n, err
}

func (b *bench) flush() error {
	if err := b.srv.Flush(true, true); err != nil {
		return err
	}
	return b.sync(30 * time.Second)
}

func (b *bench) sync(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	return b.srv.Sync(ctx)
}

// fill loads the full workload (MACs and routes).
func (b *bench) fill() (lines int, d time.Duration, err error) {
	n1, d1, err := b.replay(b.routeFile)
	if err != nil {
		return 0, 0, err
	}
	n2, d2, err := b.replay(b.macFile)
	return n1 + n2, d1 + d2, err
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

func (b *bench) run() ([]BenchResult, error) {
	var results []BenchResult
	add := func(r ...BenchResult) { results = append(results, r...) }
	steps := []struct {
		id  string
		run func() ([]BenchResult, error)
	}{
		{"B1", b.runB1}, {"B6", b.runB6}, {"B3", b.runB3}, {"B4", b.runB4},
		{"B2", b.runB2}, {"B7", b.runB7}, {"B5", b.runB5}, {"B8", b.runB8},
	}
	for _, s := range steps {
		if !b.o.wants(s.id) {
			continue
		}
		if err := b.ctx.Err(); err != nil {
			return results, err
		}
		b.progress("%s ...", s.id)
		r, err := s.run()
		add(r...)
		if os.Getenv("RTM_BENCH_STATS") != "" {
			b.progress("%s server stats: %v", s.id, b.srv.Stats())
		}
		if err != nil {
			return results, fmt.Errorf("%s: %w", s.id, err)
		}
	}
	slices.SortStableFunc(results, func(x, y BenchResult) int { return strings.Compare(x.ID, y.ID) })
	return results, nil
}

// B1: replay the workload into the server with no clients.
func (b *bench) runB1() ([]BenchResult, error) {
	var rates []float64
	for range b.o.runs {
		if err := b.flush(); err != nil {
			return nil, err
		}
		n, d, err := b.fill()
		if err != nil {
			return nil, err
		}
		rates = append(rates, float64(n)/d.Seconds())
	}
	return []BenchResult{benchSummary("B1", "lines applied", "/s", ">= 2 M/s", rates, func(m float64) bool { return m >= 2e6 })}, nil
}

// ensureFull loads the full workload unless the tables already hold it.
func (b *bench) ensureFull() error {
	if info, _ := b.srv.Info(); info.MACs == b.o.macs && info.Routes == b.o.routes {
		return nil
	}
	if err := b.flush(); err != nil {
		return err
	}
	_, _, err := b.fill()
	return err
}

// B6: segment size, server RSS, and client RSS with full tables.
func (b *bench) runB6() ([]BenchResult, error) {
	if err := b.ensureFull(); err != nil {
		return nil, err
	}
	info, _ := b.srv.Info()
	seg := float64(info.StoreBytes) / (1 << 20)
	var clientRSS []float64
	for range b.o.runs {
		rep, err := b.report("snapshot")
		if err != nil {
			return nil, err
		}
		clientRSS = append(clientRSS, rep.RSSKiB/1024)
	}
	srvRSS := float64(benchRSS("self")) / 1024
	return []BenchResult{
		benchSummary("B6", "segment size", "MiB", "<= 64 MiB", []float64{seg}, func(m float64) bool { return m <= 64 }),
		benchSummary("B6", "server RSS", "MiB", "<= 200 MiB", []float64{srvRSS}, func(m float64) bool { return m <= 200 }),
		benchSummary("B6", "client RSS", "MiB", "<= 150 MiB", clientRSS, func(m float64) bool { return m <= 150 }),
	}, nil
}

// B3: a new client process connects and applies the full snapshot.
func (b *bench) runB3() ([]BenchResult, error) {
	if err := b.ensureFull(); err != nil {
		return nil, err
	}
	var ds []float64
	for range b.o.runs {
		rep, err := b.report("snapshot")
		if err != nil {
			return nil, err
		}
		if rep.MACs != b.o.macs || rep.Routes != b.o.routes {
			return nil, fmt.Errorf("snapshot had %d MACs and %d routes, want %d and %d", rep.MACs, rep.Routes, b.o.macs, b.o.routes)
		}
		ds = append(ds, rep.Seconds)
	}
	return []BenchResult{benchSummary("B3", "connect to snapshot applied", "s", "<= 0.25 s", ds, func(m float64) bool { return m <= 0.25 })}, nil
}

// B4: a client process looks up random MACs through its read-only mapping.
func (b *bench) runB4() ([]BenchResult, error) {
	if err := b.ensureFull(); err != nil {
		return nil, err
	}
	var rates, batched []float64
	for range b.o.runs {
		rep, err := b.report("lookup", "--lookups", strconv.Itoa(b.o.lookups))
		if err != nil {
			return nil, err
		}
		rates, batched = append(rates, rep.Rate), append(batched, rep.BatchRate)
	}
	met := func(m float64) bool { return m >= 12e6 }
	return []BenchResult{
		benchSummary("B4", "lookups, one core, one at a time", "/s", ">= 12 M/s", rates, met),
		benchSummary("B4", "lookups, one core, LookupMany", "/s", ">= 12 M/s", batched, met),
	}, nil
}

// B2: the replay with N clients, until every client acknowledged it.
func (b *bench) runB2() ([]BenchResult, error) {
	rates, err := b.fanout(b.o.clients, nil)
	if err != nil {
		return nil, err
	}
	return []BenchResult{benchSummary("B2", "changes reaching each client", "/s", ">= 1 M/s", rates, func(m float64) bool { return m >= 1e6 })}, nil
}

// fanout measures the full replay reaching n live clients; stopped
// clients, if any, stay connected and stopped throughout.
func (b *bench) fanout(n int, during func(run int) error) ([]float64, error) {
	live, err := b.startApply(n)
	if err != nil {
		return nil, err
	}
	defer b.stopAll(live)
	var rates []float64
	for run := range b.o.runs {
		if err := b.flushLive(live); err != nil {
			return nil, err
		}
		if during != nil {
			if err := during(run); err != nil {
				return nil, err
			}
		}
		t0 := time.Now()
		nlines, _, err := b.fill()
		if err != nil {
			return nil, err
		}
		if err := b.waitAcked(live, b.srv.Published(), 60*time.Second); err != nil {
			return nil, err
		}
		rates = append(rates, float64(nlines)/time.Since(t0).Seconds())
	}
	return rates, nil
}

func (b *bench) flushLive(live []*benchProc) error {
	if err := b.srv.Flush(true, true); err != nil {
		return err
	}
	return b.waitAcked(live, b.srv.Published(), 30*time.Second)
}

// waitAcked waits until the named clients acknowledged seq.
func (b *bench) waitAcked(procs []*benchProc, seq uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		behind := 0
		infos, _ := b.srv.Clients()
		for _, p := range procs {
			i := slices.IndexFunc(infos, func(ci proto.ClientInfo) bool { return ci.Name == p.name })
			if i < 0 || infos[i].Acked < seq {
				behind++
			}
		}
		if behind == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d clients did not acknowledge change %d within %v", behind, len(procs), seq, timeout)
		}
		if err := b.ctx.Err(); err != nil {
			return err
		}
		// Polling costs CPU the clients need; 0.5 ms is under 0.1% of a
		// B2 run.
		time.Sleep(500 * time.Microsecond)
	}
}

// B7: B2 with one more client stopped by SIGSTOP throughout.
func (b *bench) runB7() ([]BenchResult, error) {
	base, err := b.fanout(b.o.clients, nil)
	if err != nil {
		return nil, err
	}
	stopped, err := b.startApply(1)
	if err != nil {
		return nil, err
	}
	defer b.stopAll(stopped)
	slow := stopped[0]
	// The fifth client is stopped once, before the first run, and stays
	// stopped through every run; growth is measured from that moment.
	var growth []float64
	var before uint64
	rates, err := b.fanout(b.o.clients, func(run int) error {
		if run > 0 {
			growth = append(growth, float64(int64(benchRSS("self"))-int64(before))/1024)
			return nil
		}
		if err := b.waitAcked(stopped, b.srv.Published(), 30*time.Second); err != nil {
			return err
		}
		before = benchRSS("self")
		return slow.cmd.Process.Signal(syscall.SIGSTOP)
	})
	if err != nil {
		return nil, err
	}
	growth = append(growth, float64(int64(benchRSS("self"))-int64(before))/1024)
	t0 := time.Now()
	slow.cmd.Process.Signal(syscall.SIGCONT)
	if err := b.waitAcked(stopped, b.srv.Published(), 30*time.Second); err != nil {
		return nil, err
	}
	converge := time.Since(t0).Seconds()
	ratio := make([]float64, len(rates))
	bm := benchSummary("", "", "", "", base, nil).Median
	for i, r := range rates {
		ratio[i] = r / bm
	}
	return []BenchResult{
		benchSummary("B7", "others' rate vs B2", "x", ">= 0.9x", ratio, func(m float64) bool { return m >= 0.9 }),
		benchSummary("B7", "server RSS growth", "MiB", "<= 64 MiB", growth, func(m float64) bool { return m <= 64 }),
		benchSummary("B7", "stopped client converges after SIGCONT", "s", "<= 1 s", []float64{converge}, func(m float64) bool { return m <= 1 }),
	}, nil
}

// B5: one change at idle until the slowest client has applied it
// (measured by its acknowledgement, which follows the apply).
func (b *bench) runB5() ([]BenchResult, error) {
	live, err := b.startApply(b.o.clients)
	if err != nil {
		return nil, err
	}
	defer b.stopAll(live)
	if err := b.ensureFull(); err != nil {
		return nil, err
	}
	var p50s, p99s []float64
	m := benchMAC(0)
	for range b.o.runs {
		var ds []float64
		for i := range 500 {
			ip := netip.AddrFrom4([4]byte{172, 17, byte(i >> 8), byte(i)})
			t0 := time.Now()
			if err := b.srv.UpdateMAC(m, ip); err != nil {
				return nil, err
			}
			// Every connected client is live here, so the server's own
			// sync (woken by each ack) tells when the slowest has it.
			if err := b.sync(5 * time.Second); err != nil {
				return nil, err
			}
			ds = append(ds, time.Since(t0).Seconds())
			time.Sleep(2 * time.Millisecond) // idle between changes
		}
		slices.Sort(ds)
		p50s, p99s = append(p50s, ds[len(ds)/2]), append(p99s, ds[len(ds)*99/100])
	}
	return []BenchResult{
		benchSummary("B5", "latency p50, slowest client", "s", "<= 150 µs", p50s, func(m float64) bool { return m <= 150e-6 }),
		benchSummary("B5", "latency p99, slowest client", "s", "<= 1 ms", p99s, func(m float64) bool { return m <= 1e-3 }),
	}, nil
}

// B8: cost per change on a 10 k table against a full table, with clients.
func (b *bench) runB8() ([]BenchResult, error) {
	live, err := b.startApply(b.o.clients)
	if err != nil {
		return nil, err
	}
	defer b.stopAll(live)
	cost := func() (float64, error) {
		n, _, err := b.replay(b.updateFile)
		if err != nil {
			return 0, err
		}
		return float64(n), nil
	}
	var ratios []float64
	for range b.o.runs {
		var perChange [2]float64
		for i, full := range []bool{false, true} {
			if err := b.flushLive(live); err != nil {
				return nil, err
			}
			if full {
				if _, _, err := b.fill(); err != nil {
					return nil, err
				}
			} else if err := b.fillFirst(10_000); err != nil {
				return nil, err
			}
			if err := b.waitAcked(live, b.srv.Published(), 60*time.Second); err != nil {
				return nil, err
			}
			t0 := time.Now()
			n, err := cost()
			if err != nil {
				return nil, err
			}
			if err := b.waitAcked(live, b.srv.Published(), 60*time.Second); err != nil {
				return nil, err
			}
			perChange[i] = time.Since(t0).Seconds() / n
		}
		ratios = append(ratios, perChange[1]/perChange[0])
	}
	return []BenchResult{benchSummary("B8", "cost per change, full / 10 k table", "x", "<= 1.5x", ratios, func(m float64) bool { return m <= 1.5 })}, nil
}

// fillFirst creates the first n MACs of the workload.
func (b *bench) fillFirst(n int) error {
	for i := range n {
		if err := b.srv.CreateMAC(benchMAC(i), netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})); err != nil {
			return err
		}
	}
	return nil
}

// benchProc is a child client process.
type benchProc struct {
	name string
	cmd  *exec.Cmd
	out  *strings.Builder
	done chan error
}

func (p *benchProc) kill() {
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGCONT)
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (b *bench) spawn(role string, extra ...string) (*benchProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b.seq++
	name := fmt.Sprintf("bench-%s-%d", role, b.seq)
	args := append([]string{"bench", "child", "--socket", filepath.Join(b.dir, "bench.sock"), "--name", name, "--role", role}, extra...)
	p := &benchProc{name: name, cmd: exec.Command(exe, args...), out: &strings.Builder{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, b.log
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.done <- p.cmd.Wait() }()
	b.children = append(b.children, p)
	return p, nil
}

// startApply starts n clients that only apply changes, and waits until
// each is live.
func (b *bench) startApply(n int) ([]*benchProc, error) {
	var procs []*benchProc
	for range n {
		p, err := b.spawn("apply")
		if err != nil {
			b.stopAll(procs)
			return nil, err
		}
		procs = append(procs, p)
	}
	if err := b.waitAcked(procs, b.srv.Published(), 60*time.Second); err != nil {
		b.stopAll(procs)
		return nil, err
	}
	return procs, nil
}

func (b *bench) stopAll(procs []*benchProc) {
	for _, p := range procs {
		p.kill()
		b.children = slices.DeleteFunc(b.children, func(x *benchProc) bool { return x == p })
	}
}

// benchReport runs a measuring child to completion and decodes its report.
func (b *bench) report(role string, extra ...string) (benchReport, error) {
	p, err := b.spawn(role, extra...)
	if err != nil {
		return benchReport{}, err
	}
	defer b.stopAll([]*benchProc{p})
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			return benchReport{}, fmt.Errorf("%s child: %w", role, err)
		}
	case <-time.After(120 * time.Second):
		return benchReport{}, fmt.Errorf("%s child did not finish in 120s", role)
	case <-b.ctx.Done():
		return benchReport{}, b.ctx.Err()
	}
	var rep benchReport
	if err := json.Unmarshal([]byte(p.out.String()), &rep); err != nil {
		return rep, fmt.Errorf("%s child report %q: %w", role, p.out.String(), err)
	}
	return rep, nil
}

type benchReport struct {
	Seconds float64 `json:"seconds,omitempty"`
	Routes  int     `json:"routes,omitempty"`
	MACs    int     `json:"macs,omitempty"`
	Rate    float64 `json:"rate,omitempty"`
	// BatchRate is the lookup rate through LookupMany.
	BatchRate float64 `json:"batch_rate,omitempty"`
	RSSKiB    float64 `json:"rss_kib,omitempty"`
}

// benchChild is a client process of the benchmark.
func benchChild(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rtm bench child", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", "", "server socket")
	name := fs.String("name", "bench", "client name")
	role := fs.String("role", "apply", "apply | snapshot | lookup")
	lookups := fs.Int("lookups", 20_000_000, "lookups for the lookup role")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	t0 := time.Now()
	c, err := proto.Dial(proto.ClientOptions{Socket: *socket, Name: *name})
	if err != nil {
		fmt.Fprintln(stderr, "bench child:", err)
		return 1
	}
	defer c.Close()
	select {
	case <-c.Ready():
	case <-c.Done():
		fmt.Fprintln(stderr, "bench child: session ended before the snapshot:", c.Err())
		return 1
	}
	ready := time.Since(t0)
	var rep benchReport
	switch *role {
	case "apply":
		<-c.Done()
		return 0
	case "snapshot":
		runtime.GC()
		rep = benchReport{Seconds: ready.Seconds(), Routes: len(c.Routes()), MACs: len(c.MACs()), RSSKiB: float64(benchRSS("self"))}
	case "lookup":
		keys := c.MACs()
		rng := rand.New(rand.NewPCG(1, 2))
		rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		r := c.Reader()
		misses := 0
		t := time.Now()
		// No division per lookup: the loop should cost next to nothing
		// beside the lookup it measures.
		for i, j := 0, 0; i < *lookups; i, j = i+1, j+1 {
			if j == len(keys) {
				j = 0
			}
			if _, err := r.Lookup(keys[j]); err != nil {
				misses++
			}
		}
		rep.Rate = float64(*lookups) / time.Since(t).Seconds()
		// The same keys through LookupMany, 64 at a time: a client that
		// has many keys to resolve lets their memory misses overlap.
		const batch = 64
		ips, errs := make([]netip.Addr, batch), make([]error, batch)
		t = time.Now()
		done := 0
		for off := 0; done < *lookups; off += batch {
			if off+batch > len(keys) {
				off = 0
			}
			r.LookupMany(keys[off:off+batch], ips, errs)
			for _, err := range errs {
				if err != nil {
					misses++
				}
			}
			done += batch
		}
		rep.BatchRate = float64(done) / time.Since(t).Seconds()
		if misses > 0 {
			fmt.Fprintf(stderr, "bench child: %d of %d lookups failed\n", misses, *lookups)
			return 1
		}
	default:
		fmt.Fprintf(stderr, "bench child: unknown role %q\n", *role)
		return 2
	}
	json.NewEncoder(stdout).Encode(rep)
	return 0
}

// rssKiB reads a process's resident set size from /proc.
func benchRSS(pid string) uint64 {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
