package prefetch

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestPagesResident: after Pages every page of a fresh mapping is present
// (mincore) and its words still zero, by one MADV_POPULATE_WRITE call and
// by the fallback that writes each page, which a kernel before 5.14 gets.
func TestPagesResident(t *testing.T) {
	defer noPopulate.Store(noPopulate.Load())
	populated := !noPopulate.Load()
	for _, fallback := range []bool{false, true} {
		noPopulate.Store(fallback || !populated)
		const pages = 64
		page := unix.Getpagesize()
		b, err := unix.Mmap(-1, 0, pages*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			t.Fatal(err)
		}
		words := unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), len(b)/8)
		resident := func() int {
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
		if n := resident(); n != 0 {
			t.Fatalf("%d pages of a fresh mapping resident before Pages", n)
		}
		Pages(words[1:]) // not from a page's start: the first page counts too
		if n := resident(); n != pages {
			t.Errorf("fallback %v: %d of %d pages resident after Pages", fallback, n, pages)
		}
		for i, w := range words {
			if w != 0 {
				t.Fatalf("fallback %v: word %d is %d", fallback, i, w)
			}
		}
		unix.Munmap(b)
	}
	if !populated {
		t.Log("this kernel has no MADV_POPULATE_WRITE: Pages writes each page")
	}
}
