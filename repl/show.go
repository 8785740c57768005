package repl

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"

	"rtm/proto"
	"rtm/store"
)

// show prints a table: the human form follows iproute2 (one entry per
// line, key first, greppable), the JSON form is one array on one line.
func (in *Interp) show(cmd *Command) error {
	switch cmd.Table {
	case TableRoutes:
		return in.showRoutes(cmd.JSON)
	case TableMACs:
		return in.showMACs(cmd.JSON)
	case TableClients:
		return in.showClients(cmd.JSON)
	case TableStats:
		return in.showStats(cmd.JSON)
	}
	return fmt.Errorf("show: no table %d", cmd.Table)
}

func (in *Interp) showRoutes(js bool) error {
	routes := in.e.Routes()
	if js {
		in.buf = append(in.buf, '[')
	}
	for i, r := range routes {
		if js {
			if i > 0 {
				in.buf = append(in.buf, ',')
			}
			in.buf = appendRouteJSON(in.buf, r)
		} else {
			in.buf = append(r.AppendTo(in.buf), '\n')
		}
		if err := in.emit(); err != nil {
			return err
		}
	}
	if js {
		in.buf = append(in.buf, "]\n"...)
	}
	return nil
}

// showMACs reads each address as it prints: a MAC deleted between the
// listing and the read is gone, and is left out.
func (in *Interp) showMACs(js bool) error {
	macs := in.e.MACs()
	if js {
		in.buf = append(in.buf, '[')
	}
	n := 0
	for _, m := range macs {
		ip, err := in.e.LookupMAC(m)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("show macs: %w", err)
		}
		if js {
			if n > 0 {
				in.buf = append(in.buf, ',')
			}
			in.buf = appendMACJSON(in.buf, m, ip)
		} else {
			in.buf = appendMACLine(in.buf, m, ip)
		}
		n++
		if err := in.emit(); err != nil {
			return err
		}
	}
	if js {
		in.buf = append(in.buf, "]\n"...)
	}
	return nil
}

// dump prints both tables as lines that replay them: the routes first
// (a MAC's address may need its route when the tables are installed into
// a kernel), then the MACs, each a create.
func (in *Interp) dump() error {
	cmd := Command{Kind: KindCreate, Table: TableRoutes}
	for _, r := range in.e.Routes() {
		cmd.Route = r
		in.buf = append(cmd.AppendTo(in.buf), '\n')
		if err := in.emit(); err != nil {
			return err
		}
	}
	cmd.Table = TableMACs
	for _, m := range in.e.MACs() {
		ip, err := in.e.LookupMAC(m)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return fmt.Errorf("dump: %w", err)
		}
		cmd.MAC, cmd.IP = m, ip
		in.buf = append(cmd.AppendTo(in.buf), '\n')
		if err := in.emit(); err != nil {
			return err
		}
	}
	return nil
}

// showClients prints one client per line, name first:
//
//	client-4242 id 3 pid 4242 uid 1000 state live acked 57 lag 0 up 3m2s
func (in *Interp) showClients(js bool) error {
	clients := in.e.Clients()
	if js {
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
	for _, c := range clients {
		in.buf = fmt.Appendf(in.buf, "%s id %d pid %d uid %d state %s acked %d lag %d up %s\n",
			c.Name, c.ID, c.PID, c.UID, c.State, c.Acked, c.Lag, now.Sub(c.Connected).Round(time.Second))
	}
	return nil
}

// showStats prints "name value" lines with the values aligned; the JSON
// form is one object, so a script reads a counter as .name.
func (in *Interp) showStats(js bool) error {
	stats := in.e.Stats()
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
func appendMACLine(b []byte, m store.MAC, ip netip.Addr) []byte {
	b = m.AppendTo(b)
	b = append(b, ' ')
	return append(ip.AppendTo(b), '\n')
}

// appendMACJSON appends {"mac":"...","ip":"..."}.
func appendMACJSON(b []byte, m store.MAC, ip netip.Addr) []byte {
	b = append(b, `{"mac":"`...)
	b = m.AppendTo(b)
	b = append(b, `","ip":"`...)
	b = ip.AppendTo(b)
	return append(b, `"}`...)
}

// appendRouteJSON appends the object `ip -json route` uses:
// {"dst":"...","gateway":"...","dev":"..."}, without the gateway for a
// connected route.
func appendRouteJSON(b []byte, r store.Route) []byte {
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
