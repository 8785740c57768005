package kernel

import (
	"net/netip"

	"rtm/store/entry"

	"golang.org/x/sys/unix"
)

// nudValid are the neighbour states whose link-layer address the kernel
// uses or would use: these are MAC entries. INCOMPLETE, FAILED and NONE
// are not.
const nudValid = unix.NUD_REACHABLE | unix.NUD_STALE | unix.NUD_DELAY | unix.NUD_PROBE |
	unix.NUD_PERMANENT | unix.NUD_NOARP

// neighKind says whether a kernel neighbour is a MAC entry.
type neighKind uint8

const (
	neighEntry  neighKind = iota
	neighAbsent           // not resolved (or no address): the same as no entry
	neighSkipProxy
	neighSkipLLAddr  // not a 6-byte unicast Ethernet address (or all zero, as on lo)
	neighSkipAddress // not a host's unicast IP (multicast, loopback, unspecified)
	numNeighKinds
)

var neighSkipNames = [numNeighKinds]string{
	neighSkipProxy:   "skipped_neigh_proxy",
	neighSkipLLAddr:  "skipped_neigh_lladdr",
	neighSkipAddress: "skipped_neigh_address",
}

// classifyNeigh maps a kernel neighbour onto the MAC table.
func classifyNeigh(n *kneigh) (entry.MAC, neighKind) {
	switch {
	case n.flags&unix.NTF_PROXY != 0:
		return entry.MAC{}, neighSkipProxy
	case !n.ip.IsValid() || n.state&nudValid == 0 || n.llen == 0:
		return entry.MAC{}, neighAbsent
	case n.llen != 6 || n.lladdr == [6]byte{} || n.lladdr[0]&1 != 0:
		return entry.MAC{}, neighSkipLLAddr
	case entry.CheckHostIP(n.ip) != nil: // what the store refuses for a MAC
		return entry.MAC{}, neighSkipAddress
	}
	return entry.MAC(n.lladdr), neighEntry
}

// neighKey is how the kernel keys a neighbour.
type neighKey struct {
	ifindex int32
	ip      netip.Addr
}

// macCand is one kernel neighbour that claims a MAC.
type macCand = neighKey

// macRule picks one IP for a MAC that several kernel neighbours claim.
// The winner depends only on the set of claims, never on their order, so
// unrelated events never move it: the preferred family first, then the
// lowest address, then the lowest interface index.
type macRule struct{ prefer6 bool }

func (r macRule) less(a, b macCand) bool {
	if a.ip.Is4() != b.ip.Is4() {
		return a.ip.Is4() != r.prefer6
	}
	if c := a.ip.Compare(b.ip); c != 0 {
		return c < 0
	}
	return a.ifindex < b.ifindex
}

func (r macRule) winner(cs []macCand) (netip.Addr, bool) {
	if len(cs) == 0 {
		return netip.Addr{}, false
	}
	w := cs[0]
	for _, c := range cs[1:] {
		if r.less(c, w) {
			w = c
		}
	}
	return w.ip, true
}

// conflicted reports whether the claims name more than one IP.
func conflicted(cs []macCand) bool {
	for _, c := range cs[1:] {
		if c.ip != cs[0].ip {
			return true
		}
	}
	return false
}

// removeCand drops c from cs.
func removeCand(cs []macCand, c macCand) []macCand {
	for i := range cs {
		if cs[i] == c {
			cs[i] = cs[len(cs)-1]
			return cs[:len(cs)-1]
		}
	}
	return cs
}

// ipOwner picks the MAC the installer gives an IP that several of rtm's
// MAC entries map to (the kernel holds one link-layer address per IP and
// device): the lowest MAC, independent of order.
func ipOwner(ms []entry.MAC) (entry.MAC, bool) {
	if len(ms) == 0 {
		return entry.MAC{}, false
	}
	w := ms[0]
	for _, m := range ms[1:] {
		if m.Uint64() < w.Uint64() {
			w = m
		}
	}
	return w, true
}
