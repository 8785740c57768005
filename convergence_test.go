package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// TestConvergenceProcesses: a server and three client processes; a few
// thousand mixed changes; every client, and a late one, ends with exactly
// the tables the changes describe.
func TestConvergenceProcesses(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.server()
	clients := []*proc{in.client("a"), in.client("b"), in.client("c")}
	m := newModel()
	rng := rand.New(rand.NewPCG(7, 7))
	srv.must(m.gen(rng, 3000)...)
	srv.must("sync")
	want := m.lines()
	for i, c := range clients {
		got := sortedLines(c.must("sync local", "show routes", "show macs"))
		assertLines(t, fmt.Sprintf("client %d", i), got, want)
	}
	assertLines(t, "late client", sortedLines(in.dump()), want)
	srv.do("quit")
	if code := srv.wait(10 * time.Second); code != 0 {
		t.Fatalf("server exit %d: %s", code, srv.errb)
	}
	// The clients end with it, their input still open: each says that
	// nothing from its next line on was applied.
	for i, c := range clients {
		if code := c.exited(10 * time.Second); code != 1 || !strings.Contains(c.errb.String(), "not applied, nor any line after it: the server quit: ") {
			t.Errorf("client %d exit %d after the server quit, want 1 and its next line not applied: %s", i, code, c.errb)
		}
	}
	if _, err := os.Stat(in.socket); !os.IsNotExist(err) {
		t.Errorf("socket left after quit: %v", err)
	}
}
