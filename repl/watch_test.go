package repl

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strings"
	"testing"

	"rtm/store/entry"
)

func route(s string) entry.Route {
	f := strings.Fields(s)
	r := entry.Route{Prefix: netip.MustParsePrefix(f[0]), Dev: f[2]}
	if f[1] != "-" {
		r.Gateway = netip.MustParseAddr(f[1])
	}
	return r
}

// snapshot gives w a memEngine's tables as a client gives its
// subscribers a snapshot.
func snapshot(w *Watcher, seq uint64, e *memEngine) {
	var macs []entry.MACEntry
	for _, m := range e.MACs() {
		macs = append(macs, entry.MACEntry{MAC: m, IP: e.macs[m]})
	}
	w.Snapshot(seq, e.Routes(), macs)
}

// TestWatcherLines: each kind of change prints as the command that makes
// it, with its sequence number; what cannot be replayed is a comment.
func TestWatcherLines(t *testing.T) {
	e := newMemEngine()
	e.routes[netip.MustParsePrefix("10.1.0.0/16")] = route("10.1.0.0/16 192.168.1.1 eth0")
	var out bytes.Buffer
	w := NewWatcher(&out, WatchOptions{})
	m := entry.MAC{0, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e}
	ip := netip.MustParseAddr
	snapshot(w, 7, e)
	w.Changes(8, []entry.Change{
		entry.RouteChange(entry.Create, route("192.0.2.0/24 - veth0")),
		entry.RouteChange(entry.Update, route("10.1.0.0/16 192.168.1.9 eth1")),
		entry.MACChange(entry.Create, m, ip("10.1.1.7")),
		entry.MACChange(entry.Update, m, ip("2001:db8::7")),
		entry.MACChange(entry.Create, entry.MAC{2}, netip.Addr{}),
		entry.MACChange(entry.Delete, entry.MAC{2}, netip.Addr{}),
		entry.RouteChange(entry.Delete, entry.Route{Prefix: netip.MustParsePrefix("192.0.2.0/24")}),
		entry.MACChange(entry.Delete, m, netip.Addr{}),
		entry.FlushOf(entry.MACs),
		entry.FlushOf(entry.Both),
	})
	want := `# snapshot: 1 routes, 0 MACs (seq 7)
C,192.0.2.0/24,-,veth0  # seq 8
U,10.1.0.0/16,192.168.1.9,eth1  # seq 9
C,00:1a:2b:3c:4d:5e,10.1.1.7  # seq 10
U,00:1a:2b:3c:4d:5e,2001:db8::7  # seq 11
# C,02:00:00:00:00:00  # seq 12: deleted again before its address could be read
# D,02:00:00:00:00:00  # seq 13: its create could not be printed
D,192.0.2.0/24  # seq 14
D,00:1a:2b:3c:4d:5e  # seq 15
flush macs  # seq 16
flush  # seq 17
`
	if out.String() != want {
		t.Fatalf("watch lines:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestWatcherFull: with Full the first snapshot prints as the creates
// that rebuild it, routes first.
func TestWatcherFull(t *testing.T) {
	e := newMemEngine()
	e.routes[netip.MustParsePrefix("10.1.0.0/16")] = route("10.1.0.0/16 192.168.1.1 eth0")
	e.macs[entry.MAC{2}] = netip.MustParseAddr("10.1.1.7")
	var out bytes.Buffer
	w := NewWatcher(&out, WatchOptions{Full: true})
	snapshot(w, 3, e)
	want := `# snapshot: 1 routes, 1 MACs (seq 3)
C,10.1.0.0/16,192.168.1.1,eth0  # seq 3: snapshot
C,02:00:00:00:00:00,10.1.1.7  # seq 3: snapshot
`
	if out.String() != want {
		t.Fatalf("full snapshot:\n%s\nwant:\n%s", out.String(), want)
	}
}

// TestWatcherFullStreams: a large first snapshot with Full is written as
// it is printed, its first run of lines before the rest is made (a
// watcher of 2 M MACs printed all of it, about 100 MB, before its first
// line), and whole: every line, in order, in runs of whole lines. Not
// parallel: it weighs what the process allocates.
func TestWatcherFullStreams(t *testing.T) {
	const n = 100_000
	macs := make([]entry.MACEntry, n)
	for i := range macs {
		macs[i] = entry.MACEntry{MAC: entry.MACFromUint64(0x020000000000 + uint64(i)), IP: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})}
	}
	var out runRecorder
	w := NewWatcher(&out, WatchOptions{Full: true})
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	out.onFirst = func() {
		var at runtime.MemStats
		runtime.ReadMemStats(&at)
		out.allocated = at.TotalAlloc - before.TotalAlloc
	}
	w.Snapshot(9, nil, macs)
	text := out.String()
	if out.allocated > uint64(len(text))/8 {
		t.Errorf("%d bytes allocated before the first write of %d bytes of snapshot: want under an eighth of it, the text not made whole first", out.allocated, len(text))
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != n+1 || lines[0] != "# snapshot: 0 routes, 100000 MACs (seq 9)" {
		t.Fatalf("%d lines, the first %q", len(lines), lines[0])
	}
	for i, m := range macs {
		if want := "C," + m.MAC.String() + "," + m.IP.String() + "  # seq 9: snapshot"; lines[i+1] != want {
			t.Fatalf("line %d: %q, want %q", i+2, lines[i+1], want)
		}
	}
	for i, r := range out.runs {
		if len(r) > atomicWrite || !strings.HasSuffix(r, "\n") {
			t.Fatalf("write %d: %d bytes, ending %q: want whole lines, at most %d bytes", i, len(r), r[max(0, len(r)-20):], atomicWrite)
		}
	}
}

// TestWatcherFullStopsMidway: a first snapshot whose writing is stopped
// (Stop, as a signal does) or whose output fails, at its third run of
// lines, writes nothing after it: the rest is neither written nor made.
func TestWatcherFullStopsMidway(t *testing.T) {
	macs := make([]entry.MACEntry, 20_000)
	for i := range macs {
		macs[i] = entry.MACEntry{MAC: entry.MACFromUint64(0x020000000000 + uint64(i)), IP: netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})}
	}
	for _, fail := range []bool{false, true} {
		var out runRecorder
		w := NewWatcher(&out, WatchOptions{Full: true})
		out.onWrite = func(n int) error {
			if n < 3 {
				return nil
			}
			if fail {
				return errors.New("no space left on device")
			}
			if stopped, begun := w.Stop(); !stopped || !begun {
				t.Errorf("Stop in the snapshot's third write: stopped %v, begun %v; want both", stopped, begun)
			}
			return nil
		}
		w.Snapshot(4, nil, macs)
		if len(out.runs) != 3 {
			t.Errorf("fail %v: %d writes, want 3: none after the third", fail, len(out.runs))
		}
		select {
		case <-w.Gone():
			if seq, err := w.Failed(); !fail || err == nil || seq != 4 {
				t.Errorf("fail %v: gone, Failed() = %d, %v", fail, seq, err)
			}
		default:
			if fail {
				t.Errorf("a failed write left the watch going")
			}
		}
		if _, stuck := w.Stuck(); stuck {
			t.Errorf("fail %v: stuck after the snapshot returned", fail)
		}
	}
}

