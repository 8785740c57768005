package repl

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"sync"
	"time"

	"rtm/proto"
	"rtm/store/entry"
)

// Watcher prints the changes a client sees (rtm client --watch) as lines
// of the command language, so that what it prints replays: piped into
// another server, it keeps that server's tables equal to these. What is
// not a change is a comment: the sequence number (and the time) after
// each line, the summary of a snapshot. After a resync (a fresh snapshot)
// it prints what changed meanwhile, as changes.
//
// A MAC travels without its address: the Watcher reads it from the store
// once the batch is applied. An entry deleted again before that has no
// address to print; its create is a comment, and so is its delete.
//
// To tell changes from resyncs it keeps the tables as it has printed
// them: memory in proportion to the tables, for as long as it watches.
type Watcher struct {
	t      Tables
	w      io.Writer
	opts   WatchOptions
	routes map[netip.Prefix]entry.Route
	macs   map[entry.MAC]netip.Addr
	buf    []byte
	loaded bool

	ready chan struct{} // closed by Attach
	gone  chan struct{} // closed when the output is gone
	once  sync.Once
}

// WatchOptions say how a Watcher prints.
type WatchOptions struct {
	JSON  bool // one JSON object per line instead of commands
	Times bool // each line says when its change arrived
}

// NewWatcher returns a Watcher printing to w. Its Handle is a client's
// ClientOptions.Watch; it prints once Attach has given it the client's
// tables (a session may see its first snapshot before Dial returns).
func NewWatcher(w io.Writer, o WatchOptions) *Watcher {
	return &Watcher{w: w, opts: o, routes: map[netip.Prefix]entry.Route{}, macs: map[entry.MAC]netip.Addr{},
		ready: make(chan struct{}), gone: make(chan struct{})}
}

// Attach gives the Watcher the tables of the client it watches.
func (w *Watcher) Attach(t Tables) {
	w.t = t
	close(w.ready)
}

// Handle prints what ev says, once attached. An output that is gone (the
// reader of a pipe went away) closes Gone.
func (w *Watcher) Handle(ev proto.WatchEvent) {
	<-w.ready
	if err := w.Event(ev); err != nil {
		w.once.Do(func() { close(w.gone) })
	}
}

// Gone is closed once the output has gone away: the watch is over.
func (w *Watcher) Gone() <-chan struct{} { return w.gone }

// Event prints what ev says, in one write; an error means the output is
// gone (the reader of a pipe went away).
func (w *Watcher) Event(ev proto.WatchEvent) error {
	now := time.Now()
	w.buf = w.buf[:0]
	if ev.Snapshot {
		w.snapshot(ev.Seq, now)
	}
	for i := range ev.Changes {
		w.change(&ev.Changes[i], now)
	}
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.w.Write(w.buf)
	return err
}

func (w *Watcher) change(c *proto.Change, now time.Time) {
	cmd := Command{Table: TableRoutes, Route: c.Route}
	switch c.Op {
	case proto.OpRouteCreate, proto.OpRouteUpdate:
		cmd.Kind = KindCreate
		if c.Op == proto.OpRouteUpdate {
			cmd.Kind = KindUpdate
		}
		w.routes[c.Route.Prefix] = c.Route
	case proto.OpRouteDelete:
		cmd.Kind = KindDelete
		delete(w.routes, c.Route.Prefix)
	case proto.OpMACCreate, proto.OpMACUpdate:
		cmd = Command{Kind: KindCreate, Table: TableMACs, MAC: c.MAC, IP: c.IP}
		if c.Op == proto.OpMACUpdate {
			cmd.Kind = KindUpdate
		}
		if !c.IP.IsValid() {
			// Gone before its address could be read: a delete follows.
			w.line(&cmd, c.Seq, now, "deleted again before its address could be read")
			return
		}
		if _, had := w.macs[c.MAC]; !had {
			cmd.Kind = KindCreate // its create was a comment
		}
		w.macs[c.MAC] = c.IP
	case proto.OpMACDelete:
		cmd = Command{Kind: KindDelete, Table: TableMACs, MAC: c.MAC}
		if _, had := w.macs[c.MAC]; !had {
			w.line(&cmd, c.Seq, now, "its create could not be printed")
			return
		}
		delete(w.macs, c.MAC)
	case proto.OpFlush:
		cmd = Command{Kind: KindFlush}
		switch c.Flush {
		case proto.FlushRoutes:
			cmd.Table = TableRoutes
			clear(w.routes)
		case proto.FlushMACs:
			cmd.Table = TableMACs
			clear(w.macs)
		default:
			clear(w.routes)
			clear(w.macs)
		}
	default:
		return
	}
	w.line(&cmd, c.Seq, now, "")
}

