package kernel

import (
	"net/netip"
	"testing"
	"time"

	"rtm/store/entry"
)

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, state)
		}
		time.Sleep(20 * time.Millisecond)
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
