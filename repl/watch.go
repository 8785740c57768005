package repl

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"rtm/store/entry"
)

// Watcher prints the changes a client applies (rtm client --watch) as
// lines of the command language, so that what it prints replays: piped
// into another server, it keeps that server's tables equal to these. What
// is not a change is a comment: the sequence number (and the time) after
// each line, the summary of a snapshot. With Full the first snapshot is
// printed whole, as the creates that rebuild it in an empty server. After
// a resync (a fresh snapshot) it prints what changed meanwhile, as
// changes. It is a subscriber of the client (proto.Subscriber).
//
// A MAC travels without its address: the client reads it from the store
// once the batch is applied. An entry deleted again before that has no
// address to print; its create is a comment, and so is its delete.
//
// To tell changes from resyncs it keeps the tables as it has printed
// them: memory in proportion to the tables, for as long as it watches.
type Watcher struct {
	w      io.Writer
	opts   WatchOptions
	routes map[netip.Prefix]entry.Route
	macs   map[entry.MAC]keptIP
	buf    []byte
	ends   []lineEnd // of the lines in buf
	loaded bool

	gone chan struct{} // closed when the output is gone
	once sync.Once
	// failed is the write error that closed gone, and failedAt the first
	// change not written; read once gone is closed.
	failed   error
	failedAt uint64
	// writing is the first sequence number of the write to the output
	// in progress, plus one; 0 between writes. A write whose reader does
	// not read waits for good, and with it the client's receive loop.
	writing atomic.Uint64
	// first is how far the first snapshot is (firstNone, firstBegun:
	// being printed, firstWritten), or firstStopped: the watch ended
	// before it was written (Stop), and nothing more is written. A
	// watcher past its first snapshot is never stopped.
	first atomic.Int32
	begun atomic.Bool // the first snapshot was begun
}

// The states of a watcher's first snapshot.
const (
	firstNone int32 = iota
	firstBegun
	firstWritten
	firstStopped
)

// lineEnd is where a printed line ends in the buffer, and the sequence
// number of the change it is of.
type lineEnd struct {
	at  int
	seq uint64
}

// atomicWrite is the most a write to a pipe may hold to be written whole
// or not at all (PIPE_BUF on Linux). The output is written in runs of
// whole lines of at most this: a watcher ended while its reader lags
// (SIGTERM, closeWatching) leaves only whole lines in the pipe, never
// the first half of one, which a mirror's server would take for a line
// of its own (`C,10.7.81.0/24,-,eth1` of `…,eth12`).
const atomicWrite = 4096

// WatchOptions say how a Watcher prints.
type WatchOptions struct {
	JSON  bool // one JSON object per line instead of commands
	Times bool // each line says when its change arrived
	Full  bool // the first snapshot whole, as creates, not summed up
}

// NewWatcher returns a Watcher printing to w.
func NewWatcher(w io.Writer, o WatchOptions) *Watcher {
	return &Watcher{w: w, opts: o, routes: map[netip.Prefix]entry.Route{}, macs: map[entry.MAC]keptIP{},
		gone: make(chan struct{})}
}

// Gone is closed once the output has gone away (the reader of a pipe
// went away): the watch is over.
func (w *Watcher) Gone() <-chan struct{} { return w.gone }

// Failed is the error of the write that ended the watch, if one did (a
// reader gone, a full disk), and the sequence number of the first change
// not written. Call it once Gone is closed.
func (w *Watcher) Failed() (seq uint64, err error) { return w.failedAt, w.failed }

// Stuck reports whether a write to the output has not returned, and the
// sequence number of the first change it holds: the changes from that
// one on were not written (to a pipe, a run of lines is written whole
// or not at all).
func (w *Watcher) Stuck() (seq uint64, stuck bool) {
	p := w.writing.Load()
	return p - 1, p != 0
}

