package kernel

import (
	"errors"
	"fmt"

	"rtm/store/entry"

	"golang.org/x/sys/unix"
)

// The importer's full reads of the kernel: the first dump, and the
// re-reads after an overflow or a change the kernel does not announce
// route by route.

// reload re-reads the kernel's links, routes and neighbours and gives the
// sink only the differences from what it was told.
//
// It first discards the events queued so far: the dump that follows
// reflects them all. Had they been kept, one queued before an overflow
// would be replayed after the dump, on top of later changes the overflow
// dropped, and undo them. Events that arrive during the dump are applied
// after it, in order; each carries its entry's whole new state, so
// replaying one that the dump already reflects converges to the same
// state.
func (im *Importer) reload() error {
	im.resync = false
	if err := im.events.drain(); err != nil {
		return fmt.Errorf("kernel import: drain events: %w", err)
	}
	var err error
	for attempt := 0; ; attempt++ {
		err = im.load()
		if !errors.Is(err, errDumpInterrupted) {
			break
		}
		im.stats.inc(imDumpsInterrupted)
		if attempt == 4 {
			// The tables keep changing; events will correct what this
			// dump got wrong, and a diverging delete triggers another.
			break
		}
	}
	if err != nil && !errors.Is(err, errDumpInterrupted) {
		return fmt.Errorf("kernel import: read the kernel's tables: %w", err)
	}
	im.stats.inc(imResyncs)
	im.view.flush()
	for m := range im.macs {
		if _, ok := im.byMAC[m]; !ok {
			im.refreshMAC(m)
		}
	}
	n := 0
	for m, cs := range im.byMAC {
		if len(cs) > 1 && conflicted(cs) {
			n++
		}
		im.refreshMAC(m)
	}
	im.stats.set(imNeighConflicts, uint64(n))
	return nil
}

// load replaces the view with a fresh dump: the devices, the nexthop
// objects before the routes that use them, the neighbours.
func (im *Importer) load() error {
	links, err := dumpLinks(im.dumps)
	if err != nil {
		return err
	}
	im.view.links.replace(links)
	clear(im.view.missing)
	im.view.reset()
	im.neigh = make(map[neighKey]entry.MAC, len(im.neigh))
	im.byMAC = make(map[entry.MAC][]macCand, len(im.byMAC))
	var intr error
	interrupted := func(err error) error {
		if errors.Is(err, errDumpInterrupted) {
			intr = err
			return nil
		}
		return err
	}
	if err := interrupted(im.loadNexthops()); err != nil {
		return err
	}
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		err := im.dumps.dump(unix.RTM_GETROUTE, rtmsgHeader(fam), func(m message) error {
			if m.typ != unix.RTM_NEWROUTE {
				return nil
			}
			r, err := decodeRoute(m.data)
			if err != nil {
				im.view.stats.inc(vNetlinkErrors)
				return nil
			}
			im.view.addRoute(&r, 0)
			return nil
		})
		if err := interrupted(err); err != nil {
			return err
		}
		err = im.dumps.dump(unix.RTM_GETNEIGH, ndmsgHeader(fam), func(m message) error {
			if m.typ != unix.RTM_NEWNEIGH {
				return nil
			}
			n, err := decodeNeigh(m.data)
			if err != nil {
				im.view.stats.inc(vNetlinkErrors)
				return nil
			}
			im.loadNeigh(&n)
			return nil
		})
		if err := interrupted(err); err != nil {
			return err
		}
	}
	return intr
}

// loadNexthops reads the kernel's nexthop objects. A kernel without them
// (before Linux 5.3) refuses the request: then there are none.
func (im *Importer) loadNexthops() error {
	err := im.dumps.dump(unix.RTM_GETNEXTHOP, make([]byte, unix.SizeofNhmsg), func(m message) error {
		if m.typ != unix.RTM_NEWNEXTHOP {
			return nil
		}
		nh, err := decodeNexthop(m.data)
		if err != nil {
			im.view.stats.inc(vNetlinkErrors)
			return nil
		}
		im.view.setNexthop(nh)
		return nil
	})
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
		return nil
	}
	return err
}

func (im *Importer) loadNeigh(n *kneigh) {
	if n.family != unix.AF_INET && n.family != unix.AF_INET6 || !n.ip.IsValid() {
		return
	}
	mac, kind := classifyNeigh(n)
	if kind >= neighSkipProxy {
		im.stats.inc(neighSkipIndex(kind))
	}
	if kind != neighEntry {
		return
	}
	key := neighKey{n.ifindex, n.ip}
	im.neigh[key] = mac
	im.byMAC[mac] = append(im.byMAC[mac], key)
}

// rtmsgHeader is the fixed header of a route dump request for one family.
func rtmsgHeader(family uint8) []byte {
	h := make([]byte, unix.SizeofRtMsg)
	h[0] = family
	return h
}

// ndmsgHeader is the fixed header of a neighbour dump request.
func ndmsgHeader(family uint8) []byte {
	h := make([]byte, unix.SizeofNdMsg)
	h[0] = family
	return h
}
