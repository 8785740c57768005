package repl

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"rtm/store/entry"
)

// complete returns what Tab offers at the end of line: each candidate
// whole (the word under the cursor with its continuation).
func complete(t *testing.T, in *Interp, line string) []string {
	t.Helper()
	cands, n := (&completer{in: in}).Do([]rune(line), len([]rune(line)))
	word := string([]rune(line)[len([]rune(line))-n:])
	out := make([]string, len(cands))
	for i, c := range cands {
		out[i] = word + string(c)
	}
	slices.Sort(out)
	return out
}

// TestCompletion: Tab offers every word the grammar takes where the
// cursor is, and the keys of the tables where one is expected.
func TestCompletion(t *testing.T) {
	e := newMemEngine()
	e.routes[netip.MustParsePrefix("10.1.0.0/16")] = route("10.1.0.0/16 192.168.1.1 eth0")
	e.routes[netip.MustParsePrefix("10.2.0.0/16")] = route("10.2.0.0/16 - veth1")
	e.macs[entry.MAC{2, 0, 0, 0, 0, 1}] = netip.MustParseAddr("10.1.1.7")
	in := NewInterp(e, nil, Options{})
	for _, tc := range []struct {
		line string
		want []string
	}{
		{"sh", []string{"show "}},
		{"show ", []string{"clients ", "info ", "json ", "macs ", "routes ", "stats "}},
		{"show routes ", []string{"count ", "dev ", "json ", "within "}},
		{"show routes dev ", []string{"eth0", "veth1"}},
		{"show routes within ", []string{"10.1.0.0/16", "10.2.0.0/16"}},
		{"show routes dev eth0 ", []string{"count ", "json ", "within "}},
		{"show macs ", []string{"02:00:00:00:00:01", "count ", "json "}},
		{"show stats ", []string{"json ", "local "}},
		{"show info ", []string{"json "}},
		{"show clients json ", []string{"count "}},
		// A word given is not offered again (the parser refuses it
		// twice), nor anything after a word the parser refuses.
		{"show routes count ", []string{"dev ", "json ", "within "}},
		{"show routes dev eth0 within 10.0.0.0/8 json ", []string{"count "}},
		{"show stats local ", []string{"json "}},
		{"show macs count json ", []string{"02:00:00:00:00:01"}},
		{"show lookup ", nil},
		{"show routes bogus ", nil},
		{"lookup 02:00:00:00:00:01 ", []string{"json "}},
		{"lookup ", []string{"02:00:00:00:00:01"}},
		{"flush ", []string{"all ", "macs ", "routes "}},
		{"sync ", []string{"local "}},
		{"expect ", []string{"count ", "error ", "mac ", "no ", "route "}},
		{"expect no ", []string{"mac ", "route "}},
		{"expect count ", []string{"clients ", "macs ", "routes "}},
		{"expect route 10.1.0.0/16 ", []string{"dev ", "via "}},
		{"expect route 10.1.0.0/16 via 192.168.1.1 ", []string{"dev "}},
		{"expect mac ", []string{"02:00:00:00:00:01"}},
		{"help s", []string{"show ", "source ", "sync "}},
		{"D,", []string{"02:00:00:00:00:01", "10.1.0.0/16", "10.2.0.0/16"}},
		{"expect error l", []string{"lookup "}},
		{"expect error D,", []string{"02:00:00:00:00:01", "10.1.0.0/16", "10.2.0.0/16"}},
	} {
		if got := complete(t, in, tc.line); !slices.Equal(got, tc.want) {
			t.Errorf("%q: Tab offers %q, want %q", tc.line, got, tc.want)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "setup.rtm"), nil, 0o644)
	if got := complete(t, in, "source "+dir+"/se"); !slices.Equal(got, []string{"setup.rtm"}) {
		t.Errorf("source: Tab offers %q, want the file", got)
	}
}

// TestCompletionsParse: every way through what Tab offers, values filled
// in, is a line the parser takes, or one it finds incomplete; never one
// it calls unknown or unexpected, nor one with a word given twice. With TestCompletion, the grammar the
// prompt offers and the grammar it parses are one.
func TestCompletionsParse(t *testing.T) {
	e := newMemEngine()
	e.routes[netip.MustParsePrefix("10.1.0.0/16")] = route("10.1.0.0/16 192.168.1.1 eth0")
	e.macs[entry.MAC{2, 0, 0, 0, 0, 1}] = netip.MustParseAddr("10.1.1.7")
	in := NewInterp(e, nil, Options{})
	lines := []string{""}
	walked := 0
	for depth := 0; depth < 6; depth++ {
		var next []string
		for _, l := range lines {
			for _, c := range complete(t, in, l) {
				if strings.Contains(c, ",") || strings.HasSuffix(l, "source ") {
					continue // changes have tests of their own; files are the file system's
				}
				line := l + c
				if !strings.HasSuffix(line, " ") {
					line += " "
				}
				walked++
				_, err := Parse([]byte(line))
				if err != nil && (strings.Contains(err.Error(), "unknown") || strings.Contains(err.Error(), "unexpected") || strings.Contains(err.Error(), "twice")) {
					t.Errorf("Tab led to %q, which the parser refuses: %v", line, err)
				}
				next = append(next, line)
			}
		}
		lines = next
	}
	if walked < 200 {
		t.Fatalf("walked only %d lines", walked)
	}
}
