package repl

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"rtm/store/entry"
)

// TestParseCanonical: every command parses, and prints back in canonical
// form (lowercase colon MACs, plural table names, the json flag last).
func TestParseCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"C,10.1.1.0/24,192.168.1.1,eth0", "C,10.1.1.0/24,192.168.1.1,eth0"},
		{"  c , 10.1.1.0/24 ,\t192.168.1.1 , eth0  ", "C,10.1.1.0/24,192.168.1.1,eth0"},
		{"u,10.1.1.0/24,192.168.1.254,eth1", "U,10.1.1.0/24,192.168.1.254,eth1"},
		{"d,10.1.1.0/24", "D,10.1.1.0/24"},
		{"C,0.0.0.0/0,10.0.0.1,eth0", "C,0.0.0.0/0,10.0.0.1,eth0"},
		{"C,2001:DB8:1::/48,FE80::1,eth1", "C,2001:db8:1::/48,fe80::1,eth1"},
		{"D,::/0", "D,::/0"},
		{"C,default,10.0.0.1,eth0", "C,0.0.0.0/0,10.0.0.1,eth0"},
		{"r , Default , fe80::1 , eth1", "R,::/0,fe80::1,eth1"},
		{"C,DEFAULT,-,veth0", "C,0.0.0.0/0,-,veth0"},
		{"D,default", "D,0.0.0.0/0"},
		{"C,192.0.2.0/24,-,veth0", "C,192.0.2.0/24,-,veth0"},
		{"r , 2001:db8:1::/64 , - , veth1", "R,2001:db8:1::/64,-,veth1"},
		{"R,10.1.1.0/24,192.168.1.1,eth0", "R,10.1.1.0/24,192.168.1.1,eth0"},
		{"r,00-1A-2B-3C-4D-5E,10.1.1.7", "R,00:1a:2b:3c:4d:5e,10.1.1.7"},
		{"C,00:1a:2b:3c:4d:5e,10.1.1.7", "C,00:1a:2b:3c:4d:5e,10.1.1.7"},
		{"C,00-1A-2B-3C-4D-5E,10.1.1.7", "C,00:1a:2b:3c:4d:5e,10.1.1.7"},
		{"C,001a.2b3c.4d5e,2001:db8::7", "C,00:1a:2b:3c:4d:5e,2001:db8::7"},
		{"U,001A.2B3C.4D5E , 10.1.1.8", "U,00:1a:2b:3c:4d:5e,10.1.1.8"},
		{"D,00:1A:2B:3C:4D:5E", "D,00:1a:2b:3c:4d:5e"},
		{"C,10.1.1.0/24,192.168.1.1,eth#1", "C,10.1.1.0/24,192.168.1.1,eth#1"},
		{"C,10.1.1.0/24,192.168.1.1,eth0 # uplink", "C,10.1.1.0/24,192.168.1.1,eth0"},
		{"C,10.1.1.0/24,192.168.1.1,eth0\r\n", "C,10.1.1.0/24,192.168.1.1,eth0"},
		{"show routes", "show routes"},
		{"SHOW Macs JSON", "show macs json"},
		{"show macs 02:00:*", "show macs 02:00:*"},
		{"show macs 02-00-AB*", "show macs 02:00:ab:*"},
		{"show macs 0200.*", "show macs 02:00:*"},
		{"show macs 0200.ab12*", "show macs 02:00:ab:12:*"},
		{"show macs 0200.ab12.cd34", "show macs 02:00:ab:12:cd:34"},
		{"show -json routes", "show routes json"},
		{"show route --json", "show routes json"},
		{"show clients", "show clients"},
		{"show stats -j", "show stats json"},
		{"lookup 001a.2b3c.4d5e", "lookup 00:1a:2b:3c:4d:5e"},
		{"lookup 00:1a:2b:3c:4d:5e json", "lookup 00:1a:2b:3c:4d:5e json"},
		{"route 10.1.1.7", "route 10.1.1.7"},
		{"C,10.1.1.0/24,0.0.0.0,eth0", "C,10.1.1.0/24,-,eth0"},
		{"C , 2001:db8::/32 , :: , eth1", "C,2001:db8::/32,-,eth1"},
		{"route 2001:db8::1 -json", "route 2001:db8::1 json"},
		{"flush", "flush"},
		{"flush all", "flush"},
		{"flush routes", "flush routes"},
		{"FLUSH MACS", "flush macs"},
		{"source lib/base.rtm", "source lib/base.rtm"},
		{`source "my routes.rtm"`, `source "my routes.rtm"`},
		{"source a#b.rtm", `source "a#b.rtm"`},
		{"sync", "sync"},
		{"sync 2s", "sync 2s"},
		{"sync 1.5", "sync 1.5s"},
		{"expect route 10.1.1.0/24", "expect route 10.1.1.0/24"},
		{"expect route 10.1.1.0/24 via 192.168.1.1 dev eth0", "expect route 10.1.1.0/24 via 192.168.1.1 dev eth0"},
		{"expect route 10.1.1.0/24 dev eth0", "expect route 10.1.1.0/24 dev eth0"},
		{"expect no route 2001:db8::/32", "expect no route 2001:db8::/32"},
		{"expect mac 00-1a-2b-3c-4d-5e", "expect mac 00:1a:2b:3c:4d:5e"},
		{"expect mac 00-1a-2b-3c-4d-5e 10.1.1.7", "expect mac 00:1a:2b:3c:4d:5e 10.1.1.7"},
		{"expect NO MAC 001a.2b3c.4d5e", "expect no mac 00:1a:2b:3c:4d:5e"},
		{"expect count routes 0", "expect count routes 0"},
		{"expect count mac 12", "expect count macs 12"},
		{"expect count clients 3", "expect count clients 3"},
		{"expect error C, 10.1.1.0/24 ,192.168.1.1,eth0", "expect error C,10.1.1.0/24,192.168.1.1,eth0"},
		{"expect error C,10.1.1.1/24,192.168.1.1,eth0", "expect error C,10.1.1.1/24,192.168.1.1,eth0"},
		{"expect error expect no route 10.0.0.0/8", "expect error expect no route 10.0.0.0/8"},
		{"help", "help"},
		{"help Expect", "help expect"},
		{"help C", "help c"},
		{"quit", "quit"},
		{"exit", "quit"},
	} {
		cmd, err := Parse([]byte(tc.in))
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got := cmd.String(); got != tc.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseBlank(t *testing.T) {
	for _, in := range []string{"", "   ", "\t\r\n", "# a comment", "   # indented comment", "#C,10.1.1.0/24,1.1.1.1,eth0"} {
		cmd, err := Parse([]byte(in))
		if err != nil || cmd.Kind != KindNone {
			t.Errorf("Parse(%q) = %v, %v; want a blank line", in, cmd.Kind, err)
		}
	}
}

// TestParseFields checks the fields a command carries, IPv4 and IPv6.
func TestParseFields(t *testing.T) {
	cmd, err := Parse([]byte("C,2001:db8:1::/48,2001:db8::1,eth1"))
	if err != nil {
		t.Fatal(err)
	}
	want := entry.Route{Prefix: netip.MustParsePrefix("2001:db8:1::/48"), Gateway: netip.MustParseAddr("2001:db8::1"), Dev: "eth1"}
	if cmd.Kind != KindChange || cmd.Change != entry.RouteChange(entry.Create, want) {
		t.Errorf("got %+v", cmd)
	}
	cmd, err = Parse([]byte("u,aabb.ccdd.eeff,10.1.1.8"))
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Kind != KindChange || cmd.Change != entry.MACChange(entry.Update, entry.MAC{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}, netip.MustParseAddr("10.1.1.8")) {
		t.Errorf("got %+v", cmd)
	}
	cmd, err = Parse([]byte("sync 250ms"))
	if err != nil || cmd.Kind != KindSync || cmd.Timeout != 250*time.Millisecond || cmd.Local {
		t.Errorf("sync 250ms: %+v, %v", cmd, err)
	}
	cmd, err = Parse([]byte("SYNC Local 2s"))
	if err != nil || cmd.Kind != KindSync || cmd.Timeout != 2*time.Second || !cmd.Local || cmd.String() != "sync local 2s" {
		t.Errorf("sync local 2s: %+v, %v", cmd, err)
	}
	cmd, err = Parse([]byte("expect count macs 5"))
	if err != nil || cmd.Expect.Check != CheckCount || cmd.Expect.Count != 5 || cmd.Table != TableMACs {
		t.Errorf("expect count: %+v, %v", cmd, err)
	}
	cmd, err = Parse([]byte("expect error C,10.1.1.1/24,192.168.1.1,eth0"))
	if err != nil || cmd.Expect.Check != CheckError || cmd.Expect.Cmd != nil || !errors.Is(cmd.Expect.ParseErr, entry.ErrBadPrefix) {
		t.Errorf("expect error of a malformed line: %+v, %v", cmd.Expect, err)
	}
}

// TestParseErrors asserts the exact message of every class of parse error:
// what is wrong and what was expected.
func TestParseErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// Prefixes.
		{"C,10.1.1.1/24,192.168.1.1,eth0", "create route: bad prefix 10.1.1.1/24: host bits set (did you mean 10.1.1.0/24?)"},
		{"D,2001:db8::1/32", "delete route: bad prefix 2001:db8::1/32: host bits set (did you mean 2001:db8::/32?)"},
		{"C,10.1.1.0/33,192.168.1.1,eth0", `create route: bad prefix "10.1.1.0/33": bad length "33"; want 0 to 32 for IPv4`},
		{"C,10.1.1.0/024,192.168.1.1,eth0", `create route: bad prefix "10.1.1.0/024": bad length "024"; want 0 to 32 for IPv4`},
		{"C,2001:db8::/129,::1,eth0", `create route: bad prefix "2001:db8::/129": bad length "129"; want 0 to 128 for IPv6`},
		{"C,10.1.1/24,192.168.1.1,eth0", `create route: bad prefix "10.1.1/24": address "10.1.1": want an IPv4 or IPv6 address (IPv4 address too short)`},
		{"C,010.1.1.0/24,192.168.1.1,eth0", `create route: bad prefix "010.1.1.0/24": address "010.1.1.0": want an IPv4 or IPv6 address (IPv4 field has octet with leading zero)`},
		{"C,fe80::%eth0/64,fe80::1,eth0", `create route: bad prefix "fe80::%eth0/64": zoned addresses are not routes`},
		{"C,::ffff:10.0.0.0/104,::ffff:10.0.0.1,eth0", "create route: bad prefix ::ffff:10.0.0.0/104: IPv4-mapped IPv6; write the IPv4 prefix"},
		{"C,10.1.1.7,192.168.1.1,eth0", `create route: "10.1.1.7" has no prefix length; want a prefix such as 10.1.1.7/32`},
		{"D,2001:db8::", `delete route: "2001:db8::" has no prefix length; want a prefix such as 2001:db8::/128`},
		// Gateways.
		{"C,10.1.2.0/24,192.168.1,eth0", `create route 10.1.2.0/24: bad gateway "192.168.1": want an IPv4 or IPv6 address (IPv4 address too short) (or - for a connected route)`},
		{"C,10.1.2.0/24,2001:db8::1,eth0", "create route 10.1.2.0/24: bad gateway 2001:db8::1 is IPv6, the prefix is IPv4"},
		{"C,2001:db8::/32,fe80::1%eth0,eth0", "create route 2001:db8::/32: bad gateway: bad IP address fe80::1%eth0: zoned addresses are not allowed"},
		// Interface names.
		{"C,10.1.2.0/24,192.168.1.1,averyveryverylongname", `create route 10.1.2.0/24: bad interface name "averyveryverylongname": 21 bytes, Linux allows at most 15`},
		{"C,10.1.2.0/24,-," + strings.Repeat("e", 100), `create route 10.1.2.0/24: bad interface name "` + strings.Repeat("e", 48) + `"... (100 bytes): Linux allows at most 15 bytes`},
		{"C,10.1.2.0/24,192.168.1.1,eth:0", `create route 10.1.2.0/24: bad interface name "eth:0": Linux refuses ':' in interface names`},
		{"C,10.1.2.0/24,192.168.1.1,eth/0", `create route 10.1.2.0/24: bad interface name "eth/0": Linux refuses '/' in interface names`},
		{"C,10.1.2.0/24,192.168.1.1,eth 0", `create route 10.1.2.0/24: bad interface name "eth 0": Linux refuses ' ' in interface names`},
		{"C,10.1.2.0/24,192.168.1.1,v\u00e0", `create route 10.1.2.0/24: bad interface name "và": Linux refuses byte 0xa0 in interface names, which it takes for white space (a no-break space; the second byte of à or Р in UTF-8)`},
		{"C,10.1.2.0/24,192.168.1.1,eth\x1b0", `create route 10.1.2.0/24: bad interface name "eth\x1b0": rtm refuses control characters ('\x1b') in interface names`},
		{"C,10.1.2.0/24,192.168.1.1,..", `create route 10.1.2.0/24: bad interface name "..": reserved`},
		// Field counts.
		{"C,10.1.1.0/24,192.168.1.1", "create route 10.1.1.0/24: missing DEV; want C,PREFIX,GATEWAY,DEV as in C,10.1.1.0/24,192.168.1.1,eth0"},
		{"U,10.1.1.0/24", "update route 10.1.1.0/24: missing GATEWAY; want U,PREFIX,GATEWAY,DEV as in U,10.1.1.0/24,192.168.1.1,eth0"},
		{"C,10.1.1.0/24,,eth0", "create route 10.1.1.0/24: missing GATEWAY; want C,PREFIX,GATEWAY,DEV as in C,10.1.1.0/24,192.168.1.1,eth0"},
		{"C,10.1.1.0/24,192.168.1.1,eth0,x", `create route 10.1.1.0/24: unexpected field "x" after DEV; want C,PREFIX,GATEWAY,DEV as in C,10.1.1.0/24,192.168.1.1,eth0`},
		{"D,10.1.1.0/24,192.168.1.1", `delete route 10.1.1.0/24: unexpected field "192.168.1.1" after PREFIX; want D,PREFIX as in D,10.1.1.0/24`},
		{"R,10.1.1.0/24", "replace route 10.1.1.0/24: missing GATEWAY; want R,PREFIX,GATEWAY,DEV as in R,10.1.1.0/24,192.168.1.1,eth0"},
		{"R,00:1a:2b:3c:4d:5e", "replace MAC 00:1a:2b:3c:4d:5e: missing IP; want R,MAC,IP as in R,00:1a:2b:3c:4d:5e,10.1.1.7"},
		{"C,192.0.2.0/24,--,veth0", `create route 192.0.2.0/24: bad gateway "--": want an IPv4 or IPv6 address (unable to parse IP) (or - for a connected route)`},
		{"C,00:1a:2b:3c:4d:5e", "create MAC 00:1a:2b:3c:4d:5e: missing IP; want C,MAC,IP as in C,00:1a:2b:3c:4d:5e,10.1.1.7"},
		{"C,00:1a:2b:3c:4d:5e,10.1.1.7,x", `create MAC 00:1a:2b:3c:4d:5e: unexpected field "x" after IP; want C,MAC,IP as in C,00:1a:2b:3c:4d:5e,10.1.1.7`},
		{"D,00:1a:2b:3c:4d:5e,10.1.1.7", `delete MAC 00:1a:2b:3c:4d:5e: unexpected field "10.1.1.7" after MAC; want D,MAC as in D,00:1a:2b:3c:4d:5e`},
		{"C,", "create: missing key; want C,PREFIX,GATEWAY,DEV as in C,10.1.1.0/24,192.168.1.1,eth0 or C,MAC,IP as in C,00:1a:2b:3c:4d:5e,10.1.1.7"},
		// MACs and their addresses.
		{"C,00:1a:2b:3c:4d:zz,10.1.1.7", `create MAC: malformed MAC address "00:1a:2b:3c:4d:zz": want 6 bytes as aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff`},
		{"C,00:1a:2b:3c:4d:5e:11,10.1.1.7", `create MAC: malformed MAC address "00:1a:2b:3c:4d:5e:11": want 6 bytes as aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff`},
		{"D,00:1a-2b:3c:4d:5e", `delete MAC: malformed MAC address "00:1a-2b:3c:4d:5e": want 6 bytes as aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff`},
		{"C,default", "create route 0.0.0.0/0: missing GATEWAY; want C,PREFIX,GATEWAY,DEV as in C,10.1.1.0/24,192.168.1.1,eth0"},
		{"expect route default", `expect route: bad "default": write 0.0.0.0/0 or ::/0 here (only a change's key takes default)`},
		{"C,hello,1.1.1.1", `create: key "hello" is neither a prefix (10.1.1.0/24, 2001:db8::/32) nor a MAC (00:1a:2b:3c:4d:5e)`},
		{"C,00:1a:2b:3c:4d:5e,10.1.1.300", `create MAC 00:1a:2b:3c:4d:5e: bad IP address "10.1.1.300": want an IPv4 or IPv6 address (IPv4 field has value >255)`},
		{"C,00:1a:2b:3c:4d:5e,fe80::7%eth0", "create MAC 00:1a:2b:3c:4d:5e: bad IP address fe80::7%eth0: zoned addresses are not allowed"},
		{"C,00:1a:2b:3c:4d:5e,224.0.0.1", "create MAC 00:1a:2b:3c:4d:5e: bad IP address 224.0.0.1: a multicast address, which no host's MAC has"},
		{"R,00:1a:2b:3c:4d:5e,0.0.0.0", "replace MAC 00:1a:2b:3c:4d:5e: bad IP address 0.0.0.0: the unspecified address, which no host's MAC has"},
		{"U,00:1a:2b:3c:4d:5e,127.0.0.1", "update MAC 00:1a:2b:3c:4d:5e: bad IP address 127.0.0.1: a loopback address, which no host's MAC has"},
		{"C,00:1a:2b:3c:4d:5e,255.255.255.255", "create MAC 00:1a:2b:3c:4d:5e: bad IP address 255.255.255.255: the broadcast address, which no host's MAC has"},
		{"C,00:1a:2b:3c:4d:5e,::", "create MAC 00:1a:2b:3c:4d:5e: bad IP address ::: the unspecified address, which no host's MAC has"},
		{"route ::ffff:10.1.1.7", "route: bad IP address ::ffff:10.1.1.7: IPv4-mapped IPv6; write the IPv4 address"},
		{"C,10.1.1.0/24,224.0.0.5,eth0", "create route 10.1.1.0/24: bad gateway 224.0.0.5: a multicast address"},
		{"C,10.1.1.0/24,255.255.255.255,eth0", "create route 10.1.1.0/24: bad gateway 255.255.255.255: the broadcast address"},
		{"C,00:1a:2b:3c:4d:5e,::ffff:1.2.3.4", "create MAC 00:1a:2b:3c:4d:5e: bad IP address ::ffff:1.2.3.4: IPv4-mapped IPv6; write the IPv4 address"},
		// Ops and words.
		{"X,1,2", `unknown op "X": want C (create), U (update), D (delete) or R (replace), as in C,10.1.1.0/24,192.168.1.1,eth0`},
		{"C", "create: a change's fields follow its letter, each after a comma; want C,PREFIX,GATEWAY,DEV as in C,10.1.1.0/24,192.168.1.1,eth0 or C,MAC,IP as in C,00:1a:2b:3c:4d:5e,10.1.1.7"},
		{"d 10.1.1.0/24", "delete: a change's fields follow its letter, each after a comma; want D,PREFIX as in D,10.1.1.0/24 or D,MAC as in D,00:1a:2b:3c:4d:5e"},
		{"frob", `unknown command "frob": want C,U,D,R changes or one of show, lookup, route, flush, dump, source, sync, expect, help, quit (type help)`},
		{"shwo routes", `unknown command "shwo": did you mean show? want C,U,D,R changes or one of show, lookup, route, flush, dump, source, sync, expect, help, quit (type help)`},
		{"lookpu 00:1a:2b:3c:4d:5e", `unknown command "lookpu": did you mean lookup? want C,U,D,R changes or one of show, lookup, route, flush, dump, source, sync, expect, help, quit (type help)`},
		{"SNYC", `unknown command "SNYC": did you mean sync? want C,U,D,R changes or one of show, lookup, route, flush, dump, source, sync, expect, help, quit (type help)`},
		{"expect count info 1", `expect count: unknown table "info"; want expect count routes|macs|clients N`},
		{"show", "show: " + showUsage},
		{"show tables", `show: unknown table "tables"; ` + showUsage},
		// A slip in a table or filter word is named, as one in a command is.
		{"show rotues", `show: unknown table "rotues"; did you mean routes? ` + showUsage},
		{"show routes dve eth0", `show routes: unexpected "dve" (did you mean dev?); ` + showUsage},
		{"show clients jsno", `show clients: unexpected "jsno" (did you mean json?); ` + showUsage},
		{"show routes xyzzy", `show routes: unexpected "xyzzy"; ` + showUsage},
		{"flush mcas", `flush: unknown table "mcas"; did you mean macs? want flush [routes|macs]`},
		{"flush macs extra", `flush: one table at most, got "extra" after macs; want flush [routes|macs]`},
		{"expect count rotues 1", `expect count: unknown table "rotues"; did you mean routes? want expect count routes|macs|clients N`},
		{"expect route 10.0.0.0/8 vai 192.0.2.1", `expect route: unexpected "vai"; did you mean via? want expect route PREFIX [via GW] [dev DEV], as in expect route 10.1.1.0/24 via 192.168.1.1 dev eth0`},
		{"show routes dev", "show routes: dev needs a value; " + showUsage},
		{"show routes dev eth0 dev eth1", "show routes: dev given twice: a route has one device and one prefix; " + showUsage},
		{"show routes within 10.0.0.0/8 within 10.1.0.0/16", "show routes: within given twice: a route has one device and one prefix; " + showUsage},
		{"show routes within 10.1.1.1/24", "show routes: bad prefix 10.1.1.1/24: host bits set (did you mean 10.1.1.0/24?); " + showUsage},
		{"show macs 02:0*", `show macs: MAC pattern "02:0*": a pattern is a MAC's first bytes, then * (02:00:*, 02-00-* or 0200.*), or a whole MAC; ` + showUsage},
		{"show macs 0200.a*", `show macs: MAC pattern "0200.a*": a pattern is a MAC's first bytes, then * (02:00:*, 02-00-* or 0200.*), or a whole MAC; ` + showUsage},
		{"show macs 0200.ab12.cd34*", `show macs: MAC pattern "0200.ab12.cd34*": a pattern is a MAC's first bytes, then * (02:00:*, 02-00-* or 0200.*), or a whole MAC; ` + showUsage},
		{"show macs 02:00.*", `show macs: MAC pattern "02:00.*": a pattern is a MAC's first bytes, then * (02:00:*, 02-00-* or 0200.*), or a whole MAC; ` + showUsage},
		{"show macs 02:* 03:*", `show macs: unexpected "03:*"; ` + showUsage},
		{"show macs 00:1a", `show macs: "00:1a" is neither a whole MAC (6 bytes, as aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff) nor a pattern (its first bytes, then *, as in 02:00:*); ` + showUsage},
		{"show clients dev eth0", `show clients: unexpected "dev"; ` + showUsage},
		{"show stats count", `show stats: unexpected "count"; ` + showUsage},
		{"show routes count dev eth0 count", "show routes: count given twice; " + showUsage},
		{"show stats local local", "show stats: local given twice; " + showUsage},
		{"show routes json json", "show routes: json given twice; " + showUsage},
		{"show info -JSON count json", "show info: json given twice; " + showUsage},
		{"show macs json dev json -j", "show macs: json given twice; " + showUsage},
		{"lookup 00:1a:2b:3c:4d:5e json -j", "lookup: json given twice; want lookup MAC [json], as in lookup 00:1a:2b:3c:4d:5e"},
		{"route 10.1.1.7 --json json", "route: json given twice; want route IP [json], as in route 10.1.1.7"},
		{"lookup", "lookup: want lookup MAC [json], as in lookup 00:1a:2b:3c:4d:5e"},
		{"lookup 10.1.1.7", `lookup: malformed MAC address "10.1.1.7": want 6 bytes as aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff`},
		{"route 10.1.1.0/24", `route: bad address "10.1.1.0/24": want an IPv4 or IPv6 address (unexpected character (at "/24"))`},
		{"flush x", `flush: unknown table "x"; want flush [routes|macs]`},
		{"source", "source: want exactly one FILE (quote a name with spaces)"},
		{`source "a.rtm`, `unterminated quote in "\"a.rtm"`},
		{"sync 1x", `sync: bad timeout "1x"; want sync [local] [TIMEOUT] as in sync 5s`},
		{"sync -1s", `sync: timeout "-1s" must be positive; want sync [local] [TIMEOUT] as in sync 5s`},
		{"sync nan", `sync: bad timeout "nan"; want sync [local] [TIMEOUT] as in sync 5s`},
		{"help foo", `help: no command "foo"; type help for the list`},
		{"quit now", `quit: takes no arguments, got "now"`},
		{"expect", "expect: " + expectUsage},
		{"expect bogus", `expect: unknown check "bogus"; ` + expectUsage},
		{"expect rute 10.1.1.0/24", `expect: unknown check "rute"; did you mean route? ` + expectUsage},
		{"expect foo", `expect: unknown check "foo"; ` + expectUsage}, // "no" is two edits away: no hint
		{"expect route", "expect route: want expect route PREFIX [via GW] [dev DEV], as in expect route 10.1.1.0/24 via 192.168.1.1 dev eth0"},
		{"expect route 10.1.1.0/24 via", `expect route: "via" needs a value; want expect route PREFIX [via GW] [dev DEV], as in expect route 10.1.1.0/24 via 192.168.1.1 dev eth0`},
		{"expect route 10.1.1.0/24 dev eth0 extra", `expect route: unexpected "extra"; want expect route PREFIX [via GW] [dev DEV], as in expect route 10.1.1.0/24 via 192.168.1.1 dev eth0`},
		{"expect route 10.1.1.0/24 via 10.1.1.2 via 10.1.1.1", `expect route: unexpected "via"; want expect route PREFIX [via GW] [dev DEV], as in expect route 10.1.1.0/24 via 192.168.1.1 dev eth0`},
		{"expect route 10.1.1.0/24 via 0.0.0.0", `expect route: bad gateway 0.0.0.0: a connected route has no gateway; expect route PREFIX dev DEV`},
		{"expect route 10.1.1.0/24 via ::1", "expect route: bad gateway ::1 is IPv6, the prefix is IPv4"},
		{"expect route 2001:db8::/32 via fe80::1%eth0", "expect route: bad gateway: bad IP address fe80::1%eth0: zoned addresses are not allowed"},
		{"expect route 10.1.1.0/24 via 192.168.1", `expect route: bad gateway "192.168.1": want an IPv4 or IPv6 address (IPv4 address too short)`},
		{"expect route 10.1.1.0/24 metric 5", `expect route: unexpected "metric"; want expect route PREFIX [via GW] [dev DEV], as in expect route 10.1.1.0/24 via 192.168.1.1 dev eth0`},
		{"expect no route 10.1.1.1/24", "expect no route: bad prefix 10.1.1.1/24: host bits set (did you mean 10.1.1.0/24?)"},
		{"expect mac", "expect mac: want expect mac MAC [IP], as in expect mac 00:1a:2b:3c:4d:5e 10.1.1.7"},
		{"expect count routes -1", `expect count: bad count "-1"; want expect count routes|macs|clients N`},
		{"expect count stats 1", `expect count: unknown table "stats"; want expect count routes|macs|clients N`},
		{"expect error", "expect error: want expect error COMMAND, as in expect error C,10.1.1.1/24,192.168.1.1,eth0"},
		{"expect error quit", "expect error: quit cannot fail; want a command that can"},
	} {
		_, err := Parse([]byte(tc.in))
		if err == nil {
			t.Errorf("Parse(%q) succeeded, want %q", tc.in, tc.want)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("Parse(%q):\n got %s\nwant %s", tc.in, err, tc.want)
		}
	}
}

