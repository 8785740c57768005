package repl

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"rtm/store/entry"
)

// prefetchEngine is a memEngine that is a Prefetcher: it records the MACs
// and prefixes a replay announces, and checks that each change to a MAC
// was announced before it ran (and each route change, if checkRoutes).
type prefetchEngine struct {
	*memEngine
	t           *testing.T
	fetched     []entry.MAC
	prefixes    []netip.Prefix
	calls       int
	checkRoutes bool
	onMAC       func(entry.MAC) // called as each MAC change runs
}

func (e *prefetchEngine) PrefetchMACs(ms []entry.MAC) {
	e.calls++
	e.fetched = append(e.fetched, ms...)
}

func (e *prefetchEngine) PrefetchRoutes(ps []netip.Prefix) {
	e.prefixes = append(e.prefixes, ps...)
}

func (e *prefetchEngine) ran(m entry.MAC) {
	if !slices.Contains(e.fetched, m) {
		e.t.Errorf("change to %s ran before it was prefetched", m)
	}
	if e.onMAC != nil {
		e.onMAC(m)
	}
}

func (e *prefetchEngine) Apply(c entry.Change) error {
	switch {
	case c.Op == entry.Flush:
	case c.Table == entry.MACs:
		e.ran(c.MAC)
	case e.checkRoutes && !slices.Contains(e.prefixes, c.Route.Prefix):
		e.t.Errorf("change to %s ran before it was prefetched", c.Route.Prefix)
	}
	return e.memEngine.Apply(c)
}

// replayScript is the creates of MACs from to to-1, with a route and a
// comment after the eighth.
func replayScript(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "C,02:00:00:00:%02x:%02x,10.0.%d.%d\n", i>>8, i&0xff, i>>8, i&0xff)
		if i == 7 {
			b.WriteString("# a comment\nC,10.1.0.0/16,192.168.1.1,eth0\n")
		}
	}
	return b.String()
}

// TestReplayPrefetch: a replay tells a Prefetcher engine the MACs of the
// lines waiting in its buffer before it runs them, a group at a time,
// and still runs every line in order, once.
func TestReplayPrefetch(t *testing.T) {
	e := &prefetchEngine{memEngine: newMemEngine(), t: t}
	in := NewInterp(e, io.Discard, Options{Stderr: io.Discard})
	if err := in.RunReader("lab.rtm", strings.NewReader(replayScript(0, 100))); err != nil {
		t.Fatal(err)
	}
	if len(e.macs) != 100 || len(e.routes) != 1 {
		t.Fatalf("%d MACs and %d routes, want 100 and 1", len(e.macs), len(e.routes))
	}
	if len(e.fetched) != 100 || e.calls < 100/replayAhead || e.calls > 100 {
		t.Errorf("%d MACs prefetched in %d calls", len(e.fetched), e.calls)
	}

	// Route changes: their prefixes are announced alike.
	e = &prefetchEngine{memEngine: newMemEngine(), t: t, checkRoutes: true}
	in = NewInterp(e, io.Discard, Options{Stderr: io.Discard})
	var b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&b, "C,10.%d.0.0/16,192.168.1.1,eth0\n", i)
	}
	if err := in.RunReader("routes.rtm", strings.NewReader(b.String())); err != nil {
		t.Fatal(err)
	}
	if len(e.routes) != 100 || len(e.prefixes) != 100 {
		t.Errorf("%d routes, %d prefixes prefetched; want 100 and 100", len(e.routes), len(e.prefixes))
	}
}

