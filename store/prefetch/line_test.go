package prefetch

import (
	"testing"
	"unsafe"
)

// TestLine: a prefetch returns and changes nothing, whatever it is
// pointed at, even nil: it is a hint.
func TestLine(t *testing.T) {
	b := make([]uint64, 1<<16)
	for i := range b {
		b[i] = uint64(i)
	}
	for i := 0; i < len(b); i += 8 {
		Line(unsafe.Pointer(&b[i]))
	}
	Line(nil)
	for i := range b {
		if b[i] != uint64(i) {
			t.Fatalf("word %d changed to %d", i, b[i])
		}
	}
}
