package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// The decoders below read rtnetlink messages as the kernel sends them.
// They check every length against the bytes present and return an error
// for anything malformed: a message is input, never trusted to fit.

// Attribute and flag numbers missing from x/sys/unix or worth naming.
const (
	ndaProtocol = 12 // NDA_PROTOCOL: u8, the neighbour's owner (iproute2 "protocol")
	rtaNHID     = 30 // RTA_NH_ID: the route uses a nexthop object
	nhaFDB      = 11 // NHA_FDB: a nexthop for bridge FDB entries, never a route's
	nlaTypeMask = 0x3fff
)

var errMalformed = errors.New("malformed netlink message")

// message is one netlink message; data is its payload after the header.
type message struct {
	typ   uint16
	flags uint16
	seq   uint32
	pid   uint32
	data  []byte
}

func nlAlign(n int) int { return (n + 3) &^ 3 }

// forMessages calls fn for each message in a datagram.
func forMessages(b []byte, fn func(message) error) error {
	ne := binary.NativeEndian
	for len(b) > 0 {
		if len(b) < unix.NLMSG_HDRLEN {
			return fmt.Errorf("%w: %d trailing bytes", errMalformed, len(b))
		}
		l := int(ne.Uint32(b[0:4]))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return fmt.Errorf("%w: length %d of %d bytes", errMalformed, l, len(b))
		}
		m := message{
			typ:   ne.Uint16(b[4:6]),
			flags: ne.Uint16(b[6:8]),
			seq:   ne.Uint32(b[8:12]),
			pid:   ne.Uint32(b[12:16]),
			data:  b[unix.NLMSG_HDRLEN:l],
		}
		if err := fn(m); err != nil {
			return err
		}
		b = b[min(nlAlign(l), len(b)):]
	}
	return nil
}

// forAttrs calls fn for each route attribute in b.
func forAttrs(b []byte, fn func(typ uint16, val []byte)) error {
	ne := binary.NativeEndian
	for len(b) > 0 {
		if len(b) < 4 {
			return fmt.Errorf("%w: %d trailing attribute bytes", errMalformed, len(b))
		}
		l := int(ne.Uint16(b[0:2]))
		if l < 4 || l > len(b) {
			return fmt.Errorf("%w: attribute length %d of %d bytes", errMalformed, l, len(b))
		}
		fn(ne.Uint16(b[2:4])&nlaTypeMask, b[4:l])
		b = b[min(nlAlign(l), len(b)):]
	}
	return nil
}

// decodeError returns the errno of an NLMSG_ERROR message (nil for an
// ack), with the kernel's extended-ack text when it sent one.
func decodeError(m message) error {
	if len(m.data) < 4 {
		return fmt.Errorf("%w: short error message", errMalformed)
	}
	code := int32(binary.NativeEndian.Uint32(m.data[0:4]))
	if code == 0 {
		return nil
	}
	e := syscall.Errno(-code)
	if code > 0 {
		e = syscall.Errno(code)
	}
	if m.flags&unix.NLM_F_ACK_TLVS == 0 {
		return e
	}
	// nlmsgerr: error, then the request's header, then (unless capped)
	// the request's payload, then the TLVs.
	off := 4 + unix.NLMSG_HDRLEN
	if m.flags&unix.NLM_F_CAPPED == 0 && len(m.data) >= off {
		off += nlAlign(int(binary.NativeEndian.Uint32(m.data[4:8]))) - unix.NLMSG_HDRLEN
	}
	if off > len(m.data) || off < 0 {
		return e
	}
	var text string
	_ = forAttrs(m.data[off:], func(typ uint16, val []byte) {
		if typ == unix.NLMSGERR_ATTR_MSG {
			text = cString(val)
		}
	})
	if text == "" {
		return e
	}
	return &kernelError{errno: e, text: text}
}

// kernelError is an errno with the kernel's explanation.
type kernelError struct {
	errno syscall.Errno
	text  string
}

func (e *kernelError) Error() string { return e.errno.Error() + ": " + e.text }
func (e *kernelError) Unwrap() error { return e.errno }

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// addrFrom decodes an IPv4 or IPv6 address attribute of the given family.
func addrFrom(family uint8, b []byte) (netip.Addr, bool) {
	switch {
	case family == unix.AF_INET && len(b) == 4:
		return netip.AddrFrom4([4]byte(b)), true
	case family == unix.AF_INET6 && len(b) == 16:
		return netip.AddrFrom16([16]byte(b)), true
	}
	return netip.Addr{}, false
}

