package kernel

import "sync/atomic"

// Stat is one named counter of an Importer or an Installer.
type Stat struct {
	Name  string
	Value uint64
}

// counters is a fixed list of named values, read and written atomically
// so Stats never waits for the goroutine doing the work.
type counters struct {
	names []string
	vals  []atomic.Uint64
}

func newCounters(names ...[]string) *counters {
	c := &counters{}
	for _, n := range names {
		c.names = append(c.names, n...)
	}
	c.vals = make([]atomic.Uint64, len(c.names))
	return c
}

func (c *counters) add(i int, d uint64) { c.vals[i].Add(d) }
func (c *counters) inc(i int)           { c.vals[i].Add(1) }
func (c *counters) set(i int, v uint64) { c.vals[i].Store(v) }
func (c *counters) get(i int) uint64    { return c.vals[i].Load() }

func (c *counters) snapshot() []Stat {
	s := make([]Stat, len(c.names))
	for i, n := range c.names {
		s[i] = Stat{Name: n, Value: c.vals[i].Load()}
	}
	return s
}
