package repl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"rtm/proto"
	"rtm/repl/rtmtest"
	"rtm/store/entry"
)

// session is an Interp over a fresh in-memory engine, with its output.
type session struct {
	e        *memEngine
	in       *Interp
	out, err bytes.Buffer
}

func newSession(t *testing.T, opts Options) *session {
	t.Helper()
	s := &session{e: newMemEngine()}
	opts.Stderr = &s.err
	s.in = NewInterp(s.e, &s.out, opts)
	return s
}

// run replays script as the file "lab.rtm" and returns stdout and the
// error's text ("" for none).
func (s *session) run(script string) (string, string) {
	s.out.Reset()
	err := s.in.RunReader("lab.rtm", strings.NewReader(script))
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	return s.out.String(), msg
}

const labSetup = `# the lab
C,10.1.1.0/24,192.168.1.1,eth0
C,10.1.0.0/16,192.168.1.2,eth1
C,0.0.0.0/0,192.168.1.254,eth0
C,2001:db8:1::/48,fe80::1,eth1
C,00:1a:2b:3c:4d:5e,10.1.1.7
C,02-00-00-00-00-01,2001:db8::7
C,0200.0000.0002,10.1.1.8
`

// TestExec runs every command against the lab tables and asserts its
// exact output or its exact error, with the file:line prefix.
func TestExec(t *testing.T) {
	for _, tc := range []struct {
		name, line, out, err string
	}{
		{"show routes", "show routes", "0.0.0.0/0 via 192.168.1.254 dev eth0\n10.1.0.0/16 via 192.168.1.2 dev eth1\n10.1.1.0/24 via 192.168.1.1 dev eth0\n2001:db8:1::/48 via fe80::1 dev eth1\n", ""},
		{"show macs", "show macs", "00:1a:2b:3c:4d:5e 10.1.1.7\n02:00:00:00:00:01 2001:db8::7\n02:00:00:00:00:02 10.1.1.8\n", ""},
		{"show stats", "show stats", "routes  4\nmacs    3\nchanges 7\n", ""},
		{"show stats json", "show stats json", `{"routes":4,"macs":3,"changes":7}` + "\n", ""},
		{"show clients empty", "show clients", "", ""},
		{"show clients json empty", "show clients json", "[]\n", ""},
		{"show clients count empty", "show clients count", "0\n", ""},
		{"show clients count json empty", "show clients count json", "{\"count\":0}\n", ""},
		{"lookup", "lookup 001a.2b3c.4d5e", "00:1a:2b:3c:4d:5e 10.1.1.7\n", ""},
		{"lookup json", "lookup 00:1a:2b:3c:4d:5e json", `{"mac":"00:1a:2b:3c:4d:5e","ip":"10.1.1.7"}` + "\n", ""},
		{"lookup missing", "lookup 00:00:00:00:00:09", "", "lab.rtm:1: lookup 00:00:00:00:00:09: not found"},
		{"route longest", "route 10.1.1.7", "10.1.1.0/24 via 192.168.1.1 dev eth0\n", ""},
		{"route shorter", "route 10.1.2.7", "10.1.0.0/16 via 192.168.1.2 dev eth1\n", ""},
		{"route default", "route 8.8.8.8", "0.0.0.0/0 via 192.168.1.254 dev eth0\n", ""},
		{"route v6", "route 2001:db8:1::9", "2001:db8:1::/48 via fe80::1 dev eth1\n", ""},
		{"route v6 none", "route 2001:db8:2::9", "", "lab.rtm:1: route 2001:db8:2::9: no matching route"},
		{"route json", "route 10.1.1.7 json", `{"dst":"10.1.1.0/24","gateway":"192.168.1.1","dev":"eth0"}` + "\n", ""},
		{"connected route", "C,192.0.2.0/24,-,veth0\nroute 192.0.2.9\nroute 192.0.2.9 json\nexpect route 192.0.2.0/24 dev veth0", "192.0.2.0/24 dev veth0\n" + `{"dst":"192.0.2.0/24","dev":"veth0"}` + "\n", ""},
		{"replace creates", "R,10.7.0.0/16,-,eth7\nR,00:00:00:00:00:07,10.7.0.7\nroute 10.7.0.1\nlookup 00:00:00:00:00:07", "10.7.0.0/16 dev eth7\n00:00:00:00:00:07 10.7.0.7\n", ""},
		{"replace updates", "R,10.1.1.0/24,192.168.1.9,eth9\nr,00:1a:2b:3c:4d:5e,10.1.1.9\nroute 10.1.1.7\nlookup 00:1a:2b:3c:4d:5e", "10.1.1.0/24 via 192.168.1.9 dev eth9\n00:1a:2b:3c:4d:5e 10.1.1.9\n", ""},
		{"dump", "dump", "C,0.0.0.0/0,192.168.1.254,eth0\nC,10.1.0.0/16,192.168.1.2,eth1\nC,10.1.1.0/24,192.168.1.1,eth0\nC,2001:db8:1::/48,fe80::1,eth1\nC,00:1a:2b:3c:4d:5e,10.1.1.7\nC,02:00:00:00:00:01,2001:db8::7\nC,02:00:00:00:00:02,10.1.1.8\n", ""},
		{"create exists", "\n\nC,10.1.1.0/24,192.168.9.9,eth9", "", "lab.rtm:3: create route 10.1.1.0/24: already exists"},
		{"update missing", "U,10.9.0.0/16,1.1.1.1,eth0", "", "lab.rtm:1: update route 10.9.0.0/16: not found"},
		{"delete missing", "D,10.9.0.0/16", "", "lab.rtm:1: delete route 10.9.0.0/16: not found"},
		{"create MAC exists", "C,00-1A-2B-3C-4D-5E,10.9.9.9", "", "lab.rtm:1: create MAC 00:1a:2b:3c:4d:5e: already exists"},
		{"update MAC missing", "U,00:00:00:00:00:09,10.9.9.9", "", "lab.rtm:1: update MAC 00:00:00:00:00:09: not found"},
		{"delete MAC missing", "D,0000.0000.0009", "", "lab.rtm:1: delete MAC 00:00:00:00:00:09: not found"},
		{"parse error", "# one\nC,10.1.1.1/24,192.168.1.1,eth0", "", "lab.rtm:2: create route: bad prefix 10.1.1.1/24: host bits set (did you mean 10.1.1.0/24?)"},
		{"help", "help", helpSummary + "\n", ""},
		{"help topic", "help expect", helpExpect + "\n", ""},
		{"help C", "help D", helpChange + "\n", ""},
		{"expect route", "expect route 10.1.1.0/24 via 192.168.1.1 dev eth0", "", ""},
		{"expect route any", "expect route 2001:db8:1::/48", "", ""},
		{"expect route gateway", "expect route 10.1.1.0/24 via 192.168.1.9", "", "lab.rtm:1: expect failed: want route 10.1.1.0/24 via 192.168.1.9, got route 10.1.1.0/24 via 192.168.1.1 dev eth0"},
		{"expect route dev", "expect route 10.1.1.0/24 dev eth1", "", "lab.rtm:1: expect failed: want route 10.1.1.0/24 dev eth1, got route 10.1.1.0/24 via 192.168.1.1 dev eth0"},
		{"expect route missing", "expect route 10.7.0.0/16", "", "lab.rtm:1: expect failed: want route 10.7.0.0/16, got no route 10.7.0.0/16"},
		{"expect no route", "expect no route 10.7.0.0/16", "", ""},
		{"expect no route fails", "expect no route 10.1.1.0/24", "", "lab.rtm:1: expect failed: want no route 10.1.1.0/24, got route 10.1.1.0/24 via 192.168.1.1 dev eth0"},
		{"expect mac", "expect mac 02:00:00:00:00:01 2001:db8::7", "", ""},
		{"expect mac any", "expect mac 02:00:00:00:00:01", "", ""},
		{"expect mac ip", "expect mac 02:00:00:00:00:01 2001:db8::8", "", "lab.rtm:1: expect failed: want mac 02:00:00:00:00:01 2001:db8::8, got mac 02:00:00:00:00:01 2001:db8::7"},
		{"expect mac missing", "expect mac 02:00:00:00:00:09", "", "lab.rtm:1: expect failed: want mac 02:00:00:00:00:09, got no mac 02:00:00:00:00:09"},
		{"expect no mac", "expect no mac 02:00:00:00:00:09", "", ""},
		{"expect no mac fails", "expect no mac 00:1a:2b:3c:4d:5e", "", "lab.rtm:1: expect failed: want no mac 00:1a:2b:3c:4d:5e, got mac 00:1a:2b:3c:4d:5e 10.1.1.7"},
		{"expect count", "expect count routes 4\nexpect count macs 3\nexpect count clients 0", "", ""},
		{"expect count fails", "expect count macs 1", "", "lab.rtm:1: expect failed: want 1 mac, got 3 macs"},
		{"expect error exists", "expect error C,10.1.1.0/24,192.168.1.1,eth0", "", ""},
		{"expect error malformed", "expect error C,10.1.1.1/24,192.168.1.1,eth0", "", ""},
		{"expect error missing", "expect error lookup 00:00:00:00:00:09", "", ""},
		{"expect error succeeds", "expect error D,10.1.1.0/24", "", "lab.rtm:1: expect failed: want an error from D,10.1.1.0/24, got success"},
		{"expect error of expect", "expect error expect no route 10.1.1.0/24", "", ""},
		{"quit ends", "quit\nfrob", "", "quit"},
		{"unknown", "frob", "", `lab.rtm:1: unknown command "frob": want C,U,D,R changes or one of show, lookup, route, flush, dump, source, sync, expect, help, quit (type help)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSession(t, Options{})
			if _, err := s.run(labSetup); err != "" {
				t.Fatal(err)
			}
			out, err := s.run(tc.line)
			if out != tc.out {
				t.Errorf("output:\n%s\nwant:\n%s", out, tc.out)
			}
			if err != tc.err {
				t.Errorf("error:\n got %s\nwant %s", err, tc.err)
			}
		})
	}
}

// TestRejectedChangesNothing: every failing line leaves the tables as
// they were, byte for byte.
func TestRejectedChangesNothing(t *testing.T) {
	s := newSession(t, Options{})
	s.run(labSetup)
	before := s.e.dump()
	for _, line := range []string{
		"C,10.1.1.0/24,192.168.9.9,eth9", "U,10.9.0.0/16,1.1.1.1,eth0", "D,10.9.0.0/16",
		"C,00:1a:2b:3c:4d:5e,10.9.9.9", "U,00:00:00:00:00:09,10.9.9.9", "D,00:00:00:00:00:09",
		"C,10.1.1.1/24,1.1.1.1,eth0", "C,10.2.0.0/16,1.1.1.1", "C,10.2.0.0/16,1.1.1.1,eth0,x",
		"C,10.2.0.0/16,1.1.1.1,averyveryverylongname", "expect route 10.7.0.0/16",
	} {
		if _, err := s.run(line); err == "" {
			t.Errorf("%s: succeeded", line)
		}
		if after := s.e.dump(); after != before {
			t.Fatalf("%s changed the tables:\n%s\nwant:\n%s", line, after, before)
		}
	}
}

func TestWrites(t *testing.T) {
	s := newSession(t, Options{})
	s.run(labSetup + "U,10.1.1.0/24,192.168.1.9,eth3\nD,10.1.0.0/16\nU,00:1a:2b:3c:4d:5e,2001:db8::9\nD,02:00:00:00:00:02\n")
	want := "0.0.0.0/0 via 192.168.1.254 dev eth0\n10.1.1.0/24 via 192.168.1.9 dev eth3\n2001:db8:1::/48 via fe80::1 dev eth1\n" +
		"00:1a:2b:3c:4d:5e 2001:db8::9\n02:00:00:00:00:01 2001:db8::7\n"
	if got := s.e.dump(); got != want {
		t.Errorf("tables:\n%s\nwant:\n%s", got, want)
	}
	for _, tc := range []struct {
		line   string
		routes int
		macs   int
	}{{"flush macs", 3, 0}, {"flush routes", 0, 0}} {
		if _, err := s.run(tc.line); err != "" {
			t.Fatal(err)
		}
		if len(s.e.routes) != tc.routes || len(s.e.macs) != tc.macs {
			t.Errorf("%s: %d routes %d macs", tc.line, len(s.e.routes), len(s.e.macs))
		}
	}
	s.run(labSetup)
	s.run("flush")
	if len(s.e.routes)+len(s.e.macs) != 0 {
		t.Errorf("flush left %s", s.e.dump())
	}
}

// TestJSON decodes the JSON forms and compares them with the tables.
func TestJSON(t *testing.T) {
	s := newSession(t, Options{})
	s.run(labSetup + `C,10.9.0.0/16,10.0.0.1,we"ird` + "\n")
	s.e.clients = []proto.ClientInfo{{ID: 1, Name: "a", PID: 42, State: "live", Acked: 9, Connected: time.Unix(1e9, 0).UTC()}}

	out, _ := s.run("show routes json")
	var routes []entry.Route
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if want := s.e.Routes(); len(routes) != len(want) || routes[4] != want[4] || routes[0] != want[0] {
		t.Errorf("routes json = %+v, want %+v", routes, want)
	}

	for _, cmd := range []string{"show macs json", "show -json macs"} {
		out, _ = s.run(cmd)
		var macs []struct {
			MAC entry.MAC  `json:"mac"`
			IP  netip.Addr `json:"ip"`
		}
		if err := json.Unmarshal([]byte(out), &macs); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if len(macs) != 3 || macs[1].MAC != (entry.MAC{2, 0, 0, 0, 0, 1}) || macs[1].IP != netip.MustParseAddr("2001:db8::7") {
			t.Errorf("%s = %+v", cmd, macs)
		}
	}

	out, _ = s.run("show clients json")
	var clients []proto.ClientInfo
	if err := json.Unmarshal([]byte(out), &clients); err != nil || len(clients) != 1 || clients[0] != s.e.clients[0] {
		t.Errorf("clients json %s: %+v, %v", out, clients, err)
	}
	out, _ = s.run("show clients")
	if !strings.HasPrefix(out, "a id 1 pid 42 uid 0 state live acked 9 lag 0 changes 0 writes no up ") {
		t.Errorf("show clients = %q", out)
	}
	// A name with a space is quoted: the line's first word is the name.
	saved := s.e.clients
	s.e.clients = append(saved[:len(saved):len(saved)], proto.ClientInfo{Name: "a b", ID: 2, PID: 43, State: "live"})
	if out, _ = s.run("show clients"); !strings.Contains(out, "\n\"a b\" id 2 pid 43 ") {
		t.Errorf("show clients with a name holding a space = %q", out)
	}
	s.e.clients = saved

	out, _ = s.run("show routes")
	if !strings.Contains(out, `10.9.0.0/16 via 10.0.0.1 dev "we\"ird"`) {
		t.Errorf("show routes = %q", out)
	}
}

// TestOddDeviceNamesPasteBack: a device name the word commands would
// read otherwise (a quote, '#', a spelling of the JSON switch) is printed
// so that show routes' lines paste back into expect route and show
// routes dev. `"q"` printed bare was read back as q, another device;
// #x as a comment; dev json as the switch ("dev needs a value").
func TestOddDeviceNamesPasteBack(t *testing.T) {
	s := newSession(t, Options{})
	devs := []string{`"q"`, "q", "#x", "json", "-j", `we"ird`, "eth0"}
	var lines []string
	for i, d := range devs {
		lines = append(lines, fmt.Sprintf("C,10.%d.0.0/16,-,%s", i, d))
	}
	if _, err := s.run(strings.Join(lines, "\n") + "\n"); err != "" {
		t.Fatal(err)
	}
	out, _ := s.run("show routes")
	shown := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(shown) != len(devs) {
		t.Fatalf("show routes = %q", out)
	}
	for i, line := range shown {
		if _, err := s.run("expect route " + line + "\n"); err != "" {
			t.Errorf("device %q: show routes printed %q, which expect route does not take back: %s", devs[i], line, err)
		}
		dev := line[strings.Index(line, " dev ")+5:]
		if got, err := s.run("show routes dev " + dev + "\n"); err != "" || got != line+"\n" {
			t.Errorf("device %q: show routes dev %s = %q, %s; want %q", devs[i], dev, got, err, line)
		}
		if got, err := s.run(fmt.Sprintf("route 10.%d.1.1\n", i)); err != "" || got != line+"\n" {
			t.Errorf("device %q: route = %q, %s; want %q", devs[i], got, err, line)
		}
	}
	// The switch after dev's value still is the switch; dev's value may
	// be dev.
	if got, _ := s.run("show routes dev json json\n"); got != `[{"dst":"10.3.0.0/16","dev":"json"}]`+"\n" {
		t.Errorf("show routes dev json json = %q", got)
	}
	if _, err := s.run("C,10.99.0.0/16,-,dev\n"); err != "" {
		t.Fatal(err)
	}
	if got, _ := s.run("show routes dev dev json\n"); got != `[{"dst":"10.99.0.0/16","dev":"dev"}]`+"\n" {
		t.Errorf("show routes dev dev json = %q", got)
	}
}

// writeLog records each write an Interp makes.
type writeLog struct{ writes [][]byte }

func (w *writeLog) Write(b []byte) (int, error) {
	w.writes = append(w.writes, slices.Clone(b))
	return len(b), nil
}

// TestLongListings: a listing larger than the output buffer goes out in
// writes that each end at a line end, so that a notice printed between
// two writes never lands inside a line; a JSON listing, one line, goes
// out whole in one write and decodes to every entry.
func TestLongListings(t *testing.T) {
	var w writeLog
	e := newMemEngine()
	in := NewInterp(e, &w, Options{Stderr: io.Discard})
	var script strings.Builder
	const n = 6000 // about 280 KB of JSON, four times the buffer
	for i := range n {
		fmt.Fprintf(&script, "C,%s,10.%d.%d.%d\n", entry.MACFromUint64(0x020000000000|uint64(i)), i>>16&255, i>>8&255, i&255)
	}
	if err := in.RunReader("macs.rtm", strings.NewReader(script.String())); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"show macs", "show macs json"} {
		w.writes = nil
		if err := in.RunReader("cmd", strings.NewReader(cmd+"\n")); err != nil {
			t.Fatal(err)
		}
		var all []byte
		for i, b := range w.writes {
			if len(b) == 0 || b[len(b)-1] != '\n' {
				t.Fatalf("%s: write %d of %d (%d bytes) does not end a line", cmd, i+1, len(w.writes), len(b))
			}
			all = append(all, b...)
		}
		if cmd == "show macs" {
			if got := bytes.Count(all, []byte("\n")); got != n || len(w.writes) < 2 {
				t.Fatalf("show macs: %d lines in %d writes, want %d lines in several", got, len(w.writes), n)
			}
			continue
		}
		var macs []struct{ MAC, IP string }
		if err := json.Unmarshal(all, &macs); err != nil || len(macs) != n || len(w.writes) != 1 {
			t.Fatalf("show macs json: %d entries in %d writes (%v), want %d in one", len(macs), len(w.writes), err, n)
		}
	}
}

func TestEmptyJSON(t *testing.T) {
	s := newSession(t, Options{})
	for _, cmd := range []string{"show routes json", "show macs json"} {
		if out, _ := s.run(cmd); out != "[]\n" {
			t.Errorf("%s on empty tables = %q", cmd, out)
		}
	}
}

// TestSource: nesting, paths relative to the including file, errors
// located in the file that holds them, cycles refused.
func TestSource(t *testing.T) {
	dir := rtmtest.WriteFiles(t, map[string]string{
		"main.rtm":         "C,10.1.1.0/24,192.168.1.1,eth0\nsource lib/routes.rtm\nexpect count routes 3\n",
		"lib/routes.rtm":   "source more/r.rtm\nC,10.2.0.0/16,192.168.1.1,eth0\n",
		"lib/more/r.rtm":   "C,10.3.0.0/16,192.168.1.1,eth0\n",
		"bad.rtm":          "C,10.1.1.0/24,192.168.1.1,eth0\nsource lib/bad.rtm\nC,10.5.0.0/16,192.168.1.1,eth0\n",
		"lib/bad.rtm":      "# nested\nC,10.1.1.0/24,192.168.1.1,eth0\n",
		"cycle.rtm":        "source lib/cycle2.rtm\n",
		"lib/cycle2.rtm":   "source ../cycle.rtm\n",
		"self.rtm":         "source self.rtm\n",
		"missing.rtm":      "\nsource nothere.rtm\n",
		"quit.rtm":         "source lib/quit.rtm\nC,10.9.0.0/16,192.168.1.1,eth0\n",
		"lib/quit.rtm":     "C,10.8.0.0/16,192.168.1.1,eth0\nquit\n",
		"dir.rtm":          "source lib\n",
		"my routes.rtm":    "C,10.4.0.0/16,192.168.1.1,eth0\n",
		"quoted.rtm":       `source "my routes.rtm"` + "\n",
		"keep.rtm":         "D,10.9.0.0/16\nsource lib/keep2.rtm\nD,10.9.0.0/16\nC,10.6.0.0/16,192.168.1.1,eth0\n",
		"lib/keep2.rtm":    "D,10.9.0.0/16\nD,10.9.0.0/16\n",
		"twice.rtm":        "source lib/more/r.rtm\nsource lib/more/r.rtm\n",
		"lib/sourced.rtm":  "C,10.7.0.0/16,192.168.1.1,eth0\n",
		"abs.rtm":          "", // filled below: source by absolute path
		"lib/more/ok1.rtm": "",
	})
	abs := filepath.Join(dir, "lib", "sourced.rtm")
	os.WriteFile(filepath.Join(dir, "abs.rtm"), []byte("source "+abs+"\n"), 0o644)
	p := func(name string) string { return filepath.Join(dir, name) }

	for _, tc := range []struct {
		file, err string
		keep      bool
		dump      string
	}{
		{file: "main.rtm", dump: "10.1.1.0/24 via 192.168.1.1 dev eth0\n10.2.0.0/16 via 192.168.1.1 dev eth0\n10.3.0.0/16 via 192.168.1.1 dev eth0\n"},
		{file: "bad.rtm", err: p("lib/bad.rtm") + ":2: create route 10.1.1.0/24: already exists", dump: "10.1.1.0/24 via 192.168.1.1 dev eth0\n"},
		{file: "cycle.rtm", err: p("lib/cycle2.rtm") + ":1: source: " + p("cycle.rtm") + ": cycle: " + p("cycle.rtm") + " -> " + p("lib/cycle2.rtm") + " -> " + p("cycle.rtm")},
		{file: "self.rtm", err: p("self.rtm") + ":1: source: " + p("self.rtm") + ": cycle: " + p("self.rtm") + " -> " + p("self.rtm")},
		{file: "missing.rtm", err: p("missing.rtm") + ":2: source: open " + p("nothere.rtm") + ": no such file or directory"},
		{file: "quit.rtm", err: "quit", dump: "10.8.0.0/16 via 192.168.1.1 dev eth0\n"},
		{file: "dir.rtm", err: p("dir.rtm") + ":1: source: " + p("lib") + " is a directory; want a script file"},
		{file: "quoted.rtm", dump: "10.4.0.0/16 via 192.168.1.1 dev eth0\n"},
		{file: "keep.rtm", keep: true, err: p("keep.rtm") + ": 4 lines failed: 2 of its 4 lines, 2 in a file it sourced", dump: "10.6.0.0/16 via 192.168.1.1 dev eth0\n"},
		{file: "twice.rtm", dump: "", err: p("lib/more/r.rtm") + ":1: create route 10.3.0.0/16: already exists"},
		{file: "abs.rtm", dump: "10.7.0.0/16 via 192.168.1.1 dev eth0\n"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			s := newSession(t, Options{KeepGoing: tc.keep})
			err := s.in.RunFile(p(tc.file))
			msg := ""
			if err != nil {
				msg = err.Error()
			}
			if msg != tc.err {
				t.Errorf("error:\n got %s\nwant %s", msg, tc.err)
			}
			if tc.dump != "" && s.e.dump() != tc.dump {
				t.Errorf("tables:\n%s\nwant:\n%s", s.e.dump(), tc.dump)
			}
			if tc.file == "quit.rtm" && !errors.Is(err, ErrQuit) {
				t.Errorf("quit in a sourced file: %v, want ErrQuit", err)
			}
			if tc.keep {
				want := p("keep.rtm") + ":1: delete route 10.9.0.0/16: not found\n" +
					p("lib/keep2.rtm") + ":1: delete route 10.9.0.0/16: not found\n" +
					p("lib/keep2.rtm") + ":2: delete route 10.9.0.0/16: not found\n" +
					p("keep.rtm") + ":3: delete route 10.9.0.0/16: not found\n"
				if s.err.String() != want {
					t.Errorf("reported:\n%s\nwant:\n%s", s.err.String(), want)
				}
				if !errors.Is(err, ErrFailed) || s.in.Failed() != 4 {
					t.Errorf("keep-going end: %v, %d failed; want ErrFailed, 4", err, s.in.Failed())
				}
			}
		})
	}
}

