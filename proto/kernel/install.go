package kernel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gaissmai/bart"
	"golang.org/x/sys/unix"

	"rtm/store"
	"rtm/store/entry"
)

// DefaultProtocol is the routing protocol number that marks rtm's routes
// and neighbours in the kernel (`ip route show proto 82`). iproute2's
// rt_protos names no protocol 82.
const DefaultProtocol = 82

// takenProtocols are the routing protocol numbers that others' entries
// carry: the kernel's own and the daemons' (linux/rtnetlink.h, iproute2's
// rt_protos, FRR's zebra). An installer takes every entry of its number
// as its own and deletes those its tables lack, so with one of these it
// would delete the connected routes (2), an administrator's (3, 4) or
// FRR's (186 and up).
var takenProtocols = map[uint8]string{
	unix.RTPROT_REDIRECT: "redirect", unix.RTPROT_KERNEL: "kernel", unix.RTPROT_BOOT: "boot",
	unix.RTPROT_STATIC: "static", unix.RTPROT_GATED: "gated", unix.RTPROT_RA: "ra", unix.RTPROT_MRT: "mrt",
	unix.RTPROT_ZEBRA: "zebra", unix.RTPROT_BIRD: "bird", unix.RTPROT_DNROUTED: "dnrouted",
	unix.RTPROT_XORP: "xorp", unix.RTPROT_NTK: "ntk", unix.RTPROT_DHCP: "dhcp",
	unix.RTPROT_MROUTED: "mrouted", unix.RTPROT_KEEPALIVED: "keepalived", unix.RTPROT_BABEL: "babel",
	unix.RTPROT_OVN: "ovn", unix.RTPROT_OPENR: "openr",
	unix.RTPROT_BGP: "bgp", unix.RTPROT_ISIS: "isis", unix.RTPROT_OSPF: "ospf", unix.RTPROT_RIP: "rip",
	190: "ripng", 191: "nhrp", unix.RTPROT_EIGRP: "eigrp", 193: "ldp", 194: "sharp", 195: "pbr",
	196: "static of FRR", 197: "openfabric", 198: "srte",
}

// CheckProtocol refuses a number an installer must not mark its entries
// with: outside 1 to 255, or one that others' entries carry.
func CheckProtocol(p int) error {
	if p < 1 || p > 255 {
		return fmt.Errorf("want 1 to 255 (rtm's default is %d)", DefaultProtocol)
	}
	if name, ok := takenProtocols[uint8(p)]; ok {
		return fmt.Errorf("%d is taken (%s: ip route show proto %d): rtm takes every route and neighbour of its number as its own and deletes those its tables lack; give a number nobody uses (rtm's default is %d)", p, name, p, DefaultProtocol)
	}
	return nil
}

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
	// RoutesOnly installs no neighbours: the MAC table is taken as
	// empty, and the neighbours of Protocol an earlier run left are
	// deleted. Neighbours have no table: beside a server that imports
	// this namespace's (--from-kernel), each would come back to it as the
	// kernel's, and outlive its source.
	RoutesOnly bool
	// RetryInterval is DefaultRetryInterval if 0.
	RetryInterval time.Duration
	// Logf, if set, gets one line per refused key (once per reason) and
	// per resync.
	Logf func(format string, args ...any)
}

// NetNS returns the inode of the calling thread's network namespace: the
// same for every process in that namespace, and for no other namespace.
func NetNS() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &st); err != nil {
		return 0, fmt.Errorf("network namespace: %w", err)
	}
	return st.Ino, nil
}

// TableID is the kernel's number for a table as ParseTable reads it.
func TableID(t uint32) uint32 {
	if t == 0 {
		return unix.RT_TABLE_MAIN
	}
	return t
}

// ParseTable reads a routing table as rtm's flags take it: "main" (0
// here, 254 to the kernel) or a number from 1.
func ParseTable(v string) (uint32, error) {
	if v == "main" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("want main or a table number from 1, got %q", v)
	}
	return uint32(n), nil
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
	claim      net.Listener // says this namespace's entries of proto are this installer's; nil if the name was taken by another uid
	routesOnly bool         // InstallerOptions.RoutesOnly
	logf       func(string, ...any)
	retry      time.Duration
	stats      *counters

	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	watch     *conn // link, route and neighbour events (watch.go)

	mu     sync.Mutex
	closed bool
	nl     *conn // requests and dumps
	links  *linkTable

	// rtm's tables, as given.
	routes store.RouteTable
	macs   map[entry.MAC]netip.Addr
	ipMACs map[netip.Addr][]entry.MAC // the MAC entries of each IP
	hosts  bart.Table[struct{}]       // the IPs of ipMACs, for the neighbours under a route

	// What the kernel holds with rtm's mark, as last seen.
	instRoutes map[netip.Prefix]instRoute
	instNeigh  map[netip.Addr]instNeigh

	// Keys the kernel refused, and keys to bring in line with the tables.
	pendRoutes  map[netip.Prefix]*pending
	pendNeigh   map[netip.Addr]*pending
	dirtyRoutes map[netip.Prefix]struct{}
	dirtyNeigh  map[netip.Addr]struct{}

	refusedLogged map[string]bool // refused entries logged, with why (logErrors)
	said, unsaid  int             // entries converge logged one by one, and not (sayf)
}

