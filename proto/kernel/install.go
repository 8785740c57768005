package kernel

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/gaissmai/bart"
	"golang.org/x/sys/unix"

	"rtm/store"
)

// DefaultProtocol is the routing protocol number that marks rtm's routes
// and neighbours in the kernel (`ip route show proto 82`). iproute2
// names 1-4, 8-19 and 42-44 and more in rt_protos; 82 is free there.
const DefaultProtocol = 82

// DefaultRetryInterval is how often refused changes that no device event
// will unblock (a foreign entry, an unreachable gateway) are retried.
const DefaultRetryInterval = 2 * time.Second

// ErrClosed is returned by an Installer's methods after Close.
var ErrClosed = errors.New("kernel installer closed")

// InstallerOptions tune an Installer; the zero value installs into table
// main with protocol 82 and the kernel's default metrics.
type InstallerOptions struct {
	// Table is the routing table to install into; 0 means main (254).
	Table uint32
	// Protocol marks rtm's entries; 0 means DefaultProtocol. Entries
	// without it are never changed or deleted.
	Protocol uint8
	// Metric is the priority of rtm's routes; 0 means the kernel's
	// default for the family (0 for IPv4, 1024 for IPv6). A metric of its
	// own lets rtm's routes coexist with another owner's for a prefix.
	Metric uint32
	// RetryInterval is DefaultRetryInterval if 0.
	RetryInterval time.Duration
	// Logf, if set, gets one line per refused key (once per reason) and
	// per resync.
	Logf func(format string, args ...any)
}

// MACEntry is one entry of rtm's MAC table.
type MACEntry struct {
	MAC store.MAC
	IP  netip.Addr
}

// Op is the kind of a Change.
type Op uint8

const (
	OpSetRoute    Op = iota + 1 // create or replace Route
	OpDeleteRoute               // delete the route for Route.Prefix
	OpSetMAC                    // create or replace MAC -> IP
	OpDeleteMAC                 // delete MAC
	OpFlushRoutes               // delete every route
	OpFlushMACs                 // delete every MAC entry
)

// Change is one change to rtm's tables, as a client receives it.
type Change struct {
	Op    Op
	Route store.Route // OpSetRoute; OpDeleteRoute uses Route.Prefix
	MAC   store.MAC   // OpSetMAC, OpDeleteMAC
	IP    netip.Addr  // OpSetMAC
}

// Installer counters, in Stats order.
const (
	inRoutes           = iota // gauge: routes in the kernel with rtm's mark
	inNeigh                   // gauge: neighbours likewise
	inRoutesPending           // gauge: rtm routes the kernel does not hold yet
	inNeighPending            // gauge: neighbours likewise
	inRouteChanges            // route adds, replaces and deletes done
	inNeighChanges            // neighbour adds, replaces and deletes done
	inRouteFailures           // refusals, once per route and reason
	inNeighFailures           // likewise for neighbours
	inRouteForeign            // prefixes found held by another owner's route
	inNeighForeign            // IPs found held by another owner's neighbour
	inNeighIPConflicts        // gauge: IPs that several MAC entries map to
	inResyncs                 // re-reads of the kernel (Reconcile, link changes)
	inNetlinkErrors           // socket failures and malformed answers
)

var installerNames = []string{
	"routes_installed", "neighbours_installed", "routes_pending", "neighbours_pending",
	"route_changes", "neigh_changes", "route_failures", "neigh_failures",
	"route_foreign", "neigh_foreign", "neigh_ip_conflicts", "resyncs", "netlink_errors",
}

// Installer programs rtm's tables into the kernel of one network
// namespace. Its methods are safe for concurrent use; each returns once
// the kernel has answered. See the package documentation for the rules.
type Installer struct {
	key4, key6 routeKey
	proto      uint8
	logf       func(string, ...any)
	retry      time.Duration
	stats      *counters

	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	watch     *conn // link events

	mu     sync.Mutex
	closed bool
	nl     *conn // requests and dumps
	links  *linkTable

	// rtm's tables, as given.
	routes store.RouteTable
	macs   map[store.MAC]netip.Addr
	ipMACs map[netip.Addr][]store.MAC // the MAC entries of each IP
	hosts  bart.Table[struct{}]       // the IPs of ipMACs, for the neighbours under a route

	// What the kernel holds with rtm's mark, as last seen.
	instRoutes map[netip.Prefix]instRoute
	instNeigh  map[netip.Addr]instNeigh

	// Keys the kernel refused, and keys to bring in line with the tables.
	pendRoutes  map[netip.Prefix]*pending
	pendNeigh   map[netip.Addr]*pending
	dirtyRoutes map[netip.Prefix]struct{}
	dirtyNeigh  map[netip.Addr]struct{}
}