// TestSourceFromStream: paths of a stream (stdin) are relative to the
// current directory.
func TestSourceFromStream(t *testing.T) {
	dir := rtmtest.WriteFiles(t, map[string]string{"a.rtm": "C,10.1.0.0/16,192.168.1.1,eth0\n"})
	t.Chdir(dir)
	s := newSession(t, Options{})
	if _, err := s.run("source a.rtm\nexpect count routes 1\n"); err != "" {
		t.Fatal(err)
	}
}

// TestKeepGoingSourcedSummary: a keep-going replay's summary counts the
// failed lines of the files it sourced apart from its own, whose number
// of lines it gives: "3 of 2 lines" it said before. It names how many
// files those were, at any depth (it said "files" of one).
func TestKeepGoingSourcedSummary(t *testing.T) {
	dir := rtmtest.WriteFiles(t, map[string]string{
		"inc.rtm":   "D,10.9.0.0/16\nD,10.8.0.0/16\nD,10.7.0.0/16\n",
		"one.rtm":   "D,10.6.0.0/16\n",
		"outer.rtm": "source one.rtm\nsource inc.rtm\n", // none of its own
		"quit.rtm":  "D,10.5.0.0/16\nquit\nD,10.4.0.0/16\n",
	})
	t.Chdir(dir)
	for _, tc := range []struct{ script, want string }{
		{"source inc.rtm\nshow routes\n", "lab.rtm: 3 lines failed, in a file it sourced"},
		{"source inc.rtm\nD,10.1.0.0/16\nshow routes\n", "lab.rtm: 4 lines failed: 1 of its 3 lines, 3 in a file it sourced"},
		{"source one.rtm\n", "lab.rtm: 1 line failed, in a file it sourced"},
		{"source one.rtm\nsource inc.rtm\n", "lab.rtm: 4 lines failed, in 2 files it sourced"},
		{"D,10.1.0.0/16\nsource outer.rtm\nsource one.rtm\n", "lab.rtm: 6 lines failed: 1 of its 3 lines, 5 in 2 files it sourced"},
		// A quit ends the replay, not its count, up to the line that quit.
		{"D,10.1.0.0/16\nsource quit.rtm\nD,10.2.0.0/16\n", "lab.rtm: 2 lines failed: 1 of its 2 lines, 1 in a file it sourced"},
	} {
		s := newSession(t, Options{KeepGoing: true})
		if _, err := s.run(tc.script); err != tc.want || s.in.Failed() != strings.Count(s.err.String(), "not found\n") {
			t.Errorf("%q: %q, %d failed; want %q\n%s", tc.script, err, s.in.Failed(), tc.want, s.err.String())
		}
	}
}

