package kernel

import (
	"errors"
	"net/netip"
	"os"
	"syscall"
	"time"

	"rtm/store/entry"

	"golang.org/x/sys/unix"
)

// opKind is one kind of kernel request.
type opKind uint8

const (
	opRouteAdd opKind = iota
	opRouteReplace
	opRouteDel
	opNeighAdd
	opNeighReplace
	opNeighDel
)

type op struct {
	kind    opKind
	prefix  netip.Prefix // routes
	route   entry.Route
	ip      netip.Addr // neighbours
	mac     entry.MAC
	ifindex int32
}

// plan turns the dirty keys into kernel requests, ordered so each can
// succeed: neighbours leave before the routes they sit under, connected
// routes come before the gateway routes that need them, neighbours come
// last.
func (in *Installer) plan() []op {
	var ndel, rdel, rconn, rgw, nset []op
	for p := range in.dirtyRoutes {
		o, ok := in.planRoute(p)
		switch {
		case !ok:
		case o.kind == opRouteDel:
			rdel = append(rdel, o)
		case !o.route.Gateway.IsValid():
			rconn = append(rconn, o)
		default:
			rgw = append(rgw, o)
		}
	}
	clear(in.dirtyRoutes)
	for ip := range in.dirtyNeigh {
		del, set := in.planNeigh(ip)
		ndel = append(ndel, del...)
		nset = append(nset, set...)
	}
	clear(in.dirtyNeigh)
	ops := make([]op, 0, len(ndel)+len(rdel)+len(rconn)+len(rgw)+len(nset))
	ops = append(ops, ndel...)
	ops = append(ops, rdel...)
	ops = append(ops, rconn...)
	ops = append(ops, rgw...)
	return append(ops, nset...)
}

func (in *Installer) planRoute(p netip.Prefix) (op, bool) {
	want, ok := in.routes.Get(p)
	have, inst := in.instRoutes[p]
	del := op{kind: opRouteDel, prefix: p, route: have.r, ifindex: have.ifindex}
	if !ok {
		delete(in.pendRoutes, p)
		return del, inst
	}
	idx, up, known := in.links.index(want.Dev)
	if !known || !up {
		why := "device " + want.Dev + " does not exist"
		if known {
			why = "device " + want.Dev + " is down"
		}
		in.routePending(p, &pending{reason: why, dev: want.Dev})
		return del, inst
	}
	if inst && have.r == want && have.ifindex == idx {
		delete(in.pendRoutes, p)
		return op{}, false
	}
	kind := opRouteAdd
	if inst {
		kind = opRouteReplace
	}
	return op{kind: kind, prefix: p, route: want, ifindex: idx}, true
}

func (in *Installer) planNeigh(ip netip.Addr) (del, set []op) {
	mac, ok := ipOwner(in.ipMACs[ip])
	have, inst := in.instNeigh[ip]
	if inst {
		del = []op{{kind: opNeighDel, ip: ip, mac: have.mac, ifindex: have.ifindex}}
	}
	if !ok {
		delete(in.pendNeigh, ip)
		return del, nil
	}
	r, ok := in.routes.Match(ip)
	if !ok {
		in.neighPending(ip, &pending{reason: "no route covers " + ip.String(), noRoute: true})
		return del, nil
	}
	idx, up, known := in.links.index(r.Dev)
	if !known || !up {
		why := "device " + r.Dev + " of route " + r.Prefix.String() + " does not exist"
		if known {
			why = "device " + r.Dev + " of route " + r.Prefix.String() + " is down"
		}
		in.neighPending(ip, &pending{reason: why, dev: r.Dev})
		return del, nil
	}
	want := instNeigh{ifindex: idx, mac: mac}
	switch {
	case inst && have == want:
		delete(in.pendNeigh, ip)
		return nil, nil
	case inst && have.ifindex == idx:
		return nil, []op{{kind: opNeighReplace, ip: ip, mac: mac, ifindex: idx}}
	default:
		return del, []op{{kind: opNeighAdd, ip: ip, mac: mac, ifindex: idx}}
	}
}