type instRoute struct {
	r       store.Route
	ifindex int32
}

type instNeigh struct {
	ifindex int32
	mac     store.MAC
}

// pending says why a key is not in the kernel yet and what unblocks it.
type pending struct {
	reason  string
	dev     string // waiting for this device to exist and be up
	noRoute bool   // a neighbour waiting for a covering route
	foreign bool   // another owner holds the key
}

// NewInstaller opens an installer for the network namespace of the
// calling thread. It installs nothing until told; call Reconcile first to
// take over (or clean up) entries left by an earlier installer.
func NewInstaller(opt InstallerOptions) (*Installer, error) {
	in := &Installer{
		proto:       opt.Protocol,
		logf:        opt.Logf,
		retry:       opt.RetryInterval,
		stats:       newCounters(installerNames),
		done:        make(chan struct{}),
		links:       newLinkTable(),
		macs:        map[store.MAC]netip.Addr{},
		ipMACs:      map[netip.Addr][]store.MAC{},
		instRoutes:  map[netip.Prefix]instRoute{},
		instNeigh:   map[netip.Addr]instNeigh{},
		pendRoutes:  map[netip.Prefix]*pending{},
		pendNeigh:   map[netip.Addr]*pending{},
		dirtyRoutes: map[netip.Prefix]struct{}{},
		dirtyNeigh:  map[netip.Addr]struct{}{},
	}
	table := opt.Table
	if table == 0 {
		table = unix.RT_TABLE_MAIN
	}
	if in.proto == 0 {
		in.proto = DefaultProtocol
	}
	in.key4 = routeKey{table: table, proto: in.proto, metric: opt.Metric}
	in.key6 = in.key4
	if opt.Metric == 0 {
		in.key6.metric = 1024 // what the kernel stores for an IPv6 route without one
	}
	if in.retry <= 0 {
		in.retry = DefaultRetryInterval
	}
	if in.logf == nil {
		in.logf = func(string, ...any) {}
	}
	var err error
	if in.watch, err = openConn(unix.RTNLGRP_LINK); err != nil {
		return nil, fmt.Errorf("kernel install: %w", err)
	}
	if in.nl, err = openConn(); err != nil {
		in.watch.close()
		return nil, fmt.Errorf("kernel install: %w", err)
	}
	// Room for a whole batch of refusals; without the privilege to force
	// it, the lost-answer path redoes a batch one request at a time.
	_ = in.nl.setRecvBuffer(requestRecvBuffer, true)
	links, err := dumpLinks(in.nl)
	if err != nil {
		in.watch.close()
		in.nl.close()
		return nil, fmt.Errorf("kernel install: list devices: %w", err)
	}
	in.links.replace(links)
	in.wg.Add(2)
	go in.watchLinks()
	go in.retryLoop()
	return in, nil
}

// Stats returns the installer's counters; safe to call at any time.
func (in *Installer) Stats() []Stat { return in.stats.snapshot() }

// Close stops the installer. Entries in the kernel stay: a restarted
// installer's Reconcile takes them over.
func (in *Installer) Close() error {
	in.closeOnce.Do(func() {
		close(in.done)
		in.watch.close()
		in.wg.Wait()
		in.mu.Lock()
		in.closed = true
		in.nl.close()
		in.mu.Unlock()
	})
	return nil
}

func (in *Installer) key(a netip.Addr) routeKey {
	if a.Is4() {
		return in.key4
	}
	return in.key6
}