// TestParseIPv4 compares the fast path with netip over edge cases.
func TestParseIPv4(t *testing.T) {
	for _, s := range []string{"0.0.0.0", "255.255.255.255", "1.2.3.4", "256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1..2.3", ".1.2.3", "1.2.3.", "1.2.3.4a", "", "1.2.3.04", "0.0.0.00", "1234.1.1.1", "1.2.3.1000", "1.2.3.255", "1.2.3.256", "9.99.199.249"} {
		got, ok := parseIPv4([]byte(s))
		want, err := netip.ParseAddr(s)
		if ok != (err == nil) || ok && got != want {
			t.Errorf("parseIPv4(%q) = %v, %v; netip: %v, %v", s, got, ok, want, err)
		}
	}
}

// TestParseAllocs: the replay hot path allocates nothing per line.
func TestParseAllocs(t *testing.T) {
	var p parser
	for _, line := range []string{
		"C,10.1.1.0/24,192.168.1.1,eth0\n",
		"U,10.1.1.0/24,192.168.1.254,eth1\n",
		"D,10.1.1.0/24\n",
		"C,00:1a:2b:3c:4d:5e,10.1.1.7\n",
		"c , 001a.2b3c.4d5e , 10.1.1.7 # note\n",
		"D,00-1a-2b-3c-4d-5e\n",
		"# comment\n",
	} {
		b := []byte(line)
		if _, err := p.parse(b); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { p.parse(b) }); n != 0 {
			t.Errorf("parse(%q): %v allocs per line, want 0", line, n)
		}
	}
}

