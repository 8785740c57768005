package prefetch

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapFresh maps pages of fresh anonymous memory, unmapped at the end of
// the test, and returns them with a count of those resident (mincore).
func mapFresh(t *testing.T, pages int) ([]byte, func() int) {
	b, err := unix.Mmap(-1, 0, pages*unix.Getpagesize(), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(b) })
	return b, func() int {
		vec := make([]byte, pages)
		_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0])))
		if errno != 0 {
			t.Fatal("mincore:", errno)
		}
		n := 0
		for _, v := range vec {
			n += int(v & 1)
		}
		return n
	}
}

// TestPopulate: one MADV_POPULATE_WRITE call, with nothing written, makes
// every page of a range that starts and ends inside pages resident; a
// kernel before 5.14 refuses it, and Pages then writes each page.
func TestPopulate(t *testing.T) {
	const pages = 64
	b, resident := mapFresh(t, pages)
	if n := resident(); n != 0 {
		t.Fatalf("%d pages of a fresh mapping resident", n)
	}
	defer noPopulate.Store(noPopulate.Load())
	populate(uintptr(unsafe.Pointer(&b[8])), len(b)-16)
	if noPopulate.Load() {
		t.Skip("this kernel has no MADV_POPULATE_WRITE: Pages writes each page (TestPagesResident)")
	}
	if n := resident(); n != pages {
		t.Errorf("%d of %d pages resident after populate", n, pages)
	}
}

// TestPagesResident: after Pages every page of a fresh mapping is present
// and its words still zero, with MADV_POPULATE_WRITE and by the fallback
// alone, as a kernel before 5.14 has it.
func TestPagesResident(t *testing.T) {
	defer noPopulate.Store(noPopulate.Load())
	for _, fallback := range []bool{false, true} {
		if fallback {
			noPopulate.Store(true)
		}
		const pages = 64
		b, resident := mapFresh(t, pages)
		words := unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), len(b)/8)
		Pages(words[1:]) // not from a page's start: the first page counts too
		if n := resident(); n != pages {
			t.Errorf("fallback %v: %d of %d pages resident after Pages", fallback, n, pages)
		}
		for i, w := range words {
			if w != 0 {
				t.Fatalf("fallback %v: word %d is %d", fallback, i, w)
			}
		}
	}
}
