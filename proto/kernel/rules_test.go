package kernel

import (
	"math/rand/v2"
	"testing"

	"rtm/store/entry"

	"golang.org/x/sys/unix"
)

func TestMACRule(t *testing.T) {
	c := func(ip string, ifindex int32) macCand { return macCand{ifindex: ifindex, ip: mustAddr(ip)} }
	cands := []macCand{c("2001:db8::1", 2), c("192.0.2.9", 3), c("192.0.2.7", 4), c("192.0.2.7", 1), c("2001:db8::0", 5)}
	for _, tc := range []struct {
		prefer6 bool
		want    string
	}{{false, "192.0.2.7"}, {true, "2001:db8::"}} {
		r := macRule{prefer6: tc.prefer6}
		// The winner depends on the set, never on its order.
		for range 20 {
			rand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
			if got, _ := r.winner(cands); got != mustAddr(tc.want) {
				t.Fatalf("prefer6=%v: winner %s, want %s", tc.prefer6, got, tc.want)
			}
		}
	}
	if !conflicted(cands) || conflicted([]macCand{c("192.0.2.7", 1), c("192.0.2.7", 2)}) {
		t.Error("conflicted: one IP on two links is no conflict, two IPs are")
	}
	if _, ok := (macRule{}).winner(nil); ok {
		t.Error("winner of no claims")
	}
	m, _ := ipOwner([]entry.MAC{mustMAC("02:00:00:00:00:09"), mustMAC("02:00:00:00:00:01"), mustMAC("02:00:00:00:00:05")})
	if m != mustMAC("02:00:00:00:00:01") {
		t.Errorf("ipOwner = %s, want the lowest MAC", m)
	}
}