// Snapshot prints a snapshot: the first summed up (or whole, with Full),
// a later one (a resync) as the changes it made.
func (w *Watcher) Snapshot(seq uint64, routes []entry.Route, macs []entry.MACEntry) {
	w.buf, w.ends = w.buf[:0], w.ends[:0]
	now := time.Now()
	if w.loaded {
		w.resync(seq, now, routes, macs)
		w.write()
		return
	}
	if !w.first.CompareAndSwap(firstNone, firstBegun) {
		return // stopped
	}
	w.begun.Store(true)
	w.load(seq, now, routes, macs)
	w.write()
	w.first.CompareAndSwap(firstBegun, firstWritten)
}

// Stop ends a watch whose first snapshot is not written yet, for a
// process that ends without waiting for the client's receive loop (a
// signal while the first snapshot of a large table is built): no run of
// lines is written after it but one already begun, which Stuck reports.
// Once that snapshot is written it stops nothing and reports false;
// else it reports whether some of the snapshot may have been written.
func (w *Watcher) Stop() (stopped, begun bool) {
	for {
		switch f := w.first.Load(); f {
		case firstWritten:
			return false, true
		case firstStopped:
			return true, w.begun.Load()
		default:
			if w.first.CompareAndSwap(f, firstStopped) {
				return true, f == firstBegun
			}
		}
	}
}

// Changes prints a batch of live changes, in runs of whole lines.
func (w *Watcher) Changes(first uint64, cs []entry.Change) {
	w.buf, w.ends = w.buf[:0], w.ends[:0]
	now := time.Now()
	for i := range cs {
		w.change(cs[i], first+uint64(i), now, "")
	}
	w.write()
}

// endLine ends the line being printed, of change seq.
func (w *Watcher) endLine(seq uint64) {
	w.buf = append(w.buf, '\n')
	w.ends = append(w.ends, lineEnd{at: len(w.buf), seq: seq})
}

// write writes what was printed, in runs of whole lines of at most
// atomicWrite bytes (a longer line alone).
func (w *Watcher) write() {
	from := 0
	for i := 0; i < len(w.ends); {
		j := i + 1
		for j < len(w.ends) && w.ends[j].at-from <= atomicWrite {
			j++
		}
		to := w.ends[j-1].at
		w.writing.Store(w.ends[i].seq + 1)
		if w.first.Load() == firstStopped {
			w.writing.Store(0)
			return
		}
		_, err := w.w.Write(w.buf[from:to])
		w.writing.Store(0)
		if err != nil {
			w.once.Do(func() {
				w.failed, w.failedAt = err, w.ends[i].seq
				close(w.gone)
			})
			return
		}
		from, i = to, j
	}
}

// change prints c, and keeps the tables as printed; why says what a
// change that replays is part of ("resync"), if not a live change.
func (w *Watcher) change(c entry.Change, seq uint64, now time.Time, why string) {
	switch {
	case c.Op == entry.Flush:
		if c.Table&entry.Routes != 0 {
			clear(w.routes)
		}
		if c.Table&entry.MACs != 0 {
			clear(w.macs)
		}
	case c.Table == entry.Routes && c.Op == entry.Delete:
		delete(w.routes, c.Route.Prefix)
	case c.Table == entry.Routes:
		w.routes[c.Route.Prefix] = c.Route
	case c.Op == entry.Delete:
		if _, had := w.macs[c.MAC]; !had {
			w.line(c, seq, now, "its create could not be printed")
			return
		}
		delete(w.macs, c.MAC)
	default:
		if !c.IP.IsValid() {
			// Gone before its address could be read: a delete follows.
			w.line(c, seq, now, "deleted again before its address could be read")
			return
		}
		if _, had := w.macs[c.MAC]; !had {
			c.Op = entry.Create // its create was a comment
		}
		w.macs[c.MAC] = keepIP(c.IP)
	}
	w.line(c, seq, now, why)
}