// kroute is a kernel route as rtm reads it: the key fields, the kind and
// at most one next hop (nhops counts them).
type kroute struct {
	family   uint8
	dst      netip.Prefix
	srcLen   uint8
	tos      uint8
	table    uint32
	protocol uint8
	scope    uint8
	typ      uint8
	flags    uint32
	metric   uint32
	oif      int32
	gw       netip.Addr
	nhops    uint16 // 0 without a device, 1, or the multipath count
	nhid     uint32 // nexthop object id, 0 if none
	encap    bool   // lightweight tunnel encapsulation
	via      bool   // RTA_VIA: next hop of another family
	onlink   bool   // RTNH_F_ONLINK: the gateway need not be on the device's subnet
}

// decodeRoute decodes the payload of RTM_NEWROUTE / RTM_DELROUTE.
func decodeRoute(b []byte) (kroute, error) {
	var r kroute
	if len(b) < unix.SizeofRtMsg {
		return r, fmt.Errorf("%w: short rtmsg", errMalformed)
	}
	r.family, r.srcLen, r.tos = b[0], b[2], b[3]
	dstLen := int(b[1])
	r.table = uint32(b[4])
	r.protocol, r.scope, r.typ = b[5], b[6], b[7]
	r.flags = binary.NativeEndian.Uint32(b[8:12])
	// A single next hop's flags share rtm_flags with the route's.
	r.onlink = r.flags&unix.RTNH_F_ONLINK != 0
	bits := 32
	zero := netip.IPv4Unspecified()
	switch r.family {
	case unix.AF_INET:
	case unix.AF_INET6:
		bits, zero = 128, netip.IPv6Unspecified()
	default:
		return r, nil // other families (MPLS, multicast routing) are not decoded
	}
	if dstLen > bits {
		return r, fmt.Errorf("%w: prefix length %d", errMalformed, dstLen)
	}
	dst := zero
	var bad error
	err := forAttrs(b[unix.SizeofRtMsg:], func(typ uint16, val []byte) {
		switch typ {
		case unix.RTA_DST:
			if a, ok := addrFrom(r.family, val); ok {
				dst = a
			} else {
				bad = fmt.Errorf("%w: RTA_DST of %d bytes", errMalformed, len(val))
			}
		case unix.RTA_TABLE:
			if len(val) == 4 {
				r.table = binary.NativeEndian.Uint32(val)
			}
		case unix.RTA_PRIORITY:
			if len(val) == 4 {
				r.metric = binary.NativeEndian.Uint32(val)
			}
		case unix.RTA_OIF:
			if len(val) == 4 {
				r.oif = int32(binary.NativeEndian.Uint32(val))
				r.nhops = max(r.nhops, 1)
			}
		case unix.RTA_GATEWAY:
			// Through 0.0.0.0 or :: is connected, to Linux and to rtm.
			if a, ok := addrFrom(r.family, val); ok && !a.IsUnspecified() {
				r.gw = a
			}
		case unix.RTA_MULTIPATH:
			if e := r.decodeMultipath(val); e != nil {
				bad = e
			}
		case unix.RTA_VIA:
			r.via = true
		case unix.RTA_ENCAP:
			r.encap = true
		case rtaNHID:
			if len(val) == 4 {
				r.nhid = binary.NativeEndian.Uint32(val)
			}
		}
	})
	if err != nil {
		return r, err
	}
	if bad != nil {
		return r, bad
	}
	r.dst = netip.PrefixFrom(dst, dstLen)
	return r, nil
}

// decodeMultipath reads RTA_MULTIPATH: a list of rtnexthop, each
// followed by its own attributes. One entry is a plain next hop.
func (r *kroute) decodeMultipath(b []byte) error {
	ne := binary.NativeEndian
	n := 0
	for len(b) > 0 {
		if len(b) < unix.SizeofRtNexthop {
			return fmt.Errorf("%w: short rtnexthop", errMalformed)
		}
		l := int(ne.Uint16(b[0:2]))
		if l < unix.SizeofRtNexthop || l > len(b) {
			return fmt.Errorf("%w: rtnexthop length %d", errMalformed, l)
		}
		n++
		if n == 1 {
			r.oif = int32(ne.Uint32(b[4:8]))
			r.onlink = r.onlink || b[2]&unix.RTNH_F_ONLINK != 0
			if err := forAttrs(b[unix.SizeofRtNexthop:l], func(typ uint16, val []byte) {
				switch typ {
				case unix.RTA_GATEWAY:
					if a, ok := addrFrom(r.family, val); ok && !a.IsUnspecified() {
						r.gw = a
					}
				case unix.RTA_VIA:
					r.via = true
				case unix.RTA_ENCAP:
					r.encap = true
				}
			}); err != nil {
				return err
			}
		}
		b = b[min(nlAlign(l), len(b)):]
	}
	r.nhops = uint16(min(n, 0xffff))
	return nil
}

// kneigh is a kernel neighbour entry.
type kneigh struct {
	family   uint8
	ifindex  int32
	state    uint16
	flags    uint8
	ip       netip.Addr
	lladdr   [6]byte
	llen     int // length of the link-layer address, 0 if none
	protocol uint8
}

