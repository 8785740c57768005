package entry

import (
	"net/netip"
	"strconv"
)

// Op is what a Change does to its key.
type Op uint8

// The ops. Create fails on a key that exists, Update and Delete on one
// that does not; Replace creates or updates, like `ip route replace`.
// Flush deletes every entry of the tables a Change names.
const (
	Create Op = iota + 1
	Update
	Delete
	Replace
	Flush
)

var opNames = [...]string{Create: "create", Update: "update", Delete: "delete", Replace: "replace", Flush: "flush"}

// String returns the op's name in the words errors use: "create".
func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Letter is the op's letter in the command language (C, U, D, R), and 0
// for Flush.
func (o Op) Letter() byte { return "\x00CUDR\x00"[min(int(o), 5)] }

// Table says which table a Change is about. A Flush may name both.
type Table uint8

const (
	Routes Table = 1 << iota
	MACs
	Both = Routes | MACs
)

// Change is one change to one table. Which fields count depends on Table
// and Op:
//
//	Routes: Route (Create, Update, Replace); Route.Prefix alone (Delete)
//	MACs:   MAC and IP (Create, Update, Replace); MAC alone (Delete)
//	Flush:  Table alone (Routes, MACs or Both)
//
// A MAC change received by a client carries only the key on the wire; the
// client fills IP in from the shared store, and leaves it invalid when
// the entry was gone again by then.
type Change struct {
	Op    Op
	Table Table
	Route Route
	MAC   MAC
	IP    netip.Addr
}

// RouteChange returns the change op to route r.
func RouteChange(op Op, r Route) Change { return Change{Op: op, Table: Routes, Route: r} }

// MACChange returns the change op to MAC m with address ip.
func MACChange(op Op, m MAC, ip netip.Addr) Change {
	return Change{Op: op, Table: MACs, MAC: m, IP: ip}
}

// FlushOf returns the flush of table t.
func FlushOf(t Table) Change { return Change{Op: Flush, Table: t} }

// Key returns the changed key in canonical form ("10.1.1.0/24",
// "00:1a:2b:3c:4d:5e"), or "" for a flush.
func (c Change) Key() string {
	switch {
	case c.Op == Flush:
		return ""
	case c.Table == MACs:
		return c.MAC.String()
	}
	return c.Route.Prefix.String()
}

// Check validates the fields the change uses, as the tables would.
func (c Change) Check() error { return c.check(Route.Check, CheckHostIP) }

// CheckStored is Check with the rules of Route.CheckStored and CheckIP:
// what a change that a store may hold passes (the wire decoder's
// contract, as a server may send a route or a MAC an earlier rtm
// accepted).
func (c Change) CheckStored() error { return c.check(Route.CheckStored, CheckIP) }

func (c Change) check(route func(Route) error, ip func(netip.Addr) error) error {
	switch {
	case c.Op == Flush:
		return nil
	case c.Table == MACs && c.Op != Delete:
		return ip(c.IP)
	case c.Table == MACs:
		return nil
	case c.Op == Delete:
		return CheckPrefix(c.Route.Prefix)
	}
	return route(c.Route)
}

// AppendTo appends the change as the command language writes it:
// "C,10.1.1.0/24,192.168.1.1,eth0", "D,00:1a:2b:3c:4d:5e", "flush macs".
func (c Change) AppendTo(b []byte) []byte {
	if c.Op == Flush {
		b = append(b, "flush"...)
		switch c.Table {
		case Routes:
			b = append(b, " routes"...)
		case MACs:
			b = append(b, " macs"...)
		}
		return b
	}
	b = append(b, c.Op.Letter(), ',')
	if c.Table == MACs {
		b = c.MAC.AppendTo(b)
		if c.Op != Delete {
			b = c.IP.AppendTo(append(b, ','))
		}
		return b
	}
	b = c.Route.Prefix.AppendTo(b)
	if c.Op != Delete {
		b = append(b, ',')
		if c.Route.Connected() {
			b = append(b, '-')
		} else {
			b = c.Route.Gateway.AppendTo(b)
		}
		b = append(append(b, ','), c.Route.Dev...)
	}
	return b
}

// String returns AppendTo's form.
func (c Change) String() string { return string(c.AppendTo(nil)) }
