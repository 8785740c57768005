package bench

import (
	"encoding/json"
	"flag"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in            []float64
		med, min, max float64
	}{
		{nil, 0, 0, 0},
		{[]float64{7}, 7, 7, 7},
		{[]float64{3, 1, 2}, 2, 1, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
		{[]float64{5, 5, 1, 9, 5}, 5, 1, 9},
	} {
		med, lo, hi := summarize(tc.in)
		if med != tc.med || lo != tc.min || hi != tc.max {
			t.Errorf("summarize(%v) = %v, %v, %v; want %v, %v, %v", tc.in, med, lo, hi, tc.med, tc.min, tc.max)
		}
	}
	in := []float64{3, 1, 2}
	summarize(in)
	if !slices.Equal(in, []float64{3, 1, 2}) {
		t.Errorf("summarize reordered its input: %v", in)
	}
}

func TestPercentiles(t *testing.T) {
	var s []float64
	for i := range 200 {
		s = append(s, float64(200-i))
	}
	p50, p99 := percentiles(s)
	if p50 != 101 || p99 != 199 {
		t.Errorf("percentiles of 1..200 = %v, %v; want 101, 199", p50, p99)
	}
}

// A ratio pairs each run with the limit's run of the same index: the
// median of the pairs' ratios, not the ratio of the medians.
func TestAgainst(t *testing.T) {
	limit := figure("L2", "raw", "/s", []float64{10, 20, 40})
	r := figure("B2", "rtm", "/s", []float64{5, 4, 30}).against(limit)
	if r.LimitMetric != "raw" || r.Limit != 20 {
		t.Errorf("limit %q %v; want raw 20", r.LimitMetric, r.Limit)
	}
	if want := []float64{0.5, 0.2, 0.75}; !slices.Equal(r.RatioRuns, want) {
		t.Errorf("ratio runs %v; want %v", r.RatioRuns, want)
	}
	if r.Ratio != 0.5 || r.RatioMin != 0.2 || r.RatioMax != 0.75 {
		t.Errorf("ratio %v (%v–%v); want 0.5 (0.2–0.75)", r.Ratio, r.RatioMin, r.RatioMax)
	}
	if r.Median != 5 || r.Min != 4 || r.Max != 30 {
		t.Errorf("against changed the figure: %v %v %v", r.Median, r.Min, r.Max)
	}
	// A limit run of zero (nothing measured) gives no ratio for its pair.
	r = figure("B5", "rtm", "s", []float64{2, 3}).against(figure("L5", "raw", "s", []float64{1, 0}))
	if !slices.Equal(r.RatioRuns, []float64{2}) {
		t.Errorf("ratio runs with a zero limit: %v", r.RatioRuns)
	}
}

func TestJudge(t *testing.T) {
	r := figure("B2", "rtm", "/s", []float64{1}).against(figure("L2", "raw", "/s", []float64{4}))
	r = r.judge(">= 0.35x limit", func(r Row) bool { return r.Ratio >= 0.35 })
	if r.Target != ">= 0.35x limit" || r.Met == nil || *r.Met {
		t.Errorf("0.25x judged against >= 0.35x: target %q met %v", r.Target, r.Met)
	}
	r = r.judge("<= 1 s", func(r Row) bool { return r.Median <= 1 })
	if r.Met == nil || !*r.Met {
		t.Errorf("median 1 judged against <= 1: met %v", r.Met)
	}
}

