package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
)

// Main is `rtm bench`. `rtm bench child ...` is one of the benchmark's
// own child processes (child.go), never typed by a person.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "child" {
		return childMain(args[1:], stdout, stderr)
	}
	var o options
	fs := flag.NewFlagSet("rtm bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: rtm bench [flags]\n\n"+
			"Runs the workloads of the performance targets with real processes, measures\n"+
			"this machine's limits for the same sizes in the same run, and prints median,\n"+
			"min and max of --runs runs, each workload's limit and its ratio to it.\n\n%s\nFlags:\n", workloadsText())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rtm bench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if err := o.check(); err != nil {
		fmt.Fprintln(stderr, "rtm bench:", err)
		return 2
	}
	if o.cpuprofile != "" {
		stopProfile, err := startProfile(o.cpuprofile + ".server.pprof")
		if err != nil {
			fmt.Fprintln(stderr, "rtm bench:", err)
			return 1
		}
		defer stopProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	b, err := newBench(ctx, o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "rtm bench:", err)
		return 1
	}
	rows, err := b.run()
	b.close()
	switch {
	case o.json:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rows)
	case len(rows) > 0:
		printTable(stdout, rows)
	}
	if err != nil {
		fmt.Fprintln(stderr, "rtm bench:", err)
		return 1
	}
	return 0
}

// startProfile starts a CPU profile of this process into path and
// returns the function that ends it.
func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// options are the flags of `rtm bench`.
type options struct {
	runs, macs, routes, clients int
	lookups, updates, samples   int
	n                           int
	piped, framedLines          int
	kernelRoutes, frrPrefixes   int
	rtm                         string   // the rtm binary B9, W1, F1, S1, K1, K2 and K3 run
	baselines                   []string // earlier rtm binaries B9 runs beside it
	only                        string
	json, limits                bool
	cpuprofile                  string
}

func (o *options) register(fs *flag.FlagSet) {
	fs.IntVar(&o.runs, "runs", 5, "runs of each workload; the table shows median, min and max")
	fs.IntVar(&o.macs, "macs", 1_000_000, "MAC entries of the full tables (B1–B8)")
	fs.IntVar(&o.routes, "routes", 100_000, "routes of the full tables (B1–B8)")
	fs.IntVar(&o.clients, "clients", 4, "client processes (and raw receivers) for B2, B5, B7, B8, B9")
	fs.IntVar(&o.lookups, "lookups", 20_000_000, "lookups per B4 run, rtm's and the raw loop's")
	fs.IntVar(&o.updates, "updates", 1_000_000, "MAC updates per B8 run on each table")
	fs.IntVar(&o.samples, "samples", 500, "changes per B5 run, rtm's and the raw pings")
	fs.IntVar(&o.n, "n", 10_000, "B9: N routes + N MACs")
	fs.IntVar(&o.piped, "piped", 1_000_000, "W1: changes piped through rtm client")
	fs.IntVar(&o.framedLines, "framed-lines", 200_000, "F1: lines through rtm client --framed and a plain rtm client")
	fs.IntVar(&o.kernelRoutes, "kernel-routes", 100_000, "K1, K2: routes installed into and imported from a kernel (root only)")
	fs.IntVar(&o.frrPrefixes, "frr-prefixes", 10_000, "K3: prefixes announced over BGP (root and FRR only)")
	fs.StringVar(&o.rtm, "rtm", "", "the rtm `binary` that B9, W1, F1, S1, K1, K2 and K3 run as client and server (default: this one)")
	fs.Func("baseline", "B9: also run this earlier rtm `binary` (its own server and clients), alternating with --rtm run by run, and report the speed ratio (repeatable; the target is for the first)", func(v string) error {
		if fi, err := os.Stat(v); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%s is not an executable file", v)
		}
		o.baselines = append(o.baselines, v)
		return nil
	})
	fs.StringVar(&o.only, "only", "", "comma-separated workloads to run, e.g. B2,B4 (default all: B1 to B9, W1, F1, S1, K1, K2, K3)")
	fs.BoolVar(&o.json, "json", false, "print the rows as one JSON array")
	fs.BoolVar(&o.limits, "limits", true, "measure the machine's limits beside the workloads (false: rtm alone, e.g. under perf stat)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write CPU profiles: `PREFIX`.server.pprof for this process, PREFIX.NAME.pprof for each rtm client")
}