// snapshot takes the tables after a snapshot: the first is summed up, a
// later one (a resync) printed as the changes it made.
func (w *Watcher) snapshot(seq uint64, now time.Time) {
	routes := w.t.Routes()
	macs := w.t.MACs()
	if !w.loaded {
		w.loaded = true
		for _, r := range routes {
			w.routes[r.Prefix] = r
		}
		n := 0
		for _, m := range macs {
			if ip, err := w.t.LookupMAC(m); err == nil {
				w.macs[m] = ip
				n++
			}
		}
		w.note(seq, now, fmt.Sprintf("snapshot: %d routes, %d MACs", len(routes), n), map[string]any{"routes": len(routes), "macs": n})
		return
	}
	var diff []Command
	seen := make(map[netip.Prefix]bool, len(routes))
	for _, r := range routes {
		seen[r.Prefix] = true
		switch old, ok := w.routes[r.Prefix]; {
		case !ok:
			diff = append(diff, Command{Kind: KindCreate, Table: TableRoutes, Route: r})
		case old != r:
			diff = append(diff, Command{Kind: KindUpdate, Table: TableRoutes, Route: r})
		}
	}
	for p := range w.routes {
		if !seen[p] {
			diff = append(diff, Command{Kind: KindDelete, Table: TableRoutes, Route: entry.Route{Prefix: p}})
		}
	}
	now6 := make(map[entry.MAC]bool, len(macs))
	for _, m := range macs {
		ip, err := w.t.LookupMAC(m)
		if err != nil {
			continue
		}
		now6[m] = true
		switch old, ok := w.macs[m]; {
		case !ok:
			diff = append(diff, Command{Kind: KindCreate, Table: TableMACs, MAC: m, IP: ip})
		case old != ip:
			diff = append(diff, Command{Kind: KindUpdate, Table: TableMACs, MAC: m, IP: ip})
		}
	}
	for m := range w.macs {
		if !now6[m] {
			diff = append(diff, Command{Kind: KindDelete, Table: TableMACs, MAC: m})
		}
	}
	slices.SortStableFunc(diff, func(a, b Command) int { return int(a.Table) - int(b.Table) })
	added, changed, removed := 0, 0, 0
	for _, c := range diff {
		switch c.Kind {
		case KindCreate:
			added++
		case KindUpdate:
			changed++
		default:
			removed++
		}
	}
	w.note(seq, now, fmt.Sprintf("resync: %d added, %d changed, %d removed", added, changed, removed),
		map[string]any{"added": added, "changed": changed, "removed": removed})
	for i := range diff {
		c := &diff[i]
		switch {
		case c.Table == TableRoutes && c.Kind == KindDelete:
			delete(w.routes, c.Route.Prefix)
		case c.Table == TableRoutes:
			w.routes[c.Route.Prefix] = c.Route
		case c.Kind == KindDelete:
			delete(w.macs, c.MAC)
		default:
			w.macs[c.MAC] = c.IP
		}
		w.line(c, seq, now, "resync")
	}
}

