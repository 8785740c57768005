package bench

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"rtm/store"
)

// The raw table of L4 must be the store's table without the store: the
// same slot count, and every key and value in the same slot. Compare
// the raw file with a store that was given the same MACs in the same
// order.
func TestRawTableMatchesStore(t *testing.T) {
	const keys = 5000
	dir := t.TempDir()
	st, err := store.Open(store.Options{Path: filepath.Join(dir, "store"), Capacity: headroom(keys), RouteCapacity: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		if err := st.CreateMAC(workloadMAC(i), workloadIP(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	slots := rawSlots(headroom(keys))
	raw := filepath.Join(dir, "raw")
	if err := createRawTable(raw, keys, slots); err != nil {
		t.Fatal(err)
	}
	sb, err := os.ReadFile(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	rb, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	// store/segment.go: a 4 KiB header, then the MAC slots, then routes
	// (64 bytes each).
	const header, slotSize = 4096, 32
	if want := header + slots*slotSize + 64; len(sb) != want {
		t.Fatalf("store is %d bytes; a store of %d slots would be %d: the raw slot count is not the store's", len(sb), slots, want)
	}
	if len(rb) != slots*slotSize {
		t.Fatalf("raw table is %d bytes, want %d", len(rb), slots*slotSize)
	}
	word := func(b []byte, slot, w int) uint64 { return binary.NativeEndian.Uint64(b[slot*slotSize+w*8:]) }
	used := 0
	for i := range slots {
		for w, name := range []string{"key", "hi", "lo"} {
			s, r := word(sb[header:], i, w+1), word(rb, i, w+1)
			if s != r {
				t.Fatalf("slot %d: %s word %#x in the store, %#x in the raw table", i, name, s, r)
			}
		}
		if word(rb, i, 1) != 0 {
			used++
			if seq := word(rb, i, 0); seq&1 != 0 {
				t.Fatalf("slot %d: odd sequence %d", i, seq)
			}
		}
	}
	if used != keys {
		t.Fatalf("%d slots in use, want %d", used, keys)
	}

	// L4 runs the raw loop over the store's own slots and over the copy:
	// every key is found in both, with the same values.
	r, err := openRawLookup(raw, filepath.Join(dir, "store"), keys)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	sameSum, misses := lookups(r.same, r.keys, 3*keys)
	if misses != 0 {
		t.Errorf("%d raw lookups missed in the store's slots", misses)
	}
	copySum, misses := lookups(r.copy, r.keys, 3*keys)
	if misses != 0 {
		t.Errorf("%d raw lookups missed in the copy", misses)
	}
	if sameSum != copySum || sameSum == 0 {
		t.Errorf("the values read sum to %#x in the store's slots and %#x in the copy", sameSum, copySum)
	}
	if _, err := openRawLookup(raw, raw, keys); err == nil {
		t.Error("the raw table opened as a store: no room for its slots after a header, and no error")
	}
}
