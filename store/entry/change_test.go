package entry

import (
	"errors"
	"net/netip"
	"testing"
)

// TestChangeCheckMACAddress: a MAC change's address must be one a host
// can have (Check), while one an earlier rtm stored passes CheckStored,
// the wire decoder's rule, so that a server still serves it.
func TestChangeCheckMACAddress(t *testing.T) {
	m := MAC{2, 0, 0, 0, 0, 1}
	for _, ip := range []string{"0.0.0.0", "127.0.0.1", "224.0.0.1", "255.255.255.255", "::", "::1", "ff02::1"} {
		c := MACChange(Create, m, netip.MustParseAddr(ip))
		if err := c.Check(); !errors.Is(err, ErrBadIP) {
			t.Errorf("Check of %s: %v, want ErrBadIP", ip, err)
		}
		if err := c.CheckStored(); err != nil {
			t.Errorf("CheckStored of %s: %v, want nil", ip, err)
		}
	}
	for _, ip := range []string{"0.0.0.1", "10.0.0.0", "255.255.255.254", "240.0.0.1", "fe80::1", "2001:db8::1"} {
		if err := MACChange(Update, m, netip.MustParseAddr(ip)).Check(); err != nil {
			t.Errorf("Check of %s: %v, want nil", ip, err)
		}
	}
}