// line prints one change: the command and a comment with its sequence
// number, or a JSON object. A change that cannot be replayed (why is not
// empty and not "resync") is a comment as a whole.
func (w *Watcher) line(c *Command, seq uint64, now time.Time, why string) {
	if w.opts.JSON {
		w.jsonLine(c, seq, now, why)
		return
	}
	if why != "" && why != "resync" {
		w.buf = append(w.buf, "# "...)
	}
	w.buf = appendChange(w.buf, c)
	w.buf = fmt.Appendf(w.buf, "  # seq %d", seq)
	if w.opts.Times {
		w.buf = now.UTC().AppendFormat(append(w.buf, ' '), time.RFC3339Nano)
	}
	if why != "" {
		w.buf = append(append(w.buf, ": "...), why...)
	}
	w.buf = append(w.buf, '\n')
}

// appendChange appends the command, without an address it lacks.
func appendChange(b []byte, c *Command) []byte {
	if c.Table == TableMACs && (c.Kind == KindCreate || c.Kind == KindUpdate) && !c.IP.IsValid() {
		return c.MAC.AppendTo(append(b, opLetters[c.Kind], ','))
	}
	return c.AppendTo(b)
}

// note prints a line that is not a change: a comment, or a JSON object.
func (w *Watcher) note(seq uint64, now time.Time, text string, fields map[string]any) {
	if w.opts.JSON {
		obj := map[string]any{"seq": seq}
		if w.opts.Times {
			obj["time"] = now.UTC().Format(time.RFC3339Nano)
		}
		for k, v := range fields {
			obj[k] = v
		}
		if _, ok := fields["routes"]; ok {
			obj["event"] = "snapshot"
		} else {
			obj["event"] = "resync"
		}
		b, _ := json.Marshal(obj)
		w.buf = append(append(w.buf, b...), '\n')
		return
	}
	w.buf = fmt.Appendf(w.buf, "# %s (seq %d", text, seq)
	if w.opts.Times {
		w.buf = now.UTC().AppendFormat(append(w.buf, ' '), time.RFC3339Nano)
	}
	w.buf = append(w.buf, ")\n"...)
}

// watchJSON is one change as --watch --json prints it.
type watchJSON struct {
	Seq     uint64 `json:"seq"`
	Time    string `json:"time,omitempty"`
	Op      string `json:"op"`              // create, update, delete, flush
	Table   string `json:"table,omitempty"` // routes, macs; empty for a flush of both
	Dst     string `json:"dst,omitempty"`
	Gateway string `json:"gateway,omitempty"`
	Dev     string `json:"dev,omitempty"`
	MAC     string `json:"mac,omitempty"`
	IP      string `json:"ip,omitempty"`
	Change  string `json:"change"` // the command that makes it
	Resync  bool   `json:"resync,omitempty"`
	Gone    bool   `json:"gone,omitempty"` // a MAC whose address could not be read
}

var watchOps = [...]string{KindCreate: "create", KindUpdate: "update", KindDelete: "delete", KindFlush: "flush"}

func (w *Watcher) jsonLine(c *Command, seq uint64, now time.Time, why string) {
	j := watchJSON{Seq: seq, Op: watchOps[c.Kind], Change: string(appendChange(nil, c)), Resync: why == "resync", Gone: why != "" && why != "resync"}
	if c.Kind != KindFlush || c.Table != TableNone {
		j.Table = c.Table.String()
	}
	if w.opts.Times {
		j.Time = now.UTC().Format(time.RFC3339Nano)
	}
	switch {
	case c.Kind == KindFlush:
	case c.Table == TableRoutes:
		j.Dst, j.Dev = c.Route.Prefix.String(), c.Route.Dev
		if c.Kind != KindDelete && !c.Route.Connected() {
			j.Gateway = c.Route.Gateway.String()
		}
	default:
		j.MAC = c.MAC.String()
		if c.IP.IsValid() {
			j.IP = c.IP.String()
		}
	}
	b, _ := json.Marshal(j)
	w.buf = append(append(w.buf, b...), '\n')
}