// runRecorder keeps what is written to it, write by write; it calls
// onFirst at the first write and onWrite at each, whose error it returns.
type runRecorder struct {
	bytes.Buffer
	runs      []string
	onFirst   func()
	onWrite   func(n int) error // the nth write's error, if any
	allocated uint64
}

func (r *runRecorder) Write(p []byte) (int, error) {
	if len(r.runs) == 0 && r.onFirst != nil {
		r.onFirst()
	}
	r.runs = append(r.runs, string(p))
	if r.onWrite != nil {
		if err := r.onWrite(len(r.runs)); err != nil {
			return 0, err
		}
	}
	return r.Buffer.Write(p)
}

// TestWatcherReplays: random changes, resyncs among them, watched and
// replayed into an empty engine, give that engine the watched tables.
func TestWatcherReplays(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	src := newMemEngine()
	var out bytes.Buffer
	w := NewWatcher(&out, WatchOptions{Times: true})
	snapshot(w, 0, src)
	seq := uint64(0)
	for round := range 50 {
		var changes []entry.Change
		first := seq + 1
		for range 20 {
			seq++
			i := rng.IntN(30)
			p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16)
			m := entry.MAC{2, 0, 0, 0, 0, byte(i)}
			ip := netip.AddrFrom4([4]byte{10, 9, byte(round), byte(i)})
			var c entry.Change
			switch _, has := src.routes[p]; {
			case rng.IntN(4) == 0 && has:
				delete(src.routes, p)
				c = entry.RouteChange(entry.Delete, entry.Route{Prefix: p})
			case rng.IntN(3) == 0:
				r := entry.Route{Prefix: p, Dev: "eth1"}
				c = entry.RouteChange(entry.Create, r)
				if has {
					c.Op = entry.Update
				}
				src.routes[p] = r
			default:
				_, hasMAC := src.macs[m]
				switch {
				case hasMAC && rng.IntN(3) == 0:
					delete(src.macs, m)
					c = entry.MACChange(entry.Delete, m, netip.Addr{})
				default:
					c = entry.MACChange(entry.Create, m, ip)
					if hasMAC {
						c.Op = entry.Update
					}
					src.macs[m] = ip
				}
			}
			changes = append(changes, c)
		}
		if round%7 == 3 {
			// A resync: the tables moved on without the watcher seeing how.
			for k := range src.macs {
				if rng.IntN(2) == 0 {
					src.macs[k] = netip.AddrFrom4([4]byte{192, 0, 2, byte(rng.IntN(250))})
				}
			}
			snapshot(w, seq, src)
			continue
		}
		w.Changes(first, changes)
	}
	dst := newMemEngine()
	in := NewInterp(dst, &bytes.Buffer{}, Options{})
	if err := in.RunReader("watch", strings.NewReader(out.String())); err != nil {
		t.Fatalf("the watch output does not replay: %v\n%s", err, out.String())
	}
	if got, want := dst.dump(), src.dump(); got != want {
		t.Fatalf("replayed tables:\n%s\nwatched tables:\n%s", got, want)
	}
}

