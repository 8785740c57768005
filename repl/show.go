package repl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"rtm/proto"
	"rtm/store"
	"rtm/store/entry"
)

// show prints a table: the human form follows iproute2 (one entry per
// line, key first, greppable), the JSON form is one array on one line.
func (in *Interp) show(cmd *Command) error {
	switch cmd.Table {
	case TableRoutes:
		return in.showRoutes(cmd)
	case TableMACs:
		return in.showMACs(cmd)
	case TableClients:
		return in.showClients(cmd)
	case TableStats:
		return in.showStats(cmd.Local, cmd.JSON)
	case TableInfo:
		return in.showInfo(cmd.JSON)
	}
	return fmt.Errorf("show: no table %d", cmd.Table)
}

func (in *Interp) showRoutes(cmd *Command) error {
	js, n := cmd.JSON, 0
	if js && !cmd.Count {
		in.buf = append(in.buf, '[')
	}
	for _, r := range in.engine.Routes() {
		if cmd.Filter != nil && !cmd.Filter.MatchRoute(r) {
			continue
		}
		n++
		switch {
		case cmd.Count:
			continue
		case js:
			if n > 1 {
				in.buf = append(in.buf, ',')
			}
			in.buf = appendRouteJSON(in.buf, r)
		default:
			in.buf = append(appendRouteForm(in.buf, r), '\n')
		}
		if err := in.emit(); err != nil {
			return err
		}
	}
	return in.endShow(cmd, n)
}

// endShow closes a listing: its JSON array, or the count it asked for.
func (in *Interp) endShow(cmd *Command, n int) error {
	switch {
	case cmd.Count && cmd.JSON:
		in.buf = fmt.Appendf(in.buf, `{"count":%d}`+"\n", n)
	case cmd.Count:
		in.buf = fmt.Appendf(in.buf, "%d\n", n)
	case cmd.JSON:
		in.buf = append(in.buf, "]\n"...)
	}
	return nil
}

// showMACs reads each address as it prints: a MAC deleted between the
// listing and the read is gone, and is left out.
func (in *Interp) showMACs(cmd *Command) error {
	js, n := cmd.JSON, 0
	if js && !cmd.Count {
		in.buf = append(in.buf, '[')
	}
	for _, m := range in.engine.MACs() {
		if cmd.Filter != nil && !cmd.Filter.MatchMAC(m) {
			continue
		}
		ip, err := in.engine.LookupMAC(m)
		if errors.Is(err, entry.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("show macs: %w", err)
		}
		n++
		switch {
		case cmd.Count:
			continue
		case js:
			if n > 1 {
				in.buf = append(in.buf, ',')
			}
			in.buf = appendMACJSON(in.buf, m, ip)
		default:
			in.buf = appendMACLine(in.buf, m, ip)
		}
		if err := in.emit(); err != nil {
			return err
		}
	}
	return in.endShow(cmd, n)
}

// dump prints both tables as lines that replay them: the routes first
// (a MAC's address may need its route when the tables are installed into
// a kernel), then the MACs, each a create.
func (in *Interp) dump() error {
	for _, r := range in.engine.Routes() {
		in.buf = append(entry.RouteChange(entry.Create, r).AppendTo(in.buf), '\n')
		if err := in.emit(); err != nil {
			return err
		}
	}
	for _, m := range in.engine.MACs() {
		ip, err := in.engine.LookupMAC(m)
		if errors.Is(err, entry.ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return fmt.Errorf("dump: %w", err)
		}
		in.buf = append(entry.MACChange(entry.Create, m, ip).AppendTo(in.buf), '\n')
		if err := in.emit(); err != nil {
			return err
		}
	}
	return nil
}

// askEngine asks a question of the engine, which a client sends to the
// server: Ctrl-C, or the prompt quitting, ends the wait for the answer.
func askEngine[T any](in *Interp, ask func(context.Context) (T, error)) (T, error) {
	ctx, done := in.stop.wait(replyTimeout)
	defer done()
	v, err := ask(ctx)
	if err != nil && in.stop.stopped() {
		return v, in.stop.err()
	}
	return v, err
}

