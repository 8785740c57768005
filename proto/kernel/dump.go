package kernel

import (
	"errors"
	"fmt"
	"net/netip"

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
	for p := range im.routes {
		if _, ok := im.cands[p]; !ok {
			im.refreshRoute(p)
		}
	}
	for p := range im.cands {
		im.refreshRoute(p)
	}
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

// load replaces the view of the kernel with a fresh dump.
func (im *Importer) load() error {
	links, err := dumpLinks(im.dumps)
	if err != nil {
		return err
	}
	im.links.replace(links)
	clear(im.missing)
	im.cands = make(map[netip.Prefix][]routeCand, len(im.cands))
	im.neigh = make(map[neighKey]entry.MAC, len(im.neigh))
	im.byMAC = make(map[entry.MAC][]macCand, len(im.byMAC))
	if im.routes == nil {
		im.routes = map[netip.Prefix]entry.Route{}
		im.macs = map[entry.MAC]netip.Addr{}
	}
	var intr error
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		err := im.dumps.dump(unix.RTM_GETROUTE, rtmsgHeader(fam), func(m message) error {
			if m.typ != unix.RTM_NEWROUTE {
				return nil
			}
			r, err := decodeRoute(m.data)
			if err != nil {
				im.stats.inc(imNetlinkErrors)
				return nil
			}
			im.loadRoute(&r)
			return nil
		})
		if errors.Is(err, errDumpInterrupted) {
			intr = err
		} else if err != nil {
			return err
		}
		err = im.dumps.dump(unix.RTM_GETNEIGH, ndmsgHeader(fam), func(m message) error {
			if m.typ != unix.RTM_NEWNEIGH {
				return nil
			}
			n, err := decodeNeigh(m.data)
			if err != nil {
				im.stats.inc(imNetlinkErrors)
				return nil
			}
			im.loadNeigh(&n)
			return nil
		})
		if errors.Is(err, errDumpInterrupted) {
			intr = err
		} else if err != nil {
			return err
		}
	}
	return intr
}

func (im *Importer) loadRoute(r *kroute) {
	if r.family != unix.AF_INET && r.family != unix.AF_INET6 {
		return
	}
	if k := keyed(r, im.table); k != importable {
		im.stats.inc(skipIndex(k))
		return
	}
	c := candOf(r)
	if c.kind != importable {
		im.stats.inc(skipIndex(c.kind))
	}
	im.cands[r.dst] = append(im.cands[r.dst], c)
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
