package kernel

import (
	"encoding/binary"
	"errors"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// payload strips the netlink header from a built request.
func payload(b []byte) []byte { return b[unix.NLMSG_HDRLEN:] }

func TestDecodeRouteRequests(t *testing.T) {
	k := routeKey{table: 1000, proto: 82, metric: 7}
	for _, r := range []struct {
		prefix, gw string
		scope      uint8
	}{
		{"198.51.100.0/24", "192.0.2.254", unix.RT_SCOPE_UNIVERSE},
		{"192.0.2.0/24", "", unix.RT_SCOPE_LINK},
		{"0.0.0.0/0", "192.0.2.1", unix.RT_SCOPE_UNIVERSE},
		{"2001:db8:1::/48", "fe80::1", unix.RT_SCOPE_UNIVERSE},
		{"2001:db8::/64", "", unix.RT_SCOPE_LINK},
	} {
		want := route(r.prefix, r.gw, "veth0")
		got, err := decodeRoute(payload(routeRequest(k, want, 5, unix.NLM_F_CREATE)))
		if err != nil {
			t.Fatalf("%s: %v", r.prefix, err)
		}
		if got.dst != want.Prefix || got.gw != want.Gateway || got.oif != 5 || got.table != 1000 ||
			got.protocol != 82 || got.metric != 7 || got.scope != r.scope || got.typ != unix.RTN_UNICAST || got.nhops != 1 {
			t.Errorf("%s: decoded %+v", r.prefix, got)
		}
		if k := kindOf(&got); k != importable {
			t.Errorf("%s: kind %s, want importable", r.prefix, skipNames[k])
		}
	}
}

func TestDecodeNeighRequest(t *testing.T) {
	b := neighRequest(82, mustAddr("2001:db8::5"), 3, mustMAC("02:00:00:00:00:05"), unix.NLM_F_CREATE)
	n, err := decodeNeigh(payload(b))
	if err != nil {
		t.Fatal(err)
	}
	if n.ip != mustAddr("2001:db8::5") || n.ifindex != 3 || n.protocol != 82 || n.state != unix.NUD_PERMANENT || n.llen != 6 {
		t.Errorf("decoded %+v", n)
	}
	if m, kind := classifyNeigh(&n); kind != neighEntry || m != mustMAC("02:00:00:00:00:05") {
		t.Errorf("classified %s %d", m, kind)
	}
}

// attr appends one route attribute.
func attr(b []byte, typ uint16, val []byte) []byte {
	l := 4 + len(val)
	b = binary.NativeEndian.AppendUint16(b, uint16(l))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, val...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// rtmsg builds an RTM_NEWROUTE payload by hand.
func rtmsg(family, dstLen, typ uint8, flags uint32, attrs ...[]byte) []byte {
	b := []byte{family, dstLen, 0, 0, unix.RT_TABLE_MAIN, unix.RTPROT_BOOT, 0, typ}
	b = binary.NativeEndian.AppendUint32(b, flags)
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

func TestKinds(t *testing.T) {
	dst4 := attr(nil, unix.RTA_DST, []byte{198, 51, 100, 0})
	oif := attr(nil, unix.RTA_OIF, u32(2))
	nh := func(gw byte) []byte {
		a := attr(nil, unix.RTA_GATEWAY, []byte{192, 0, 2, gw})
		h := binary.NativeEndian.AppendUint16(nil, uint16(8+len(a)))
		h = append(h, 0, 0)
		h = binary.NativeEndian.AppendUint32(h, 2)
		return append(h, a...)
	}
	ll := attr(nil, unix.RTA_DST, mustAddr("fe80::").AsSlice())
	mc := attr(nil, unix.RTA_DST, mustAddr("ff00::").AsSlice())
	def6 := attr(nil, unix.RTA_DST, mustAddr("::").AsSlice())
	for _, c := range []struct {
		name string
		msg  []byte
		want skipKind
	}{
		{"unicast", rtmsg(unix.AF_INET, 24, unix.RTN_UNICAST, 0, dst4, oif), importable},
		{"blackhole", rtmsg(unix.AF_INET, 24, unix.RTN_BLACKHOLE, 0, dst4), skipBlackhole},
		{"unreachable", rtmsg(unix.AF_INET, 24, unix.RTN_UNREACHABLE, 0, dst4), skipUnreachable},
		{"prohibit", rtmsg(unix.AF_INET, 24, unix.RTN_PROHIBIT, 0, dst4), skipProhibit},
		{"local", rtmsg(unix.AF_INET, 24, unix.RTN_LOCAL, 0, dst4, oif), skipLocal},
		{"broadcast", rtmsg(unix.AF_INET, 24, unix.RTN_BROADCAST, 0, dst4, oif), skipBroadcast},
		{"anycast", rtmsg(unix.AF_INET, 24, unix.RTN_ANYCAST, 0, dst4, oif), skipAnycast},
		{"multicast type", rtmsg(unix.AF_INET, 24, unix.RTN_MULTICAST, 0, dst4, oif), skipMulticast},
		{"no device", rtmsg(unix.AF_INET, 24, unix.RTN_UNICAST, 0, dst4), skipNoDevice},
		{"multipath", rtmsg(unix.AF_INET, 24, unix.RTN_UNICAST, 0, dst4,
			attr(nil, unix.RTA_MULTIPATH, append(nh(1), nh(2)...))), skipMultipath},
		{"multipath of one", rtmsg(unix.AF_INET, 24, unix.RTN_UNICAST, 0, dst4,
			attr(nil, unix.RTA_MULTIPATH, nh(1))), importable},
		{"nexthop object: the object decides", rtmsg(unix.AF_INET, 24, unix.RTN_UNICAST, 0, dst4, attr(nil, rtaNHID, u32(9))), importable},
		{"encap", rtmsg(unix.AF_INET, 24, unix.RTN_UNICAST, 0, dst4, oif, attr(nil, unix.RTA_ENCAP, nil)), skipEncap},
		{"link-local", rtmsg(unix.AF_INET6, 64, unix.RTN_UNICAST, 0, ll, oif), skipLinkLocal},
		{"ff00::/8", rtmsg(unix.AF_INET6, 8, unix.RTN_UNICAST, 0, mc, oif), skipMulticast},
		{"::/0 is not link-local", rtmsg(unix.AF_INET6, 0, unix.RTN_UNICAST, 0, def6, oif), importable},
	} {
		r, err := decodeRoute(c.msg)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := kindOf(&r); got != c.want {
			t.Errorf("%s: kind %q, want %q", c.name, skipNames[got], skipNames[c.want])
		}
	}
	r, _ := decodeRoute(rtmsg(unix.AF_INET, 24, unix.RTN_UNICAST, unix.RTM_F_CLONED, dst4, oif))
	if k := keyed(&r, unix.RT_TABLE_MAIN); k != skipCached {
		t.Errorf("cloned route keyed as %q", skipNames[k])
	}
	if k := keyed(&r, 100); k != skipCached {
		t.Errorf("cloned route in table 100 keyed as %q", skipNames[k])
	}
	r, _ = decodeRoute(rtmsg(unix.AF_INET, 24, unix.RTN_UNICAST, 0, dst4, oif, attr(nil, unix.RTA_TABLE, u32(100))))
	if k := keyed(&r, unix.RT_TABLE_MAIN); k != skipOtherTable {
		t.Errorf("table 100 route keyed as %q", skipNames[k])
	}
	if k := keyed(&r, 100); k != importable {
		t.Errorf("table 100 route keyed as %q for table 100", skipNames[k])
	}
}

// nhmsg builds an RTM_NEWNEXTHOP payload by hand.
func nhmsg(family uint8, attrs ...[]byte) []byte {
	b := make([]byte, unix.SizeofNhmsg)
	b[0] = family
	for _, a := range attrs {
		b = append(b, a...)
	}
	return b
}

func TestDecodeNexthop(t *testing.T) {
	nh, err := decodeNexthop(nhmsg(unix.AF_INET6, attr(nil, unix.NHA_ID, u32(6)),
		attr(nil, unix.NHA_GATEWAY, mustAddr("2001:db8::fe").AsSlice()), attr(nil, unix.NHA_OIF, u32(3))))
	if err != nil || nh.id != 6 || nh.gw != mustAddr("2001:db8::fe") || nh.oif != 3 || nh.group != nil {
		t.Errorf("single: %+v, %v", nh, err)
	}
	grp := append(binary.NativeEndian.AppendUint32(nil, 6), 1, 0, 0, 0)
	grp = append(binary.NativeEndian.AppendUint32(grp, 7), 1, 0, 0, 0)
	nh, err = decodeNexthop(nhmsg(unix.AF_UNSPEC, attr(nil, unix.NHA_ID, u32(8)), attr(nil, unix.NHA_GROUP, grp)))
	if err != nil || nh.id != 8 || len(nh.group) != 2 || nh.group[0] != 6 || nh.group[1] != 7 {
		t.Errorf("group: %+v, %v", nh, err)
	}
	nh, err = decodeNexthop(nhmsg(unix.AF_INET, attr(nil, unix.NHA_ID, u32(9)), attr(nil, unix.NHA_BLACKHOLE, nil)))
	if err != nil || !nh.blackhole {
		t.Errorf("blackhole: %+v, %v", nh, err)
	}
}

func TestMalformed(t *testing.T) {
	for name, b := range map[string][]byte{
		"short rtmsg":      {unix.AF_INET, 24},
		"prefix too long":  rtmsg(unix.AF_INET, 33, unix.RTN_UNICAST, 0),
		"attr overruns":    append(rtmsg(unix.AF_INET, 24, unix.RTN_UNICAST, 0), 200, 0, 1, 0),
		"bad dst length":   rtmsg(unix.AF_INET, 24, unix.RTN_UNICAST, 0, attr(nil, unix.RTA_DST, []byte{1, 2, 3})),
		"attr length < 4":  append(rtmsg(unix.AF_INET, 24, unix.RTN_UNICAST, 0), 2, 0, 1, 0),
		"short rtnexthop":  rtmsg(unix.AF_INET, 24, unix.RTN_UNICAST, 0, attr(nil, unix.RTA_MULTIPATH, []byte{4, 0})),
		"rtnexthop length": rtmsg(unix.AF_INET, 24, unix.RTN_UNICAST, 0, attr(nil, unix.RTA_MULTIPATH, []byte{99, 0, 0, 0, 1, 0, 0, 0})),
	} {
		if _, err := decodeRoute(b); !errors.Is(err, errMalformed) {
			t.Errorf("%s: err %v, want errMalformed", name, err)
		}
	}
	for name, b := range map[string][]byte{
		"short nhmsg":        {unix.AF_INET, 0, 0},
		"no id":              nhmsg(unix.AF_INET, attr(nil, unix.NHA_OIF, u32(2))),
		"gateway length":     nhmsg(unix.AF_INET, attr(nil, unix.NHA_ID, u32(1)), attr(nil, unix.NHA_GATEWAY, make([]byte, 16))),
		"group length":       nhmsg(unix.AF_UNSPEC, attr(nil, unix.NHA_ID, u32(1)), attr(nil, unix.NHA_GROUP, make([]byte, 12))),
		"empty group":        nhmsg(unix.AF_UNSPEC, attr(nil, unix.NHA_ID, u32(1)), attr(nil, unix.NHA_GROUP, nil)),
		"attribute overruns": append(nhmsg(unix.AF_INET), 9, 0, 1, 0),
	} {
		if _, err := decodeNexthop(b); !errors.Is(err, errMalformed) {
			t.Errorf("%s: err %v, want errMalformed", name, err)
		}
	}
	if _, err := decodeNeigh([]byte{unix.AF_INET}); !errors.Is(err, errMalformed) {
		t.Errorf("short ndmsg: %v", err)
	}
	if _, err := decodeLink([]byte{0, 0, 0}); !errors.Is(err, errMalformed) {
		t.Errorf("short ifinfomsg: %v", err)
	}
	for name, b := range map[string][]byte{
		"short header":    {1, 2, 3},
		"length too long": {200, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"length < header": {4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	} {
		if err := forMessages(b, func(message) error { return nil }); !errors.Is(err, errMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDecodeError(t *testing.T) {
	// An NLMSG_ERROR with a capped request and an extended-ack message.
	code := -int32(unix.ENETUNREACH)
	data := u32(uint32(code))
	data = append(data, make([]byte, unix.NLMSG_HDRLEN)...)
	data = attr(data, unix.NLMSGERR_ATTR_MSG, []byte("Nexthop has invalid gateway\x00"))
	err := decodeError(message{typ: unix.NLMSG_ERROR, flags: unix.NLM_F_CAPPED | unix.NLM_F_ACK_TLVS, data: data})
	if !errors.Is(err, syscall.ENETUNREACH) || err.Error() != "network is unreachable: Nexthop has invalid gateway" {
		t.Errorf("decodeError = %v", err)
	}
	if err := decodeError(message{data: u32(0)}); err != nil {
		t.Errorf("ack decoded as %v", err)
	}
}

// FuzzDecode feeds arbitrary datagrams through every decoder the
// importer and installer use: none may panic.
func FuzzDecode(f *testing.F) {
	f.Add(append(make([]byte, 16), rtmsg(unix.AF_INET, 24, unix.RTN_UNICAST, 0, attr(nil, unix.RTA_DST, []byte{198, 51, 100, 0}))...))
	f.Add(neighRequest(82, mustAddr("192.0.2.5"), 3, mustMAC("02:00:00:00:00:05"), 0))
	f.Add(routeRequest(routeKey{table: 254, proto: 82}, route("2001:db8::/64", "", "veth0"), 2, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = forMessages(b, func(m message) error {
			if r, err := decodeRoute(m.data); err == nil {
				keyed(&r, unix.RT_TABLE_MAIN)
				kindOf(&r)
			}
			if n, err := decodeNeigh(m.data); err == nil {
				classifyNeigh(&n)
			}
			_, _ = decodeNexthop(m.data)
			_, _ = decodeLink(m.data)
			_ = decodeError(m)
			return nil
		})
	})
}
