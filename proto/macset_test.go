package proto

import (
	"math/rand/v2"
	"slices"
	"testing"

	"rtm/store/entry"
)

// TestMACSetModel checks the set against a map under random adds and
// deletes over a small key space, so probe chains collide and wrap.
func TestMACSetModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := newMACSet(0)
	model := map[entry.MAC]bool{}
	for i := range 200_000 {
		m := entry.MACFromUint64(rng.Uint64N(3000) * 0x10001)
		if rng.IntN(3) == 0 {
			s.Delete(m)
			delete(model, m)
		} else {
			s.Add(m)
			model[m] = true
		}
		if i%20_000 == 0 {
			s.Clear()
			clear(model)
		}
		if s.Len() != len(model) {
			t.Fatalf("step %d: len %d, want %d", i, s.Len(), len(model))
		}
		probe := entry.MACFromUint64(rng.Uint64N(3000) * 0x10001)
		if s.Has(probe) != model[probe] {
			t.Fatalf("step %d: Has(%s) = %v, want %v", i, probe, s.Has(probe), model[probe])
		}
	}
	var got []entry.MAC
	for m := range s.All() {
		got = append(got, m)
	}
	if len(got) != len(model) || slices.ContainsFunc(got, func(m entry.MAC) bool { return !model[m] }) {
		t.Fatalf("All yields %d keys, want the %d of the model", len(got), len(model))
	}
	// The all-zero MAC is a valid key.
	s.Add(entry.MAC{})
	if !s.Has(entry.MAC{}) {
		t.Fatal("zero MAC not found after Add")
	}
}

// TestPresize: a client's tables are made for half as many again as the
// snapshot holds, never less than the floor (a stream into an empty
// table of a usual size never grows it), never more than the store's
// capacity (an idle client of a large store stays small).
func TestPresize(t *testing.T) {
	for _, tc := range []struct {
		capacity int
		snapshot uint64
		want     int
	}{
		{11_250, 0, 11_250},               // the classic workload: all of a small store
		{65_536, 10, 65_536},              // the default capacity
		{1_125_000, 0, presizeFloor},      // a large store, empty: the floor
		{1_125_000, 100_000, 150_000},     // half as many again
		{1_125_000, 1_000_000, 1_125_000}, // never past the capacity
		{1_125_000, 1 << 63, 1_125_000},   // whatever the server says
	} {
		if got := presize(tc.capacity, tc.snapshot); got != tc.want {
			t.Errorf("presize(%d, %d) = %d, want %d", tc.capacity, tc.snapshot, got, tc.want)
		}
	}
}

// TestMACSetSize: a set is the smallest power of two that holds its keys
// at 3/4 load, and a full one grows to twice its slots, not four times.
func TestMACSetSize(t *testing.T) {
	for _, tc := range []struct{ hint, want int }{{0, 16}, {12, 16}, {13, 32}, {96, 128}, {97, 256}, {786_432, 1 << 20}, {786_433, 1 << 21}, {1_500_000, 1 << 21}} {
		if got := macSetSize(tc.hint); got != tc.want {
			t.Errorf("macSetSize(%d) = %d, want %d", tc.hint, got, tc.want)
		}
	}
	s := newMACSet(96)
	for i := range 97 {
		s.Add(entry.MACFromUint64(uint64(i)))
	}
	if len(s.slots) != 256 {
		t.Errorf("a full set of 128 slots grew to %d", len(s.slots))
	}
}