// showClients prints one client per line, name first:
//
//	client-4242 id 3 pid 4242 uid 1000 state live acked 57 lag 0 changes 2 writes yes up 3m2s
func (in *Interp) showClients(cmd *Command) error {
	clients, err := askEngine(in, in.engine.Clients)
	if err != nil {
		return fmt.Errorf("show clients: %w", err)
	}
	if cmd.Count {
		return in.endShow(cmd, len(clients))
	}
	if cmd.JSON {
		if clients == nil {
			clients = []proto.ClientInfo{}
		}
		b, err := json.Marshal(clients)
		if err != nil {
			return fmt.Errorf("show clients: %w", err)
		}
		in.buf = append(append(in.buf, b...), '\n')
		return nil
	}
	now := time.Now()
	names := map[string]int{}
	for _, c := range clients {
		in.buf = fmt.Appendf(in.buf, "%s id %d pid %d uid %d state %s acked %d lag %d changes %d writes %s up %s\n",
			clientWord(c.Name), c.ID, c.PID, c.UID, c.State, c.Acked, c.Lag, c.Changes, yesNo(c.Writes), now.Sub(c.Connected).Round(time.Second))
		names[c.Name]++
	}
	// Names are chosen by the clients (--client-name): say when one is
	// worn twice, so that a reader tells them apart by id.
	var twice []string
	for n, k := range names {
		if k > 1 {
			twice = append(twice, fmt.Sprintf("%s (%d clients)", clientWord(n), k))
		}
	}
	if len(twice) > 0 {
		slices.Sort(twice)
		in.buf = fmt.Appendf(in.buf, "# names worn by more than one client: %s; their ids tell them apart\n", strings.Join(twice, ", "))
	}
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// showInfo describes the server and its store, one "name value" per
// line; a client asks the server.
func (in *Interp) showInfo(js bool) error {
	info, err := askEngine(in, in.engine.Info)
	if err != nil {
		return fmt.Errorf("show info: %w", err)
	}
	if js {
		b, err := json.Marshal(info)
		if err != nil {
			return fmt.Errorf("show info: %w", err)
		}
		in.buf = append(append(in.buf, b...), '\n')
		return nil
	}
	fill := func(n, capacity int) string {
		return fmt.Sprintf("%d of %d (%d%%)", n, capacity, (n*100+capacity-1)/max(capacity, 1))
	}
	rows := [][2]string{
		{"instance", info.Name},
		{"pid", strconv.Itoa(info.PID)},
		{"version", fmt.Sprintf("%s (protocol %d)", info.Version, info.Protocol)},
		{"uptime", time.Since(info.Started).Round(time.Second).String()},
		{"socket", info.Socket},
		{"store", fmt.Sprintf("%s (%s, %d bytes, generation %s)", info.Store, info.StoreState, info.StoreBytes, store.HexGeneration(info.Generation))},
		{"routes", fill(info.Routes, info.RouteCapacity)},
		{"macs", fill(info.MACs, info.MACCapacity)},
		{"changes", strconv.FormatUint(info.Changes, 10)},
		{"log", fmt.Sprintf("%d bytes (a client further behind gets a fresh snapshot)", info.LogBytes)},
		{"clients", strconv.Itoa(info.Clients)},
	}
	if k := info.KernelImport; k != nil {
		how := "imports table %d of network namespace %s (--from-kernel)"
		if k.Source == "fpm" {
			how = "takes table %d of network namespace %s from its zebra (--from-fpm)"
		}
		ns := strconv.FormatUint(k.NetNS, 10)
		if k.NetNSName != "" {
			ns = k.NetNSName + ", " + ns
		}
		rows = append(rows, [2]string{"kernel", fmt.Sprintf(how, k.Table, ns)})
	}
	if f := info.FPM; f != nil {
		rows = append(rows, [2]string{"zebra", describeZebra(*f)})
	}
	for _, r := range rows {
		in.buf = fmt.Appendf(in.buf, "%-9s %s\n", r[0], r[1])
	}
	return nil
}

// describeZebra says whether a zebra is connected to a --from-fpm
// server, since when, whether its table has all come, and how many of a
// kept store's routes wait for it.
func describeZebra(f proto.FPMState) string {
	ago := func() string { return time.Since(f.Since).Round(time.Second).String() + " ago" }
	tail := fmt.Sprintf(" (--from-fpm on %s)", f.Listen)
	if f.Held > 0 {
		// A restart on a kept store: its routes serve until zebra's table
		// is in, and those zebra did not send go then.
		tail = fmt.Sprintf("; the store's %d routes stay until its table is in, and those it does not send go then%s", f.Held, tail)
	}
	switch {
	case f.Zebra != "" && f.Replaying:
		return fmt.Sprintf("connected from %s %s, sending its table%s", f.Zebra, ago(), tail)
	case f.Zebra != "":
		return fmt.Sprintf("connected from %s %s%s", f.Zebra, ago(), tail)
	case !f.Since.IsZero():
		return fmt.Sprintf("not connected: the last left %s; its routes stay until a zebra replays%s", ago(), tail)
	}
	return "not connected yet" + tail
}

// showStats prints "name value" lines with the values aligned; the JSON
// form is one object, so a script reads a counter as .name. A client asks
// the server for its counters, and shows its own when local.
func (in *Interp) showStats(local, js bool) error {
	stats := in.engine.Stats()
	if in.fw != nil && !local {
		var err error
		if stats, err = askEngine(in, in.fw.remote.ServerStats); err != nil {
			return fmt.Errorf("show stats: %w", err)
		}
	}
	if js {
		in.buf = append(in.buf, '{')
		for i, s := range stats {
			if i > 0 {
				in.buf = append(in.buf, ',')
			}
			in.buf = appendJSONString(in.buf, s.Name)
			in.buf = append(in.buf, ':')
			in.buf = strconv.AppendUint(in.buf, s.Value, 10)
		}
		in.buf = append(in.buf, "}\n"...)
		return nil
	}
	width := 0
	for _, s := range stats {
		width = max(width, len(s.Name))
	}
	for _, s := range stats {
		in.buf = append(in.buf, s.Name...)
		for range width - len(s.Name) + 1 {
			in.buf = append(in.buf, ' ')
		}
		in.buf = append(strconv.AppendUint(in.buf, s.Value, 10), '\n')
	}
	return nil
}

// appendMACLine appends `00:1a:2b:3c:4d:5e 10.1.1.7`, the key first.
func appendMACLine(b []byte, m entry.MAC, ip netip.Addr) []byte {
	b = m.AppendTo(b)
	b = append(b, ' ')
	return append(ip.AppendTo(b), '\n')
}

// appendMACJSON appends {"mac":"...","ip":"..."}.
func appendMACJSON(b []byte, m entry.MAC, ip netip.Addr) []byte {
	b = append(b, `{"mac":"`...)
	b = m.AppendTo(b)
	b = append(b, `","ip":"`...)
	b = ip.AppendTo(b)
	return append(b, `"}`...)
}

// appendRouteJSON appends the object `ip -json route` uses:
// {"dst":"...","gateway":"...","dev":"..."}, without the gateway for a
// connected route.
func appendRouteJSON(b []byte, r entry.Route) []byte {
	b = append(b, `{"dst":"`...)
	b = r.Prefix.AppendTo(b)
	if !r.Connected() {
		b = append(b, `","gateway":"`...)
		b = r.Gateway.AppendTo(b)
	}
	b = append(b, `","dev":`...)
	b = appendJSONString(b, r.Dev)
	return append(b, '}')
}

// appendJSONString quotes s for JSON. Interface names may hold any byte
// but '/', ':' and white space, so the rare odd one goes through
// encoding/json.
func appendJSONString(b []byte, s string) []byte {
	plain := utf8.ValidString(s)
	for i := 0; plain && i < len(s); i++ {
		c := s[i]
		plain = c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' && c < 0x7f
	}
	if plain {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// clientWord is a client's name as the first word of its line in show
// clients: quoted when it holds a space (--client-name 'a b') or starts
// with a quote, so that the line reads one way.
func clientWord(name string) string {
	if strings.ContainsRune(name, ' ') || strings.HasPrefix(name, `"`) {
		return strconv.Quote(name)
	}
	return name
}

// CountersLine is the counters stats as one log line, name=value: what
// SIGUSR2 logs, for a process whose input takes no commands (a client on
// </dev/null, a server in the background) to show them all the same.
func CountersLine(stats []proto.Stat) string {
	b := []byte("counters:")
	for _, s := range stats {
		b = append(b, ' ')
		b = append(b, s.Name...)
		b = append(b, '=')
		b = strconv.AppendUint(b, s.Value, 10)
	}
	return string(b)
}