func (o *options) check() error {
	switch {
	case o.runs < 1:
		return errors.New("--runs must be at least 1")
	case o.macs < 1000 || o.macs > 1<<26:
		return errors.New("--macs must be between 1000 and 67108864")
	case o.routes < 1 || o.routes > 1<<22:
		return errors.New("--routes must be between 1 and 4194304")
	case o.clients < 1 || o.clients > 256:
		return errors.New("--clients must be between 1 and 256")
	case o.lookups < 1:
		return errors.New("--lookups must be at least 1")
	case o.updates < 1:
		return errors.New("--updates must be at least 1")
	case o.samples < 1:
		return errors.New("--samples must be at least 1")
	case o.n < 1 || o.n > 1<<22:
		return errors.New("--n must be between 1 and 4194304")
	case o.piped < 1 || o.piped > 1<<26:
		return errors.New("--piped must be between 1 and 67108864")
	case o.framedLines < 1 || o.framedLines > 1<<26:
		return errors.New("--framed-lines must be between 1 and 67108864")
	case o.kernelRoutes < 1 || o.kernelRoutes > 1<<24:
		return errors.New("--kernel-routes must be between 1 and 16777216")
	case o.frrPrefixes < 1 || o.frrPrefixes > 1<<15:
		return errors.New("--frr-prefixes must be between 1 and 32768")
	}
	for _, w := range strings.Split(o.only, ",") {
		w = strings.TrimSpace(w)
		if w != "" && !slices.ContainsFunc(workloads, func(x workload) bool { return strings.EqualFold(x.id, w) }) {
			return fmt.Errorf("--only: no workload %q (have B1 to B9, W1, F1, S1, K1, K2, K3)", w)
		}
	}
	return nil
}

func (o *options) wants(id string) bool {
	if o.only == "" {
		return true
	}
	return slices.ContainsFunc(strings.Split(o.only, ","), func(w string) bool { return strings.EqualFold(strings.TrimSpace(w), id) })
}

// workload is one line of the targets: what runs and what it must reach.
type workload struct {
	id, what, target string
	run              func(*bench) ([]Row, error)
}

// workloads in the order they run: the full tables are loaded once by
// B1 and kept for B6, B3 and B4; B8 and B9 bring servers of their own.
var workloads = []workload{
	{"B1", "apply: replay MAC + route creates, no clients", ">= 2 M lines/s", (*bench).runB1},
	{"B6", "memory: full tables", "segment <= 64 MiB, server RSS <= 200 MiB, client RSS <= 150 MiB", (*bench).runB6},
	{"B3", "snapshot: new client gets the full tables", "<= 0.25 s", (*bench).runB3},
	{"B4", "lookup: random MACs from a client, one core", ">= 0.85x raw seqlock loop over the same slots (one at a time, by Key)", (*bench).runB4},
	{"B2", "fan-out: the replay until every client acked", ">= 0.35x raw SEQPACKET fan-out", (*bench).runB2},
	{"B7", "slow client: B2 with one more client stopped", ">= 0.9x B2; growth <= 64 MiB; converges <= 1 s", (*bench).runB7},
	{"B5", "latency: one change until the slowest client acked", "p50 <= 2.5x raw; p99 <= 1 ms", (*bench).runB5},
	{"B8", "scaling: cost per change, full vs small table", "<= 1.3x", (*bench).runB8},
	{"B9", "classic: N routes + N MACs to clients connected first", ">= 3x the speed of --baseline (2a862b0); in-process <= 1.0 µs per change", (*bench).runB9},
	{"W1", "1 M changes piped through rtm client", "<= 2x the same on the server's input", (*bench).runW1},
	{"F1", "200 k lines through rtm client --framed", "<= 2x the same through a plain rtm client", (*bench).runF1},
	{"S1", "one change from a shell: echo LINE | rtm client", "none (shown against rtm version: a start and an exit)", (*bench).runS1},
	{"K1", "install 100 k routes into a kernel (--to-kernel)", ">= 0.8x ip -batch (root only)", (*bench).runK1},
	{"K2", "import 100 k routes from a kernel, to every client", "<= 1.5x ip -batch, none lost (root only)", (*bench).runK2},
	{"K3", "10 k prefixes over BGP (FRR) to every client", "<= 1.2x FRR's own install (root, FRR only)", (*bench).runK3},
}