// load takes the first snapshot: summed up in a comment, or printed whole.
func (w *Watcher) load(seq uint64, now time.Time, routes []entry.Route, macs []entry.MACEntry) {
	w.loaded = true
	w.note(seq, now, "snapshot", fmt.Sprintf("%d routes, %d MACs", len(routes), len(macs)),
		map[string]any{"routes": len(routes), "macs": len(macs)})
	if w.opts.Full {
		// Written as it is printed, in runs of whole lines: the first
		// lines go out at once, and the text of a large table is never
		// held whole (2 M MACs: some 100 MB).
		for i := range routes {
			w.line(entry.RouteChange(entry.Create, routes[i]), seq, now, "snapshot")
			if !w.writeSome() {
				return
			}
		}
		for i := range macs {
			w.line(entry.MACChange(entry.Create, macs[i].MAC, macs[i].IP), seq, now, "snapshot")
			if !w.writeSome() {
				return
			}
		}
	}
	// The tables as printed, to tell later changes from resyncs; the
	// first snapshot is the whole of them, so they are made to its size.
	w.routes = make(map[netip.Prefix]entry.Route, len(routes))
	w.macs = make(map[entry.MAC]keptIP, len(macs))
	for _, r := range routes {
		w.routes[r.Prefix] = r
	}
	for _, m := range macs {
		w.macs[m.MAC] = keepIP(m.IP)
	}
}

// keptIP is a MAC's address as a Watcher keeps it: with no pointer in
// it (netip.Addr holds one, for a zone, which a store's address never
// has), so that a table of millions costs the collector nothing to scan,
// and in 17 bytes, not 24.
type keptIP struct {
	a   [16]byte
	is6 bool
}

// keepIP is ip as a Watcher keeps it: two addresses are equal as kept
// if they are equal as netip.Addr, zones aside.
func keepIP(ip netip.Addr) keptIP { return keptIP{a: ip.As16(), is6: ip.Is6()} }

// writeRun is how much printed text a long print (a first snapshot with
// Full) holds before it writes it, in runs of whole lines.
const writeRun = 64 << 10

// writeSome writes what was printed once writeRun of it waits, and
// reports whether the watch goes on: not once its output is gone or
// the watcher was stopped.
func (w *Watcher) writeSome() bool {
	if len(w.buf) >= writeRun {
		w.write()
		w.buf, w.ends = w.buf[:0], w.ends[:0]
	}
	select {
	case <-w.gone:
		return false
	default:
		return w.first.Load() != firstStopped
	}
}

// resync prints what a later snapshot changed, routes first, as changes.
func (w *Watcher) resync(seq uint64, now time.Time, routes []entry.Route, macs []entry.MACEntry) {
	var diff []entry.Change
	seenRoutes := make(map[netip.Prefix]bool, len(routes))
	for _, r := range routes {
		seenRoutes[r.Prefix] = true
		switch old, ok := w.routes[r.Prefix]; {
		case !ok:
			diff = append(diff, entry.RouteChange(entry.Create, r))
		case old != r:
			diff = append(diff, entry.RouteChange(entry.Update, r))
		}
	}
	for p := range w.routes {
		if !seenRoutes[p] {
			diff = append(diff, entry.RouteChange(entry.Delete, entry.Route{Prefix: p}))
		}
	}
	seenMACs := make(map[entry.MAC]bool, len(macs))
	for _, m := range macs {
		seenMACs[m.MAC] = true
		switch old, ok := w.macs[m.MAC]; {
		case !ok:
			diff = append(diff, entry.MACChange(entry.Create, m.MAC, m.IP))
		case old != keepIP(m.IP):
			diff = append(diff, entry.MACChange(entry.Update, m.MAC, m.IP))
		}
	}
	for m := range w.macs {
		if !seenMACs[m] {
			diff = append(diff, entry.MACChange(entry.Delete, m, netip.Addr{}))
		}
	}
	slices.SortStableFunc(diff, func(a, b entry.Change) int { return int(a.Table) - int(b.Table) })
	var n [entry.Flush + 1]int
	for _, c := range diff {
		n[c.Op]++
	}
	w.note(seq, now, "resync", fmt.Sprintf("%d added, %d changed, %d removed", n[entry.Create], n[entry.Update], n[entry.Delete]),
		map[string]any{"added": n[entry.Create], "changed": n[entry.Update], "removed": n[entry.Delete]})
	for _, c := range diff {
		w.change(c, seq, now, "resync")
	}
}