func (in *Installer) request(o *op) []byte {
	switch o.kind {
	case opRouteAdd:
		return routeRequest(in.key(o.prefix.Addr()), o.route, o.ifindex, unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	case opRouteReplace:
		return routeRequest(in.key(o.prefix.Addr()), o.route, o.ifindex, unix.NLM_F_CREATE|unix.NLM_F_REPLACE)
	case opRouteDel:
		return routeDelRequest(in.key(o.prefix.Addr()), o.prefix, 0, 0, 0, o.route.Gateway, o.ifindex)
	case opNeighAdd:
		return neighRequest(in.proto, o.ip, o.ifindex, o.mac, unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	case opNeighReplace:
		return neighRequest(in.proto, o.ip, o.ifindex, o.mac, unix.NLM_F_CREATE|unix.NLM_F_REPLACE)
	default:
		return neighDelRequest(o.ip, o.ifindex)
	}
}

// converge brings the kernel in line with the dirty keys. A route that
// succeeds may unblock another (its gateway's connected route), and a
// key found to be rtm's own after EEXIST is taken over: a few rounds
// settle both.
func (in *Installer) converge() {
	in.said, in.unsaid = 0, 0
	defer func() {
		if in.unsaid > 0 {
			in.logf("kernel install: and %d more entries pending, or installed after pending, not logged one by one (show stats local: kernel_routes_pending, kernel_neighbours_pending, kernel_route_failures)", in.unsaid)
		}
		in.updateGauges()
	}()
	for round := 0; round < 4 && (len(in.dirtyRoutes) > 0 || len(in.dirtyNeigh) > 0); round++ {
		ops := in.plan()
		if len(ops) == 0 {
			return
		}
		reqs := make([][]byte, len(ops))
		for i := range ops {
			reqs[i] = in.request(&ops[i])
		}
		errs := make([]error, len(ops))
		if err := in.nl.exchange(reqs, errs); err != nil {
			in.stats.inc(inNetlinkErrors)
			in.logf("kernel install: %v", err)
			if !errors.Is(err, os.ErrClosed) {
				in.resync() // the kernel's answers are unknown: read its state
			}
			return
		}
		in.results(ops, errs)
	}
}

// results applies the kernel's answers to the installed view.
func (in *Installer) results(ops []op, errs []error) {
	connDone := false
	var taken4, taken6, ntaken4, ntaken6 []int
	for i := range ops {
		o, err := &ops[i], errs[i]
		switch o.kind {
		case opRouteAdd, opRouteReplace:
			switch {
			case err == nil:
				in.instRoutes[o.prefix] = instRoute{r: o.route, ifindex: o.ifindex}
				if in.pendRoutes[o.prefix] != nil {
					in.sayf("kernel install: route %s installed, pending no more", routeString(o.route))
					delete(in.pendRoutes, o.prefix)
				}
				in.stats.inc(inRouteChanges)
				connDone = connDone || !o.route.Gateway.IsValid()
			case o.kind == opRouteAdd && errors.Is(err, unix.EEXIST):
				if p := in.pendRoutes[o.prefix]; p != nil && p.foreign {
					continue // known to be another owner's
				}
				if o.prefix.Addr().Is4() {
					taken4 = append(taken4, i)
				} else {
					taken6 = append(taken6, i)
				}
			default:
				p := &pending{reason: kernelReason(err)}
				if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENETDOWN) {
					p.dev = o.route.Dev
				}
				in.routePending(o.prefix, p)
			}
		case opRouteDel:
			if err == nil || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) {
				delete(in.instRoutes, o.prefix)
				if err == nil {
					in.stats.inc(inRouteChanges)
				}
			} else {
				in.stats.inc(inRouteFailures)
				in.logf("kernel install: delete route %s: %v", o.prefix, err)
			}
		case opNeighAdd, opNeighReplace:
			switch {
			case err == nil:
				in.instNeigh[o.ip] = instNeigh{ifindex: o.ifindex, mac: o.mac}
				if in.pendNeigh[o.ip] != nil {
					in.sayf("kernel install: neighbour %s installed, pending no more", o.ip)
					delete(in.pendNeigh, o.ip)
				}
				in.stats.inc(inNeighChanges)
			case o.kind == opNeighAdd && errors.Is(err, unix.EEXIST):
				if p := in.pendNeigh[o.ip]; p != nil && p.foreign {
					continue
				}
				if o.ip.Is4() {
					ntaken4 = append(ntaken4, i)
				} else {
					ntaken6 = append(ntaken6, i)
				}
			default:
				p := &pending{reason: kernelReason(err)}
				if errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENETDOWN) {
					if r, ok := in.routes.Match(o.ip); ok {
						p.dev = r.Dev
					}
				}
				in.neighPending(o.ip, p)
			}
		case opNeighDel:
			if err == nil || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
				if cur, ok := in.instNeigh[o.ip]; ok && cur.ifindex == o.ifindex {
					delete(in.instNeigh, o.ip)
				}
				if err == nil {
					in.stats.inc(inNeighChanges)
				}
			} else {
				in.stats.inc(inNeighFailures)
				in.logf("kernel install: delete neighbour %s: %v", o.ip, err)
			}
		}
	}
	if len(taken4)+len(taken6) > 0 {
		in.claimRoutes(ops, append(taken4, taken6...))
	}
	if len(ntaken4)+len(ntaken6) > 0 {
		in.claimNeigh(ops, append(ntaken4, ntaken6...))
	}
	if connDone {
		// A new connected route can make a refused gateway reachable.
		for p, pe := range in.pendRoutes {
			if pe.dev == "" && !pe.foreign {
				in.dirtyRoutes[p] = struct{}{}
			}
		}
	}
}