// TestWatcherJSON: one object per line, with the command that makes the
// change, and a snapshot event.
func TestWatcherJSON(t *testing.T) {
	var out bytes.Buffer
	w := NewWatcher(&out, WatchOptions{JSON: true})
	w.Snapshot(1, nil, nil)
	w.Changes(2, []entry.Change{
		entry.RouteChange(entry.Create, route("192.0.2.0/24 - veth0")),
		entry.MACChange(entry.Create, entry.MAC{2}, netip.MustParseAddr("192.0.2.7")),
	})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []map[string]any{
		{"seq": 1.0, "event": "snapshot", "routes": 0.0, "macs": 0.0},
		{"seq": 2.0, "op": "create", "table": "routes", "dst": "192.0.2.0/24", "dev": "veth0", "change": "C,192.0.2.0/24,-,veth0"},
		{"seq": 3.0, "op": "create", "table": "macs", "mac": "02:00:00:00:00:00", "ip": "192.0.2.7", "change": "C,02:00:00:00:00:00,192.0.2.7"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines: %s", len(lines), out.String())
	}
	for i, l := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(l), &got); err != nil {
			t.Fatalf("line %d: %v: %s", i+1, err, l)
		}
		for k, v := range want[i] {
			if got[k] != v {
				t.Errorf("line %d: %s = %v, want %v (%s)", i+1, k, got[k], v, l)
			}
		}
	}
}