type instRoute struct {
	r       entry.Route
	ifindex int32
}

type instNeigh struct {
	ifindex int32
	mac     entry.MAC
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
	// Without the privilege every change would be refused, and retrying
	// a refusal that no event can lift would only hide it.
	if !mayChangeTables() {
		return nil, fmt.Errorf("kernel install: changing the kernel's tables needs CAP_NET_ADMIN (root), which this process (uid %d) lacks", os.Getuid())
	}
	if opt.Protocol == 0 {
		opt.Protocol = DefaultProtocol
	}
	if opt.Logf == nil {
		opt.Logf = func(string, ...any) {}
	}
	claim, err := claimProtocol(opt.Protocol, opt.Logf)
	if err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started && claim != nil {
			claim.Close()
		}
	}()
	in := &Installer{
		claim:         claim,
		proto:         opt.Protocol,
		routesOnly:    opt.RoutesOnly,
		logf:          opt.Logf,
		retry:         opt.RetryInterval,
		stats:         newCounters(installerNames),
		done:          make(chan struct{}),
		links:         newLinkTable(),
		macs:          map[entry.MAC]netip.Addr{},
		ipMACs:        map[netip.Addr][]entry.MAC{},
		instRoutes:    map[netip.Prefix]instRoute{},
		instNeigh:     map[netip.Addr]instNeigh{},
		pendRoutes:    map[netip.Prefix]*pending{},
		pendNeigh:     map[netip.Addr]*pending{},
		dirtyRoutes:   map[netip.Prefix]struct{}{},
		dirtyNeigh:    map[netip.Addr]struct{}{},
		refusedLogged: map[string]bool{},
	}
	table := TableID(opt.Table)
	in.key4 = routeKey{table: table, proto: in.proto, metric: opt.Metric}
	in.key6 = in.key4
	if opt.Metric == 0 {
		in.key6.metric = 1024 // what the kernel stores for an IPv6 route without one
	}
	if in.retry <= 0 {
		in.retry = DefaultRetryInterval
	}
	if in.watch, err = openConn(unix.RTNLGRP_LINK, unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV6_ROUTE, unix.RTNLGRP_NEIGH); err != nil {
		return nil, fmt.Errorf("kernel install: %w", err)
	}
	// A burst of rtm's own installs comes back as events: room for them,
	// else an overflow costs a re-read of the kernel.
	_ = in.watch.setRecvBuffer(DefaultRecvBuffer, true)
	if in.nl, err = openConn(); err != nil {
		in.watch.close()
		return nil, fmt.Errorf("kernel install: %w", err)
	}
	// Room for a whole batch of refusals; without the privilege to force
	// it, the lost-answer path redoes a batch one request at a time.
	_ = in.nl.setRecvBuffer(requestRecvBuffer, true)
	if err := mayChange(in.nl); err != nil {
		in.watch.close()
		in.nl.close()
		return nil, err
	}
	links, err := dumpLinks(in.nl)
	if err != nil {
		in.watch.close()
		in.nl.close()
		return nil, fmt.Errorf("kernel install: list devices: %w", err)
	}
	in.links.replace(links)
	in.wg.Add(2)
	go in.watchKernel()
	go in.retryLoop()
	started = true
	return in, nil
}

// mayChangeTables reports whether this process holds CAP_NET_ADMIN in its
// user namespace. If it cannot tell, it says yes and lets the kernel
// answer.
func mayChangeTables() bool { return holdsNetAdmin(0) }

// holdsNetAdmin reports whether process pid (0: this one) holds
// CAP_NET_ADMIN, an installer's privilege; yes if it cannot tell.
func holdsNetAdmin(pid int) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3, Pid: int32(pid)}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return true
	}
	return data[unix.CAP_NET_ADMIN/32].Effective&(1<<(unix.CAP_NET_ADMIN%32)) != 0
}