// claimRoutes sorts out adds refused with EEXIST: a route with rtm's mark
// (left by a predecessor, or kept by the kernel across a link change) is
// taken over and replaced; any other owner's is left alone and counted.
// rtm's route behind another owner's (prepended before it, or an IPv6
// hop merged with it) is deleted, hop by hop: the kernel forwards with
// the other, and a replace would hit the other's route.
func (in *Installer) claimRoutes(ops []op, idx []int) {
	own, strays, err := in.dumpOwnRoutes()
	if err != nil {
		in.stats.inc(inNetlinkErrors)
		return
	}
	var reqs [][]byte
	for _, i := range idx {
		p := ops[i].prefix
		if ir, ok := own[p]; ok {
			in.instRoutes[p] = ir
			in.dirtyRoutes[p] = struct{}{}
			continue
		}
		mine, behind := false, false
		for _, s := range strays {
			if s.prefix == p {
				reqs = append(reqs, s.req)
				mine, behind = true, behind || s.behind
			}
		}
		if mine && !behind {
			// Only routes of rtm's own its model does not hold (through
			// a nexthop object, say) were in the way: try again.
			in.dirtyRoutes[p] = struct{}{}
			continue
		}
		in.routePending(p, &pending{reason: "another owner's route holds the prefix", foreign: true})
	}
	if len(reqs) > 0 {
		if err := in.nl.exchange(reqs, make([]error, len(reqs))); err != nil {
			in.stats.inc(inNetlinkErrors)
			return
		}
		in.stats.add(inRouteChanges, uint64(len(reqs)))
	}
}

// claimNeigh is claimRoutes for neighbours.
func (in *Installer) claimNeigh(ops []op, idx []int) {
	own, _, err := in.dumpOwnNeigh()
	if err != nil {
		in.stats.inc(inNetlinkErrors)
		return
	}
	for _, i := range idx {
		ip := ops[i].ip
		if n, ok := own[ip]; ok {
			in.instNeigh[ip] = n
			in.dirtyNeigh[ip] = struct{}{}
			continue
		}
		in.neighPending(ip, &pending{reason: "another owner's neighbour entry holds the address", foreign: true})
	}
}

func kernelReason(err error) string {
	var ke *kernelError
	if errors.As(err, &ke) {
		return ke.Error()
	}
	var en syscall.Errno
	if errors.As(err, &en) {
		return en.Error()
	}
	return err.Error()
}

// routePending records why p is not installed; a new reason is logged
// and counted once.
func (in *Installer) routePending(p netip.Prefix, pe *pending) {
	old := in.pendRoutes[p]
	in.pendRoutes[p] = pe
	if old != nil && old.reason == pe.reason {
		return
	}
	in.stats.inc(inRouteFailures)
	if pe.foreign && (old == nil || !old.foreign) {
		in.stats.inc(inRouteForeign)
	}
	r, _ := in.routes.Get(p)
	in.sayf("kernel install: route %s pending: %s", routeString(r), pe.reason)
}

// sayf logs an entry pending or no longer pending, the first sayMax of a
// converge one by one, and counts the rest, which converge sums up: a
// snapshot of thousands of routes through a missing device logged each.
func (in *Installer) sayf(format string, args ...any) {
	if in.said >= sayMax {
		in.unsaid++
		return
	}
	in.said++
	in.logf(format, args...)
}

// sayMax bounds the entries a converge logs one by one.
const sayMax = 8

func (in *Installer) neighPending(ip netip.Addr, pe *pending) {
	old := in.pendNeigh[ip]
	in.pendNeigh[ip] = pe
	if old != nil && old.reason == pe.reason {
		return
	}
	in.stats.inc(inNeighFailures)
	if pe.foreign && (old == nil || !old.foreign) {
		in.stats.inc(inNeighForeign)
	}
	in.sayf("kernel install: neighbour %s pending: %s", ip, pe.reason)
}

func (in *Installer) updateGauges() {
	in.stats.set(inRoutes, uint64(len(in.instRoutes)))
	in.stats.set(inNeigh, uint64(len(in.instNeigh)))
	in.stats.set(inRoutesPending, uint64(len(in.pendRoutes)))
	in.stats.set(inNeighPending, uint64(len(in.pendNeigh)))
}

// retryLoop retries, every RetryInterval, the refused keys that no
// device event will unblock.
func (in *Installer) retryLoop() {
	defer in.wg.Done()
	t := time.NewTicker(in.retry)
	defer t.Stop()
	for {
		select {
		case <-in.done:
			return
		case <-t.C:
		}
		in.mu.Lock()
		if !in.closed {
			for p, pe := range in.pendRoutes {
				if pe.dev == "" {
					in.dirtyRoutes[p] = struct{}{}
				}
			}
			for ip, pe := range in.pendNeigh {
				if pe.dev == "" && !pe.noRoute {
					in.dirtyNeigh[ip] = struct{}{}
				}
			}
			in.converge()
		}
		in.mu.Unlock()
	}
}