// TestReplayAheadStops: the lines parsed ahead of a line that stops the
// replay (a failure, quit, an interrupt) do not run.
func TestReplayAheadStops(t *testing.T) {
	script := replayScript(0, 5) + "C,02:00:00:00:00:01,10.9.9.9\n" + replayScript(5, 40)
	for _, tc := range []struct {
		name, script string
		keepGoing    bool
		interruptAt  int // the MAC create that interrupts the replay (0: none)
		err          string
		macs         int
	}{
		{"failure", script, false, 0, "lab.rtm:6: create MAC 02:00:00:00:00:01: already exists", 5},
		{"keep going", script, true, 0, "lab.rtm: 1 of 43 lines failed", 40},
		{"quit", replayScript(0, 3) + "quit\n" + replayScript(3, 10), false, 0, "quit", 3},
		{"interrupt", replayScript(0, 20), false, 4, "lab.rtm:5: interrupted", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &prefetchEngine{memEngine: newMemEngine(), t: t}
			in := NewInterp(e, io.Discard, Options{Stderr: io.Discard, KeepGoing: tc.keepGoing})
			runs := 0
			e.onMAC = func(entry.MAC) {
				if runs++; runs == tc.interruptAt {
					in.Interrupt()
				}
			}
			err := in.RunReader("lab.rtm", strings.NewReader(tc.script))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("error %v, want %q", err, tc.err)
			}
			if tc.name == "quit" && !errors.Is(err, ErrQuit) {
				t.Errorf("error %v, want ErrQuit", err)
			}
			if len(e.macs) != tc.macs {
				t.Errorf("%d MACs created, want %d", len(e.macs), tc.macs)
			}
		})
	}
}

// batchEngine is a memEngine that is a Batcher: it records, for each
// change, whether it ran held and how many sends came before it.
type batchEngine struct {
	*memEngine
	held  bool
	sends int
	runs  []int // sends before each change
	free  int   // changes made while not held
}

func (e *batchEngine) Hold() { e.held = true }
func (e *batchEngine) Send() { e.held = false; e.sends++ }

func (e *batchEngine) Apply(c entry.Change) error {
	e.runs = append(e.runs, e.sends)
	if !e.held {
		e.free++
	}
	return e.memEngine.Apply(c)
}

// TestReplayHolds: a replay holds the changes of the lines waiting in its
// buffer, or in the file or pipe it reads, and sends them when it would
// wait for input; nothing stays held once the replay is over, whether it
// ends cleanly or at a failure.
func TestReplayHolds(t *testing.T) {
	// More than the replay's buffer: the rest is pending in the file.
	big := filepath.Join(t.TempDir(), "big.rtm")
	if err := os.WriteFile(big, []byte(replayScript(0, 1<<16)), 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(big); fi.Size() <= readBufSize {
		t.Fatalf("the big script is %d bytes, not more than the buffer", fi.Size())
	}
	for _, tc := range []struct {
		name, script, file string
		fails              bool
	}{
		{"clean", replayScript(0, 100), "", false},
		{"failure", replayScript(0, 50) + "C,02:00:00:00:00:01,10.9.9.9\n" + replayScript(50, 60), "", true},
		{"file beyond the buffer", "", big, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &batchEngine{memEngine: newMemEngine()}
			in := NewInterp(e, io.Discard, Options{Stderr: io.Discard})
			var r io.Reader = strings.NewReader(tc.script)
			if tc.file != "" {
				f, err := os.Open(tc.file)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				r = f
			}
			err := in.RunReader("lab.rtm", r)
			if (err != nil) != tc.fails {
				t.Fatalf("replay: %v", err)
			}
			if e.held || e.sends == 0 || e.runs[len(e.runs)-1] == e.sends {
				t.Errorf("after the replay: held %v, %d sends, the last change after %d", e.held, e.sends, e.runs[len(e.runs)-1])
			}
			// The whole script is waiting at once: every change ran held,
			// and no send came before the last.
			if e.free != 0 || e.runs[len(e.runs)-1] != 0 {
				t.Errorf("%d changes not held; %d sends before the last change", e.free, e.runs[len(e.runs)-1])
			}
		})
	}
	// A command other than a change sends what is held before it runs:
	// it may wait (on an output nobody reads, a sync), and the held
	// changes, every client's too, would wait with it. A comment does not.
	e := &batchEngine{memEngine: newMemEngine()}
	in := NewInterp(e, io.Discard, Options{Stderr: io.Discard})
	if err := in.RunReader("lab.rtm", strings.NewReader(replayScript(0, 10)+"show routes\n"+replayScript(10, 20))); err != nil {
		t.Fatal(err)
	}
	// replayScript(0, 10) makes 11 changes, a route among them.
	if e.free != 0 || e.runs[10] != 0 || e.runs[11] != 1 {
		t.Errorf("%d changes not held; sends before the change before the show %d, after it %d; want 0 and 1", e.free, e.runs[10], e.runs[11])
	}
}