// decodeNeigh decodes the payload of RTM_NEWNEIGH / RTM_DELNEIGH.
func decodeNeigh(b []byte) (kneigh, error) {
	var n kneigh
	if len(b) < unix.SizeofNdMsg {
		return n, fmt.Errorf("%w: short ndmsg", errMalformed)
	}
	ne := binary.NativeEndian
	n.family = b[0]
	n.ifindex = int32(ne.Uint32(b[4:8]))
	n.state = ne.Uint16(b[8:10])
	n.flags = b[10]
	if n.family != unix.AF_INET && n.family != unix.AF_INET6 {
		return n, nil // bridge FDB and others are not decoded
	}
	err := forAttrs(b[unix.SizeofNdMsg:], func(typ uint16, val []byte) {
		switch typ {
		case unix.NDA_DST:
			n.ip, _ = addrFrom(n.family, val)
		case unix.NDA_LLADDR:
			n.llen = len(val)
			if len(val) == 6 {
				n.lladdr = [6]byte(val)
			}
		case ndaProtocol:
			if len(val) == 1 {
				n.protocol = val[0]
			}
		}
	})
	return n, err
}

// klink is what rtm needs of a network device.
type klink struct {
	family uint8
	index  int32
	flags  uint32
	name   string
}

// decodeLink decodes the payload of RTM_NEWLINK / RTM_DELLINK.
func decodeLink(b []byte) (klink, error) {
	var l klink
	if len(b) < unix.SizeofIfInfomsg {
		return l, fmt.Errorf("%w: short ifinfomsg", errMalformed)
	}
	ne := binary.NativeEndian
	l.family = b[0]
	l.index = int32(ne.Uint32(b[4:8]))
	l.flags = ne.Uint32(b[8:12])
	err := forAttrs(b[unix.SizeofIfInfomsg:], func(typ uint16, val []byte) {
		if typ == unix.IFLA_IFNAME {
			l.name = cString(val)
		}
	})
	return l, err
}

// knexthop is a kernel nexthop object (ip nexthop): either one next hop
// (a gateway or none, a device) or a group of other objects.
type knexthop struct {
	id        uint32
	family    uint8 // of the gateway; AF_UNSPEC for a group
	oif       int32
	gw        netip.Addr
	group     []uint32 // member ids of a group, nil for a single next hop
	blackhole bool
	encap     bool // lightweight tunnel encapsulation
	fdb       bool
	onlink    bool // RTNH_F_ONLINK
}

// decodeNexthop decodes the payload of RTM_NEWNEXTHOP / RTM_DELNEXTHOP.
func decodeNexthop(b []byte) (knexthop, error) {
	var nh knexthop
	if len(b) < unix.SizeofNhmsg {
		return nh, fmt.Errorf("%w: short nhmsg", errMalformed)
	}
	ne := binary.NativeEndian
	nh.family = b[0]
	nh.onlink = ne.Uint32(b[4:8])&unix.RTNH_F_ONLINK != 0
	var bad error
	err := forAttrs(b[unix.SizeofNhmsg:], func(typ uint16, val []byte) {
		switch typ {
		case unix.NHA_ID:
			if len(val) == 4 {
				nh.id = ne.Uint32(val)
			}
		case unix.NHA_OIF:
			if len(val) == 4 {
				nh.oif = int32(ne.Uint32(val))
			}
		case unix.NHA_GATEWAY:
			if a, ok := addrFrom(nh.family, val); ok {
				if !a.IsUnspecified() {
					nh.gw = a
				}
			} else {
				bad = fmt.Errorf("%w: NHA_GATEWAY of %d bytes for family %d", errMalformed, len(val), nh.family)
			}
		case unix.NHA_GROUP:
			if len(val) == 0 || len(val)%unix.SizeofNexthopGrp != 0 {
				bad = fmt.Errorf("%w: NHA_GROUP of %d bytes", errMalformed, len(val))
				return
			}
			nh.group = make([]uint32, 0, len(val)/unix.SizeofNexthopGrp)
			for ; len(val) > 0; val = val[unix.SizeofNexthopGrp:] {
				nh.group = append(nh.group, ne.Uint32(val))
			}
		case unix.NHA_BLACKHOLE:
			nh.blackhole = true
		case unix.NHA_ENCAP, unix.NHA_ENCAP_TYPE:
			nh.encap = true
		case nhaFDB:
			nh.fdb = true
		}
	})
	if err != nil {
		return nh, err
	}
	if bad != nil {
		return nh, bad
	}
	if nh.id == 0 {
		return nh, fmt.Errorf("%w: nexthop without NHA_ID", errMalformed)
	}
	return nh, nil
}
