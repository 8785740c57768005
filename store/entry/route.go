package entry

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// IfNameMax is the longest interface name Linux accepts (IFNAMSIZ-1).
const IfNameMax = 15

// Route is one entry of the L3 table: traffic for Prefix goes via Gateway
// out of Dev. Prefix is always masked (no host bits). A route without a
// Gateway (the zero netip.Addr) is directly connected: its prefix is on
// the link of Dev, as `ip route` shows `192.0.2.0/24 dev eth0`. A Gateway
// has the same address family as Prefix.
type Route struct {
	Prefix  netip.Prefix `json:"dst"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
	Dev     string       `json:"dev"`
}

// Connected reports whether the route has no gateway.
func (r Route) Connected() bool { return !r.Gateway.IsValid() }

// String prints the route the way `ip route` does.
func (r Route) String() string { return string(r.AppendTo(nil)) }

// AppendTo appends the `ip route` form to b:
// "10.1.1.0/24 via 192.168.1.1 dev eth0", or "192.0.2.0/24 dev eth0".
func (r Route) AppendTo(b []byte) []byte {
	b = r.Prefix.AppendTo(b)
	if r.Gateway.IsValid() {
		b = append(b, " via "...)
		b = r.Gateway.AppendTo(b)
	}
	b = append(b, " dev "...)
	return append(b, r.Dev...)
}

// Validation errors, wrapped with the offending value by CheckPrefix,
// CheckIP, CheckIfName, CheckGateway and Route.Check.
var (
	ErrBadPrefix  = errors.New("bad prefix")
	ErrBadGateway = errors.New("bad gateway")
	ErrBadIfName  = errors.New("bad interface name")
	ErrBadIP      = errors.New("bad IP address")
)

// CheckPrefix reports why p cannot key a route: invalid, host bits set,
// or an IPv4-mapped IPv6 form that would alias an IPv4 route.
func CheckPrefix(p netip.Prefix) error {
	if a := p.Addr(); a.Is4() && p.IsValid() {
		// The commonest, checked without building the masked prefix: an
		// IPv4 address has no zone and is not mapped.
		if b := a.As4(); binary.BigEndian.Uint32(b[:])&^mask32(p.Bits()) == 0 {
			return nil
		}
	}
	switch {
	case !p.IsValid():
		return fmt.Errorf("%w: not a valid prefix", ErrBadPrefix)
	case p.Addr().Zone() != "":
		return fmt.Errorf("%w %s: zoned addresses are not routes", ErrBadPrefix, p)
	case p.Masked() != p:
		return fmt.Errorf("%w %s: host bits set (did you mean %s?)", ErrBadPrefix, p, p.Masked())
	case p.Addr().Is4In6():
		return fmt.Errorf("%w %s: IPv4-mapped IPv6; write the IPv4 prefix", ErrBadPrefix, p)
	}
	return nil
}

// CheckIP reports why a cannot be stored as a next hop or a MAC's address.
func CheckIP(a netip.Addr) error {
	switch {
	case a.Is4():
		return nil
	case !a.IsValid():
		return fmt.Errorf("%w: not a valid address", ErrBadIP)
	case a.Zone() != "":
		return fmt.Errorf("%w %s: zoned addresses are not allowed", ErrBadIP, a)
	case a.Is4In6():
		return fmt.Errorf("%w %s: IPv4-mapped IPv6; write the IPv4 address", ErrBadIP, a)
	}
	return nil
}

// CheckIfName applies the kernel's dev_valid_name rules: 1 to 15 bytes,
// not "." or "..", and no '/', ':' or white space, byte 0xa0 included
// (the kernel's isspace takes it for Latin-1's no-break space, so that a
// UTF-8 name with à or Р in it names no device); and rtm's own: no
// control characters, and no ',', which separates the fields of a line
// (a name with one would print lines no replay could read back).
func CheckIfName(name string) error {
	if err := checkStoredIfName(name); err != nil {
		return err
	}
	return checkInputIfName(name)
}

// checkInputIfName is the rules CheckIfName adds to checkStoredIfName,
// which an earlier rtm did not have.
func checkInputIfName(name string) error {
	if strings.IndexByte(name, ',') >= 0 {
		return fmt.Errorf("%w %q: rtm refuses ',' in interface names: it separates a line's fields", ErrBadIfName, name)
	}
	if strings.IndexByte(name, 0xa0) >= 0 {
		return fmt.Errorf("%w %q: Linux refuses byte 0xa0 in interface names, which it takes for white space (a no-break space; the second byte of à or Р in UTF-8)", ErrBadIfName, name)
	}
	return nil
}

// CheckStoredIfName is CheckIfName without the rules an earlier rtm did
// not have (',' and byte 0xa0): a store it left with such a name still
// opens, and its routes still reach the clients.
func CheckStoredIfName(name string) error { return checkStoredIfName(name) }

func checkStoredIfName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrBadIfName)
	}
	if len(name) > IfNameMax {
		if len(name) > quoteMax {
			// QuoteInput has said its length.
			return fmt.Errorf("%w %s: Linux allows at most %d bytes", ErrBadIfName, QuoteInput(name), IfNameMax)
		}
		return fmt.Errorf("%w %s: %d bytes, Linux allows at most %d", ErrBadIfName, QuoteInput(name), len(name), IfNameMax)
	}
	if name == "." || name == ".." {
		return fmt.Errorf("%w %q: reserved", ErrBadIfName, name)
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c == '/' || c == ':' || c == ' ' || c >= '\t' && c <= '\r':
			return fmt.Errorf("%w %q: Linux refuses %q in interface names", ErrBadIfName, name, c)
		case c < ' ' || c == 0x7f:
			// Linux takes them; a name that moves the cursor or rings
			// the bell when printed is refused all the same.
			return fmt.Errorf("%w %q: rtm refuses control characters (%q) in interface names", ErrBadIfName, name, c)
		}
	}
	return nil
}

// Check validates every field of r, as a change must pass it; a zero
// Gateway is a connected route.
func (r Route) Check() error { return r.check(true) }

// CheckStored is Check without CheckGateway and the rules of CheckIfName
// an earlier rtm did not have (',' and byte 0xa0): the rules a route it
// stored was held to, so that a store it left still opens.
func (r Route) CheckStored() error { return r.check(false) }

// check is Check, or CheckStored if not all: one function on one copy
// of the route, as every route a server creates passes through it.
func (r *Route) check(all bool) error {
	if err := CheckPrefix(r.Prefix); err != nil {
		return err
	}
	connected := !r.Gateway.IsValid()
	if !connected {
		if err := CheckIP(r.Gateway); err != nil {
			return fmt.Errorf("%w: %w", ErrBadGateway, err)
		}
		if r.Gateway.Is4() != r.Prefix.Addr().Is4() {
			return fmt.Errorf("%w %s: address family differs from prefix %s", ErrBadGateway, r.Gateway, r.Prefix)
		}
	}
	if err := checkStoredIfName(r.Dev); err != nil || !all {
		return err
	}
	if err := checkInputIfName(r.Dev); err != nil { // checkStoredIfName checked the rest of the name
		return err
	}
	if connected {
		return nil
	}
	return CheckGateway(r.Gateway)
}

// CheckGateway refuses a next hop that no kernel forwards through, which
// an installer could never install: the unspecified address (Linux takes
// "via 0.0.0.0" for a connected route, which rtm writes "-"), a
// multicast or loopback address, and 255.255.255.255.
func CheckGateway(gw netip.Addr) error {
	why := hostless(gw)
	switch {
	case why == "":
		return nil
	case gw.IsUnspecified():
		why += ": write - for a connected route"
	}
	return fmt.Errorf("%w %s: %s", ErrBadGateway, gw, why)
}

// CheckHostIP is CheckIP for a MAC entry's address, which names a host:
// not unspecified, multicast, loopback or IPv4's broadcast, which no
// neighbour has (the kernel import skips such neighbours). A store of an
// earlier rtm may hold one: it stays, and is refused only as input.
func CheckHostIP(ip netip.Addr) error {
	if err := CheckIP(ip); err != nil {
		return err
	}
	if why := hostless(ip); why != "" {
		return fmt.Errorf("%w %s: %s, which no host's MAC has", ErrBadIP, ip, why)
	}
	return nil
}

// hostless says why no host has the address a, or "" if one may.
func hostless(a netip.Addr) string {
	switch {
	case a.IsUnspecified():
		return "the unspecified address"
	case a.IsMulticast():
		return "a multicast address"
	case a.IsLoopback():
		return "a loopback address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return "the broadcast address"
	}
	return ""
}

// mask32 has the first n of 32 bits set (a shift by 32 gives 0 in Go).
func mask32(n int) uint32 { return ^uint32(0) << (32 - n) }
