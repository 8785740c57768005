package repl

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var fuzzSeeds = []string{
	`C,10.60.0.0/16,-,a"b`, `C,10.0.0.0/10,0.10.0.0,"`, `source "a # b.rtm"`, `expect error "`,
	"C,10.1.1.0/24,192.168.1.1,eth0",
	"U , 2001:db8::/32 , fe80::1 , eth1 # note",
	"D,0.0.0.0/0",
	"C,00:1a:2b:3c:4d:5e,10.1.1.7",
	"c,001A.2B3C.4D5E,2001:db8::7",
	"D,00-1a-2b-3c-4d-5e",
	"C,10.1.1.1/24,1.1.1.1,eth0",
	"C,fe80::%eth0/64,fe80::1,eth0",
	"show routes json",
	"show -json macs",
	"expect route 10.1.1.0/24 via 192.168.1.1 dev eth0",
	"expect error C,10.1.1.0/24,192.168.1.1,eth0",
	"expect count macs 3",
	`source "a b.rtm"`,
	"sync 1.5",
	"help expect",
}

// FuzzParse: no input panics; whatever parses prints back in a canonical
// form that parses to the same command; every route that parses is valid.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		cmd, err := Parse(line)
		if err != nil {
			return
		}
		canon := cmd.String()
		again, err := Parse([]byte(canon))
		if err != nil {
			t.Fatalf("%q parsed, its canonical form %q does not: %v", line, canon, err)
		}
		if again.String() != canon {
			t.Fatalf("%q: canonical form %q reparses as %q", line, canon, again.String())
		}
		if cmd.Kind == KindChange {
			if err := cmd.Change.Check(); err != nil {
				t.Fatalf("%q parsed to an invalid change: %v", line, err)
			}
		}
		// A comment after it changes nothing: --watch prints every
		// change with "  # seq N", and a mirror replays that.
		if !bytes.ContainsAny(line, "\r\n") {
			commented, err := Parse(append(bytes.Clone(line), "  # seq 7"...))
			if err != nil || commented.String() != canon {
				t.Fatalf("%q parses as %q, but with a comment after it as %q (%v)", line, canon, commented.String(), err)
			}
		}
	})
}

// FuzzParseMACChange: the short path of MAC lines accepts only lines that
// the full parser parses, into the same command.
func FuzzParseMACChange(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		"C,02:00:00:00:00:01,10.0.0.1\n", "u,02-00-00-00-00-01,10.0.0.1\r\n", "R,02:00:00:00:00:01,0.0.0.0 \t",
		"D,02:00:00:00:00:01", "d,02:00:00:00:00:01,", "C,02:00:00:00:00:01,10.0.0.01", "C,02:00:00:00:00:01,10.0.0.1,x",
		"C,02:00:00:00:00:01,10.0.0.1 # note", "C,02:00-00:00:00:01,10.0.0.1", "X,02:00:00:00:00:01,10.0.0.1",
		" C,02:00:00:00:00:01,10.0.0.1", "C ,02:00:00:00:00:01,10.0.0.1", "C,02:00:00:00:00:01 ,10.0.0.1",
		"C,02:00:00:00:00:01,::1", "C,02:00:00:00:00:01,256.0.0.1", "C,02:00:00:00:00:01,10.0.0",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var fast Command
		if !parseMACChange(line, &fast) {
			return
		}
		var (
			p    parser
			full Command
		)
		if err := p.parseLine(line, &full); err != nil {
			t.Fatalf("%q: short path accepts it, the parser says %v", line, err)
		}
		if fast.String() != full.String() || fast != full {
			t.Fatalf("%q: short path %q, parser %q", line, fast.String(), full.String())
		}
	})
}

// FuzzParseRouteChange: whatever the short path for IPv4 route changes
// accepts, the full parser parses, into the same command.
func FuzzParseRouteChange(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		"C,10.1.1.0/24,192.168.1.1,eth0\n", "u,10.1.1.0/24,-,eth0\r\n", "R,0.0.0.0/0,10.0.0.1,eth#1 \t", "D,10.1.1.0/24",
		"D,10.1.1.0/24,", "C,10.1.1.1/24,192.168.1.1,eth0", "C,10.1.1.0/08,192.168.1.1,eth0", "C,10.1.1.0/33,1.1.1.1,eth0",
		"C,10.1.1.0/24,192.168.1.1,eth0,x", "C,10.1.1.0/24,192.168.1.1,eth0 # note", "C,10.1.1.0/24, 192.168.1.1,eth0",
		"C,10.1.1.0/24,192.168.1.1,", "C,10.1.1.0/24,192.168.1.01,eth0", "C,10.1.1.0/24,-x,eth0", "C,10.1.1.0/24,1.2.3.4,eth0:1",
		"C,10.1.1.0/24,1.2.3.4,abcdefghijklmnop", "C,10.1.1.0/240,1.2.3.4,eth0", "C,10.1.1.0/2a,1.2.3.4,eth0", "C,1.2.3.4/32,::1,eth0",
		"C,10.1.1.0/24,0.0.0.0,eth0", "C,10.1.1.0/24,224.0.0.1,eth0", "C,10.1.1.0/24,127.0.0.1,eth0", "C,10.1.1.0/24,255.255.255.255,eth0",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var (
			p          parser
			fast, full Command
		)
		if !p.parseRouteChange(line, &fast) {
			return
		}
		if err := p.parseLine(line, &full); err != nil {
			t.Fatalf("%q: short path accepts it, the parser says %v", line, err)
		}
		if fast.String() != full.String() || fast != full {
			t.Fatalf("%q: short path %q, parser %q", line, fast.String(), full.String())
		}
	})
}

// FuzzParseIPv4: the fast path agrees with netip on every input without
// a colon (with one, it is never tried).
func FuzzParseIPv4(f *testing.F) {
	for _, s := range []string{"0.0.0.0", "255.255.255.255", "1.2.3.4", "256.1.1.1", "1.2.3", "01.2.3.4", "1.2.3.4a", "1234.1.1.1", "1.2.3.1000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, ':') >= 0 {
			return
		}
		got, ok := parseIPv4([]byte(s))
		want, err := netip.ParseAddr(s)
		if ok != (err == nil) || ok && got != want {
			t.Fatalf("parseIPv4(%q) = %v, %v; netip: %v, %v", s, got, ok, want, err)
		}
	})
}

// FuzzExec runs arbitrary lines against the lab tables: a line that fails
// leaves the tables byte-identical.
func FuzzExec(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(labSetup))
	f.Fuzz(func(t *testing.T, script []byte) {
		e := newMemEngine()
		in := NewInterp(e, io.Discard, Options{Stderr: io.Discard, SyncTimeout: time.Millisecond})
		if err := in.RunReader("setup", bytes.NewReader([]byte(labSetup))); err != nil {
			t.Fatal(err)
		}
		for i, line := range bytes.SplitN(script, []byte{'\n'}, 64) {
			cmd, err := Parse(line)
			if err == nil && (cmd.Kind == KindSource || cmd.Kind == KindExpect && cmd.Expect.Check == CheckError) {
				continue // reads files; or fails exactly when its command succeeded
			}
			before := e.dump()
			err = in.RunLine(Location{File: "fuzz", Line: i + 1}, line)
			if err != nil && !errors.Is(err, ErrQuit) {
				if after := e.dump(); after != before {
					t.Fatalf("%q failed (%v) but changed the tables:\n%s\nwas:\n%s", line, err, after, before)
				}
			}
		}
	})
}
