//go:build !linux

package prefetch

// populate has no single call to ask for here: Pages writes each page.
func populate(uintptr, int) {}

// adviseHuge has nothing to ask for here.
func adviseHuge(uintptr, uintptr) {}
