// Package kernel is rtm's bridge to the Linux kernel's routing and
// neighbour tables: an Importer reads them into rtm (server
// --from-kernel) and an Installer programs rtm's tables into them (client
// --to-kernel). Both work on the network namespace of the thread that
// creates them and speak rtnetlink on sockets of their own; requests are
// built with github.com/vishvananda/netlink's request builder. An
// FPMImporter takes routes in the kernel's own format from FRR's zebra
// instead (server --from-fpm). Of rtm, the package depends on
// rtm/store/entry for its value types, and on rtm/store for RouteTable
// (the installer's longest-prefix match).
//
// # Model
//
// rtm holds one route per prefix: a gateway (or none: a connected route,
// `192.0.2.0/24 dev veth0 scope link`, has the zero netip.Addr as
// Gateway) and a device. Its MAC table maps a MAC to one IP.
//
// # Import
//
//   - Nothing lost. The importer subscribes to link, route, nexthop,
//     neighbour and IPv4 address events before it dumps, then follows
//     the events. An overflow of the event socket (ENOBUFS) means events
//     were lost: it discards what is queued, dumps again and gives the
//     sink only the difference between what it last told the sink and
//     the kernel now ("resyncs", "overflows"). So do the changes the
//     kernel makes without a notification per route: a device going down
//     or away, an IPv4 address removed. A large receive buffer (SO_RCVBUFFORCE, else
//     SO_RCVBUF) makes overflows rare; correctness does not depend on it.
//   - Routes. Only the chosen table (main by default), IPv4 and IPv6. For
//     each prefix the kernel may hold several routes (metrics, appended
//     aliases); the importer keeps them all and exports the one the
//     kernel forwards with (lowest metric, first alias) if the model holds
//     it: unicast, one next hop with a device. Every route message the
//     model cannot hold is counted by kind (skipped_blackhole,
//     skipped_multipath, skipped_other_table, ...; dump entries and
//     notifications alike, so a resync counts them again). A blackhole
//     or multipath route that is the kernel's best for its prefix hides
//     the prefix: rtm shows nothing rather than a route the kernel does
//     not use. Cached and exception entries, TOS- and source-specific
//     routes are other keys and are ignored (counted). A gateway marked
//     onlink (RTNH_F_ONLINK, on the route or its nexthop object) need not
//     be on the device's subnet; the model has no such flag, and an
//     installer without it would be refused, so it is skipped
//     ("skipped_onlink"). IPv6 prefixes
//     inside fe80::/10 are skipped: the kernel keys them by device (one
//     fe80::/64 per link), rtm by prefix alone; ff00::/8 likewise.
//     Link-local gateways (via fe80::1 dev eth0) are imported.
//   - Nexthop objects. A route may name a kernel nexthop object
//     (RTA_NH_ID: `ip route add ... nhid 6`), as FRR and every current
//     routing daemon install them. The importer follows the objects
//     too: it subscribes to RTNLGRP_NEXTHOP with the rest, and each read
//     of the kernel dumps the objects (RTM_GETNEXTHOP) before the routes
//     that use them. A route through one next hop, or through a group of
//     one, imports as that hop's gateway (or none) and device; a group of
//     several is multipath ("skipped_nexthop_group"). A route is judged
//     by its object as the object is now, whatever next hops the route
//     message carried: replacing an object changes every route that uses
//     it, whether the kernel announces those routes again or not
//     (net.ipv4.nexthop_compat_mode); deleting an object deletes its
//     routes, as the kernel does without a notification per IPv4 route,
//     and a group left without members goes with them. A route whose
//     object the importer has not seen waits for it
//     ("skipped_unknown_nexthop").
//   - Neighbours. REACHABLE, STALE, DELAY, PROBE, PERMANENT and NOARP
//     entries with a 6-byte unicast link-layer address are MAC entries;
//     INCOMPLETE, FAILED, NONE, or no address are absent, and a change
//     to such a state deletes. Proxy entries, zero or group MACs and
//     multicast, loopback or unspecified IPs are skipped and counted.
//   - One IP per MAC. The kernel keys neighbours by (device, IP), so
//     several may claim one MAC (a dual-stack host, the same MAC on two
//     links). The importer keeps every claim; the MAC's IP is the claim
//     of the preferred family (IPv4 unless PreferFamily is 6), then the
//     lowest address, then the lowest device index. The winner is a
//     function of the set of claims, so it moves only when a claim that
//     beats it arrives or it goes (then the next claim takes over), never
//     on unrelated events. "neigh_conflicts" is the number of MACs
//     currently claimed by more than one IP.
//   - Mixing with typed changes. The importer remembers what it told the
//     sink and deletes only keys it set. A change typed into rtm for a
//     key the kernel also has lasts until the kernel next changes that
//     key: last writer wins. A resync corrects keys the importer set and
//     never deletes keys it did not set.
//
// # FPM
//
// An FPMImporter is zebra's Forwarding Plane Manager: zebra's
// dplane_fpm_nl module (zebra -M dplane_fpm_nl, `fpm address 127.0.0.1
// port 2620`) dials it over TCP and sends every change of the routes it
// selects as rtnetlink messages in frames (fpmframe.go). The importer
// keeps the same route view as an Importer (view.go) and so maps routes
// and nexthop objects by the same rules and counts the same skips; zebra
// selects one route per prefix, so a route message replaces the prefix's
// route and a delete removes it.
//
//   - Who may connect. The listener is on loopback (127.0.0.1:2620)
//     unless another address is given; one that is not loopback is
//     logged as open to whoever reaches it. TCP has no SO_PEERCRED, so
//     the importer asks the kernel who owns the other end of each
//     connection (sock_diag, peer.go): a socket of this host must belong
//     to root, the importer's uid, ZebraUser (frr) or an AllowUIDs uid;
//     a connection from another host comes only to an address asked for.
//     One zebra at a time: a second connection is refused. Refusals are
//     counted ("connections_refused") and logged with the reason.
//   - Devices. zebra numbers devices (ifindex); rtm names them by the
//     devices of its own network namespace, listed at start and
//     followed. zebra and rtm must share the namespace, as they do on
//     one host; the messages are in the host's byte order, as zebra
//     writes them.
//   - Frames rtm cannot read (another version or type, a length that
//     does not fit, a malformed message) close that connection and are
//     counted ("malformed_frames"); each frame is decoded whole before
//     any of it is applied, so a bad one changes nothing. zebra
//     reconnects in 3 s and sends its table again.
//   - Replays. zebra sends its whole table on each connection and marks
//     neither end of it. The replay is taken to be over once 3 s pass
//     without a frame that names a route or nexthop object not yet named
//     on the connection (replay.go says why that is safe); then what rtm
//     held from before and zebra did not name is removed
//     ("stale_routes_removed"), and rtm equals zebra's table. Until then,
//     and while no zebra is connected, the routes stay.
//   - A frame applies whole: zebra's delete and create of a route whose
//     next hops changed reach the sink as one update.
//
// # Install
//
//   - The mark. Routes go into one table (main by default) with rtm's
//     protocol number (82 by default: `ip route show proto 82`).
//     Connected routes are installed scope link. Neighbours are PERMANENT
//     and carry the same number in NDA_PROTOCOL (`ip neigh show proto
//     82`); the library's Neigh type has no such field, so the attribute
//     is added with its low-level builder (nl.NewRtAttr).
//   - Only marked entries are changed or deleted. New keys are created
//     with NLM_F_EXCL; EEXIST means another owner holds the key, unless a
//     re-read shows rtm's mark (left by a predecessor), when the entry is
//     taken over. A foreign key is counted once ("route_foreign",
//     "neigh_foreign"), logged once, and retried every RetryInterval
//     until it frees up; it is never replaced. Route deletes carry the
//     protocol, which the kernel matches; neighbour deletes cannot, so
//     the installer deletes only neighbours it knows carry its mark.
//   - Neighbour devices. A MAC entry's IP goes on the device of the
//     longest-prefix route covering it in rtm's own route table; a route
//     change moves the neighbours under it. Without a covering route it
//     waits. Two MAC entries with one IP: the lowest MAC is installed
//     ("neigh_ip_conflicts").
//   - Reconcile makes the kernel equal to a full state: it re-reads the
//     marked entries, adds, replaces and deletes, so a restarted
//     installer cleans up after one that crashed. Apply applies changes
//     (entry.Change) in order. Snapshot and Changes make an Installer a
//     subscriber of a client: the kernel follows what the client applies.
//   - It watches what it installed. Route and neighbour events tell it
//     when another owner puts an entry in place of one of rtm's, or when
//     someone deletes one: the key is then no longer taken for rtm's, and
//     the next round adds it again with NLM_F_EXCL, which restores a
//     deleted entry within a moment, takes over one still marked, and
//     leaves another owner's alone. An update never replaces another
//     owner's entry, save one put in place in the instant before rtm's
//     replace reaches the kernel.
//   - Refusals never stop the installer. A change the kernel refuses is
//     logged once per reason (the first 8 of a round one by one, then how
//     many more), counted, and kept pending: a missing or
//     down device is retried when a link event says it is up, anything
//     else every RetryInterval and after a connected route is added. A
//     device that goes down or away takes rtm's entries on it with it;
//     they come back with the device. An entry rtm's own rules refuse
//     (an old store's route through a device named with ',') is never
//     installed, and logged once, not at every resync.
//   - Speed. One socket; a batch of requests goes out in one datagram in
//     which only the last asks for an ack, so the kernel answers only
//     failures and the end of the batch.
//
// Known limits: the importer's IPv6 view of several routes of one prefix and
// metric (device routes, ECMP siblings) follows the kernel's
// notifications, which do not always say which sibling changed: when
// unsure it re-reads the kernel.
package kernel
