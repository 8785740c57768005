package store

import "unsafe"

// The only place that turns segment bytes into shared words. Every field
// of these overlays is an atomic.Uint64 at an 8-byte aligned offset (the
// mapping is page aligned and every size below is a multiple of 8), so
// all access to shared memory goes through sync/atomic or, for the
// writer's stores on its hot paths, ordered.Store.

// headerAt overlays the header on the first headerSize bytes of b.
func headerAt(b []byte) *header {
	_ = b[headerSize-1]
	return (*header)(unsafe.Pointer(&b[0]))
}

// macSlotsAt overlays n MAC slots on b starting at off.
func macSlotsAt(b []byte, off, n int) []macSlot {
	_ = b[off+n*macSlotSize-1]
	return unsafe.Slice((*macSlot)(unsafe.Pointer(&b[off])), n)
}

// routeSlotsAt overlays n route slots on b starting at off.
func routeSlotsAt(b []byte, off, n int) []routeSlot {
	if n == 0 {
		return nil
	}
	_ = b[off+n*routeSlotSize-1]
	return unsafe.Slice((*routeSlot)(unsafe.Pointer(&b[off])), n)
}

// Compile-time checks that the overlays have the sizes the layout says.
var (
	_ [headerSize - unsafe.Sizeof(header{})]byte
	_ [unsafe.Sizeof(macSlot{}) - macSlotSize]byte
	_ [macSlotSize - unsafe.Sizeof(macSlot{})]byte
	_ [unsafe.Sizeof(routeSlot{}) - routeSlotSize]byte
	_ [routeSlotSize - unsafe.Sizeof(routeSlot{})]byte
	_ [unsafe.Offsetof(header{}.journal) - journalOffset]byte
	_ [journalOffset - unsafe.Offsetof(header{}.journal)]byte
)