func TestRouteCands(t *testing.T) {
	a := routeCand{metric: 0, typ: unix.RTN_UNICAST, oif: 2, gw: mustAddr("192.0.2.1"), nhops: 1}
	b := routeCand{metric: 0, typ: unix.RTN_UNICAST, oif: 2, gw: mustAddr("192.0.2.2"), nhops: 1}
	worse := routeCand{metric: 50, typ: unix.RTN_UNICAST, oif: 3, gw: mustAddr("192.0.2.3"), nhops: 1}
	hole := routeCand{metric: 0, typ: unix.RTN_BLACKHOLE, kind: skipBlackhole}
	best := func(cs []routeCand) routeCand { c, _ := bestCand(cs); return c }

	// Replay after a dump: the dump holds b (a was replaced by b); the
	// queued create of a, then the replace by b, end at b.
	cs := []routeCand{b}
	cs = addCand(cs, a, unix.AF_INET, unix.NLM_F_CREATE|unix.NLM_F_EXCL)
	cs = addCand(cs, b, unix.AF_INET, unix.NLM_F_CREATE|unix.NLM_F_REPLACE)
	if len(cs) != 1 || cs[0] != b {
		t.Errorf("replayed create+replace: %v", cs)
	}
	// ip route append: two aliases, the first is used; deleting it
	// exposes the second.
	cs = addCand([]routeCand{a}, b, unix.AF_INET, unix.NLM_F_CREATE|unix.NLM_F_APPEND)
	if len(cs) != 2 || best(cs) != a {
		t.Errorf("append: %v", cs)
	}
	cs, diverged := delCand(cs, a, unix.AF_INET)
	if diverged || len(cs) != 1 || best(cs) != b {
		t.Errorf("delete first alias: %v %v", cs, diverged)
	}
	// A dump lists aliases in the kernel's order, and the first is used.
	cs = addCand(addCand(nil, b, unix.AF_INET, 0), a, unix.AF_INET, 0)
	if best(cs) != b {
		t.Errorf("dump of b then a: best %v, want b", best(cs))
	}
	// ip route prepend (NLM_F_CREATE alone) goes before the first alias.
	cs = addCand([]routeCand{worse, a}, b, unix.AF_INET, unix.NLM_F_CREATE)
	if len(cs) != 3 || best(cs) != b {
		t.Errorf("prepend: %v", cs)
	}
	if cs, _ = delCand(cs, b, unix.AF_INET); best(cs) != a {
		t.Errorf("delete of the prepended alias: %v", cs)
	}
	// A create the kernel made with no route of its metric drops older
	// state of that metric, however much.
	if cs = addCand([]routeCand{a, b, worse}, hole, unix.AF_INET, unix.NLM_F_CREATE|unix.NLM_F_EXCL); len(cs) != 2 || best(cs) != hole {
		t.Errorf("exclusive create over two aliases: %v", cs)
	}
	// The lowest metric wins; a blackhole at a better metric hides the route.
	cs = addCand([]routeCand{worse}, a, unix.AF_INET, 0)
	if best(cs) != a {
		t.Errorf("best of metrics 50 and 0: %v", best(cs))
	}
	cs, _ = delCand(cs, a, unix.AF_INET)
	cs = addCand(cs, hole, unix.AF_INET, 0)
	if best(cs).kind != skipBlackhole {
		t.Errorf("blackhole at metric 0 does not win: %v", cs)
	}
	// A delete of a route not held is a replayed event, not divergence.
	if _, diverged := delCand([]routeCand{b}, a, unix.AF_INET); diverged {
		t.Error("delete of an unknown IPv4 alias counted as divergence")
	}
	// Deleting one IPv6 ECMP sibling is ambiguous: re-read.
	ecmp := routeCand{metric: 1024, typ: unix.RTN_UNICAST, oif: 2, gw: mustAddr("fe80::1"), nhops: 2}
	one := routeCand{metric: 1024, typ: unix.RTN_UNICAST, oif: 2, gw: mustAddr("fe80::1"), nhops: 1}
	if _, diverged := delCand([]routeCand{ecmp}, one, unix.AF_INET6); !diverged {
		t.Error("delete of one IPv6 ECMP sibling not flagged")
	}
	// An IPv6 gateway route added beside another of its metric makes them
	// one ECMP route, which the kernel sends whole: it takes the single
	// one's place, before a device route of the metric (a dump lists the
	// group alone: the prefix is hidden, live as after a re-read).
	dev6 := routeCand{metric: 1024, typ: unix.RTN_UNICAST, oif: 3, nhops: 1}
	for _, flags := range []uint16{unix.NLM_F_CREATE | unix.NLM_F_APPEND, unix.NLM_F_CREATE} {
		cs = addCand([]routeCand{one, dev6}, ecmp, unix.AF_INET6, flags)
		if len(cs) != 2 || best(cs) != ecmp || cs[1] != dev6 {
			t.Errorf("IPv6 sibling joined (flags %#x): %v", flags, cs)
		}
	}
	// IPv6 replace takes the first route as fit for ECMP as the new one:
	// a gateway route replaces the gateway route, not a device route
	// before it.
	two := routeCand{metric: 1024, typ: unix.RTN_UNICAST, oif: 2, gw: mustAddr("fe80::2"), nhops: 1}
	if cs = addCand([]routeCand{dev6, one}, two, unix.AF_INET6, unix.NLM_F_REPLACE); len(cs) != 2 || cs[0] != dev6 || cs[1] != two {
		t.Errorf("IPv6 replace of a gateway route behind a device route: %v", cs)
	}
	cs = addCand([]routeCand{one}, ecmp, unix.AF_INET6, unix.NLM_F_CREATE|unix.NLM_F_APPEND)
	if len(cs) != 1 || best(cs) != ecmp {
		t.Errorf("IPv6 sibling joined: %v, want the group alone", cs)
	}
	if _, diverged := delCand(cs, one, unix.AF_INET6); !diverged {
		t.Error("delete of one hop of an appended IPv6 group not flagged")
	}
}
