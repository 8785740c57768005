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

// TestTableSizes: a client's tables are made for half as many again as
// its snapshot holds, at least a few pages' worth, and grow for a stream
// to at least streamFloor, twice the entries past it; never past the
// store's capacity.
func TestTableSizes(t *testing.T) {
	for _, tc := range []struct {
		capacity int
		snapshot uint64
		want     int
	}{
		{11_250, 0, snapshotFloor},        // an empty store: a few pages
		{2_000, 0, 2_000},                 // never past the capacity
		{1_125_000, 100_000, 150_000},     // half as many again
		{1_125_000, 1_000_000, 1_125_000}, // never past the capacity
		{1_125_000, 1 << 63, 1_125_000},   // whatever the server says
	} {
		if got := snapshotSize(tc.capacity, tc.snapshot); got != tc.want {
			t.Errorf("snapshotSize(%d, %d) = %d, want %d", tc.capacity, tc.snapshot, got, tc.want)
		}
	}
	for _, tc := range []struct{ capacity, n, want int }{
		{11_250, 0, 11_250},             // the classic workload: all of a small store
		{1_125_000, 0, streamFloor},     // a large store, empty: the floor
		{1_125_000, 100_000, 200_000},   // twice the entries past it
		{1_125_000, 900_000, 1_125_000}, // never past the capacity
	} {
		if got := streamSize(tc.capacity, tc.n); got != tc.want {
			t.Errorf("streamSize(%d, %d) = %d, want %d", tc.capacity, tc.n, got, tc.want)
		}
	}
}

// TestMakeRoom: a client's tables grow ahead of a batch that could
// outgrow them, and only then; warming up grows them to a stream's room
// (but never past the capacity), and keeps every key.
func TestMakeRoom(t *testing.T) {
	newClient := func(macCap, routeCap int) *Client {
		tables := newSnapshotTables(macCap, routeCap, 0, 0)
		for i := range 1000 {
			tables.macs.Add(mac(i))
		}
		return &Client{macs: tables.macs, routes: tables.routes, room: tables.room}
	}
	check := func(c *Client, macs, routes int) {
		t.Helper()
		if c.room.macs != macs || c.room.routes != routes {
			t.Fatalf("room for %d MACs and %d routes, want %d and %d", c.room.macs, c.room.routes, macs, routes)
		}
		if len(c.macs.slots) != macSetSize(macs) {
			t.Fatalf("%d key slots for room of %d, want %d", len(c.macs.slots), macs, macSetSize(macs))
		}
		for i := range 1000 {
			if !c.macs.Has(mac(i)) {
				t.Fatalf("key %d lost when the set grew", i)
			}
		}
	}
	c := newClient(1<<20, 1<<20)
	check(c, snapshotFloor, snapshotFloor)
	c.makeRoom(snapshotFloor - 1000) // fits: nothing grows
	check(c, snapshotFloor, snapshotFloor)
	c.makeRoom(snapshotFloor) // could outgrow both
	check(c, streamFloor, streamFloor)
	c.makeRoom(streamFloor) // past the floor: twice what it could reach
	check(c, 2*(streamFloor+1000), 2*streamFloor)

	c = newClient(1<<20, 50_000)
	c.warmUp()
	check(c, streamFloor, 50_000)
	c.warmUp() // once warm, nothing grows
	check(c, streamFloor, 50_000)
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
