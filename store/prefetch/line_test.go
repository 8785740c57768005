package prefetch

import (
	"testing"
	"unsafe"
)

// TestLine: a prefetch returns and changes nothing, whatever it is
// pointed at, even nil: it is a hint; Lines likewise for many.
func TestLine(t *testing.T) {
	b := make([]uint64, 1<<16)
	for i := range b {
		b[i] = uint64(i)
	}
	for i := 0; i < len(b); i += 8 {
		Line(unsafe.Pointer(&b[i]))
	}
	Line(nil)
	// Lines reads its slice of addresses and nothing else: none, one,
	// many, nil among them, the slice itself left as it was.
	ps := make([]unsafe.Pointer, 0, 100)
	for i := 0; i < len(b); i += len(b) / 99 {
		ps = append(ps, unsafe.Pointer(&b[i]))
	}
	ps = append(ps, nil)
	kept := append([]unsafe.Pointer(nil), ps...)
	Lines(nil)
	Lines(ps[:1])
	Lines(ps)
	for i := range ps {
		if ps[i] != kept[i] {
			t.Fatalf("address %d changed", i)
		}
	}
	for i := range b {
		if b[i] != uint64(i) {
			t.Fatalf("word %d changed to %d", i, b[i])
		}
	}
}

// TestPages: faulting a table in changes none of its values.
func TestPages(t *testing.T) {
	b := make([]uint64, 3<<12+5)
	Pages(b)
	b[7] = 7
	Pages(b[:0])
	for i, v := range b {
		if v != 0 && i != 7 {
			t.Fatalf("word %d is %d", i, v)
		}
	}
}