// TestShortPathsTaken: the commonest lines take the short paths, so the
// fuzz tests that compare them with the parser compare something.
func TestShortPathsTaken(t *testing.T) {
	var p parser
	for _, line := range []string{
		"C,10.1.1.0/24,192.168.1.1,eth0", "U,10.1.1.0/24,-,eth0\n", "D,10.1.1.0/24", "r,0.0.0.0/0,10.0.0.1,bond0.100",
	} {
		var cmd Command
		if !p.parseRouteChange([]byte(line), &cmd) {
			t.Errorf("%q: the route short path refused it", line)
		}
	}
	for _, line := range []string{"C,00:1a:2b:3c:4d:5e,10.1.1.7", "D,00-1a-2b-3c-4d-5e\r\n"} {
		var cmd Command
		if !parseMACChange([]byte(line), &cmd) {
			t.Errorf("%q: the MAC short path refused it", line)
		}
	}
}

// TestParseIntoReused: a replay parses each line into a Command that held
// an earlier line; whatever that was (a word command with its fields, a
// change, an error), the result is the line's own, as a fresh parse gives.
func TestParseIntoReused(t *testing.T) {
	lines := []string{
		"show routes json",
		"C,02:00:00:00:00:01,10.0.0.1",
		"sync 5s",
		"C,10.1.0.0/24,192.168.1.1,eth0",
		"expect routes count 1",
		"D,10.1.0.0/24",
		"C,10.1.0.0/24,-,eth1",
		"C,10.1.0.1/24,192.168.1.1,eth0", // an error: host bits
		"U,02:00:00:00:00:01,10.0.0.2",
		"flush macs",
		"D,02:00:00:00:00:01",
		"show macs count",
		"C,2001:db8::/64,2001:db8::1,eth0",
		"C,02:00:00:00:00:02,10.0.0.3",
		"",
		"R,10.2.0.0/16,192.168.1.2,eth2",
	}
	var p parser
	var reused Command
	for i := range 3 { // every line after every other, more or less
		for j, l := range lines {
			l = lines[(j*(i+1))%len(lines)]
			errReused := p.parseInto([]byte(l), &reused)
			var fresh Command
			errFresh := p.parseInto([]byte(l), &fresh)
			if (errReused == nil) != (errFresh == nil) {
				t.Fatalf("%q: error %v into a used Command, %v into a fresh one", l, errReused, errFresh)
			}
			if errFresh == nil && !reflect.DeepEqual(reused, fresh) {
				t.Fatalf("%q into a used Command: %+v, want %+v", l, reused, fresh)
			}
		}
	}
}
