package proto

import (
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"rtm/store"
)

// TestMACSetModel checks the set against a map under random adds and
// deletes over a small key space, so probe chains collide and wrap.
func TestMACSetModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	s := newMACSet(0)
	model := map[store.MAC]bool{}
	for i := range 200_000 {
		m := store.MACFromUint64(rng.Uint64N(3000) * 0x10001)
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
		probe := store.MACFromUint64(rng.Uint64N(3000) * 0x10001)
		if s.Has(probe) != model[probe] {
			t.Fatalf("step %d: Has(%s) = %v, want %v", i, probe, s.Has(probe), model[probe])
		}
	}
	var got []store.MAC
	for m := range s.All() {
		got = append(got, m)
	}
	if len(got) != len(model) || slices.ContainsFunc(got, func(m store.MAC) bool { return !model[m] }) {
		t.Fatalf("All yields %d keys, want the %d of the model", len(got), len(model))
	}
	// The all-zero MAC is a valid key.
	s.Add(store.MAC{})
	if !s.Has(store.MAC{}) {
		t.Fatal("zero MAC not found after Add")
	}
}

// TestMACSetLarge grows a set past the size that gets its own mapping
// (slotmem.go) and checks every key through the moves, then frees it.
func TestMACSetLarge(t *testing.T) {
	s := newMACSet(0)
	const n = 3 * hugeSlots / 4
	for i := range n {
		s.Add(store.MACFromUint64(uint64(i) * 0x9e37))
	}
	if s.mem.mapped == nil {
		t.Logf("no mapping for %d slots: the set is on Go's heap", len(s.slots))
	}
	if s.Len() != n {
		t.Fatalf("len %d, want %d", s.Len(), n)
	}
	for i := range n {
		if !s.Has(store.MACFromUint64(uint64(i) * 0x9e37)) {
			t.Fatalf("key %d lost", i)
		}
	}
	if s.Has(store.MACFromUint64(uint64(n) * 0x9e37)) {
		t.Fatal("a key never added is found")
	}
	s.free()
	if s.Len() != 0 || s.slots != nil {
		t.Fatal("a freed set still holds keys")
	}
}

// TestAllocSlots: mapped slots are zeroed, writable, and aligned to a
// huge page; small ones come from Go's heap.
func TestAllocSlots(t *testing.T) {
	m := allocSlots(2 * hugeSlots)
	defer m.free()
	if len(m.slots) != 2*hugeSlots {
		t.Fatalf("%d slots", len(m.slots))
	}
	if m.mapped != nil && uintptr(unsafe.Pointer(&m.slots[0]))%hugePage != 0 {
		t.Errorf("mapping at %p is not aligned to %d bytes", &m.slots[0], hugePage)
	}
	for i := range m.slots {
		if m.slots[i] != 0 {
			t.Fatalf("slot %d is %#x, want 0", i, m.slots[i])
		}
		m.slots[i] = uint64(i)
	}
	if small := allocSlots(hugeSlots - 1); small.mapped != nil {
		t.Error("a small set has a mapping of its own")
	}
}
