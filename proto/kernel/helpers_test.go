package kernel

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"rtm/repl/rtmtest"
	"rtm/store/entry"
)

// waitFor is the kit's wait (rtmtest.WaitFor) as the kernel tests want
// it: it fails the test unless cond holds within timeout, saying what
// it waited for and what cond saw the last time.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	var state string
	if !rtmtest.WaitFor(timeout, func() bool {
		ok, s := cond()
		state = s
		return ok
	}) {
		t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, state)
	}
}

// stat returns a named counter.
func stat(stats []Stat, name string) uint64 {
	for _, s := range stats {
		if s.Name == name {
			return s.Value
		}
	}
	panic("no counter " + name)
}

// checkStats reports every counter of want that stats has otherwise.
func checkStats(t testing.TB, stats []Stat, want map[string]uint64) {
	t.Helper()
	for name, w := range want {
		if n := stat(stats, name); n != w {
			t.Errorf("%s = %d, want %d", name, n, w)
		}
	}
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func mustAddr(s string) netip.Addr     { return netip.MustParseAddr(s) }
func mustMAC(s string) entry.MAC {
	m, err := entry.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// set is the change that sets route r.
func set(r entry.Route) entry.Change { return entry.RouteChange(entry.Replace, r) }

func route(prefix, gw, dev string) entry.Route {
	r := entry.Route{Prefix: mustPrefix(prefix), Dev: dev}
	if gw != "" {
		r.Gateway = mustAddr(gw)
	}
	return r
}

// logLines records what an importer or an installer logs (its Logf),
// for a test to read while it runs.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

// all is every line so far, in order.
func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// String is the lines so far, one a line.
func (l *logLines) String() string { return strings.Join(l.all(), "\n") }