func workloadsText() string {
	var b strings.Builder
	for _, w := range slices.SortedFunc(slices.Values(workloads), func(x, y workload) int { return strings.Compare(x.id, y.id) }) {
		fmt.Fprintf(&b, "  %s  %-54s target %s\n", w.id, w.what, w.target)
	}
	b.WriteString("  L2, L4, L5: the machine's limits for B2, B4 and B5, measured beside them\n")
	return b.String()
}

// Row is one measured figure: a line of the table, an element of the
// JSON array. Workloads have ids B1–B9; the machine's limits have the id
// of the workload they bound with an L (L2, L4, L5).
type Row struct {
	ID     string    `json:"id"`
	Metric string    `json:"metric"`
	Unit   string    `json:"unit"` // "/s", "s", "MiB", "B" or "x"
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Runs   []float64 `json:"runs"`
	// The limit this figure is compared with, measured in the same run
	// (its own L row has its min and max): its metric and median.
	LimitMetric string  `json:"limit_metric,omitempty"`
	Limit       float64 `json:"limit,omitempty"`
	// Ratio is rtm ÷ limit: the median of the per-run ratios, each run
	// of the workload paired with the limit's run measured right after
	// it (the machine's speed drifts between runs; a pair shares it).
	Ratio     float64   `json:"ratio,omitempty"`
	RatioMin  float64   `json:"ratio_min,omitempty"`
	RatioMax  float64   `json:"ratio_max,omitempty"`
	RatioRuns []float64 `json:"ratio_runs,omitempty"`
	Target    string    `json:"target"` // "" for a figure without one
	Met       *bool     `json:"met,omitempty"`
}

// figure summarizes the runs of one metric.
func figure(id, metric, unit string, runs []float64) Row {
	r := Row{ID: id, Metric: metric, Unit: unit, Runs: runs}
	r.Median, r.Min, r.Max = summarize(runs)
	return r
}

// summarize returns the median, min and max of xs (zeros if empty). The
// median of an even count is the mean of the middle two.
func summarize(xs []float64) (median, lo, hi float64) {
	if len(xs) == 0 {
		return 0, 0, 0
	}
	s := slices.Sorted(slices.Values(xs))
	median = s[len(s)/2]
	if len(s)%2 == 0 {
		median = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return median, s[0], s[len(s)-1]
}

// against pairs r's runs with the runs of its limit, run by run, and
// sets the ratio rtm ÷ limit. The two have the same number of runs: the
// workloads measure each limit run right after the run it bounds.
func (r Row) against(limit Row) Row {
	r.LimitMetric, r.Limit = limit.Metric, limit.Median
	r.RatioRuns = nil
	for i := range min(len(r.Runs), len(limit.Runs)) {
		if limit.Runs[i] > 0 {
			r.RatioRuns = append(r.RatioRuns, r.Runs[i]/limit.Runs[i])
		}
	}
	r.Ratio, r.RatioMin, r.RatioMax = summarize(r.RatioRuns)
	return r
}

// judge sets the target and whether the row meets it (by its median, or
// by its ratio for a target on the ratio).
func (r Row) judge(target string, met func(Row) bool) Row {
	ok := met(r)
	r.Target, r.Met = target, &ok
	return r
}

// percentiles returns the 50th and 99th percentiles of samples.
func percentiles(samples []float64) (p50, p99 float64) {
	s := slices.Sorted(slices.Values(samples))
	return s[len(s)/2], s[len(s)*99/100]
}

// sortRows orders rows by workload number, each workload before its
// limit; rows of one id keep the order they were made in.
func sortRows(rows []Row) {
	key := func(id string) (string, bool) {
		return strings.TrimLeft(id, "BL"), strings.HasPrefix(id, "L")
	}
	slices.SortStableFunc(rows, func(x, y Row) int {
		nx, lx := key(x.ID)
		ny, ly := key(y.ID)
		if c := cmp.Compare(len(nx), len(ny)); c != 0 {
			return c
		}
		if c := strings.Compare(nx, ny); c != 0 {
			return c
		}
		switch {
		case lx == ly:
			return 0
		case lx:
			return 1
		}
		return -1
	})
}

func printTable(w io.Writer, rows []Row) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "id\tmetric\tmedian\tmin\tmax\tlimit\tratio (min–max)\ttarget\tmet")
	for _, r := range rows {
		met := "-"
		if r.Met != nil {
			met = map[bool]string{true: "yes", false: "NO"}[*r.Met]
		}
		limit, ratio := "-", "-"
		if r.LimitMetric != "" {
			limit = human(r.Limit, r.Unit)
			ratio = fmt.Sprintf("%.2fx (%.2f–%.2f)", r.Ratio, r.RatioMin, r.RatioMax)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Metric,
			human(r.Median, r.Unit), human(r.Min, r.Unit), human(r.Max, r.Unit),
			limit, ratio, cmp.Or(r.Target, "-"), met)
	}
	tw.Flush()
}