// groupEngine is a batchEngine that is a Grouper: it records the length
// of every run it is given, and whether each ran held.
type groupEngine struct {
	*batchEngine
	lengths []int
}

func (e *groupEngine) ApplyAll(cs []*entry.Change) (int, error) {
	e.lengths = append(e.lengths, len(cs))
	for i, c := range cs {
		if err := e.batchEngine.Apply(*c); err != nil {
			return i, err
		}
	}
	return len(cs), nil
}

// TestReplayGroups: a replay into a Grouper gives it the runs of change
// lines waiting in its buffer, and the result is the one line-by-line
// gives: the same output, the same error (failed lines named with their
// line numbers, the count of failures), the same tables, every change
// held but the last; with and without --keep-going, failures at the
// start, middle and end of a run, and runs cut by other lines.
func TestReplayGroups(t *testing.T) {
	script := replayScript(0, 40) +
		"C,02:00:00:00:00:03,10.9.9.9\n" + // exists: a failure inside a run
		replayScript(40, 60) +
		"show macs\n" + // a run ends at another line
		"C,10.200.0.0/16,192.168.1.1,eth0\nD,10.201.0.0/16\nC,10.202.0.0/16,192.168.1.1,eth0\n" + // the delete fails mid-run
		"lookup 02:00:00:00:00:07\n" +
		"C,10.203.0.0/16,192.168.1.1,eth0\nC,nonsense\n" + // a parse error ends a run
		replayScript(60, 70) +
		"D,02:00:00:00:00:99\n" // the last line fails
	for _, tc := range []struct {
		name, script string
		keepGoing    bool
	}{
		{"failures", script, false},
		{"failures keep-going", script, true},
		{"one run to the end", replayScript(0, 3), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := func(e Tables) (string, error) {
				var out strings.Builder
				in := NewInterp(e, &out, Options{Stderr: io.Discard, KeepGoing: tc.keepGoing})
				err := in.RunReader("lab.rtm", strings.NewReader(tc.script))
				return out.String(), err
			}
			one := &batchEngine{memEngine: newMemEngine()}
			wantOut, wantErr := run(one)
			g := &groupEngine{batchEngine: &batchEngine{memEngine: newMemEngine()}}
			gotOut, gotErr := run(g)
			if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
				t.Errorf("error in runs: %v\nline by line: %v", gotErr, wantErr)
			}
			if gotOut != wantOut {
				t.Errorf("output in runs:\n%s\nline by line:\n%s", gotOut, wantOut)
			}
			if g.dump() != one.dump() {
				t.Errorf("tables in runs:\n%s\nline by line:\n%s", g.dump(), one.dump())
			}
			if g.held || one.held || g.free != one.free {
				t.Errorf("held at the end: %v / %v; changes not held: %d, line by line %d", g.held, one.held, g.free, one.free)
			}
			long := 0
			for _, n := range g.lengths {
				if n > replayAhead {
					t.Errorf("a run of %d changes, more than the %d lines parsed ahead", n, replayAhead)
				}
				long = max(long, n)
			}
			if long < 2 {
				t.Errorf("runs of %v: no change lines went together", g.lengths)
			}
		})
	}
}

// endlessLine is a line that never ends: n bytes of 'a', then the rest.
type endlessLine struct {
	n    int
	rest io.Reader
}

func (r *endlessLine) Read(p []byte) (int, error) {
	if r.n == 0 {
		return r.rest.Read(p)
	}
	k := min(len(p), r.n)
	for i := range k {
		p[i] = 'a'
	}
	r.n -= k
	return k, nil
}