// line prints one change: the command and a comment with its sequence
// number, or a JSON object. A change that cannot be replayed (why is not
// empty and not "resync" or "snapshot") is a comment as a whole.
func (w *Watcher) line(c entry.Change, seq uint64, now time.Time, why string) {
	if w.opts.JSON {
		w.jsonLine(c, seq, now, why)
		return
	}
	replays := why == "" || why == "resync" || why == "snapshot"
	if !replays {
		w.buf = append(w.buf, "# "...)
	}
	w.buf = appendChange(w.buf, c)
	w.buf = strconv.AppendUint(append(w.buf, "  # seq "...), seq, 10)
	if w.opts.Times {
		w.buf = now.UTC().AppendFormat(append(w.buf, ' '), time.RFC3339Nano)
	}
	if why != "" {
		w.buf = append(append(w.buf, ": "...), why...)
	}
	w.endLine(seq)
}

// appendChange appends the change, without an address it lacks.
func appendChange(b []byte, c entry.Change) []byte {
	if c.Table == entry.MACs && c.Op != entry.Delete && c.Op != entry.Flush && !c.IP.IsValid() {
		return c.MAC.AppendTo(append(b, c.Op.Letter(), ','))
	}
	return c.AppendTo(b)
}

// note prints a line that is not a change: a comment, or a JSON object.
func (w *Watcher) note(seq uint64, now time.Time, event, text string, fields map[string]any) {
	if w.opts.JSON {
		obj := map[string]any{"seq": seq, "event": event}
		if w.opts.Times {
			obj["time"] = now.UTC().Format(time.RFC3339Nano)
		}
		for k, v := range fields {
			obj[k] = v
		}
		b, _ := json.Marshal(obj)
		w.buf = append(w.buf, b...)
		w.endLine(seq)
		return
	}
	w.buf = fmt.Appendf(w.buf, "# %s: %s (seq %d", event, text, seq)
	if w.opts.Times {
		w.buf = now.UTC().AppendFormat(append(w.buf, ' '), time.RFC3339Nano)
	}
	w.buf = append(w.buf, ')')
	w.endLine(seq)
}

// watchJSON is one change as --watch --json prints it.
type watchJSON struct {
	Seq      uint64 `json:"seq"`
	Time     string `json:"time,omitempty"`
	Op       string `json:"op"`              // create, update, delete, flush
	Table    string `json:"table,omitempty"` // routes, macs; empty for a flush of both
	Dst      string `json:"dst,omitempty"`
	Gateway  string `json:"gateway,omitempty"`
	Dev      string `json:"dev,omitempty"`
	MAC      string `json:"mac,omitempty"`
	IP       string `json:"ip,omitempty"`
	Change   string `json:"change"` // the command that makes it
	Resync   bool   `json:"resync,omitempty"`
	Snapshot bool   `json:"snapshot,omitempty"`
	Gone     bool   `json:"gone,omitempty"` // a MAC whose address could not be read
}

func (w *Watcher) jsonLine(c entry.Change, seq uint64, now time.Time, why string) {
	j := watchJSON{Seq: seq, Op: c.Op.String(), Change: string(appendChange(nil, c)),
		Resync: why == "resync", Snapshot: why == "snapshot", Gone: why != "" && why != "resync" && why != "snapshot"}
	switch c.Table {
	case entry.Routes:
		j.Table = "routes"
	case entry.MACs:
		j.Table = "macs"
	}
	if w.opts.Times {
		j.Time = now.UTC().Format(time.RFC3339Nano)
	}
	switch {
	case c.Op == entry.Flush:
	case c.Table == entry.Routes:
		j.Dst, j.Dev = c.Route.Prefix.String(), c.Route.Dev
		if c.Op != entry.Delete && !c.Route.Connected() {
			j.Gateway = c.Route.Gateway.String()
		}
	default:
		j.MAC = c.MAC.String()
		if c.IP.IsValid() {
			j.IP = c.IP.String()
		}
	}
	b, _ := json.Marshal(j)
	w.buf = append(w.buf, b...)
	w.endLine(seq)
}
