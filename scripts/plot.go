//go:build ignore

// plot measures how fan-out scales with the number of clients and how
// snapshot time scales with the table size, and draws both as SVG:
//
//	go run scripts/plot.go [-runs 5]
//
// It builds rtm, runs `rtm bench --only B2 --clients N --json` for N in
// 1, 2, 4, 8, 16 and `rtm bench --only B3 --macs N --routes N/10 --json`
// for N from 10 k to 1 M, and writes scripts/bench-fanout.svg,
// scripts/bench-snapshot.svg and the figures behind them in
// scripts/bench-sweep.json. Plain Go, no dependencies.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

type result struct {
	ID     string  `json:"id"`
	Metric string  `json:"metric"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

type point struct {
	X              float64
	Median, Lo, Hi float64
}

type sweep struct {
	Fanout   []point `json:"fanout"`   // clients → changes/s per client
	Snapshot []point `json:"snapshot"` // MACs → seconds
}

func main() {
	runs := flag.Int("runs", 5, "runs per point")
	flag.Parse()
	dir, err := os.MkdirTemp("", "rtm-plot-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "rtm")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		log.Fatalf("go build: %v\n%s", err, out)
	}
	bench := func(id string, args ...string) result {
		args = append([]string{"bench", "--only", id, "--json", "--runs", strconv.Itoa(*runs)}, args...)
		log.Printf("rtm %s", strings.Join(args, " "))
		cmd := exec.Command(bin, args...)
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			log.Fatalf("rtm %s: %v", strings.Join(args, " "), err)
		}
		var rs []result
		if err := json.Unmarshal(out, &rs); err != nil {
			log.Fatalf("rtm bench output: %v", err)
		}
		for _, r := range rs {
			if r.ID == id {
				return r
			}
		}
		log.Fatalf("rtm bench printed no %s result", id)
		return result{}
	}
	var sw sweep
	for _, n := range []int{1, 2, 4, 8, 16} {
		r := bench("B2", "--clients", strconv.Itoa(n))
		sw.Fanout = append(sw.Fanout, point{float64(n), r.Median, r.Min, r.Max})
	}
	for _, n := range []int{10_000, 30_000, 100_000, 300_000, 1_000_000} {
		r := bench("B3", "--macs", strconv.Itoa(n), "--routes", strconv.Itoa(n/10))
		sw.Snapshot = append(sw.Snapshot, point{float64(n), r.Median, r.Min, r.Max})
	}
	data, _ := json.MarshalIndent(sw, "", "  ")
	must(os.WriteFile("scripts/bench-sweep.json", append(data, '\n'), 0o644))

	scale := func(ps []point, k float64) []point {
		out := make([]point, len(ps))
		for i, p := range ps {
			out[i] = point{p.X, p.Median * k, p.Lo * k, p.Hi * k}
		}
		return out
	}
	must(os.WriteFile("scripts/bench-fanout.svg", plot(chart{
		title:  "B2 fan-out: changes reaching each client (median, min–max of runs)",
		xlabel: "clients (log scale)", ylabel: "M changes/s per client",
		points: scale(sw.Fanout, 1e-6), target: 1, targetLabel: "target 1 M/s",
		xticks: []float64{1, 2, 4, 8, 16}, xfmt: func(x float64) string { return strconv.Itoa(int(x)) },
	}), 0o644))
	must(os.WriteFile("scripts/bench-snapshot.svg", plot(chart{
		title:  "B3 snapshot: connect to snapshot applied (MACs + MACs/10 routes)",
		xlabel: "MAC entries (log scale)", ylabel: "ms",
		points: scale(sw.Snapshot, 1e3), target: 250, targetLabel: "target 250 ms (at 1 M)",
		xticks: []float64{1e4, 3e4, 1e5, 3e5, 1e6}, xfmt: func(x float64) string {
			if x >= 1e6 {
				return fmt.Sprintf("%gM", x/1e6)
			}
			return fmt.Sprintf("%gk", x/1e3)
		},
	}), 0o644))
	log.Print("wrote scripts/bench-fanout.svg, scripts/bench-snapshot.svg, scripts/bench-sweep.json")
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

type chart struct {
	title, xlabel, ylabel string
	points                []point
	target                float64
	targetLabel           string
	xticks                []float64
	xfmt                  func(float64) string
}

// plot draws a line of medians with min–max bars on a log x axis.
func plot(c chart) []byte {
	const w, h, left, right, top, bottom = 640.0, 400.0, 70.0, 20.0, 40.0, 50.0
	ymax := c.target
	for _, p := range c.points {
		ymax = math.Max(ymax, p.Hi)
	}
	ymax *= 1.15
	lx0, lx1 := math.Log(c.xticks[0]), math.Log(c.xticks[len(c.xticks)-1])
	px := func(x float64) float64 { return left + (math.Log(x)-lx0)/(lx1-lx0)*(w-left-right) }
	py := func(y float64) float64 { return h - bottom - y/ymax*(h-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%g" y="20" text-anchor="middle" font-size="14">%s</text>`+"\n", w/2, c.title)
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black"/>`+"\n", left, h-bottom, w-right, h-bottom)
	fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="black"/>`+"\n", left, top, left, h-bottom)
	for _, x := range c.xticks {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="black"/>`+"\n", px(x), h-bottom, px(x), h-bottom+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", px(x), h-bottom+18, c.xfmt(x))
	}
	step := niceStep(ymax / 5)
	for y := 0.0; y <= ymax; y += step {
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`+"\n", left, py(y), w-right, py(y))
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end">%g</text>`+"\n", left-6, py(y)+4, math.Round(y*1000)/1000)
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle">%s</text>`+"\n", (left+w-right)/2, h-12, c.xlabel)
	fmt.Fprintf(&b, `<text x="16" y="%g" text-anchor="middle" transform="rotate(-90 16 %g)">%s</text>`+"\n", (top+h-bottom)/2, (top+h-bottom)/2, c.ylabel)
	fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#c00" stroke-dasharray="6 4"/>`+"\n", left, py(c.target), w-right, py(c.target))
	fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end" fill="#c00">%s</text>`+"\n", w-right-4, py(c.target)-5, c.targetLabel)
	var path []string
	for _, p := range c.points {
		x := px(p.X)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#36c"/>`+"\n", x, py(p.Lo), x, py(p.Hi))
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="#36c"/>`+"\n", x, py(p.Median))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10">%.3g</text>`+"\n", x+6, py(p.Median)-6, p.Median)
		path = append(path, fmt.Sprintf("%.1f,%.1f", x, py(p.Median)))
	}
	fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="#36c" stroke-width="2"/>`+"\n", strings.Join(path, " "))
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// niceStep rounds s up to 1, 2 or 5 times a power of ten.
func niceStep(s float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(s)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= s {
			return m * p
		}
	}
	return 10 * p
}
