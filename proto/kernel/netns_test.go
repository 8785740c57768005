package kernel

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"rtm/store/entry"

	"github.com/vishvananda/netns"
)

// Kernel tests run in network namespaces they create: the test's
// goroutine locks its thread and unshares a fresh namespace. The thread is
// never unlocked, so it dies with the goroutine and the namespace with the
// last socket that refers to it. `ip` runs as a child of the locked
// thread and so inherits its namespace. Only one end of each veth is up:
// without carrier the kernel sends nothing, and tests only configure
// tables. So tests share no kernel state, and the ones that mostly wait
// (a replay's quiet time, a burst through ip) call t.Parallel.

// newNS moves the calling goroutine into a new network namespace.
func newNS(t testing.TB) netns.NsHandle {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip command:", err)
	}
	runtime.LockOSThread()
	ns, err := netns.New()
	if err != nil {
		t.Skipf("needs CAP_NET_ADMIN to create network namespaces: %v", err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// enter moves the calling (locked) goroutine into ns.
func enter(t testing.TB, ns netns.NsHandle) {
	t.Helper()
	if err := netns.Set(ns); err != nil {
		t.Fatalf("enter namespace: %v", err)
	}
}

// ip runs the ip command in the calling thread's namespace.
func ip(t testing.TB, args ...string) string {
	t.Helper()
	out, err := runIP(nil, args...)
	if err != nil {
		t.Fatalf("ip %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func runIP(stdin []byte, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// ipBatch runs lines through `ip -batch -` and returns how long it took.
func ipBatch(t testing.TB, lines []string) time.Duration {
	t.Helper()
	in := []byte(strings.Join(lines, "\n") + "\n")
	start := time.Now()
	if _, err := runIP(in, "-batch", "-"); err != nil {
		t.Fatalf("ip -batch: %v", err)
	}
	return time.Since(start)
}

// veth creates a veth pair a/b in the current namespace with a up.
func veth(t testing.TB, a, b string) {
	t.Helper()
	ip(t, "link", "add", "name", a, "type", "veth", "peer", "name", b)
	ip(t, "link", "set", a, "up")
}

// ipRoute is one route as `ip -j route` prints it.
type ipRoute struct {
	Type     string   `json:"type"`
	Dst      string   `json:"dst"`
	Gateway  string   `json:"gateway"`
	Dev      string   `json:"dev"`
	Protocol string   `json:"protocol"`
	Metric   int      `json:"metric"`
	Flags    []string `json:"flags"`
	Nexthops []struct {
		Gateway string `json:"gateway"`
		Dev     string `json:"dev"`
	} `json:"nexthops"`
}

// ipRoutes lists routes with `ip -j [-6] route show ARGS`, both families.
func ipRoutes(t testing.TB, args ...string) []ipRoute {
	t.Helper()
	var all []ipRoute
	for _, fam := range []string{"-4", "-6"} {
		var rs []ipRoute
		out := ip(t, append([]string{"-j", fam, "route", "show"}, args...)...)
		if err := json.Unmarshal([]byte(out), &rs); err != nil {
			t.Fatalf("ip -j route: %v: %q", err, out)
		}
		all = append(all, rs...)
	}
	return all
}

// routeSet turns `ip` routes into rtm routes ("default" is 0/0).
func routeSet(t testing.TB, rs []ipRoute) map[netip.Prefix]entry.Route {
	t.Helper()
	m := map[netip.Prefix]entry.Route{}
	for _, r := range rs {
		dst := r.Dst
		if dst == "default" {
			dst = "0.0.0.0/0"
			if strings.Contains(r.Gateway, ":") {
				dst = "::/0"
			}
		}
		if !strings.Contains(dst, "/") {
			if strings.Contains(dst, ":") {
				dst += "/128"
			} else {
				dst += "/32"
			}
		}
		p := netip.MustParsePrefix(dst)
		var gw netip.Addr
		if r.Gateway != "" {
			gw = netip.MustParseAddr(r.Gateway)
		}
		m[p] = entry.Route{Prefix: p, Gateway: gw, Dev: r.Dev}
	}
	return m
}

// ipNeigh is one neighbour as `ip -j neigh` prints it.
type ipNeigh struct {
	Dst      string   `json:"dst"`
	Dev      string   `json:"dev"`
	Lladdr   string   `json:"lladdr"`
	State    []string `json:"state"`
	Protocol string   `json:"protocol"`
}

func ipNeighs(t testing.TB, args ...string) []ipNeigh {
	t.Helper()
	var ns []ipNeigh
	out := ip(t, append([]string{"-j", "neigh", "show"}, args...)...)
	if err := json.Unmarshal([]byte(out), &ns); err != nil {
		t.Fatalf("ip -j neigh: %v: %q", err, out)
	}
	return ns
}

// neighSet maps "IP dev" to the MAC, for comparisons.
func neighSet(ns []ipNeigh) map[string]string {
	m := map[string]string{}
	for _, n := range ns {
		m[n.Dst+" dev "+n.Dev] = n.Lladdr
	}
	return m
}

// mapSink is a Sink that keeps what it is told.
type mapSink struct {
	mu     sync.Mutex
	routes map[netip.Prefix]entry.Route
	macs   map[entry.MAC]netip.Addr
	calls  int
}

func newMapSink() *mapSink {
	return &mapSink{routes: map[netip.Prefix]entry.Route{}, macs: map[entry.MAC]netip.Addr{}}
}

func (s *mapSink) Apply(c entry.Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	switch {
	case c.Table == entry.Routes && c.Op == entry.Delete:
		if _, ok := s.routes[c.Route.Prefix]; !ok {
			return entry.ErrNotFound
		}
		delete(s.routes, c.Route.Prefix)
	case c.Table == entry.Routes:
		s.routes[c.Route.Prefix] = c.Route
	case c.Op == entry.Delete:
		if _, ok := s.macs[c.MAC]; !ok {
			return entry.ErrNotFound
		}
		delete(s.macs, c.MAC)
	default:
		s.macs[c.MAC] = c.IP
	}
	return nil
}

func (s *mapSink) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *mapSink) snapshot() (map[netip.Prefix]entry.Route, map[entry.MAC]netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.routes), maps.Clone(s.macs)
}

// startImporter runs an importer of the current namespace until the test
// ends and waits for its first read of the kernel.
func startImporter(t testing.TB, sink Sink, opt ImporterOptions) *Importer {
	t.Helper()
	im, err := NewImporter(sink, opt)
	if err != nil {
		t.Fatal(err)
	}
	runImporter(t, im)
	return im
}

// runImporter runs im (an Importer or an FPMImporter) until the test ends
// and waits until it is ready.
func runImporter(t testing.TB, im interface {
	Run(context.Context) error
	Ready() <-chan struct{}
}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- im.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("importer Run: %v", err)
		}
	})
	select {
	case <-im.Ready():
	case err := <-done:
		t.Fatalf("importer stopped before ready: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("importer not ready after 20s")
	}
}

// diffRoutes describes how got differs from want, or "" if equal.
func diffRoutes(got, want map[netip.Prefix]entry.Route) string {
	var b strings.Builder
	for _, p := range slices.SortedFunc(maps.Keys(want), netip.Prefix.Compare) {
		if g, ok := got[p]; !ok {
			fmt.Fprintf(&b, "missing %s; ", routeString(want[p]))
		} else if g != want[p] {
			fmt.Fprintf(&b, "have %s want %s; ", routeString(g), routeString(want[p]))
		}
		if b.Len() > 2000 {
			return b.String() + "..."
		}
	}
	for _, p := range slices.SortedFunc(maps.Keys(got), netip.Prefix.Compare) {
		if _, ok := want[p]; !ok {
			fmt.Fprintf(&b, "extra %s; ", routeString(got[p]))
		}
		if b.Len() > 2000 {
			return b.String() + "..."
		}
	}
	return b.String()
}
