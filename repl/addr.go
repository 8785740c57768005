package repl

import (
	"bytes"
	"fmt"
	"net/netip"
	"rtm/store/entry"
	"strings"
)

// parseIPv4 is the replay fast path: dotted-quad IPv4 straight from bytes,
// with netip's rules (four decimal fields, each 0-255, no leading zeros).
// Each field is one to three digits, read without a loop.
func parseIPv4(b []byte) (netip.Addr, bool) {
	a, n, ok := scanIPv4(b)
	return a, ok && n == len(b)
}

// scanIPv4 reads a dotted quad at the start of b and says how many bytes
// it took; what follows is the caller's to check.
func scanIPv4(b []byte) (netip.Addr, int, bool) {
	// The address is built in a register: four byte stores then a word
	// load of them stalled on store forwarding (a tenth of a MAC line's
	// parse).
	var a uint32
	i := 0
	for f := range 4 {
		if f > 0 {
			if i == len(b) || b[i] != '.' {
				return netip.Addr{}, 0, false
			}
			i++
		}
		if i == len(b) || b[i]-'0' > 9 {
			return netip.Addr{}, 0, false
		}
		v := uint32(b[i] - '0')
		i++
		if i < len(b) && b[i]-'0' <= 9 {
			if v == 0 {
				return netip.Addr{}, 0, false // leading zero: octal in some tools, so refused
			}
			v = v*10 + uint32(b[i]-'0')
			i++
			if i < len(b) && b[i]-'0' <= 9 {
				if v = v*10 + uint32(b[i]-'0'); v > 255 {
					return netip.Addr{}, 0, false
				}
				i++
			}
		}
		a = a<<8 | v
	}
	if i < len(b) && b[i]-'0' <= 9 {
		return netip.Addr{}, 0, false // a fourth digit
	}
	return netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), i, true
}

// parseAddr parses an IPv4 or IPv6 address. IPv4 takes the allocation-free
// path; IPv6, and every malformed input, goes through netip so the
// accepted language and the error details are netip's.
func parseAddr(b []byte) (netip.Addr, error) {
	if bytes.IndexByte(b, ':') < 0 {
		if a, ok := parseIPv4(b); ok {
			return a, nil
		}
	}
	a, err := netip.ParseAddr(string(b))
	if err != nil {
		return a, fmt.Errorf("%s: want an IPv4 or IPv6 address (%s)", entry.QuoteInput(b), netipReason(err))
	}
	return a, nil
}

// netipReason keeps the reason of a netip parse error and drops its echo of
// the input, which our messages quote already.
func netipReason(err error) string {
	msg := err.Error()
	if _, reason, ok := strings.Cut(msg, "): "); ok {
		return reason
	}
	return msg
}

// parsePrefix parses ADDR/BITS. It does not check host bits or zones: the
// caller applies entry.CheckPrefix so every path reports them alike.
func parsePrefix(b []byte) (netip.Prefix, error) {
	slash := bytes.IndexByte(b, '/')
	if slash < 0 && bytes.EqualFold(b, []byte("default")) {
		return netip.Prefix{}, fmt.Errorf("%s: write 0.0.0.0/0 or ::/0 here (only a change's key takes default)", entry.QuoteInput(b))
	}
	if slash < 0 {
		return netip.Prefix{}, fmt.Errorf("%s: no prefix length; want ADDRESS/LENGTH as in 10.1.1.0/24 or 2001:db8::/32", entry.QuoteInput(b))
	}
	a, err := parseAddr(b[:slash])
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("prefix %s: address %w", entry.QuoteInput(b), err)
	}
	if a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("prefix %s: zoned addresses are not routes", entry.QuoteInput(b))
	}
	bits, ok := parseBits(b[slash+1:])
	if !ok || bits > a.BitLen() {
		return netip.Prefix{}, fmt.Errorf("prefix %s: bad length %s; want 0 to %d for IPv%d", entry.QuoteInput(b), entry.QuoteInput(b[slash+1:]), a.BitLen(), family(a))
	}
	return netip.PrefixFrom(a, bits), nil
}

// parseBits accepts a decimal prefix length without leading zeros.
func parseBits(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 3 || (len(b) > 1 && b[0] == '0') {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func family(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}
