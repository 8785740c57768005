package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"

	"rtm/store/entry"
)

// How entries are encoded in the words of their slots (the slots
// themselves are drawn in segment.go), and where a MAC's probe starts.
// The writer (Store) and the readers (Reader) share these: a reader
// decodes exactly what the writer encoded.

// MAC slot key word.
const (
	keyUsed  = 1 << 63 // set in every occupied slot, so the all-zero MAC is a valid key
	keyIPv6  = 1 << 62 // the value words hold an IPv6 address
	macMask  = 1<<48 - 1
	keyMatch = keyUsed | macMask // the bits that identify the MAC
)

func macKey(m entry.MAC) uint64 { return keyUsed | m.Uint64() }

// macKeyAt is macKey reading the MAC in place, without copying it.
func macKeyAt(m *entry.MAC) uint64 {
	return keyUsed | uint64(binary.BigEndian.Uint32(m[:4]))<<16 | uint64(binary.BigEndian.Uint16(m[4:]))
}

// macHome is the slot where the probe for key starts: a 64-bit mix of
// the MAC mapped onto [0, n) by multiplication (fastrange), so n need not
// be a power of two.
func macHome(key uint64, n int) int {
	k := key & macMask
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	hi, _ := bits.Mul64(k, uint64(n))
	return int(hi)
}

// encodeIP packs a into two words; the family goes into the key word.
func encodeIP(a netip.Addr) (fam, hi, lo uint64) {
	if a.Is4() {
		b := a.As4()
		return 0, 0, uint64(binary.BigEndian.Uint32(b[:]))
	}
	b := a.As16()
	return keyIPv6, binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

func decodeIP(key, hi, lo uint64) netip.Addr {
	if key&keyIPv6 == 0 {
		return decodeIPv4(lo)
	}
	return decodeIPv6(hi, lo)
}

// decodeIPv4 and decodeIPv6 are small enough to inline into the reader's
// hot path; decodeIP as a whole is not.
func decodeIPv4(lo uint64) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(lo)) // one byte swap, not four shifts
	return netip.AddrFrom4(b)
}

func decodeIPv6(hi, lo uint64) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], hi)
	binary.BigEndian.PutUint64(b[8:], lo)
	return netip.AddrFrom16(b)
}

// Route slot flags word.
const (
	routeUsed      = 1 << 63
	routeConnected = 1 << 9 // no gateway (layout version 2)
	routeIPv6      = 1 << 8
)

// encodeRoute packs a checked route into the seven words of a slot.
func encodeRoute(r *entry.Route) [7]uint64 {
	var w [7]uint64
	a := r.Prefix.Addr()
	w[0] = routeUsed | uint64(r.Prefix.Bits())
	if !a.Is4() {
		w[0] |= routeIPv6
	}
	_, w[1], w[2] = encodeIP(a)
	if r.Connected() {
		w[0] |= routeConnected
	} else {
		_, w[3], w[4] = encodeIP(r.Gateway)
	}
	w[5], w[6] = devWords(r.Dev)
	return w
}

// devWords packs an interface name of at most 16 bytes into two
// little-endian words, NUL padded, in registers: the name copied into a
// byte array and loaded from it as words stalled on store forwarding, an
// eighth of a route's create.
func devWords(dev string) (lo, hi uint64) {
	for i := min(len(dev), 16) - 1; i >= 8; i-- {
		hi = hi<<8 | uint64(dev[i])
	}
	for i := min(len(dev), 8) - 1; i >= 0; i-- {
		lo = lo<<8 | uint64(dev[i])
	}
	return lo, hi
}

var errBadRouteSlot = errors.New("bad route slot")

// decodeRoute is the inverse of encodeRoute; it rejects words that no
// checked route encodes to.
func decodeRoute(w [7]uint64) (entry.Route, error) {
	if w[0]&^(routeUsed|routeConnected|routeIPv6|0xff) != 0 {
		return entry.Route{}, fmt.Errorf("%w: flags %#x", errBadRouteSlot, w[0])
	}
	fam := uint64(0)
	if w[0]&routeIPv6 != 0 {
		fam = keyIPv6
	} else if w[1] != 0 || w[2]>>32 != 0 || w[3] != 0 || w[4]>>32 != 0 {
		return entry.Route{}, fmt.Errorf("%w: IPv4 route with IPv6 address bits", errBadRouteSlot)
	}
	a := decodeIP(fam, w[1], w[2])
	p, err := a.Prefix(int(w[0] & 0xff))
	if err != nil || p.Bits() != int(w[0]&0xff) {
		return entry.Route{}, fmt.Errorf("%w: prefix length %d", errBadRouteSlot, w[0]&0xff)
	}
	var dev [16]byte
	binary.LittleEndian.PutUint64(dev[:8], w[5])
	binary.LittleEndian.PutUint64(dev[8:], w[6])
	n := 0
	for n < len(dev) && dev[n] != 0 {
		n++
	}
	for _, c := range dev[n:] {
		if c != 0 {
			return entry.Route{}, fmt.Errorf("%w: interface name not NUL padded", errBadRouteSlot)
		}
	}
	r := entry.Route{Prefix: p, Dev: string(dev[:n])}
	if w[0]&routeConnected == 0 {
		r.Gateway = decodeIP(fam, w[3], w[4])
	} else if w[3] != 0 || w[4] != 0 {
		return entry.Route{}, fmt.Errorf("%w: connected route with gateway bits", errBadRouteSlot)
	}
	if p != netip.PrefixFrom(a, p.Bits()) {
		return entry.Route{}, fmt.Errorf("%w: prefix %s has host bits", errBadRouteSlot, netip.PrefixFrom(a, p.Bits()))
	}
	if err := r.CheckStored(); err != nil {
		return entry.Route{}, err
	}
	return r, nil
}