// TestKeepGoingExpectErrorSource: under --keep-going, an expect error
// whose source fails as wanted is met: no error reported, no line failed,
// the lines after it run (the sourced file's error was printed and
// counted, and the replay exited 1).
func TestKeepGoingExpectErrorSource(t *testing.T) {
	dir := rtmtest.WriteFiles(t, map[string]string{"dup.rtm": "C,10.1.0.0/16,192.168.1.1,eth0\nC,10.2.0.0/16,192.168.1.1,eth0\n"})
	t.Chdir(dir)
	s := newSession(t, Options{KeepGoing: true})
	out, err := s.run("C,10.1.0.0/16,192.168.1.1,eth0\nexpect error source dup.rtm\nshow routes count\nD,10.9.0.0/16\n")
	if out != "1\n" || err != "lab.rtm: 1 of 4 lines failed" || s.err.String() != "lab.rtm:4: delete route 10.9.0.0/16: not found\n" || s.in.Failed() != 1 {
		t.Errorf("stdout %q, error %q, stderr %q, %d failed; want the count 1, only line 4 failed", out, err, s.err.String(), s.in.Failed())
	}
}

// TestKeepGoing reports every failing line, runs the rest, and fails at
// the end; without it the first error stops the replay.
func TestKeepGoing(t *testing.T) {
	script := "C,10.1.1.0/24,192.168.1.1,eth0\nC,10.1.1.0/24,192.168.1.1,eth0\nfrob\nC,10.2.0.0/16,192.168.1.1,eth0\nshow routes\n"
	s := newSession(t, Options{KeepGoing: true})
	out, err := s.run(script)
	if err != "lab.rtm: 2 of 5 lines failed" {
		t.Errorf("keep-going error = %q", err)
	}
	wantErr := "lab.rtm:2: create route 10.1.1.0/24: already exists\n" +
		`lab.rtm:3: unknown command "frob": want C,U,D,R changes or one of show, lookup, route, flush, dump, source, sync, expect, help, quit (type help)` + "\n"
	if s.err.String() != wantErr {
		t.Errorf("reported:\n%s\nwant:\n%s", s.err.String(), wantErr)
	}
	if out != "10.1.1.0/24 via 192.168.1.1 dev eth0\n10.2.0.0/16 via 192.168.1.1 dev eth0\n" {
		t.Errorf("output %q", out)
	}

	s = newSession(t, Options{})
	out, err = s.run(script)
	if err != "lab.rtm:2: create route 10.1.1.0/24: already exists" || out != "" || len(s.e.routes) != 1 {
		t.Errorf("stop at first error: %q, %q, %d routes", err, out, len(s.e.routes))
	}
	var le *LineError
	if e := s.in.RunReader("<stdin>", strings.NewReader("\n\nfrob\n")); !errors.As(e, &le) || le.File != "<stdin>" || le.Line != 3 {
		t.Errorf("LineError: %#v", e)
	}
}