// checkRoute validates a route without store.Route.Check, which does not
// yet accept connected routes (no gateway).
func checkRoute(r store.Route) error {
	if err := store.CheckPrefix(r.Prefix); err != nil {
		return err
	}
	if err := store.CheckIfName(r.Dev); err != nil {
		return fmt.Errorf("route %s: %w", r.Prefix, err)
	}
	if r.Gateway.IsValid() {
		if err := store.CheckIP(r.Gateway); err != nil {
			return fmt.Errorf("route %s: %w: %w", r.Prefix, store.ErrBadGateway, err)
		}
		if r.Gateway.Is4() != r.Prefix.Addr().Is4() {
			return fmt.Errorf("route %s: %w %s: address family differs", r.Prefix, store.ErrBadGateway, r.Gateway)
		}
	}
	return nil
}

func checkChange(c Change) error {
	switch c.Op {
	case OpSetRoute:
		return checkRoute(c.Route)
	case OpDeleteRoute:
		return store.CheckPrefix(c.Route.Prefix)
	case OpSetMAC:
		if err := store.CheckIP(c.IP); err != nil {
			return fmt.Errorf("MAC %s: %w", c.MAC, err)
		}
	case OpDeleteMAC, OpFlushRoutes, OpFlushMACs:
	default:
		return fmt.Errorf("kernel install: unknown change op %d", c.Op)
	}
	return nil
}

// SetRoute creates or replaces rtm's route for r.Prefix.
func (in *Installer) SetRoute(r store.Route) error {
	return in.Apply([]Change{{Op: OpSetRoute, Route: r}})
}

// DeleteRoute deletes rtm's route for p.
func (in *Installer) DeleteRoute(p netip.Prefix) error {
	return in.Apply([]Change{{Op: OpDeleteRoute, Route: store.Route{Prefix: p}}})
}

// SetMAC creates or replaces the MAC entry m -> ip.
func (in *Installer) SetMAC(m store.MAC, ip netip.Addr) error {
	return in.Apply([]Change{{Op: OpSetMAC, MAC: m, IP: ip}})
}

// DeleteMAC deletes the MAC entry of m.
func (in *Installer) DeleteMAC(m store.MAC) error {
	return in.Apply([]Change{{Op: OpDeleteMAC, MAC: m}})
}

// Flush deletes every route and/or every MAC entry of rtm's.
func (in *Installer) Flush(routes, macs bool) error {
	var cs []Change
	if routes {
		cs = append(cs, Change{Op: OpFlushRoutes})
	}
	if macs {
		cs = append(cs, Change{Op: OpFlushMACs})
	}
	return in.Apply(cs)
}

// Apply applies changes in order to rtm's tables, then brings the kernel
// in line in as few batches as it can. An invalid change is skipped and
// reported in the returned error; the others are applied. Refusals by
// the kernel are not errors: they are counted, logged and retried.
func (in *Installer) Apply(changes []Change) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return ErrClosed
	}
	var errs []error
	for _, c := range changes {
		if err := checkChange(c); err != nil {
			errs = append(errs, err)
			continue
		}
		switch c.Op {
		case OpSetRoute:
			in.setRoute(c.Route)
		case OpDeleteRoute:
			in.deleteRoute(c.Route.Prefix)
		case OpSetMAC:
			in.setMAC(c.MAC, c.IP)
		case OpDeleteMAC:
			in.deleteMAC(c.MAC)
		case OpFlushRoutes:
			in.markAllRoutes()
			in.routes.Clear()
			in.markAllNeigh()
		case OpFlushMACs:
			in.markAllNeigh()
			clear(in.macs)
			clear(in.ipMACs)
			in.hosts = bart.Table[struct{}]{}
			in.stats.set(inNeighIPConflicts, 0)
		}
	}
	in.converge()
	return errors.Join(errs...)
}

