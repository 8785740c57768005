package prefetch

import (
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// noPopulate is set once the kernel refuses MADV_POPULATE_WRITE (before
// Linux 5.14: EINVAL), so that Pages stops asking.
var noPopulate atomic.Bool

// populate maps the pages holding the size bytes at addr present and
// writable (MADV_POPULATE_WRITE), if the kernel can. The range is
// widened to whole pages: the pages it shares with other memory are in
// use, so mapped, and populating a present page changes nothing. The
// caller keeps the memory alive across the call.
func populate(addr uintptr, size int) {
	if noPopulate.Load() {
		return
	}
	page := uintptr(os.Getpagesize())
	start := addr &^ (page - 1)
	end := (addr + uintptr(size) + page - 1) &^ (page - 1)
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_POPULATE_WRITE); errno != 0 {
		noPopulate.Store(true)
	}
}

// adviseHuge asks for transparent huge pages for the memory of the size
// bytes at addr, a fresh allocation of the caller's, zero throughout
// (MADV_HUGEPAGE). Memory the allocator had used before may still be in
// 4 KiB pages, which the request would leave as they are: the whole huge
// pages inside the range are given back first (MADV_DONTNEED), so that
// populating them takes huge pages; they read as zero again, as the
// allocation's memory must. It is a hint: where the kernel has no huge
// pages or none to spare, the memory is the same in 4 KiB pages.
func adviseHuge(addr uintptr, size uintptr) {
	page := uintptr(os.Getpagesize())
	start := (addr + page - 1) &^ (page - 1)
	end := (addr + size) &^ (page - 1)
	if end <= start {
		return
	}
	unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_HUGEPAGE)
	lo := (addr + hugePage - 1) &^ (hugePage - 1)
	if hi := (addr + size) &^ (hugePage - 1); hi > lo {
		unix.Syscall(unix.SYS_MADVISE, lo, hi-lo, unix.MADV_DONTNEED)
	}
}