// TestReadOnly: a client refuses writes with a clear message; reads work.
func TestReadOnly(t *testing.T) {
	s := newSession(t, Options{Mode: "client"})
	s.run(labSetup)
	s.in = NewInterp(readOnly{s.e}, &s.out, Options{Mode: "client", Stderr: &s.err})
	for _, tc := range []struct{ line, err string }{
		{"C,10.9.0.0/16,192.168.1.1,eth0", "lab.rtm:1: create route 10.9.0.0/16: refused: this engine only reads; make changes at the server"},
		{"D,00:1a:2b:3c:4d:5e", "lab.rtm:1: delete MAC 00:1a:2b:3c:4d:5e: refused: this engine only reads; make changes at the server"},
		{"flush macs", "lab.rtm:1: flush macs: refused: this engine only reads; make changes at the server"},
		{"expect error U,10.1.1.0/24,192.168.1.1,eth0", ""},
		{"lookup 00:1a:2b:3c:4d:5e", ""},
	} {
		_, err := s.run(tc.line)
		if err != tc.err {
			t.Errorf("%s:\n got %s\nwant %s", tc.line, err, tc.err)
		}
	}
	err := s.in.RunLine(Location{"x", 1}, []byte("C,10.9.0.0/16,192.168.1.1,eth0"))
	if !errors.Is(err, entry.ErrReadOnly) {
		t.Errorf("read-only error does not wrap entry.ErrReadOnly: %v", err)
	}
}

