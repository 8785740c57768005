package main

// What the tables must hold: a generator of random valid changes, the
// model of the tables they describe, and the reading of rtm's output to
// compare with it.

import (
	"bufio"
	"fmt"
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
	c := &model{routes: make(map[string]string, len(m.routes)), macs: make(map[string]string, len(m.macs))}
	for k, v := range m.routes {
		c.routes[k] = v
	}
	for k, v := range m.macs {
		c.macs[k] = v
	}
	return c
}

// genKeys are the 300 prefixes and MACs gen's changes are about.
var genKeys = func() (k [300]struct{ pfx, mac string }) {
	for i := range k {
		k[i].pfx = fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)
		k[i].mac = fmt.Sprintf("02:00:00:00:%02x:%02x", i/256, i%256)
	}
	return k
}()

// gen returns n random valid changes and applies them to the model. The
// crash tests make hundreds of thousands of them, so a line is built by
// appending, not by fmt, and the model takes its value as the line is
// made rather than parsing it back.
func (m *model) gen(rng *rand.Rand, n int) []string {
	lines := make([]string, 0, n)
	var b []byte
	dec := func(v int) { b = strconv.AppendInt(b, int64(v), 10) }
	for len(lines) < n {
		k := genKeys[rng.IntN(300)]
		b = b[:0]
		switch rng.IntN(6) {
		case 0, 1:
			op := "C,"
			if _, ok := m.routes[k.pfx]; ok {
				op = "U,"
			}
			b = append(append(append(b, op...), k.pfx...), ",192.168."...)
			dec(rng.IntN(256))
			b = append(b, '.')
			dec(1 + rng.IntN(254))
			via := len(op) + len(k.pfx) + 1
			b = append(b, ",eth"...)
			gw := string(b[via : len(b)-4])
			dec(rng.IntN(4))
			m.routes[k.pfx] = "via " + gw + " dev " + string(b[len(b)-4:])
		case 2:
			if _, ok := m.routes[k.pfx]; !ok {
				continue
			}
			delete(m.routes, k.pfx)
			b = append(append(b, "D,"...), k.pfx...)
		case 3, 4:
			op := "C,"
			if _, ok := m.macs[k.mac]; ok {
				op = "U,"
			}
			b = append(append(append(b, op...), k.mac...), ',')
			at := len(b)
			b = append(b, "10.200."...)
			dec(rng.IntN(256))
			b = append(b, '.')
			dec(rng.IntN(256))
			ip := string(b[at:])
			if rng.IntN(3) == 0 {
				x := rng.IntN(65536)
				b = strconv.AppendInt(append(b[:at], "2001:db8::"...), int64(x), 16)
				// As `show macs` prints it: 2001:db8::0 is 2001:db8::.
				if ip = string(b[at:]); x == 0 {
					ip = "2001:db8::"
				}
			}
			m.macs[k.mac] = ip
		case 5:
			if _, ok := m.macs[k.mac]; !ok {
				continue
			}
			delete(m.macs, k.mac)
			b = append(append(b, "D,"...), k.mac...)
		}
		lines = append(lines, string(b))
	}
	return lines
}

// apply applies one line gen made to the model.
func (m *model) apply(line string) {
	op, rest, _ := strings.Cut(line, ",")
	key, value, _ := strings.Cut(rest, ",")
	route := strings.Contains(key, "/")
	switch {
	case op == "D" && route:
		delete(m.routes, key)
	case op == "D":
		delete(m.macs, key)
	case route:
		gw, dev, _ := strings.Cut(value, ",")
		m.routes[key] = "via " + gw + " dev " + dev
	default:
		// As `show macs` prints it: 2001:db8::0 is 2001:db8::.
		m.macs[key] = netip.MustParseAddr(value).String()
	}
}

// hashOf returns the entryHash of the line `show` prints for key, if the
// model has it.
func (m *model) hashOf(key string) (uint64, bool) {
	if r, ok := m.routes[key]; ok {
		return keyedHash(key, r), true
	}
	if ip, ok := m.macs[key]; ok {
		return keyedHash(key, ip), true
	}
	return 0, false
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

// entryHash hashes one table entry as `show` prints it (FNV-1a); a
// table's hash is the XOR of its entries', so it is updated in O(1) per
// change.
func entryHash(line string) uint64 { return fnvAdd(fnvOffset, line) }

// keyedHash is entryHash(key + " " + value), without building the line.
func keyedHash(key, value string) uint64 {
	return fnvAdd(fnvAdd(fnvAdd(fnvOffset, key), " "), value)
}

const fnvOffset, fnvPrime = 14695981039346656037, 1099511628211

func fnvAdd(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnvPrime
	}
	return h
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
	states := make(map[uint64]int, len(lines)+1)
	states[h] = 0
	for i, l := range lines {
		_, rest, _ := strings.Cut(l, ",")
		key, _, _ := strings.Cut(rest, ",")
		if old, ok := m.hashOf(key); ok {
			h ^= old
		}
		m.apply(l)
		if e, ok := m.hashOf(key); ok {
			h ^= e
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
	var b []byte
	for i := range lines {
		b = appendMACCreate(b[:0], i)
		lines[i] = string(b[:len(b)-1])
	}
	return lines
}

// macCreatesText is macCreates as the text of a file or a pipe.
func macCreatesText(n int) string {
	b := make([]byte, 0, 36*n)
	for i := range n {
		b = appendMACCreate(b, i)
	}
	return string(b)
}

// appendMACCreate appends line i of macCreates and its newline, built by
// appending: some tests take 400,000 lines, and fmt's formatting was a
// second of the suite's CPU.
func appendMACCreate(b []byte, i int) []byte {
	b = macN(i).AppendTo(append(b, "C,"...))
	b = strconv.AppendInt(append(b, ",10."...), int64(i>>16&255), 10)
	b = strconv.AppendInt(append(b, '.'), int64(i>>8&255), 10)
	b = strconv.AppendInt(append(b, '.'), int64(i&255), 10)
	return append(b, '\n')
}
