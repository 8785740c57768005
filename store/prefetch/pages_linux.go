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

// adviseHuge asks for transparent huge pages for the whole pages of the
// size bytes at addr (MADV_HUGEPAGE). It is a hint: where the kernel has
// none or refuses, the memory is the same in 4 KiB pages.
func adviseHuge(addr uintptr, size uintptr) {
	page := uintptr(os.Getpagesize())
	start := (addr + page - 1) &^ (page - 1)
	end := (addr + size) &^ (page - 1)
	if end > start {
		unix.Syscall(unix.SYS_MADVISE, start, end-start, unix.MADV_HUGEPAGE)
	}
}