// mayChange asks the kernel itself whether this process may change the
// tables of the namespace c is in: the capability must be held in the
// user namespace that owns the network namespace, which capget does not
// tell (unshare -U -r has it in a namespace of its own). rtnetlink checks
// it before it reads a change, so a request it would refuse anyway (a
// route delete with a prefix length of 33, which changes nothing) gets
// EPERM without it and EINVAL with it.
func mayChange(c *conn) error {
	req := make([]byte, unix.NLMSG_HDRLEN+unix.SizeofRtMsg)
	putHeader(req, unix.RTM_DELROUTE, unix.NLM_F_REQUEST|unix.NLM_F_ACK, 0)
	rt := req[unix.NLMSG_HDRLEN:]
	rt[0], rt[1] = unix.AF_INET, 33
	errs := make([]error, 1)
	if err := c.exchange([][]byte{req}, errs); err != nil {
		return fmt.Errorf("kernel install: %w", err)
	}
	if errors.Is(errs[0], unix.EPERM) {
		return fmt.Errorf("kernel install: this network namespace refuses changes from this process (uid %d): it needs CAP_NET_ADMIN in the namespace's own user namespace (root there)", os.Getuid())
	}
	return nil
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
		if in.claim != nil {
			in.claim.Close()
		}
		in.mu.Unlock()
	})
	return nil
}

// claimProtocol binds the abstract socket that names the installer of
// protocol p in this network namespace (abstract names are the
// namespace's own, and go with the process). A second installer of the
// same number would delete the first's entries as ones its tables lack,
// and the first reinstall them, for as long as both ran: it is refused,
// naming the first by its pid, which it learns by connecting (the first
// accepts and closes every connection, so that none waits in its queue
// and the next refused one finds room). Abstract names have no owner: a
// name held by a process without CAP_NET_ADMIN, which cannot install, is
// said and passed over, so that nobody can keep the installer from
// starting by taking its name first.
func claimProtocol(p uint8, logf func(string, ...any)) (net.Listener, error) {
	name := fmt.Sprintf("@rtm-kernel-install-proto-%d", p)
	var holder *unix.Ucred
	// A holder between its bind and its listen, or going, does not answer
	// for a moment: try again before taking it for one that never will.
	for try := 0; ; try++ {
		ln, err := net.Listen("unixpacket", name)
		if err == nil {
			go acceptAndClose(ln)
			return ln, nil
		}
		if !errors.Is(err, unix.EADDRINUSE) {
			return nil, fmt.Errorf("kernel install: claim protocol %d: %w", p, err)
		}
		if holder = holderOf(name); holder != nil || try == 10 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if holder == nil || !holdsNetAdmin(int(holder.Pid)) {
		who := "a process that does not answer"
		if holder != nil {
			who = fmt.Sprintf("pid %d (uid %d), which lacks CAP_NET_ADMIN: no installer", holder.Pid, holder.Uid)
		}
		logf("kernel install: the name that keeps a second installer of protocol %d out of this network namespace (%s) is held by %s; going on without it", p, name, who)
		return nil, nil
	}
	return nil, fmt.Errorf("kernel install: pid %d installs entries with protocol %d in this network namespace already: each would delete the other's as entries its tables lack; stop it, or give this one another --kernel-proto", holder.Pid, p)
}

// acceptAndClose takes every connection to ln and closes it, until ln is
// closed.
func acceptAndClose(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			time.Sleep(10 * time.Millisecond) // out of descriptors or memory, for now
			continue
		}
		c.Close()
	}
}

// holderOf connects to the abstract socket name without waiting and
// returns the credentials its listener had; nil if it does not answer.
func holderOf(name string) *unix.Ucred {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	if unix.Connect(fd, &unix.SockaddrUnix{Name: name}) != nil {
		return nil // its queue is full, or it does not listen
	}
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return nil
	}
	return cred
}

func (in *Installer) key(a netip.Addr) routeKey {
	if a.Is4() {
		return in.key4
	}
	return in.key6
}

