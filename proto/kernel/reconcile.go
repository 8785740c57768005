package kernel

import (
	"errors"
	"fmt"
	"net/netip"

	"rtm/store/entry"

	"golang.org/x/sys/unix"
)

// resync re-reads the devices and the entries with rtm's mark, and marks
// every key to be brought in line. Entries with the mark that rtm's
// model cannot hold, or that duplicate a key, are deleted at once.
func (in *Installer) resync() error {
	in.stats.inc(inResyncs)
	links, err := dumpLinks(in.nl)
	if err != nil && !errors.Is(err, errDumpInterrupted) {
		in.stats.inc(inNetlinkErrors)
		return fmt.Errorf("kernel install: list devices: %w", err)
	}
	in.links.replace(links)
	routes, strays, err := in.dumpOwnRoutes()
	if err != nil {
		in.stats.inc(inNetlinkErrors)
		return fmt.Errorf("kernel install: read routes: %w", err)
	}
	neigh, nstrays, err := in.dumpOwnNeigh()
	if err != nil {
		in.stats.inc(inNetlinkErrors)
		return fmt.Errorf("kernel install: read neighbours: %w", err)
	}
	for p := range in.instRoutes {
		in.dirtyRoutes[p] = struct{}{}
	}
	for ip := range in.instNeigh {
		in.dirtyNeigh[ip] = struct{}{}
	}
	in.instRoutes, in.instNeigh = routes, neigh
	for p := range routes {
		in.dirtyRoutes[p] = struct{}{}
	}
	for ip := range neigh {
		in.dirtyNeigh[ip] = struct{}{}
	}
	for p := range in.pendRoutes {
		in.dirtyRoutes[p] = struct{}{}
	}
	for ip := range in.pendNeigh {
		in.dirtyNeigh[ip] = struct{}{}
	}
	reqs := nstrays
	for _, s := range strays {
		reqs = append(reqs, s.req)
	}
	if len(reqs) > 0 {
		errs := make([]error, len(reqs))
		if err := in.nl.exchange(reqs, errs); err != nil {
			in.stats.inc(inNetlinkErrors)
			return fmt.Errorf("kernel install: delete stray entries: %w", err)
		}
		in.stats.add(inRouteChanges, uint64(len(strays)))
	}
	in.updateGauges()
	return nil
}

// strayRoute is a delete request for a route with rtm's mark that is not
// rtm's installed route for prefix.
type strayRoute struct {
	prefix netip.Prefix
	req    []byte
	behind bool // behind another owner's route of its key
}

// dumpOwnRoutes reads the routes with rtm's mark in rtm's table. Those
// the model holds become the installed view; the others come back as
// delete requests: a kind the model cannot hold, a second route for a
// prefix, and a route behind another owner's of its key (the kernel
// lists a prefix's routes in the order it tries them, and forwards with
// the first; an IPv6 ECMP route is listed once, with its first hop's
// owner, and a delete naming that hop takes rtm's hop alone).
func (in *Installer) dumpOwnRoutes() (map[netip.Prefix]instRoute, []strayRoute, error) {
	routes := map[netip.Prefix]instRoute{}
	var strays []strayRoute
	first := map[netip.Prefix]bool{} // prefix → its first route at rtm's key is rtm's
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		err := in.nl.dump(unix.RTM_GETROUTE, rtmsgHeader(fam), func(m message) error {
			if m.typ != unix.RTM_NEWROUTE {
				return nil
			}
			r, err := decodeRoute(m.data)
			if err != nil || r.family != fam {
				return nil
			}
			k := in.key(r.dst.Addr())
			if r.table != k.table || r.flags&unix.RTM_F_CLONED != 0 {
				return nil
			}
			ours, atKey := r.protocol == k.proto, r.metric == k.metric && r.tos == 0
			if atKey {
				if _, seen := first[r.dst]; !seen {
					first[r.dst] = ours
				}
			}
			if !ours {
				return nil
			}
			if ir, ok := in.ownRoute(&r, k); ok && first[r.dst] {
				if _, dup := routes[r.dst]; !dup {
					routes[r.dst] = ir
					return nil
				}
			}
			sk := k
			sk.metric = r.metric
			strays = append(strays, strayRoute{r.dst, routeDelRequest(sk, r.dst, r.typ, r.tos, r.nhid, r.gw, r.oif), atKey && !first[r.dst]})
			return nil
		})
		if err != nil && !errors.Is(err, errDumpInterrupted) {
			return nil, nil, err
		}
	}
	return routes, strays, nil
}

// ownRoute maps a kernel route with rtm's mark onto rtm's model. rtm
// never installs through a nexthop object: a route that uses one is not
// its own.
func (in *Installer) ownRoute(r *kroute, k routeKey) (instRoute, bool) {
	if r.metric != k.metric || r.nhid != 0 || keyed(r, k.table) != importable || kindOf(r) != importable {
		return instRoute{}, false
	}
	name, _ := in.links.name(r.oif)
	return instRoute{r: entry.Route{Prefix: r.dst, Gateway: r.gw, Dev: name}, ifindex: r.oif}, true
}

// dumpOwnNeigh reads the neighbours with rtm's mark. A second entry for
// an IP (on another device) comes back as a delete request.
func (in *Installer) dumpOwnNeigh() (map[netip.Addr]instNeigh, [][]byte, error) {
	neigh := map[netip.Addr]instNeigh{}
	var strays [][]byte
	for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		err := in.nl.dump(unix.RTM_GETNEIGH, ndmsgHeader(fam), func(m message) error {
			if m.typ != unix.RTM_NEWNEIGH {
				return nil
			}
			n, err := decodeNeigh(m.data)
			if err != nil || n.family != fam || n.protocol != in.proto || !n.ip.IsValid() {
				return nil
			}
			if _, dup := neigh[n.ip]; dup {
				strays = append(strays, neighDelRequest(n.ip, n.ifindex))
				return nil
			}
			neigh[n.ip] = instNeigh{ifindex: n.ifindex, mac: entry.MAC(n.lladdr)}
			return nil
		})
		if err != nil && !errors.Is(err, errDumpInterrupted) {
			return nil, nil, err
		}
	}
	return neigh, strays, nil
}