// human formats a value of a unit the way the targets write it.
func human(v float64, unit string) string {
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
		case v < 1e-5:
			return fmt.Sprintf("%.2f µs", v*1e6)
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
	case "B":
		return fmt.Sprintf("%.0f B", v)
	}
	return fmt.Sprintf("%g %s", v, unit)
}

// count writes a table size the way the targets do: 200, 10 k, 1 M.
func count(n int) string {
	switch {
	case n >= 1e6 && n%1e5 == 0:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/1e6), ".0") + " M"
	case n >= 1e3 && n%100 == 0:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/1e3), ".0") + " k"
	}
	return fmt.Sprint(n)
}

// bench is one `rtm bench`: its servers, child processes and files, all
// removed by close, also after an interrupt.
type bench struct {
	ctx context.Context
	o   options
	log io.Writer
	dir string // sockets and workload files

	full       *instance // the full tables of B1–B8, started on first use
	fullFiles  tables    // the files that fill them
	instances  []*instance
	children   []*child
	lineProcs  []*lineProc // B9's rtm processes
	shm        []string    // raw tables beside the stores (shmPath)
	namespaces []*kernelNS
	frrHosts   []*frrHost
	seq        int // numbers child names and namespaces
}

func newBench(ctx context.Context, o options, log io.Writer) (*bench, error) {
	dir, err := os.MkdirTemp("", "rtm-bench-")
	if err != nil {
		return nil, err
	}
	return &bench{ctx: ctx, o: o, log: log, dir: dir}, nil
}

// close ends every child process and server and removes every file the
// benchmark made. Safe after an interrupt at any point.
func (b *bench) close() {
	b.stop(b.children...)
	for _, p := range b.lineProcs {
		p.stop(true)
	}
	for _, in := range b.instances {
		in.close()
	}
	for _, p := range b.shm {
		removeStore(p)
	}
	for len(b.frrHosts) > 0 {
		b.dropFRRHost(b.frrHosts[0])
	}
	for len(b.namespaces) > 0 {
		b.dropNS(b.namespaces[0])
	}
	os.RemoveAll(b.dir)
}

// printStats prints a server's counters (`show stats`) when
// RTM_BENCH_STATS is set.
func (b *bench) printStats(in *instance) {
	if os.Getenv("RTM_BENCH_STATS") != "" {
		b.progress("server %s stats: %v", in.name, in.srv.Stats())
	}
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

// run runs the workloads asked for, in order, and returns their rows
// sorted by id; after an error, the rows measured so far.
func (b *bench) run() ([]Row, error) {
	rows := []Row{}
	for _, w := range workloads {
		if !b.o.wants(w.id) {
			continue
		}
		if b.ctx.Err() != nil {
			sortRows(rows)
			return rows, fmt.Errorf("interrupted before %s", w.id)
		}
		b.progress("%s ...", w.id)
		r, err := w.run(b)
		rows = append(rows, r...)
		for _, in := range b.instances {
			b.printStats(in)
		}
		if b.ctx.Err() != nil {
			err = errors.New("interrupted")
		}
		if err != nil {
			sortRows(rows)
			return rows, fmt.Errorf("%s: %w", w.id, err)
		}
	}
	sortRows(rows)
	return rows, nil
}