func TestSync(t *testing.T) {
	s := newSession(t, Options{SyncTimeout: 20 * time.Millisecond})
	if _, err := s.run("sync\nsync 1s"); err != "" || s.e.syncs != 2 {
		t.Fatalf("sync: %s (%d syncs)", err, s.e.syncs)
	}
	s.e.syncErr = errors.New("stuck")
	if _, err := s.run("sync"); err != "lab.rtm:1: sync timed out after 20ms: 1 client behind: slow (pid 1) at change 3 of 5" {
		t.Errorf("sync timeout: %s", err)
	}
	if _, err := s.run("sync 30ms"); err != "lab.rtm:1: sync timed out after 30ms: 1 client behind: slow (pid 1) at change 3 of 5" {
		t.Errorf("sync 30ms: %s", err)
	}
}

// TestStreams: long lines, CRLF, no final newline.
func TestStreams(t *testing.T) {
	s := newSession(t, Options{})
	long := "# " + strings.Repeat("x", 3<<20) + "\n"
	if _, err := s.run(long + "C,10.1.1.0/24,192.168.1.1,eth0\r\nC,10.2.0.0/16,192.168.1.1,eth0"); err != "" {
		t.Fatal(err)
	}
	if len(s.e.routes) != 2 {
		t.Errorf("%d routes", len(s.e.routes))
	}
	_, err := s.run(long + "frob\n")
	if !strings.HasPrefix(err, "lab.rtm:2: unknown command") {
		t.Errorf("line count after a long line: %s", err)
	}
}

