package store

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"testing"

	"rtm/store/entry"
)

// TestModel runs random creates, updates and deletes against a Go map
// and checks that the store agrees: every result, every key, the counts
// and the segment's invariants.
func TestModel(t *testing.T) {
	const capacity, universe = 2000, 3000
	ops := 200_000
	if testing.Short() {
		ops = 20_000
	}
	path := testPath(t)
	s := mustOpen(t, Options{Path: path, Capacity: capacity, RouteCapacity: 1})
	rd, err := OpenReader(path, os.Getuid())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	model := map[entry.MAC]netip.Addr{}
	rng := rand.New(rand.NewPCG(1, 2))
	// Keys cluster in a few MAC ranges, like real vendors' OUIs.
	key := func() entry.MAC {
		return entry.MACFromUint64(uint64(rng.IntN(3))<<40 | uint64(rng.IntN(universe/3)))
	}
	value := func() netip.Addr {
		if rng.IntN(2) == 0 {
			return v4(rng.IntN(1 << 24))
		}
		return v6(rng.Int())
	}
	for n := range ops {
		m := key()
		_, exists := model[m]
		var err error
		var want error
		switch op := rng.IntN(10); {
		case op < 4:
			ip := value()
			err = s.CreateMAC(m, ip)
			switch {
			case exists:
				want = entry.ErrExists
			case len(model) >= capacity:
				want = ErrFull
			default:
				model[m] = ip
			}
		case op < 7:
			ip := value()
			err = s.UpdateMAC(m, ip)
			if exists {
				model[m] = ip
			} else {
				want = entry.ErrNotFound
			}
		default:
			err = s.DeleteMAC(m)
			if exists {
				delete(model, m)
			} else {
				want = entry.ErrNotFound
			}
		}
		if !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Fatalf("op %d on %s: %v, want %v", n, m, err, want)
		}
		if n%20_000 == 0 {
			if err := s.Check(); err != nil {
				t.Fatalf("after op %d: %v", n, err)
			}
		}
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if s.MACCount() != len(model) || rd.Count() != len(model) {
		t.Fatalf("count %d (reader %d), model %d", s.MACCount(), rd.Count(), len(model))
	}
	for g := range 3 {
		for i := range universe / 3 {
			m := entry.MACFromUint64(uint64(g)<<40 | uint64(i))
			want, ok := model[m]
			got, found := s.LookupMAC(m)
			rgot, rerr := rd.Lookup(m)
			if found != ok || got != want || (rerr == nil) != ok || rgot != want {
				t.Fatalf("%s: store %v %v, reader %v %v, model %v %v", m, got, found, rgot, rerr, want, ok)
			}
		}
	}
	seen := 0
	s.RangeMACs(func(m entry.MAC, a netip.Addr) bool {
		if model[m] != a {
			t.Errorf("RangeMACs %s = %v, model %v", m, a, model[m])
		}
		seen++
		return true
	})
	if seen != len(model) {
		t.Errorf("RangeMACs saw %d, model %d", seen, len(model))
	}
	s.Close()
	s2 := mustOpen(t, Options{Path: path})
	if s2.MACCount() != len(model) {
		t.Fatalf("reopened count %d, model %d", s2.MACCount(), len(model))
	}
	for m, want := range model {
		if got, ok := s2.LookupMAC(m); !ok || got != want {
			t.Fatalf("reopened %s = %v %v, want %v", m, got, ok, want)
		}
	}
}
