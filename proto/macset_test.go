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
