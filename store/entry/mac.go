package entry

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// MAC is a 48-bit Ethernet address. It is a comparable value type, like
// netip.Addr, so it can key maps and travel in records without allocation.
type MAC [6]byte

// ParseMAC accepts the three spellings network engineers type:
// aa:bb:cc:dd:ee:ff, AA-BB-CC-DD-EE-FF and aabb.ccdd.eeff (Cisco dotted).
func ParseMAC(s string) (MAC, error) {
	m, ok := parseMAC(s)
	if !ok {
		return MAC{}, fmt.Errorf("%w %s: want 6 bytes as aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff", ErrBadMAC, QuoteInput(s))
	}
	return m, nil
}

// ParseMACBytes is ParseMAC for a byte slice; it does not allocate on success.
func ParseMACBytes(b []byte) (MAC, error) {
	m, ok := parseMAC(b)
	if !ok {
		return MAC{}, fmt.Errorf("%w %s: want 6 bytes as aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff", ErrBadMAC, QuoteInput(b))
	}
	return m, nil
}

// ErrBadMAC is wrapped by every MAC parse error.
var ErrBadMAC = errors.New("malformed MAC address")

func parseMAC[T string | []byte](s T) (m MAC, ok bool) {
	// Each digit's value comes from hexValue; bad gathers the high bits
	// of them all, so one test at the end finds any non-hex digit.
	var bad byte
	switch len(s) {
	case 17: // aa:bb:cc:dd:ee:ff or aa-bb-cc-dd-ee-ff
		sep := s[2]
		if sep != ':' && sep != '-' || s[5] != sep || s[8] != sep || s[11] != sep || s[14] != sep {
			return m, false
		}
		for i := range 6 {
			hi, lo := hexValue[s[3*i]], hexValue[s[3*i+1]]
			bad |= hi | lo
			m[i] = hi<<4 | lo
		}
	case 14: // aabb.ccdd.eeff
		if s[4] != '.' || s[9] != '.' {
			return m, false
		}
		for i := range 6 {
			off := 5*(i/2) + 2*(i%2)
			hi, lo := hexValue[s[off]], hexValue[s[off+1]]
			bad |= hi | lo
			m[i] = hi<<4 | lo
		}
	default:
		return m, false
	}
	if bad&0xf0 != 0 {
		return MAC{}, false
	}
	return m, true
}

// hexValue maps a hex digit, either case, to its value, and every other
// byte to 0xff.
var hexValue = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i, c := range "0123456789abcdef" {
		t[c] = byte(i)
	}
	for i, c := range "ABCDEF" {
		t[c] = byte(10 + i)
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// AppendTo appends the canonical form (lowercase, colons) to b.
func (m MAC) AppendTo(b []byte) []byte {
	for i, x := range m {
		if i > 0 {
			b = append(b, ':')
		}
		b = append(b, hexDigits[x>>4], hexDigits[x&0xf])
	}
	return b
}

// String returns the canonical form: lowercase hex with colons.
func (m MAC) String() string {
	var buf [17]byte
	return string(m.AppendTo(buf[:0]))
}

// MarshalText implements encoding.TextMarshaler (used by the JSON forms).
func (m MAC) MarshalText() ([]byte, error) { return m.AppendTo(make([]byte, 0, 17)), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (m *MAC) UnmarshalText(b []byte) error {
	v, err := ParseMACBytes(b)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Uint64 packs the MAC into the low 48 bits of a word, the form the shared
// table stores it in.
func (m MAC) Uint64() uint64 {
	// Two loads and two byte swaps, not six loads and five shifts.
	return uint64(binary.BigEndian.Uint32(m[:4]))<<16 | uint64(binary.BigEndian.Uint16(m[4:]))
}

// Compare returns -1, 0 or +1 as m sorts before, with or after o: by
// value, which is the order show macs prints.
func (m MAC) Compare(o MAC) int { return cmp.Compare(m.Uint64(), o.Uint64()) }

// SortMACs sorts ms in Compare's order. It sorts their words (Uint64)
// by radix, not the MACs through Compare: a table's worth (a watcher's
// first snapshot, show macs) in a fraction of the time, at 16 bytes a
// MAC for the while.
func SortMACs(ms []MAC) {
	ws := make([]uint64, len(ms))
	for i := range ms {
		ws[i] = ms[i].Uint64()
	}
	sortWords48(ws)
	for i, w := range ws {
		ms[i] = MACFromUint64(w)
	}
}

// sortWords48 sorts words of 48 bits or fewer (from 1,024 words on, the
// bits above are not looked at: a MAC's word has none): a least-significant-digit
// radix sort, four passes of 12 bits (4,096 counters, which stay in the
// first-level cache; 8, 11 and 16 bits were no faster), or slices.Sort
// for a few.
func sortWords48(ws []uint64) {
	const bits, passes = 12, 4
	if len(ws) < 1024 {
		slices.Sort(ws)
		return
	}
	src, dst := ws, make([]uint64, len(ws))
	var count [1 << bits]int
	for p := range passes {
		shift := p * bits
		clear(count[:])
		for _, w := range src {
			count[w>>shift&(1<<bits-1)]++
		}
		sum := 0
		for i, c := range count {
			count[i], sum = sum, sum+c
		}
		for _, w := range src {
			d := w >> shift & (1<<bits - 1)
			dst[count[d]] = w
			count[d]++
		}
		src, dst = dst, src
	}
	// An even number of passes ends in ws.
}

// MACFromUint64 is the inverse of Uint64; the high 16 bits are ignored.
func MACFromUint64(v uint64) MAC {
	return MAC{byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

// MACEntry is one entry of the MAC table: a MAC and its address.
type MACEntry struct {
	MAC MAC
	IP  netip.Addr
}