// TestLargeOutput: output is flushed in whole lines, and all of it.
func TestLargeOutput(t *testing.T) {
	s := newSession(t, Options{})
	var b strings.Builder
	for i := range 20000 {
		m := entry.MACFromUint64(uint64(i))
		b.WriteString("C," + m.String() + ",10.0.0.1\n")
	}
	s.run(b.String())
	w := &lineWriter{t: t}
	s.in.out = w
	if err := s.in.RunLine(Location{"x", 1}, []byte("show macs")); err != nil {
		t.Fatal(err)
	}
	if w.lines != 20000 || w.writes < 2 {
		t.Errorf("%d lines in %d writes", w.lines, w.writes)
	}
}

// lineWriter checks that every write ends at a line end.
type lineWriter struct {
	t             *testing.T
	lines, writes int
}

func (w *lineWriter) Write(p []byte) (int, error) {
	if len(p) > 0 && p[len(p)-1] != '\n' {
		w.t.Errorf("write of %d bytes cuts a line", len(p))
	}
	w.writes++
	w.lines += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}

func TestPrompt(t *testing.T) {
	for _, tc := range []struct{ mode, name, want string }{
		{"server", "lab", "rtm(lab)> "},
		{"client", "lab", "rtm-client(lab)> "},
		{"", "", "rtm> "},
	} {
		if got := NewInterp(newMemEngine(), nil, Options{Mode: tc.mode, Name: tc.name}).Prompt(); got != tc.want {
			t.Errorf("Prompt(%q, %q) = %q, want %q", tc.mode, tc.name, got, tc.want)
		}
	}
}

// TestHelpTopics: every command word has a help paragraph.
func TestHelpTopics(t *testing.T) {
	for _, w := range append(commandWords, "C", "U", "D", "exit") {
		if text, ok := helpTopic(strings.ToLower(w)); !ok || text == "" {
			t.Errorf("help %s: missing", w)
		}
	}
}

// TestConsolePlain: off the prompt, a Console writes plainly, one whole
// line per message, whatever the number of goroutines.
func TestConsolePlain(t *testing.T) {
	var out bytes.Buffer
	c := NewConsole(&out)
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 100 {
				c.Printf("client %d-%d connected", g, i)
			}
		}()
	}
	for range 4 {
		<-done
	}
	c.Printf("already ends in a newline\n")
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 401 || lines[400] != "already ends in a newline" {
		t.Fatalf("%d lines, last %q", len(lines), lines[len(lines)-1])
	}
	for _, l := range lines[:400] {
		if !strings.HasPrefix(l, "client ") || !strings.HasSuffix(l, " connected") {
			t.Errorf("garbled line %q", l)
		}
	}
	if err := c.Close(); err != nil {
		t.Errorf("Close off the prompt: %v", err)
	}
}
