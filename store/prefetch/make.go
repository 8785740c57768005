package prefetch

import "unsafe"

// hugePage is the size of a transparent huge page on the machines rtm
// runs on (x86-64 and arm64 with 4 KiB pages).
const hugePage = 2 << 20

// Make returns n zero Es whose memory is present and writable (Pages):
// a table about to be filled. A table of a huge page or more starts on a
// huge page's boundary and asks the kernel for huge pages (adviseHuge),
// so that it comes in a few faults of 2 MiB rather than one of 4 KiB
// for each page: on this project's machine a 4 KiB page costs 6–12 µs
// and a huge page 100–130 µs, 0.2 µs for each 4 KiB of it (BENCHMARKS.md,
// "Machine"). The slice is cut from a larger allocation, so that it can
// start on the boundary; the part before it is never touched, and the
// part after it stays past its cap.
func Make[E any](n int) []E {
	var zero E
	size := uintptr(n) * unsafe.Sizeof(zero)
	if size < hugePage || unsafe.Sizeof(zero) == 0 {
		s := make([]E, n)
		Pages(s)
		return s
	}
	extra := int(hugePage / unsafe.Sizeof(zero))
	all := make([]E, n+extra)
	base := uintptr(unsafe.Pointer(&all[0]))
	skip := int(((base+hugePage-1)&^(hugePage-1) - base + unsafe.Sizeof(zero) - 1) / unsafe.Sizeof(zero))
	s := all[skip : skip+n : skip+n]
	adviseHuge(base, uintptr(len(all))*unsafe.Sizeof(zero))
	Pages(s)
	return s
}
