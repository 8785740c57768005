package main

// What the tables must hold: a generator of random valid changes, the
// model of the tables they describe, and the reading of rtm's output to
// compare with it.

import (
	"bufio"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"rtm/store/entry"
)

// model is what the tables must hold after the lines the test sent.
type model struct {
	routes map[string]string // prefix -> "via GW dev DEV"
	macs   map[string]string // mac -> ip, as `show macs` prints it
}

func newModel() *model { return &model{routes: map[string]string{}, macs: map[string]string{}} }

func (m *model) clone() *model {
	c := newModel()
	for k, v := range m.routes {
		c.routes[k] = v
	}
	for k, v := range m.macs {
		c.macs[k] = v
	}
	return c
}

// gen returns n random valid changes and applies them to the model.
func (m *model) gen(rng *rand.Rand, n int) []string {
	var lines []string
	for len(lines) < n {
		i := rng.IntN(300)
		pfx := fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)
		mac := fmt.Sprintf("02:00:00:00:%02x:%02x", i/256, i%256)
		var line string
		switch rng.IntN(6) {
		case 0, 1:
			gw, dev := fmt.Sprintf("192.168.%d.%d", rng.IntN(256), 1+rng.IntN(254)), fmt.Sprintf("eth%d", rng.IntN(4))
			op := "C"
			if _, ok := m.routes[pfx]; ok {
				op = "U"
			}
			line = fmt.Sprintf("%s,%s,%s,%s", op, pfx, gw, dev)
		case 2:
			if _, ok := m.routes[pfx]; ok {
				line = "D," + pfx
			}
		case 3, 4:
			ip := fmt.Sprintf("10.200.%d.%d", rng.IntN(256), rng.IntN(256))
			if rng.IntN(3) == 0 {
				ip = fmt.Sprintf("2001:db8::%x", rng.IntN(65536))
			}
			op := "C"
			if _, ok := m.macs[mac]; ok {
				op = "U"
			}
			line = fmt.Sprintf("%s,%s,%s", op, mac, ip)
		case 5:
			if _, ok := m.macs[mac]; ok {
				line = "D," + mac
			}
		}
		if line != "" {
			m.apply(line)
			lines = append(lines, line)
		}
	}
	return lines
}

// apply applies one line gen made to the model.
func (m *model) apply(line string) {
	f := strings.Split(line, ",")
	key := f[1]
	route := strings.Contains(key, "/")
	switch {
	case f[0] == "D" && route:
		delete(m.routes, key)
	case f[0] == "D":
		delete(m.macs, key)
	case route:
		m.routes[key] = "via " + f[2] + " dev " + f[3]
	default:
		// As `show macs` prints it: 2001:db8::0 is 2001:db8::.
		m.macs[key] = netip.MustParseAddr(f[2]).String()
	}
}

// entry returns the line `show` prints for key, if the model has it.
func (m *model) entry(key string) (string, bool) {
	if r, ok := m.routes[key]; ok {
		return key + " " + r, true
	}
	if ip, ok := m.macs[key]; ok {
		return key + " " + ip, true
	}
	return "", false
}

// lines returns the sorted show output lines the model predicts.
func (m *model) lines() []string {
	var out []string
	for p, rest := range m.routes {
		out = append(out, p+" "+rest)
	}
	for mac, ip := range m.macs {
		out = append(out, mac+" "+ip)
	}
	slices.Sort(out)
	return out
}

// modelFrom rebuilds a model from `show routes` and `show macs` lines.
func modelFrom(t *testing.T, lines []string) *model {
	m := newModel()
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) == 5 && f[1] == "via" && f[3] == "dev":
			m.routes[f[0]] = strings.Join(f[1:], " ")
		case len(f) == 2:
			m.macs[f[0]] = f[1]
		default:
			t.Fatalf("not a table line: %q", l)
		}
	}
	return m
}

// entryHash hashes one table entry as `show` prints it; a table's hash is
// the XOR of its entries', so it is updated in O(1) per change.
func entryHash(line string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(line))
	return h.Sum64()
}

func setHash(lines []string) uint64 {
	var x uint64
	for _, l := range lines {
		x ^= entryHash(l)
	}
	return x
}

// prefixStates returns the table hash after each prefix of lines applied
// to start, mapped to the (shortest) prefix length.
func prefixStates(start *model, lines []string) map[uint64]int {
	m := start.clone()
	h := setHash(m.lines())
	states := map[uint64]int{h: 0}
	for i, l := range lines {
		_, rest, _ := strings.Cut(l, ",")
		key, _, _ := strings.Cut(rest, ",")
		if old, ok := m.entry(key); ok {
			h ^= entryHash(old)
		}
		m.apply(l)
		if e, ok := m.entry(key); ok {
			h ^= entryHash(e)
		}
		if _, seen := states[h]; !seen {
			states[h] = i + 1
		}
	}
	return states
}

func sortedLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

func assertLines(t *testing.T, who string, got []string, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: %d lines, want %d\nfirst difference: %s", who, len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(got, want []string) string {
	for i := 0; i < len(got) || i < len(want); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("line %d: got %q, want %q", i+1, g, w)
		}
	}
	return "none"
}

func countLines(s, substr string) int {
	n := 0
	for l := range strings.Lines(s) {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// statValue reads one counter from `show stats` output.
func statValue(out, name string) int {
	for l := range strings.Lines(out) {
		if f := strings.Fields(l); len(f) == 2 && f[0] == name {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return -1
}

// macN is the MAC of line i of macCreates.
func macN(i int) entry.MAC { return entry.MACFromUint64(0x020000000000 | uint64(i)) }

// macCreates is n lines creating n distinct MACs, each line i the MAC
// macN(i): a batch whose lines are told apart by their MACs.
func macCreates(n int) []string {
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf("C,%s,10.%d.%d.%d", macN(i), i>>16&255, i>>8&255, i&255)
	}
	return lines
}

// macCreatesText is macCreates as the text of a file or a pipe.
func macCreatesText(n int) string { return strings.Join(macCreates(n), "\n") + "\n" }
