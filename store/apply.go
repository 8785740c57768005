package store

import (
	"errors"
	"fmt"

	"rtm/store/entry"
)

// Apply makes one change and leaves *c as it was made: a Replace becomes
// the Create or the Update it turned out to be, which is what the server
// publishes. It is the one place that turns an entry.Change into the
// table operations; a change it refuses changes nothing. The change is
// taken by address: it is a hundred bytes, copied at every call.
func (s *Store) Apply(c *entry.Change) error {
	switch {
	case c.Op == entry.Flush:
		var err error
		if c.Table&entry.Routes != 0 {
			err = s.FlushRoutes()
		}
		if err == nil && c.Table&entry.MACs != 0 {
			err = s.FlushMACs()
		}
		return err
	case c.Table == entry.MACs:
		return s.applyMAC(c)
	case c.Table == entry.Routes:
		return s.applyRoute(c)
	}
	return fmt.Errorf("change %s: no table %d", c.Op, c.Table)
}

func (s *Store) applyMAC(c *entry.Change) error {
	switch c.Op {
	case entry.Create:
		return s.CreateMAC(c.MAC, c.IP)
	case entry.Update:
		return s.UpdateMAC(c.MAC, c.IP)
	case entry.Delete:
		return s.DeleteMAC(c.MAC)
	case entry.Replace:
		c.Op = entry.Update
		err := s.UpdateMAC(c.MAC, c.IP)
		if errors.Is(err, entry.ErrNotFound) {
			c.Op, err = entry.Create, s.CreateMAC(c.MAC, c.IP)
		}
		return err
	}
	return fmt.Errorf("MAC %s: unknown op %s", c.MAC, c.Op)
}

func (s *Store) applyRoute(c *entry.Change) error {
	switch c.Op {
	case entry.Create:
		return s.CreateRoute(c.Route)
	case entry.Update:
		return s.UpdateRoute(c.Route)
	case entry.Delete:
		return s.DeleteRoute(c.Route.Prefix)
	case entry.Replace:
		if _, ok := s.routes.place(c.Route.Prefix); ok {
			c.Op = entry.Update
			return s.UpdateRoute(c.Route)
		}
		c.Op = entry.Create
		return s.CreateRoute(c.Route)
	}
	return fmt.Errorf("route %s: unknown op %s", c.Route.Prefix, c.Op)
}
