//go:build race

package store

// The race runtime performs atomic stores in its own code, where a fault
// cannot become a Go panic: a child writing to a read-only mapping dies
// with a runtime crash instead.
const raceEnabled = true
