package prefetch

import (
	"fmt"
	"os"
	"strings"
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

// TestMake: Make returns n zero elements, all of them resident, for
// tables under a huge page and over it, of elements that divide a huge
// page and of one that does not; a large one starts within an element of
// a huge page's boundary and, where the kernel offers transparent huge
// pages on request, lies in them, even in memory the allocator had used
// before (which the loop makes likely: each table is garbage by the next).
func TestMake(t *testing.T) {
	type route struct {
		a, b [2]uint64
		c, d int32
		e, f uint8
	}
	fallbacks0 := fallbacks()
	check := func(t *testing.T, p unsafe.Pointer, n, size int, elems []byte) {
		t.Helper()
		if len(elems) != n*size {
			t.Fatalf("%d bytes for %d elements of %d", len(elems), n, size)
		}
		for i, v := range elems {
			if v != 0 {
				t.Fatalf("byte %d is %d", i, v)
			}
		}
		page := uintptr(unix.Getpagesize())
		start := uintptr(p) &^ (page - 1)
		vec := make([]byte, (uintptr(p)+uintptr(len(elems))-start+page-1)/page)
		if _, _, errno := unix.Syscall(unix.SYS_MINCORE, start, uintptr(len(vec))*page, uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
			t.Fatal("mincore:", errno)
		}
		for i, v := range vec {
			if v&1 == 0 {
				t.Fatalf("page %d of %d not resident", i, len(vec))
			}
		}
		if n*size >= hugePage {
			if off := uintptr(p) % hugePage; off >= uintptr(size) {
				t.Fatalf("starts %d bytes past a huge page's boundary", off)
			}
			if huge := hugeBytes(t, uintptr(p)); thpOnRequest() && huge < hugePage {
				if fallbacks() > fallbacks0 {
					t.Logf("%d bytes of huge pages for %d bytes: the kernel had none to give (thp_fault_fallback)", huge, n*size)
				} else {
					t.Errorf("%d bytes of huge pages where a table of %d bytes lies", huge, n*size)
				}
			}
		}
	}
	for _, n := range []int{0, 100, 1 << 18, 1<<19 + 3} {
		s := Make[uint64](n)
		if len(s) != n || cap(s) != n {
			t.Fatalf("Make(%d): len %d cap %d", n, len(s), cap(s))
		}
		if n > 0 {
			check(t, unsafe.Pointer(&s[0]), n, 8, unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), n*8))
		}
		r := Make[route](n)
		if len(r) != n || cap(r) != n {
			t.Fatalf("Make[route](%d): len %d cap %d", n, len(r), cap(r))
		}
		if n > 0 {
			size := int(unsafe.Sizeof(route{}))
			check(t, unsafe.Pointer(&r[0]), n, size, unsafe.Slice((*byte)(unsafe.Pointer(&r[0])), n*size))
		}
	}
}

// fallbacks is how many times the kernel had no huge page to give a
// fault that asked for one (/proc/vmstat's thp_fault_fallback).
func fallbacks() int {
	b, _ := os.ReadFile("/proc/vmstat")
	for _, line := range strings.Split(string(b), "\n") {
		var n int
		if k, _ := fmt.Sscanf(line, "thp_fault_fallback %d", &n); k == 1 {
			return n
		}
	}
	return 0
}

// thpOnRequest reports whether the kernel gives transparent huge pages
// to memory that asks for them (enabled is "always" or "madvise").
func thpOnRequest() bool {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	return err == nil && !strings.Contains(string(b), "[never]")
}

// hugeBytes is the AnonHugePages of the mapping holding addr
// (/proc/self/smaps).
func hugeBytes(t *testing.T, addr uintptr) int {
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x", &lo, &hi); n == 2 && strings.Contains(line, " ") {
			in = lo <= addr && addr < hi
			continue
		}
		var kb int
		if in && strings.HasPrefix(line, "AnonHugePages:") {
			fmt.Sscanf(strings.TrimPrefix(line, "AnonHugePages:"), "%d", &kb)
			return kb << 10
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return 0
}