// TestReplayLineTooLong: a line longer than the read buffer is refused at
// its place and read past without being kept (a stream of 64 MiB grows
// the heap by less than the buffer), and the lines after it run; one
// that is a comment or white space, a byte-order mark first or not, is
// blank however long.
func TestReplayLineTooLong(t *testing.T) {
	e := newMemEngine()
	in := NewInterp(e, io.Discard, Options{Stderr: io.Discard, KeepGoing: true})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	err := in.RunReader("long.rtm", &endlessLine{n: 64 << 20, rest: strings.NewReader("\nC,02:00:00:00:00:01,10.9.9.9\n")})
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "long.rtm: 1 of 2 lines failed") {
		t.Errorf("error %v, want one of two lines failed", err)
	}
	if len(e.macs) != 1 {
		t.Errorf("%d MACs after the long line, want 1", len(e.macs))
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4*readBufSize {
		t.Errorf("reading past a 64 MiB line allocated %d bytes", grew)
	}
	in = NewInterp(newMemEngine(), io.Discard, Options{Stderr: io.Discard})
	err = in.RunReader("long.rtm", &endlessLine{n: 2 * readBufSize, rest: strings.NewReader("\n")})
	if err == nil || !strings.Contains(err.Error(), "long.rtm:1: a line of 1048576 bytes or more") {
		t.Errorf("error %v, want long.rtm:1 named", err)
	}
	for _, blank := range []string{"\ufeff# " + strings.Repeat("c", 3<<20), strings.Repeat(" ", 3<<20), "  #" + strings.Repeat("#", 2<<20)} {
		e := newMemEngine()
		in = NewInterp(e, io.Discard, Options{Stderr: io.Discard})
		if err := in.RunReader("blank.rtm", strings.NewReader(blank+"\nC,02:00:00:00:00:01,10.9.9.9\n")); err != nil || len(e.macs) != 1 {
			t.Errorf("a blank line of %d bytes: %v, %d MACs", len(blank), err, len(e.macs))
		}
	}
	// Spaces, then a command: not blank.
	in = NewInterp(newMemEngine(), io.Discard, Options{Stderr: io.Discard})
	if err := in.RunReader("long.rtm", strings.NewReader(strings.Repeat(" ", 2<<20)+"flush\n")); err == nil {
		t.Error("a command after 2 MiB of spaces ran")
	}
}

// slowPipe is a pipe whose reader is slow: a write of n bytes takes n/8 KiB ms, as
// when the reader of a long answer is busy.
type slowPipe struct{ n atomic.Int64 }

func (w *slowPipe) Write(p []byte) (int, error) {
	time.Sleep(time.Duration(len(p)>>13) * time.Millisecond)
	w.n.Add(int64(len(p)))
	return len(p), nil
}

// TestQuiesceWaitsForAMovingAnswer: an ending (a signal) waits for the
// answer in progress as long as its reader takes it, however long that
// is, and only timeout past the last write: show macs of 50,000 takes
// its slow reader about 190 ms, against a timeout of 60 ms.
func TestQuiesceWaitsForAMovingAnswer(t *testing.T) {
	e := newMemEngine()
	for i := range 50_000 {
		e.macs[entry.MACFromUint64(uint64(0x020000000000+i))] = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
	}
	w := &slowPipe{}
	in := NewInterp(e, w, Options{Stderr: io.Discard})
	done := make(chan error, 1)
	go func() { done <- in.RunReader("lab.rtm", strings.NewReader("show macs\n")) }()
	for w.n.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if !in.Quiesce(60 * time.Millisecond) {
		t.Fatalf("Quiesce gave up with %d bytes of show macs written", w.n.Load())
	}
	// Quiesce returned with the whole answer written, and holds the
	// stream from running on, as for a process about to exit: here the
	// test lets it go, or its next read (the input's end) would wait for
	// good, as it did once in CI, when Quiesce took the lock between
	// the stream's last line and that read.
	n := w.n.Load()
	in.busy.Unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n < int64(50_000*len("02:00:00:00:00:00 10.0.0.0\n")) {
		t.Fatalf("%d bytes of show macs written when Quiesce returned", n)
	}
}