// Reconcile makes the kernel hold exactly routes and macs with rtm's
// mark: it reads what the kernel has with the mark (left by this
// installer or by one that died), adds what is missing, replaces what
// differs and deletes the rest. Entries of other owners are untouched.
// Invalid entries are skipped and reported in the returned error.
func (in *Installer) Reconcile(routes []store.Route, macs []MACEntry) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return ErrClosed
	}
	var errs []error
	in.markAllRoutes()
	in.markAllNeigh()
	in.routes.Clear()
	clear(in.macs)
	clear(in.ipMACs)
	in.hosts = bart.Table[struct{}]{}
	in.stats.set(inNeighIPConflicts, 0)
	for _, r := range routes {
		if err := checkRoute(r); err != nil {
			errs = append(errs, err)
			continue
		}
		in.routes.Set(r)
		in.dirtyRoutes[r.Prefix] = struct{}{}
	}
	for _, e := range macs {
		if err := store.CheckIP(e.IP); err != nil {
			errs = append(errs, fmt.Errorf("MAC %s: %w", e.MAC, err))
			continue
		}
		in.setMAC(e.MAC, e.IP)
	}
	if err := in.resync(); err != nil {
		errs = append(errs, err)
	}
	in.converge()
	return errors.Join(errs...)
}

func (in *Installer) setRoute(r store.Route) {
	old, had := in.routes.Get(r.Prefix)
	if had && old == r {
		return
	}
	in.routes.Set(r)
	in.dirtyRoutes[r.Prefix] = struct{}{}
	if !had || old.Dev != r.Dev {
		in.markNeighUnder(r.Prefix)
	}
}

func (in *Installer) deleteRoute(p netip.Prefix) {
	if _, had := in.routes.Get(p); !had {
		return
	}
	in.routes.Delete(p)
	in.dirtyRoutes[p] = struct{}{}
	in.markNeighUnder(p)
}

func (in *Installer) setMAC(m store.MAC, ip netip.Addr) {
	old, had := in.macs[m]
	if had && old == ip {
		return
	}
	if had {
		in.dropIPMAC(old, m)
	}
	in.macs[m] = ip
	ms := in.ipMACs[ip]
	if len(ms) == 0 {
		in.hosts.Insert(netip.PrefixFrom(ip, ip.BitLen()), struct{}{})
	} else if len(ms) == 1 {
		in.stats.add(inNeighIPConflicts, 1)
	}
	in.ipMACs[ip] = append(ms, m)
	in.dirtyNeigh[ip] = struct{}{}
}

func (in *Installer) deleteMAC(m store.MAC) {
	if ip, had := in.macs[m]; had {
		delete(in.macs, m)
		in.dropIPMAC(ip, m)
	}
}

func (in *Installer) dropIPMAC(ip netip.Addr, m store.MAC) {
	ms := in.ipMACs[ip]
	for i := range ms {
		if ms[i] == m {
			ms = append(ms[:i], ms[i+1:]...)
			break
		}
	}
	switch len(ms) {
	case 0:
		delete(in.ipMACs, ip)
		in.hosts.Delete(netip.PrefixFrom(ip, ip.BitLen()))
	case 1:
		in.stats.add(inNeighIPConflicts, ^uint64(0))
		in.ipMACs[ip] = ms
	default:
		in.ipMACs[ip] = ms
	}
	in.dirtyNeigh[ip] = struct{}{}
}

// markNeighUnder marks the neighbours whose covering route may have
// changed with a change to the route for p.
func (in *Installer) markNeighUnder(p netip.Prefix) {
	for h := range in.hosts.Subnets(p) {
		in.dirtyNeigh[h.Addr()] = struct{}{}
	}
}

func (in *Installer) markAllRoutes() {
	for r := range in.routes.All() {
		in.dirtyRoutes[r.Prefix] = struct{}{}
	}
	for p := range in.instRoutes {
		in.dirtyRoutes[p] = struct{}{}
	}
	for p := range in.pendRoutes {
		in.dirtyRoutes[p] = struct{}{}
	}
}

