package kernel

import (
	"net/netip"

	"rtm/store/entry"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Requests are built with the netlink library's low-level builder
// (nl.NetlinkRequest, nl.RtAttr). Its high-level calls wait for one ack
// per request and its Neigh type has no protocol field; rtm needs both
// batching and NDA_PROTOCOL, so it builds the messages and sends them on
// its own socket. The batch sender sets sequence numbers and NLM_F_ACK.

func family(a netip.Addr) uint8 {
	if a.Is4() {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// routeKey is what identifies one of rtm's routes in the kernel.
type routeKey struct {
	table  uint32
	proto  uint8
	metric uint32
}

// rtmTable is the 8-bit table field: tables above 255 travel in RTA_TABLE.
func rtmTable(t uint32) uint8 {
	if t > 255 {
		return unix.RT_TABLE_COMPAT
	}
	return uint8(t)
}

// routeRequest is RTM_NEWROUTE for r through device ifindex. A route
// without a gateway is connected: scope link.
func routeRequest(k routeKey, r entry.Route, ifindex int32, flags int) []byte {
	req := nl.NewNetlinkRequest(unix.RTM_NEWROUTE, flags)
	msg := &nl.RtMsg{RtMsg: unix.RtMsg{
		Family:   family(r.Prefix.Addr()),
		Dst_len:  uint8(r.Prefix.Bits()),
		Table:    rtmTable(k.table),
		Protocol: k.proto,
		Scope:    unix.RT_SCOPE_UNIVERSE,
		Type:     unix.RTN_UNICAST,
	}}
	if !r.Gateway.IsValid() {
		msg.Scope = unix.RT_SCOPE_LINK
	}
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.RTA_DST, r.Prefix.Addr().AsSlice()))
	req.AddData(nl.NewRtAttr(unix.RTA_TABLE, nl.Uint32Attr(k.table)))
	req.AddData(nl.NewRtAttr(unix.RTA_PRIORITY, nl.Uint32Attr(k.metric)))
	req.AddData(nl.NewRtAttr(unix.RTA_OIF, nl.Uint32Attr(uint32(ifindex))))
	if r.Gateway.IsValid() {
		req.AddData(nl.NewRtAttr(unix.RTA_GATEWAY, r.Gateway.AsSlice()))
	}
	return req.Serialize()
}

// routeDelRequest is RTM_DELROUTE for the route of prefix p with rtm's
// protocol and metric: the kernel matches the protocol, so a delete can
// never remove another owner's route. typ and tos select one of rtm's
// own routes that rtm's model does not hold (found by a reconcile). A
// next hop narrows it to that route: an IPv4 alias of the same metric,
// or one hop of an IPv6 ECMP route, which may hold another owner's hops
// beside rtm's (without one, the kernel deletes every hop). The hop is
// a nexthop object's id if nhid is not 0 (the kernel matches a route
// through one by the id alone), else gw and oif (zero for none).
func routeDelRequest(k routeKey, p netip.Prefix, typ, tos uint8, nhid uint32, gw netip.Addr, oif int32) []byte {
	req := nl.NewNetlinkRequest(unix.RTM_DELROUTE, 0)
	req.AddData(&nl.RtMsg{RtMsg: unix.RtMsg{
		Family:   family(p.Addr()),
		Dst_len:  uint8(p.Bits()),
		Tos:      tos,
		Table:    rtmTable(k.table),
		Protocol: k.proto,
		Scope:    unix.RT_SCOPE_NOWHERE,
		Type:     typ,
	}})
	req.AddData(nl.NewRtAttr(unix.RTA_DST, p.Addr().AsSlice()))
	req.AddData(nl.NewRtAttr(unix.RTA_TABLE, nl.Uint32Attr(k.table)))
	req.AddData(nl.NewRtAttr(unix.RTA_PRIORITY, nl.Uint32Attr(k.metric)))
	switch {
	case nhid != 0:
		req.AddData(nl.NewRtAttr(rtaNHID, nl.Uint32Attr(nhid)))
	default:
		if oif != 0 {
			req.AddData(nl.NewRtAttr(unix.RTA_OIF, nl.Uint32Attr(uint32(oif))))
		}
		if gw.IsValid() {
			req.AddData(nl.NewRtAttr(unix.RTA_GATEWAY, gw.AsSlice()))
		}
	}
	return req.Serialize()
}

// neighRequest is RTM_NEWNEIGH: a PERMANENT entry ip lladdr mac on
// ifindex, marked with rtm's protocol in NDA_PROTOCOL (as `ip neigh add
// ... nud permanent protocol N` does).
func neighRequest(proto uint8, ip netip.Addr, ifindex int32, mac entry.MAC, flags int) []byte {
	req := nl.NewNetlinkRequest(unix.RTM_NEWNEIGH, flags)
	req.AddData(&netlink.Ndmsg{
		Family: family(ip),
		Index:  uint32(ifindex),
		State:  unix.NUD_PERMANENT,
		Type:   unix.RTN_UNICAST,
	})
	req.AddData(nl.NewRtAttr(unix.NDA_DST, ip.AsSlice()))
	req.AddData(nl.NewRtAttr(unix.NDA_LLADDR, mac[:]))
	req.AddData(nl.NewRtAttr(ndaProtocol, nl.Uint8Attr(proto)))
	return req.Serialize()
}

// neighDelRequest is RTM_DELNEIGH for ip on ifindex. The kernel does not
// match the protocol on delete; the installer only deletes entries it
// knows carry rtm's mark.
func neighDelRequest(ip netip.Addr, ifindex int32) []byte {
	req := nl.NewNetlinkRequest(unix.RTM_DELNEIGH, 0)
	req.AddData(&netlink.Ndmsg{Family: family(ip), Index: uint32(ifindex)})
	req.AddData(nl.NewRtAttr(unix.NDA_DST, ip.AsSlice()))
	return req.Serialize()
}
