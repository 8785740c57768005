package proto

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A large MAC key set lives outside Go's heap, in an anonymous mapping
// that asks the kernel for transparent huge pages (MADV_HUGEPAGE; the
// machines rtm runs on allow them on request). Every change to a set of
// a million keys probes a random slot of its 16 MiB: with 4 KiB pages
// nearly every probe also misses the TLB and walks the page table, with
// 2 MiB pages the whole set is eight TLB entries. Where huge pages are
// not available, or the mapping fails, the set takes Go's heap as before.

const (
	hugePage = 2 << 20
	// hugeSlots is the smallest set that gets its own mapping.
	hugeSlots = hugePage / 8
)

// slotMem is the memory of one set's slots.
type slotMem struct {
	slots   []uint64
	mapped  []byte          // the mapping, nil if slots are on Go's heap
	cleanup runtime.Cleanup // unmaps a mapping nobody freed
}

// allocSlots returns n zeroed slots.
func allocSlots(n int) *slotMem {
	m := &slotMem{}
	if n >= hugeSlots {
		if b := mapHuge(n * 8); b != nil {
			m.mapped = b
			m.slots = unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), n)
			m.cleanup = runtime.AddCleanup(m, unmap, b)
			return m
		}
	}
	m.slots = make([]uint64, n)
	return m
}

// free returns a mapping at once; nothing may use m's slots after it.
// A set that is merely dropped is unmapped when the garbage collector
// finds it unreachable.
func (m *slotMem) free() {
	if m == nil || m.mapped == nil {
		return
	}
	m.cleanup.Stop()
	unmap(m.mapped)
	m.mapped, m.slots = nil, nil
}

// mapHuge maps size bytes (a multiple of 8) of zeroed memory aligned to
// a huge page and asks for huge pages; nil if the mapping fails.
func mapHuge(size int) []byte {
	// Map a huge page more, then trim both ends to the aligned middle.
	// MmapPtr and MunmapPtr, unlike Mmap, keep no registry of mappings,
	// so parts of one can be unmapped.
	raw, err := unix.MmapPtr(-1, 0, nil, uintptr(size+hugePage), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil
	}
	head := (hugePage - uintptr(raw)%hugePage) % hugePage
	if head > 0 {
		unix.MunmapPtr(raw, head)
	}
	start := unsafe.Add(raw, head)
	if tail := uintptr(hugePage) - head; tail > 0 {
		unix.MunmapPtr(unsafe.Add(start, size), tail)
	}
	b := unsafe.Slice((*byte)(start), size)
	unix.Madvise(b, unix.MADV_HUGEPAGE) // only a hint: 4 KiB pages work too
	return b
}

func unmap(b []byte) { unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(b)), uintptr(len(b))) }
