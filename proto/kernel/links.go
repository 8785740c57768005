package kernel

import (
	"golang.org/x/sys/unix"
)

// link is one network device as rtm tracks it.
type link struct {
	name string
	up   bool // IFF_UP: the kernel refuses routes through a device that is down
}

// linkTable maps interface indexes to names and back. rtm names devices
// in its tables; the kernel numbers them in its messages.
type linkTable struct {
	byIndex map[int32]link
	byName  map[string]int32
}

func newLinkTable() *linkTable {
	return &linkTable{byIndex: map[int32]link{}, byName: map[string]int32{}}
}

// set records l; it returns the previous state of the index.
func (t *linkTable) set(l klink) (old link, had bool) {
	old, had = t.byIndex[l.index]
	if had && t.byName[old.name] == l.index {
		delete(t.byName, old.name)
	}
	nl := link{name: l.name, up: l.flags&unix.IFF_UP != 0}
	t.byIndex[l.index] = nl
	t.byName[nl.name] = l.index
	return old, had
}

// remove forgets index i; it returns what was known of it.
func (t *linkTable) remove(i int32) (old link, had bool) {
	old, had = t.byIndex[i]
	if had {
		delete(t.byIndex, i)
		if t.byName[old.name] == i {
			delete(t.byName, old.name)
		}
	}
	return old, had
}

// replace swaps in the links of a fresh dump.
func (t *linkTable) replace(links []klink) {
	t.byIndex = make(map[int32]link, len(links))
	t.byName = make(map[string]int32, len(links))
	for _, l := range links {
		t.set(l)
	}
}

// name returns the device name of index i.
func (t *linkTable) name(i int32) (string, bool) {
	l, ok := t.byIndex[i]
	return l.name, ok
}

// index returns the index of the device called name and whether it is up.
func (t *linkTable) index(name string) (i int32, up, ok bool) {
	i, ok = t.byName[name]
	if !ok {
		return 0, false, false
	}
	return i, t.byIndex[i].up, true
}

// dumpLinks lists the namespace's devices.
func dumpLinks(c *conn) ([]klink, error) {
	var links []klink
	hdr := make([]byte, unix.SizeofIfInfomsg)
	err := c.dump(unix.RTM_GETLINK, hdr, func(m message) error {
		if m.typ != unix.RTM_NEWLINK {
			return nil
		}
		l, err := decodeLink(m.data)
		if err != nil {
			return err
		}
		if l.family == unix.AF_UNSPEC && l.name != "" {
			links = append(links, l)
		}
		return nil
	})
	return links, err
}
