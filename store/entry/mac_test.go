package entry

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// parseMACReference is the MAC parser spelled out a byte at a time: what
// parseMAC must agree with.
func parseMACReference(s string) (m MAC, ok bool) {
	nibble := func(c byte) (byte, bool) {
		switch {
		case '0' <= c && c <= '9':
			return c - '0', true
		case 'a' <= c && c <= 'f':
			return c - 'a' + 10, true
		case 'A' <= c && c <= 'F':
			return c - 'A' + 10, true
		}
		return 0, false
	}
	var digits []byte
	switch len(s) {
	case 17:
		sep := s[2]
		if sep != ':' && sep != '-' {
			return MAC{}, false
		}
		for i := 0; i < 17; i++ {
			if i%3 == 2 {
				if s[i] != sep {
					return MAC{}, false
				}
				continue
			}
			digits = append(digits, s[i])
		}
	case 14:
		for i := 0; i < 14; i++ {
			if i == 4 || i == 9 {
				if s[i] != '.' {
					return MAC{}, false
				}
				continue
			}
			digits = append(digits, s[i])
		}
	default:
		return MAC{}, false
	}
	for i := range 6 {
		hi, ok1 := nibble(digits[2*i])
		lo, ok2 := nibble(digits[2*i+1])
		if !ok1 || !ok2 {
			return MAC{}, false
		}
		m[i] = hi<<4 | lo
	}
	return m, true
}

func TestParseMAC(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want MAC
		ok   bool
	}{
		{"00:1a:2b:3c:4d:5e", MAC{0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e}, true},
		{"00-1A-2B-3C-4D-5E", MAC{0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e}, true},
		{"001a.2B3c.4d5E", MAC{0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e}, true},
		{"ff:ff:ff:ff:ff:ff", MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, true},
		{"00:1a:2b:3c:4d-5e", MAC{}, false},
		{"00:1a:2b:3c:4d:5g", MAC{}, false},
		{"00:1a:2b:3c:4d:\x10e", MAC{}, false},
		{"0:1a:2b:3c:4d:5e", MAC{}, false},
		{"001a.2b3c:4d5e", MAC{}, false},
		{"", MAC{}, false},
	} {
		m, ok := parseMAC(tc.in)
		if m != tc.want || ok != tc.ok {
			t.Errorf("parseMAC(%q) = %v, %v; want %v, %v", tc.in, m, ok, tc.want, tc.ok)
		}
	}
	// Every byte in every position of both forms.
	for _, base := range []string{"0a:1b:2c:3d:4e:5f", "0a1b.2c3d.4e5f"} {
		for i := range len(base) {
			for c := range 256 {
				b := []byte(base)
				b[i] = byte(c)
				m, ok := parseMAC(b)
				wm, wok := parseMACReference(string(b))
				if m != wm || ok != wok {
					t.Fatalf("parseMAC(%q) = %v, %v; want %v, %v", b, m, ok, wm, wok)
				}
			}
		}
	}
}

func FuzzParseMAC(f *testing.F) {
	for _, s := range []string{"00:1a:2b:3c:4d:5e", "00-1A-2B-3C-4D-5E", "001a.2B3c.4d5E", "00:1a:2b:3c:4d-5e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, ok := parseMAC(s)
		wm, wok := parseMACReference(s)
		if m != wm || ok != wok {
			t.Fatalf("parseMAC(%q) = %v, %v; want %v, %v", s, m, ok, wm, wok)
		}
	})
}

func BenchmarkParseMAC(b *testing.B) {
	in := []byte("02:00:00:1a:2b:3c")
	for b.Loop() {
		if _, err := ParseMACBytes(in); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSortMACs: SortMACs puts MACs in Compare's order, duplicates and
// the extremes among them.
func TestSortMACs(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ms := []MAC{{}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, {0x02}, {0, 0, 0, 0, 0, 1}, {0x02}}
	for range 5000 {
		ms = append(ms, MACFromUint64(rng.Uint64()))
	}
	want := slices.Clone(ms)
	slices.SortFunc(want, MAC.Compare)
	SortMACs(ms)
	if !slices.Equal(ms, want) {
		t.Fatal("SortMACs does not give Compare's order")
	}
}

// BenchmarkSortMACs: a million random MACs sorted by SortMACs, and
// through Compare (sub-benchmarks), to weigh the two.
func BenchmarkSortMACs(b *testing.B) {
	rng := rand.New(rand.NewPCG(5, 6))
	ms := make([]MAC, 1_000_000)
	for i := range ms {
		ms[i] = MACFromUint64(rng.Uint64())
	}
	work := make([]MAC, len(ms))
	for _, bc := range []struct {
		name string
		sort func([]MAC)
	}{{"words", SortMACs}, {"compare", func(s []MAC) { slices.SortFunc(s, MAC.Compare) }}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				copy(work, ms)
				bc.sort(work)
			}
		})
	}
}
