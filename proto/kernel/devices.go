package kernel

import (
	"golang.org/x/sys/unix"
)

func (in *Installer) linkMessage(m message) error {
	if m.typ != unix.RTM_NEWLINK && m.typ != unix.RTM_DELLINK {
		return nil
	}
	l, err := decodeLink(m.data)
	if err != nil || l.family != unix.AF_UNSPEC {
		return err
	}
	gone := m.typ == unix.RTM_DELLINK
	var old link
	var had bool
	up := false
	if gone {
		old, had = in.links.remove(l.index)
	} else {
		old, had = in.links.set(l)
		up = l.flags&unix.IFF_UP != 0
	}
	if had && (gone || old.up && !up) {
		// Down or gone: the kernel has flushed the device's routes and
		// neighbours. An entry it kept after all answers EEXIST to the
		// next add and is taken over then.
		in.forgetDevice(l.index)
	}
	if had && !gone && old.name != l.name {
		in.markIndex(l.index) // renamed: rtm's entries name the old name
	}
	if up && (!had || !old.up || old.name != l.name) {
		in.markDevice(l.name)
	}
	return nil
}

// forgetDevice drops the installed entries on ifindex and marks them.
func (in *Installer) forgetDevice(ifindex int32) {
	for p, ir := range in.instRoutes {
		if ir.ifindex == ifindex {
			delete(in.instRoutes, p)
			in.dirtyRoutes[p] = struct{}{}
		}
	}
	for ip, n := range in.instNeigh {
		if n.ifindex == ifindex {
			delete(in.instNeigh, ip)
			in.dirtyNeigh[ip] = struct{}{}
		}
	}
}

// markIndex marks the installed entries on ifindex.
func (in *Installer) markIndex(ifindex int32) {
	for p, ir := range in.instRoutes {
		if ir.ifindex == ifindex {
			in.dirtyRoutes[p] = struct{}{}
		}
	}
	for ip, n := range in.instNeigh {
		if n.ifindex == ifindex {
			in.dirtyNeigh[ip] = struct{}{}
		}
	}
}

// markDevice marks the keys waiting for the device name.
func (in *Installer) markDevice(name string) {
	for p, pe := range in.pendRoutes {
		if pe.dev == name {
			in.dirtyRoutes[p] = struct{}{}
		}
	}
	for ip, pe := range in.pendNeigh {
		if pe.dev == name {
			in.dirtyNeigh[ip] = struct{}{}
		}
	}
}