// The JSON shape is what scripts and BENCHMARKS.md read: these keys and
// no others; a row without a limit leaves the limit keys out.
func TestRowJSON(t *testing.T) {
	keys := func(r Row) []string {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	plain := figure("B1", "lines applied", "/s", []float64{1, 2, 3}).judge(">= 2 M/s", func(Row) bool { return false })
	want := []string{"id", "max", "median", "met", "metric", "min", "runs", "target", "unit"}
	if got := keys(plain); !slices.Equal(got, want) {
		t.Errorf("row without a limit has keys %v; want %v", got, want)
	}
	limited := figure("B2", "changes", "/s", []float64{1, 2}).against(figure("L2", "raw", "/s", []float64{2, 4}))
	want = []string{"id", "limit", "limit_metric", "max", "median", "metric", "min", "ratio", "ratio_max", "ratio_min", "ratio_runs", "runs", "target", "unit"}
	if got := keys(limited); !slices.Equal(got, want) {
		t.Errorf("row with a limit has keys %v; want %v", got, want)
	}
	b, _ := json.Marshal(limited)
	var back Row
	if err := json.Unmarshal(b, &back); err != nil || back.Ratio != 0.5 || back.Limit != 3 || back.ID != "B2" {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}

func TestSortRows(t *testing.T) {
	var rows []Row
	for _, id := range []string{"L5", "B9", "L2", "B2", "B1", "B5", "L4", "B4", "B2"} {
		rows = append(rows, Row{ID: id, Metric: id + "-" + string(rune('a'+len(rows)))})
	}
	sortRows(rows)
	var got []string
	for _, r := range rows {
		got = append(got, r.Metric)
	}
	want := []string{"B1-e", "B2-d", "B2-i", "L2-c", "B4-h", "L4-g", "B5-f", "L5-a", "B9-b"}
	if !slices.Equal(got, want) {
		t.Errorf("sorted %v; want %v", got, want)
	}
}

func TestOptions(t *testing.T) {
	parse := func(args ...string) (options, error) {
		var o options
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		o.register(fs)
		if err := fs.Parse(args); err != nil {
			return o, err
		}
		return o, o.check()
	}
	o, err := parse("--only", "b2, B9,B4")
	if err != nil {
		t.Fatalf("--only b2, B9,B4: %v", err)
	}
	for id, want := range map[string]bool{"B2": true, "B4": true, "B9": true, "B1": false, "B8": false} {
		if o.wants(id) != want {
			t.Errorf("wants(%s) = %v", id, !want)
		}
	}
	for _, w := range []string{"B1", "B3", "B5", "B6", "B7", "B8", "B9"} {
		if _, err := parse("--only", w); err != nil {
			t.Errorf("--only %s: %v", w, err)
		}
	}
	for _, bad := range [][]string{{"--only", "B10"}, {"--only", "L2"}, {"--runs", "0"}, {"--macs", "10"}, {"--n", "0"}, {"--clients", "0"}} {
		if _, err := parse(bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if o, _ := parse(); o.runs != 5 || o.n != 10_000 || o.clients != 4 || o.macs != 1_000_000 || !o.wants("B7") {
		t.Errorf("defaults: %+v", o)
	}
}

func TestHuman(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{1.57e6, "/s", "1.57 M/s"},
		{841_900, "/s", "841.9 k/s"},
		{12, "/s", "12 /s"},
		{0.85e-6, "s", "0.85 µs"},
		{221e-6, "s", "221 µs"},
		{0.0981, "s", "98.1 ms"},
		{9.9, "s", "9.90 s"},
		{52.61, "MiB", "52.6 MiB"},
		{1.049, "x", "1.05x"},
		{4096, "B", "4096 B"},
	} {
		if got := human(tc.v, tc.unit); got != tc.want {
			t.Errorf("human(%v, %q) = %q; want %q", tc.v, tc.unit, got, tc.want)
		}
	}
	for n, want := range map[int]string{200: "200", 2000: "2 k", 10_000: "10 k", 100_000: "100 k", 1_000_000: "1 M", 1_500_000: "1.5 M", 1234: "1234"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q; want %q", n, got, want)
		}
	}
}

func TestTable(t *testing.T) {
	rows := []Row{
		figure("B2", "changes reaching each client", "/s", []float64{1e6, 1.2e6, 0.9e6}).
			against(figure("L2", "raw", "/s", []float64{4e6, 4e6, 3e6})).
			judge(">= 0.35x limit", func(r Row) bool { return r.Ratio >= 0.35 }),
		figure("L2", "raw", "/s", []float64{4e6, 4e6, 3e6}),
	}
	var b strings.Builder
	printTable(&b, rows)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("table:\n%s", b.String())
	}
	for _, want := range []string{"1.00 M/s", "900.0 k/s", "1.20 M/s", "4.00 M/s", "0.30x (0.25–0.30)", ">= 0.35x limit", "NO"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("B2 line lacks %q: %s", want, lines[1])
		}
	}
	if !strings.HasPrefix(lines[2], "L2") || strings.Contains(lines[2], "x (") {
		t.Errorf("L2 line: %s", lines[2])
	}
	if math.IsNaN(rows[0].Ratio) {
		t.Error("NaN ratio")
	}
}

// Without limits (--limits=false) a workload's rows lose their limit,
// their ratio and any verdict on the ratio, and rows that differed only
// by their limit become one.
func TestBoundedWithoutLimits(t *testing.T) {
	goal := func(r Row) bool { return r.Ratio >= 0.35 }
	runs := []float64{1, 2, 3}
	l2, l216 := figure("L2", "raw", "/s", nil), figure("L2", "raw 16 KiB", "/s", nil)
	rows := []Row{
		figure("B2", "changes", "/s", runs).against(l2).judge(">= 0.35x limit", goal),
		figure("B2", "changes (vs 16 KiB)", "/s", runs).against(l216).judge(">= 0.35x limit", goal),
		figure("B5", "p99", "s", runs).against(l2).judge("<= 1 ms", func(r Row) bool { return r.Median <= 1e-3 }),
	}
	b := &bench{o: options{limits: true}}
	if got := b.bounded(slices.Clone(rows), l2, l216); len(got) != 5 || got[3].ID != "L2" {
		t.Errorf("with limits: %d rows", len(got))
	}
	b.o.limits = false
	got := b.bounded(rows, l2, l216)
	if len(got) != 2 {
		t.Fatalf("without limits: %d rows, want 2", len(got))
	}
	if got[0].LimitMetric != "" || got[0].Ratio != 0 || got[0].Met != nil || got[0].Target == "" {
		t.Errorf("B2 without limits: %+v", got[0])
	}
	if got[1].Met == nil || *got[1].Met {
		t.Errorf("B5 p99 lost its verdict on the median: %+v", got[1])
	}
}