func (in *Installer) markAllNeigh() {
	for ip := range in.ipMACs {
		in.dirtyNeigh[ip] = struct{}{}
	}
	for ip := range in.instNeigh {
		in.dirtyNeigh[ip] = struct{}{}
	}
	for ip := range in.pendNeigh {
		in.dirtyNeigh[ip] = struct{}{}
	}
}

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
	if reqs := append(nstrays, strays...); len(reqs) > 0 {
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

// dumpOwnRoutes reads the routes with rtm's mark in rtm's table. Those
// the model holds become the installed view; the others come back as
// delete requests.
func (in *Installer) dumpOwnRoutes() (map[netip.Prefix]instRoute, [][]byte, error) {
	routes := map[netip.Prefix]instRoute{}
	var strays [][]byte
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
			if r.table != k.table || r.protocol != k.proto || r.flags&unix.RTM_F_CLONED != 0 {
				return nil
			}
			if ir, ok := in.ownRoute(&r, k); ok {
				if _, dup := routes[r.dst]; !dup {
					routes[r.dst] = ir
					return nil
				}
			}
			sk := k
			sk.metric = r.metric
			strays = append(strays, routeDelRequest(sk, r.dst, r.typ, r.tos))
			return nil
		})
		if err != nil && !errors.Is(err, errDumpInterrupted) {
			return nil, nil, err
		}
	}
	return routes, strays, nil
}

// ownRoute maps a kernel route with rtm's mark onto rtm's model.
func (in *Installer) ownRoute(r *kroute, k routeKey) (instRoute, bool) {
	if r.metric != k.metric || keyed(r, k.table) != importable || kindOf(r) != importable {
		return instRoute{}, false
	}
	name, _ := in.links.name(r.oif)
	return instRoute{r: store.Route{Prefix: r.dst, Gateway: r.gw, Dev: name}, ifindex: r.oif}, true
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
			neigh[n.ip] = instNeigh{ifindex: n.ifindex, mac: store.MAC(n.lladdr)}
			return nil
		})
		if err != nil && !errors.Is(err, errDumpInterrupted) {
			return nil, nil, err
		}
	}
	return neigh, strays, nil
}

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
	route   store.Route
	ip      netip.Addr // neighbours
	mac     store.MAC
	ifindex int32
}

func (o *op) isRoute() bool { return o.kind <= opRouteDel }

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
		return routeDelRequest(in.key(o.prefix.Addr()), o.prefix, 0, 0)
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
	defer in.updateGauges()
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
				delete(in.pendRoutes, o.prefix)
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
				delete(in.pendNeigh, o.ip)
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
func (in *Installer) claimRoutes(ops []op, idx []int) {
	own, _, err := in.dumpOwnRoutes()
	if err != nil {
		in.stats.inc(inNetlinkErrors)
		return
	}
	for _, i := range idx {
		p := ops[i].prefix
		if ir, ok := own[p]; ok {
			in.instRoutes[p] = ir
			in.dirtyRoutes[p] = struct{}{}
			continue
		}
		in.routePending(p, &pending{reason: "another owner's route holds the prefix", foreign: true})
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
	in.logf("kernel install: route %s pending: %s", routeString(r), pe.reason)
}

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
	in.logf("kernel install: neighbour %s pending: %s", ip, pe.reason)
}

func (in *Installer) updateGauges() {
	in.stats.set(inRoutes, uint64(len(in.instRoutes)))
	in.stats.set(inNeigh, uint64(len(in.instNeigh)))
	in.stats.set(inRoutesPending, uint64(len(in.pendRoutes)))
	in.stats.set(inNeighPending, uint64(len(in.pendNeigh)))
}

// watchLinks follows device events: a device that appears or comes up
// gets the routes and neighbours that waited for it; one that goes down
// or away has lost them in the kernel.
func (in *Installer) watchLinks() {
	defer in.wg.Done()
	for {
		b, err := in.watch.recv()
		if err != nil {
			select {
			case <-in.done:
				return
			default:
			}
			if errors.Is(err, os.ErrClosed) {
				return
			}
			in.stats.inc(inNetlinkErrors)
			in.mu.Lock()
			if !in.closed {
				in.logf("kernel install: device events: %v; re-reading the kernel", err)
				if err := in.resync(); err != nil {
					in.logf("%v", err)
				}
				in.converge()
			}
			in.mu.Unlock()
			continue
		}
		in.mu.Lock()
		if in.closed {
			in.mu.Unlock()
			return
		}
		if err := forMessages(b, in.linkMessage); err != nil {
			in.stats.inc(inNetlinkErrors)
		}
		in.converge()
		in.mu.Unlock()
	}
}

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