// Apply applies changes in order to rtm's tables, then brings the kernel
// in line in as few batches as it can. Create, Update and Replace all set
// the key; a MAC change without an address (an entry gone again before a
// client could read it: its delete follows) is skipped. An invalid change
// is skipped and reported in the returned error; the others are applied.
// Refusals by the kernel are not errors: they are counted, logged and
// retried.
func (in *Installer) Apply(changes ...entry.Change) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return ErrClosed
	}
	var errs []error
	for _, c := range changes {
		if c.Table == entry.MACs && (in.routesOnly || c.Op != entry.Delete && !c.IP.IsValid()) {
			continue
		}
		if err := c.Check(); err != nil {
			errs = append(errs, refusedEntry(c.Table, c.Key(), err))
			continue
		}
		switch {
		case c.Op == entry.Flush:
			if c.Table&entry.Routes != 0 {
				in.markAllRoutes()
				in.routes.Clear()
				in.markAllNeigh()
			}
			if c.Table&entry.MACs != 0 {
				in.markAllNeigh()
				clear(in.macs)
				clear(in.ipMACs)
				in.hosts = bart.Table[struct{}]{}
				in.stats.set(inNeighIPConflicts, 0)
			}
		case c.Table == entry.Routes && c.Op == entry.Delete:
			in.deleteRoute(c.Route.Prefix)
		case c.Table == entry.Routes:
			in.setRoute(c.Route)
		case c.Op == entry.Delete:
			in.deleteMAC(c.MAC)
		default:
			in.setMAC(c.MAC, c.IP)
		}
	}
	in.converge()
	return errors.Join(errs...)
}

// Snapshot and Changes make the Installer a subscriber of a client
// (rtm client --to-kernel): the kernel follows what the client applies,
// whole after each snapshot (Reconcile), then change by change (Apply).
// What the kernel refuses is logged; it is retried as Apply says.

// Snapshot makes the kernel equal to the tables a snapshot gave.
func (in *Installer) Snapshot(_ uint64, routes []entry.Route, macs []entry.MACEntry) {
	in.logErrors(in.Reconcile(routes, macs))
}

// Changes applies a batch of changes a client applied.
func (in *Installer) Changes(_ uint64, cs []entry.Change) {
	in.logErrors(in.Apply(cs...))
}

// errRefusedEntry is an entry rtm's rules refuse (an old store's route
// through a device named with ','): skipped, not installed.
type errRefusedEntry struct {
	what string // "route 10.1.0.0/16", "MAC 02:00:00:00:00:01"
	err  error
}

func (e *errRefusedEntry) Error() string { return e.what + ": " + e.err.Error() + "; not installed" }
func (e *errRefusedEntry) Unwrap() error { return e.err }

func refusedEntry(t entry.Table, key string, err error) error {
	what := "route "
	if t == entry.MACs {
		what = "MAC "
	}
	return &errRefusedEntry{what + key, err}
}

// logErrors logs what Reconcile or Apply returned: an entry refused by
// rtm's rules only the first time, since every resync's snapshot brings
// it again.
func (in *Installer) logErrors(err error) {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, err := range errs {
		var re *errRefusedEntry
		switch {
		case err == nil:
		case errors.As(err, &re) && in.refusedLogged[re.Error()]:
		case re != nil:
			in.refusedLogged[re.Error()] = true
			in.logf("kernel install: %v", err)
		default:
			in.logf("kernel: %v", err)
		}
	}
}

// Reconcile makes the kernel hold exactly routes and macs with rtm's
// mark: it reads what the kernel has with the mark (left by this
// installer or by one that died), adds what is missing, replaces what
// differs and deletes the rest. Entries of other owners are untouched.
// Invalid entries are skipped and reported in the returned error.
func (in *Installer) Reconcile(routes []entry.Route, macs []entry.MACEntry) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return ErrClosed
	}
	if in.routesOnly {
		macs = nil
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
		if err := r.Check(); err != nil {
			errs = append(errs, refusedEntry(entry.Routes, r.Prefix.String(), err))
			continue
		}
		in.routes.Set(&r)
		in.dirtyRoutes[r.Prefix] = struct{}{}
	}
	for _, e := range macs {
		if err := entry.CheckHostIP(e.IP); err != nil {
			errs = append(errs, refusedEntry(entry.MACs, e.MAC.String(), err))
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

func (in *Installer) setRoute(r entry.Route) {
	old, had := in.routes.Get(r.Prefix)
	if had && old == r {
		return
	}
	in.routes.Set(&r)
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

func (in *Installer) setMAC(m entry.MAC, ip netip.Addr) {
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

func (in *Installer) deleteMAC(m entry.MAC) {
	if ip, had := in.macs[m]; had {
		delete(in.macs, m)
		in.dropIPMAC(ip, m)
	}
}

func (in *Installer) dropIPMAC(ip netip.Addr, m entry.MAC) {
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
	for r := range in.routes.Range() {
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
