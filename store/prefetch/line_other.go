//go:build !amd64

package prefetch

import "unsafe"

// Line is a hint this build has no instruction for: it does nothing.
func Line(unsafe.Pointer) {}

// Lines is a hint this build has no instruction for: it does nothing.
func Lines([]unsafe.Pointer) {}
