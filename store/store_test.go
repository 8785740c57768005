package store

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"rtm/repl/rtmtest"
	"rtm/store/entry"
)

// TestMain doubles as the entry point of the child processes the
// multi-process tests start (see process_test.go).
func TestMain(m *testing.M) { rtmtest.Main(m, roles, nil) }

// testPath names a fresh segment file in the test binary's private store
// directory, removed (with any temporary siblings) when the test ends.
func testPath(t testing.TB) string { return rtmtest.StorePath(t) }

func mustOpen(t testing.TB, o Options) *Store {
	t.Helper()
	s, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testMAC(i int) entry.MAC { return entry.MACFromUint64(0x0200_0000_0000 | uint64(i)) }

func v4(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

func v6(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 12: byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)})
}

// mustRoute parses "PREFIX GATEWAY DEV"; a GATEWAY of "-" is none (a
// connected route).
func mustRoute(s string) entry.Route {
	f := strings.Fields(s)
	r := entry.Route{Prefix: netip.MustParsePrefix(f[0]), Dev: f[2]}
	if f[1] != "-" {
		r.Gateway = netip.MustParseAddr(f[1])
	}
	return r
}

func TestCreateReopen(t *testing.T) {
	path := testPath(t)
	s, err := Open(Options{Path: path, Capacity: 100, RouteCapacity: 10, Perm: 0o640})
	if err != nil {
		t.Fatal(err)
	}
	if rec := s.Recovery(); !rec.Created || rec.WasDirty {
		t.Errorf("new store Recovery = %+v, want Created", rec)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("file mode: %v %v, want 0640", st.Mode(), err)
	}
	gen := s.Generation()
	if gen == 0 {
		t.Error("zero generation")
	}
	for i := range 50 {
		ip := v4(i)
		if i%2 == 1 {
			ip = v6(i)
		}
		if err := s.CreateMAC(testMAC(i), ip); err != nil {
			t.Fatal(err)
		}
	}
	routes := []string{"10.0.0.0/8 192.168.1.1 eth0", "10.1.0.0/16 192.168.1.2 eth1", "2001:db8::/32 fe80::1 eth2", "0.0.0.0/0 192.168.1.254 wan0"}
	for _, r := range routes {
		if err := s.CreateRoute(mustRoute(r)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := mustOpen(t, Options{Path: path, Capacity: 5, Perm: 0o640})
	rec := s2.Recovery()
	if rec.Created || rec.WasDirty || rec.JournalReplayed || rec.PrevPID != os.Getpid() {
		t.Errorf("reopen Recovery = %+v", rec)
	}
	if s2.Generation() != gen {
		t.Errorf("generation %x after reopen, want %x", s2.Generation(), gen)
	}
	if s2.Capacity() != 100 || s2.RouteCapacity() != 10 {
		t.Errorf("capacities %d, %d: the file's must win", s2.Capacity(), s2.RouteCapacity())
	}
	if s2.MACCount() != 50 || s2.RouteCount() != len(routes) {
		t.Errorf("counts %d MACs, %d routes", s2.MACCount(), s2.RouteCount())
	}
	for i := range 50 {
		want := v4(i)
		if i%2 == 1 {
			want = v6(i)
		}
		if got, ok := s2.LookupMAC(testMAC(i)); !ok || got != want {
			t.Errorf("MAC %d: %v %v, want %v", i, got, ok, want)
		}
	}
	for _, r := range routes {
		want := mustRoute(r)
		if got, ok := s2.GetRoute(want.Prefix); !ok || got != want {
			t.Errorf("route %v: got %v %v", want.Prefix, got, ok)
		}
	}
	if r, ok := s2.MatchRoute(netip.MustParseAddr("10.1.2.3")); !ok || r.Dev != "eth1" {
		t.Errorf("LPM 10.1.2.3 = %v %v, want eth1", r, ok)
	}
	if r, ok := s2.MatchRoute(netip.MustParseAddr("8.8.8.8")); !ok || r.Dev != "wan0" {
		t.Errorf("LPM 8.8.8.8 = %v %v, want wan0 default", r, ok)
	}
	if _, ok := s2.MatchRoute(netip.MustParseAddr("2001:db9::1")); ok {
		t.Error("LPM 2001:db9::1 matched with no IPv6 default")
	}
	rd, err := OpenReader(path, os.Getuid())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if rd.Generation() != gen || rd.Count() != 50 || rd.Path() != path {
		t.Errorf("reader gen %x count %d path %s", rd.Generation(), rd.Count(), rd.Path())
	}
	if a, err := rd.Lookup(testMAC(3)); err != nil || a != v6(3) {
		t.Errorf("reader lookup: %v %v", a, err)
	}
	if _, err := rd.Lookup(testMAC(99)); err != entry.ErrNotFound {
		t.Errorf("reader lookup of absent key: %v, want ErrNotFound", err)
	}
}

// writeWord patches one header word of a closed segment file.
func writeWord(t *testing.T, path string, off uintptr, v uint64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := (*[8]byte)(unsafe.Pointer(&v))
	if _, err := f.WriteAt(b[:], int64(off)); err != nil {
		t.Fatal(err)
	}
}

// TestOpenInMissingDirectory: a store whose directory is not there is
// refused for that, not for a lock file to remove.
func TestOpenInMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gone", "rtm.x")
	_, err := Open(Options{Path: path, Capacity: 64, RouteCapacity: 8})
	if !errors.Is(err, unix.ENOENT) || !strings.Contains(err.Error(), "create lock file") || strings.Contains(err.Error(), "removed") {
		t.Fatalf("Open in a missing directory: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	var h header
	tests := []struct {
		name   string
		damage func(t *testing.T, path string, size int64)
		want   error
	}{
		{"wrong magic", func(t *testing.T, p string, _ int64) {
			writeWord(t, p, unsafe.Offsetof(h.magic), 0x4242)
		}, ErrNotStore},
		{"other version", func(t *testing.T, p string, _ int64) {
			writeWord(t, p, unsafe.Offsetof(h.version), layoutVersion+1)
		}, ErrVersion},
		{"bad checksum", func(t *testing.T, p string, _ int64) {
			writeWord(t, p, unsafe.Offsetof(h.macCap), 1000)
		}, ErrCorrupt},
		{"truncated body", func(t *testing.T, p string, size int64) {
			os.Truncate(p, size/2)
		}, ErrTruncated},
		{"truncated header", func(t *testing.T, p string, _ int64) {
			os.Truncate(p, 100)
		}, ErrTruncated},
		{"empty file", func(t *testing.T, p string, _ int64) {
			os.Truncate(p, 0)
		}, ErrNotStore},
		{"bad MAC key", func(t *testing.T, p string, _ int64) {
			// an occupied slot far from where any key hashes to a gap
			writeWord(t, p, headerSize+8, 0x0123)
		}, ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := testPath(t)
			s, err := Open(Options{Path: path, Capacity: 64, RouteCapacity: 8})
			if err != nil {
				t.Fatal(err)
			}
			size := int64(s.Size())
			s.Close()
			tc.damage(t, path, size)
			if _, err := Open(Options{Path: path}); !errors.Is(err, tc.want) {
				t.Errorf("Open: %v, want %v", err, tc.want)
			} else if !strings.Contains(err.Error(), path) {
				t.Errorf("Open error %q does not name the path", err)
			}
			if tc.want == ErrCorrupt && tc.name == "bad MAC key" {
				// The header is fine: readers map it, the writer refuses
				// it, and leaves it closed as it was, not crashed.
				if in, err := Inspect(path); err != nil || !in.Clean {
					t.Errorf("after the refusal: %+v, %v; want it clean", in, err)
				}
				return
			}
			if _, err := OpenReader(path, os.Getuid()); !errors.Is(err, tc.want) {
				t.Errorf("OpenReader: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestOpenRefusesUnsafe: a store that someone besides its writer's uid
// could write, or one reached through a symbolic link, is refused by
// writer and reader alike, by name and with the fix, and left as it was.
// The checks are made on the descriptor opened, not on the path.
func TestOpenRefusesUnsafe(t *testing.T) {
	me := os.Geteuid()
	tests := []struct {
		name  string
		spoil func(t *testing.T, path string) string // returns the path to open
		why   string
	}{
		{"group-writable", func(t *testing.T, p string) string { os.Chmod(p, 0o660); return p }, "is writable by group or others (mode 0660)"},
		{"writable by all", func(t *testing.T, p string) string { os.Chmod(p, 0o666); return p }, "is writable by group or others (mode 0666)"},
		{"writable by others", func(t *testing.T, p string) string { os.Chmod(p, 0o602); return p }, "is writable by group or others (mode 0602)"},
		{"symbolic link", func(t *testing.T, p string) string {
			link := p + ".link"
			if err := os.Symlink(p, link); err != nil {
				t.Fatal(err)
			}
			return link
		}, "is a symbolic link"},
		{"another uid's", func(t *testing.T, p string) string {
			if me != 0 {
				t.Skip("needs root to give a file to another uid")
			}
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return p
		}, "is owned by uid 65534, not uid 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := testPath(t)
			s := mustOpen(t, Options{Path: path, Capacity: 64, RouteCapacity: 8})
			if err := s.CreateMAC(testMAC(1), v6(1)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			open := tc.spoil(t, path)
			before, _ := os.Lstat(path)
			for who, err := range map[string]error{
				"Open":       func() error { _, err := Open(Options{Path: open}); return err }(),
				"OpenReader": func() error { _, err := OpenReader(open, me); return err }(),
			} {
				ue, ok := errors.AsType[*UnsafeError](err)
				if !ok || ue.Path != open || !strings.Contains(err.Error(), tc.why) || ue.Fix == "" {
					t.Errorf("%s: %v; want an UnsafeError for %s that %s", who, err, open, tc.why)
				}
			}
			if after, _ := os.Lstat(path); after.Mode() != before.Mode() || after.Sys().(*syscall.Stat_t).Uid != before.Sys().(*syscall.Stat_t).Uid {
				t.Errorf("the refused store changed: %v -> %v", before.Mode(), after.Mode())
			}
		})
	}
}

// TestOpenSetsPerm: the writer gives an existing store the permissions
// asked for (a server started with or without --group), and says what
// they were. One that takes read access away is a copy in a new file
// with a new generation: a descriptor of the old one sees no later
// change. A reader of another uid's store is refused.
func TestOpenSetsPerm(t *testing.T) {
	path := testPath(t)
	mustOpen(t, Options{Path: path, Capacity: 64, RouteCapacity: 8}).Close()
	var old []byte // the file at the path as the step before left it
	prevGen := uint64(0)
	for i, step := range []struct {
		perm, was os.FileMode
		reissued  bool
	}{{0o640, 0o600, false}, {0o640, 0, false}, {0o600, 0o640, true}} {
		f, err := os.Open(path) // a member's descriptor
		if err != nil {
			t.Fatal(err)
		}
		s := mustOpen(t, Options{Path: path, Perm: step.perm})
		if err := s.CreateMAC(testMAC(i+1), v4(i)); err != nil {
			t.Fatal(err)
		}
		s.Close()
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != step.perm || s.Recovery().PermWas != step.was || s.Recovery().Reissued != step.reissued {
			t.Fatalf("Open with %04o: mode %v (%v), PermWas %04o, Reissued %v, want %04o, %v", step.perm, fi.Mode(), err, s.Recovery().PermWas, s.Recovery().Reissued, step.was, step.reissued)
		}
		seen, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		now, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		// The member's descriptor sees the writer's changes unless the
		// store was copied, and then nothing after the copy.
		if unchanged := bytes.Equal(seen, old); old != nil && unchanged != step.reissued {
			t.Fatalf("Open with %04o: the old descriptor unchanged: %v", step.perm, unchanged)
		}
		if newGen := s.Generation() != prevGen; prevGen != 0 && newGen != step.reissued {
			t.Fatalf("Open with %04o: generation %x, before %x", step.perm, s.Generation(), prevGen)
		}
		old, prevGen = now, s.Generation()
	}
	if _, err := OpenReader(path, os.Geteuid()+1); !strings.Contains(fmt.Sprint(err), fmt.Sprintf("is owned by uid %d, not uid %d", os.Geteuid(), os.Geteuid()+1)) {
		t.Fatalf("OpenReader for another owner: %v", err)
	}
}

func TestMACOps(t *testing.T) {
	s := mustOpen(t, Options{Path: testPath(t), Capacity: 4, RouteCapacity: 1})
	zero := entry.MAC{}
	steps := []struct {
		op   string
		m    entry.MAC
		ip   string
		want error
	}{
		{"create", zero, "192.0.2.1", nil}, // the all-zero MAC is a valid key
		{"create", zero, "192.0.2.2", entry.ErrExists},
		{"update", zero, "2001:db8::1", nil},
		{"update", testMAC(1), "192.0.2.3", entry.ErrNotFound},
		{"delete", testMAC(1), "", entry.ErrNotFound},
		{"create", testMAC(1), "::1:2", nil},
		{"create", testMAC(2), "0.0.0.1", nil},
		{"create", testMAC(3), "255.255.255.254", nil},
		{"create", testMAC(4), "192.0.2.9", ErrFull},
		{"delete", testMAC(2), "", nil},
		{"create", testMAC(4), "192.0.2.9", nil},
		{"create", testMAC(5), "::ffff:192.0.2.1", entry.ErrBadIP},
		{"create", testMAC(5), "fe80::1%eth0", entry.ErrBadIP},
		{"update", testMAC(4), "", entry.ErrBadIP},
	}
	for i, st := range steps {
		var ip netip.Addr
		if st.ip != "" {
			ip = netip.MustParseAddr(st.ip)
		}
		var err error
		switch st.op {
		case "create":
			err = s.CreateMAC(st.m, ip)
		case "update":
			err = s.UpdateMAC(st.m, ip)
		case "delete":
			err = s.DeleteMAC(st.m)
		}
		if !errors.Is(err, st.want) || (st.want == nil) != (err == nil) {
			t.Fatalf("step %d %s %s %s: %v, want %v", i, st.op, st.m, st.ip, err, st.want)
		}
		if err != nil && st.want != entry.ErrBadIP && !strings.Contains(err.Error(), st.m.String()) {
			t.Errorf("step %d: error %q does not name the MAC", i, err)
		}
	}
	want := map[entry.MAC]netip.Addr{
		zero:       netip.MustParseAddr("2001:db8::1"),
		testMAC(1): netip.MustParseAddr("::1:2"),
		testMAC(3): netip.MustParseAddr("255.255.255.254"),
		testMAC(4): netip.MustParseAddr("192.0.2.9"),
	}
	got := map[entry.MAC]netip.Addr{}
	s.RangeMACs(func(m entry.MAC, a netip.Addr) bool { got[m] = a; return true })
	if fmt.Sprint(got) != fmt.Sprint(want) || s.MACCount() != len(want) {
		t.Errorf("contents %v (count %d), want %v", got, s.MACCount(), want)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if err := s.FlushMACs(); err != nil {
		t.Fatal(err)
	}
	if s.MACCount() != 0 {
		t.Errorf("count %d after flush", s.MACCount())
	}
	if _, ok := s.LookupMAC(zero); ok {
		t.Error("zero MAC survived the flush")
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.CreateMAC(zero, netip.MustParseAddr("192.0.2.1")); !errors.Is(err, ErrClosed) {
		t.Errorf("create on a closed store: %v", err)
	}
}

func TestRouteOps(t *testing.T) {
	s := mustOpen(t, Options{Path: testPath(t), Capacity: 4, RouteCapacity: 3})
	a := mustRoute("10.1.1.0/24 192.168.1.1 eth0")
	b := mustRoute("10.1.0.0/16 192.168.1.2 eth1")
	c := mustRoute("2001:db8::/48 2001:db8::1 eth2")
	d := mustRoute("10.2.0.0/16 192.168.1.2 eth1")
	steps := []struct {
		op   string
		r    entry.Route
		want error
	}{
		{"create", a, nil},
		{"create", a, entry.ErrExists},
		{"update", b, entry.ErrNotFound},
		{"delete", b, entry.ErrNotFound},
		{"create", b, nil},
		{"create", c, nil},
		{"create", d, ErrFull},
		{"create", a, entry.ErrExists}, // full, and the route is there: it exists
		{"create", c, entry.ErrExists},
		{"update", entry.Route{Prefix: a.Prefix, Gateway: netip.MustParseAddr("192.168.1.9"), Dev: "eth9"}, nil},
		{"create", entry.Route{Prefix: netip.MustParsePrefix("10.1.1.1/24"), Gateway: a.Gateway, Dev: "eth0"}, entry.ErrBadPrefix},
		{"create", entry.Route{Prefix: d.Prefix, Gateway: netip.MustParseAddr("2001:db8::1"), Dev: "eth0"}, entry.ErrBadGateway},
		{"create", entry.Route{Prefix: d.Prefix, Gateway: d.Gateway, Dev: "a-very-long-name0"}, entry.ErrBadIfName},
		{"delete", b, nil},
		{"create", d, nil},
	}
	for i, st := range steps {
		var err error
		switch st.op {
		case "create":
			err = s.CreateRoute(st.r)
		case "update":
			err = s.UpdateRoute(st.r)
		case "delete":
			err = s.DeleteRoute(st.r.Prefix)
		}
		if !errors.Is(err, st.want) || (st.want == nil) != (err == nil) {
			t.Fatalf("step %d %s %v: %v, want %v", i, st.op, st.r, err, st.want)
		}
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for r := range s.Routes().All() {
		got = append(got, r.String())
	}
	want := []string{"10.1.1.0/24 via 192.168.1.9 dev eth9", "10.2.0.0/16 via 192.168.1.2 dev eth1", "2001:db8::/48 via 2001:db8::1 dev eth2"}
	if !slices.Equal(got, want) {
		t.Errorf("routes %q, want %q", got, want)
	}
	if r, ok := s.MatchRoute(netip.MustParseAddr("10.1.1.200")); !ok || r.Dev != "eth9" {
		t.Errorf("LPM: %v %v", r, ok)
	}
	if err := s.FlushRoutes(); err != nil {
		t.Fatal(err)
	}
	if s.RouteCount() != 0 || s.Routes().Len() != 0 {
		t.Errorf("%d routes after flush", s.RouteCount())
	}
	for _, r := range []entry.Route{a, b, c} {
		if err := s.CreateRoute(r); err != nil {
			t.Fatalf("after flush: %v", err)
		}
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

// TestConnectedRoutes: routes without a gateway survive the slots and a
// reopen, print as ip route prints them, and match like any other.
func TestConnectedRoutes(t *testing.T) {
	path := testPath(t)
	s := mustOpen(t, Options{Path: path, Capacity: 4, RouteCapacity: 8})
	routes := []entry.Route{
		mustRoute("192.0.2.0/24 - veth0"),
		mustRoute("2001:db8:1::/64 - veth1"),
		mustRoute("0.0.0.0/0 192.0.2.1 veth0"),
	}
	for _, r := range routes {
		if err := s.CreateRoute(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.UpdateRoute(mustRoute("0.0.0.0/0 - veth2")); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateRoute(mustRoute("192.0.2.0/24 192.0.2.254 veth0")); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateRoute(mustRoute("192.0.2.0/24 - veth0")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpen(t, Options{Path: path})
	var got []string
	for r := range s.Routes().All() {
		got = append(got, r.String())
	}
	want := []string{"0.0.0.0/0 dev veth2", "192.0.2.0/24 dev veth0", "2001:db8:1::/64 dev veth1"}
	if !slices.Equal(got, want) {
		t.Fatalf("after reopen: %q, want %q", got, want)
	}
	if r, ok := s.MatchRoute(netip.MustParseAddr("192.0.2.9")); !ok || !r.Connected() || r.Dev != "veth0" {
		t.Fatalf("match: %v %v", r, ok)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	r := mustRoute("192.0.2.0/24 - veth0")
	w := encodeRoute(&r)
	w[4] = 1 // gateway bits on a connected route
	if _, err := decodeRoute(w); err == nil {
		t.Fatal("a connected route with gateway bits decoded")
	}
}

// TestGatewaysRefused: a route through a gateway no kernel forwards by is
// refused with why, and changes nothing. A store an earlier rtm left
// with such routes still opens: one via 0.0.0.0 becomes the connected
// route Linux takes it for, the others are named, and can be updated.
func TestGatewaysRefused(t *testing.T) {
	path := testPath(t)
	s := mustOpen(t, Options{Path: path, Capacity: 4, RouteCapacity: 8})
	for gw, why := range map[string]string{
		"0.0.0.0": "the unspecified address: write - for a connected route", "224.0.0.5": "a multicast address",
		"127.0.0.1": "a loopback address", "255.255.255.255": "the broadcast address",
	} {
		err := s.CreateRoute(mustRoute("198.51.100.0/24 " + gw + " eth0"))
		if !errors.Is(err, entry.ErrBadGateway) || !strings.Contains(err.Error(), gw+": "+why) {
			t.Errorf("via %s: %v, want %q", gw, err, why)
		}
	}
	if s.RouteCount() != 0 {
		t.Fatalf("%d routes after refusals", s.RouteCount())
	}
	// As an earlier rtm stored them: through 0.0.0.0, which Linux takes
	// for a connected route, and through a multicast address.
	via0 := entry.Route{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Gateway: netip.IPv4Unspecified(), Dev: "eth0"}
	viaM := entry.Route{Prefix: netip.MustParsePrefix("203.0.113.0/24"), Gateway: netip.MustParseAddr("224.0.0.5"), Dev: "eth1"}
	wvia0 := encodeRoute(&via0)
	s.writeRoute(0, &wvia0)
	wviaM := encodeRoute(&viaM)
	s.writeRoute(1, &wviaM)
	s.Close()
	s = mustOpen(t, Options{Path: path})
	var got []string
	for r := range s.Routes().All() {
		got = append(got, r.String())
	}
	if want := []string{"198.51.100.0/24 dev eth0", "203.0.113.0/24 via 224.0.0.5 dev eth1"}; !slices.Equal(got, want) {
		t.Fatalf("the store of an earlier rtm opened with %q, want %q", got, want)
	}
	if rec := s.Recovery(); rec.Connected != 1 || len(rec.BadGateways) != 1 || rec.BadGateways[0] != viaM {
		t.Fatalf("recovery %+v: want 1 route made connected and %v named", rec, viaM)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateRoute(mustRoute("203.0.113.0/24 192.0.2.1 eth1")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = mustOpen(t, Options{Path: path})
	if rec := s.Recovery(); rec.Connected != 0 || len(rec.BadGateways) != 0 {
		t.Fatalf("after the update, recovery %+v", rec)
	}
}

// TestMACAddressesRefused: a MAC's address names a host, so the
// unspecified, multicast, loopback and broadcast addresses are refused
// (a --to-kernel client made each a permanent neighbour); a store an
// earlier rtm left with one still opens and serves it, and it can be
// updated or deleted.
func TestMACAddressesRefused(t *testing.T) {
	path := testPath(t)
	s := mustOpen(t, Options{Path: path, Capacity: 8, RouteCapacity: 1})
	for ip, why := range map[string]string{
		"0.0.0.0": "the unspecified address", "::": "the unspecified address", "224.0.0.5": "a multicast address",
		"ff02::1": "a multicast address", "127.0.0.1": "a loopback address", "::1": "a loopback address",
		"255.255.255.255": "the broadcast address",
	} {
		for _, op := range []func(entry.MAC, netip.Addr) error{s.CreateMAC, s.UpdateMAC} {
			err := op(testMAC(1), netip.MustParseAddr(ip))
			if !errors.Is(err, entry.ErrBadIP) || !strings.Contains(err.Error(), ip+": "+why) {
				t.Errorf("%s: %v, want %q", ip, err, why)
			}
		}
	}
	if s.MACCount() != 0 {
		t.Fatalf("%d MACs after refusals", s.MACCount())
	}
	// As an earlier rtm stored one: made, then its address written.
	m, bcast := testMAC(2), netip.MustParseAddr("255.255.255.255")
	if err := s.CreateMAC(m, netip.MustParseAddr("192.0.2.1")); err != nil {
		t.Fatal(err)
	}
	i, _ := s.probe(macKey(m))
	fam, hi, lo := encodeIP(bcast)
	s.writeMAC(i, macKey(m)|fam, hi, lo)
	s.Close()
	s = mustOpen(t, Options{Path: path})
	if ip, ok := s.LookupMAC(m); !ok || ip != bcast {
		t.Fatalf("the store of an earlier rtm: %s %v, want %s", ip, ok, bcast)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateMAC(m, netip.MustParseAddr("192.0.2.9")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMAC(m); err != nil {
		t.Fatal(err)
	}
}

// TestCommaDevicesKept: a store an earlier rtm left with a route through
// a device named with ',' (imported from a kernel) still opens, names
// the route, and lets it be deleted; a new one is refused.
func TestCommaDevicesKept(t *testing.T) {
	path := testPath(t)
	s := mustOpen(t, Options{Path: path, Capacity: 4, RouteCapacity: 8})
	comma := entry.Route{Prefix: netip.MustParsePrefix("198.51.100.8/29"), Dev: "a,b"}
	if err := s.CreateRoute(comma); !errors.Is(err, entry.ErrBadIfName) {
		t.Fatalf("create through a,b: %v, want ErrBadIfName", err)
	}
	// A name with byte 0xa0 (white space to the kernel), as an rtm
	// before that rule took it typed.
	nbsp := entry.Route{Prefix: netip.MustParsePrefix("198.51.100.16/29"), Dev: "v\u00e0"}
	if err := s.CreateRoute(nbsp); !errors.Is(err, entry.ErrBadIfName) {
		t.Fatalf("create through %q: %v, want ErrBadIfName", nbsp.Dev, err)
	}
	wc := encodeRoute(&comma)
	s.writeRoute(0, &wc) // as an earlier rtm stored it
	s.Close()
	s = mustOpen(t, Options{Path: path})
	if rec := s.Recovery(); len(rec.BadDevices) != 1 || rec.BadDevices[0] != comma {
		t.Fatalf("recovery %+v: want %v named", rec, comma)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRoute(comma.Prefix); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s = mustOpen(t, Options{Path: path}); len(s.Recovery().BadDevices) != 0 || s.RouteCount() != 0 {
		t.Fatalf("after the delete: recovery %+v, %d routes", s.Recovery(), s.RouteCount())
	}
}

// TestLayoutOneUpgraded: a segment of layout version 1 (no connected
// routes) opens, keeps its contents, and is marked version 2.
func TestLayoutOneUpgraded(t *testing.T) {
	path := testPath(t)
	s := mustOpen(t, Options{Path: path, Capacity: 4, RouteCapacity: 4})
	if err := s.CreateRoute(mustRoute("10.1.0.0/16 192.168.1.1 eth0")); err != nil {
		t.Fatal(err)
	}
	s.hdr.version.Store(1)
	s.hdr.checksum.Store(staticSum(s.hdr))
	s.Close()
	r, err := OpenReader(path, os.Getuid())
	if err != nil {
		t.Fatalf("reader of a version 1 segment: %v", err)
	}
	r.Close()
	s = mustOpen(t, Options{Path: path})
	if v := s.hdr.version.Load(); v != layoutVersion || s.RouteCount() != 1 {
		t.Fatalf("version %d, %d routes after reopening a version 1 segment", v, s.RouteCount())
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
}

func TestRouteTable(t *testing.T) {
	var rt RouteTable
	in := []string{
		"2001:db8::/32 fe80::1 eth3",
		"10.0.0.0/8 192.168.0.1 eth0",
		"::/0 fe80::2 eth4",
		"10.1.0.0/16 192.168.0.2 eth1",
		"0.0.0.0/0 192.168.0.3 eth2",
		"10.1.2.0/24 192.168.0.4 eth5",
	}
	for _, r := range in {
		rt.Set(new(mustRoute(r)))
	}
	var got []string
	for r := range rt.All() {
		got = append(got, r.Prefix.String())
	}
	want := []string{"0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "::/0", "2001:db8::/32"}
	if !slices.Equal(got, want) {
		t.Errorf("All: %v, want %v", got, want)
	}
	lpm := []struct{ ip, dev string }{
		{"10.1.2.3", "eth5"}, {"10.1.3.3", "eth1"}, {"10.2.0.1", "eth0"}, {"11.0.0.1", "eth2"},
		{"::ffff:10.1.2.3", "eth5"}, {"2001:db8::1", "eth3"}, {"2001:db9::1", "eth4"},
	}
	for _, c := range lpm {
		if r, ok := rt.Match(netip.MustParseAddr(c.ip)); !ok || r.Dev != c.dev {
			t.Errorf("Match(%s) = %v %v, want dev %s", c.ip, r, ok, c.dev)
		}
	}
	if err := rt.Delete(netip.MustParsePrefix("10.9.0.0/16")); !errors.Is(err, entry.ErrNotFound) {
		t.Errorf("Delete of missing: %v", err)
	}
	if err := rt.Delete(netip.MustParsePrefix("10.1.2.0/24")); err != nil {
		t.Fatal(err)
	}
	if r, _ := rt.Match(netip.MustParseAddr("10.1.2.3")); r.Dev != "eth1" {
		t.Errorf("after delete Match = %v", r)
	}
	rt.Set(new(mustRoute("10.1.0.0/16 192.168.0.7 eth7")))
	if r, _ := rt.Get(netip.MustParsePrefix("10.1.0.0/16")); r.Dev != "eth7" {
		t.Errorf("Set did not replace: %v", r)
	}
	if rt.Len() != 5 {
		t.Errorf("Len %d", rt.Len())
	}
	rt.Clear()
	if rt.Len() != 0 {
		t.Errorf("Len %d after Clear", rt.Len())
	}
}

// TestRouteTableNames: a table interns the interface names its routes
// use, and forgets a name no route uses any more, so a stream of
// routes through ever new names does not grow it.
func TestRouteTableNames(t *testing.T) {
	var rt RouteTable
	for i := range 10_000 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
		rt.Set(&entry.Route{Prefix: p, Gateway: netip.MustParseAddr("192.0.2.1"), Dev: fmt.Sprintf("veth%d", i)})
		if i >= 20 {
			old := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte((i - 20) >> 8), byte(i - 20), 0}), 24)
			if err := rt.Delete(old); err != nil {
				t.Fatal(err)
			}
		}
		if i%7 == 0 {
			// A replace moves a name's route to another name.
			rt.Set(&entry.Route{Prefix: p, Dev: fmt.Sprintf("dummy%d", i)})
		}
	}
	if n := len(rt.devs.names); n > 2*devScan {
		t.Errorf("%d names held for %d routes", n, rt.Len())
	}
	for i := 10_000 - 20; i < 10_000; i++ {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24)
		want := fmt.Sprintf("veth%d", i)
		if i%7 == 0 {
			want = fmt.Sprintf("dummy%d", i)
		}
		if r, ok := rt.Get(p); !ok || r.Dev != want {
			t.Errorf("Get(%s) = %v %v, want dev %s", p, r, ok, want)
		}
	}
}

// TestRouteTableReserve: a table reserved for n routes keeps what it held,
// and takes n routes without allocating.
func TestRouteTableReserve(t *testing.T) {
	var rt RouteTable
	r := func(i int) entry.Route {
		return entry.Route{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24), Dev: "eth0"}
	}
	for i := range 50 {
		rt.Set(new(r(i)))
	}
	const n = 5000
	rt.Reserve(n)
	for i := range 50 {
		if got, ok := rt.Get(r(i).Prefix); !ok || got != r(i) {
			t.Fatalf("after Reserve, Get(%s) = %v %v", r(i).Prefix, got, ok)
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := 50; i < n; i++ {
		rt.Set(new(r(i)))
	}
	runtime.ReadMemStats(&after)
	if m := after.Mallocs - before.Mallocs; m != 0 {
		t.Errorf("%d allocations setting %d routes into a table reserved for them", m, n-50)
	}
	if rt.Len() != n {
		t.Errorf("Len %d, want %d", rt.Len(), n)
	}
	if got, ok := rt.Match(netip.MustParseAddr("10.19.135.7")); !ok || got != r(n-1) {
		t.Errorf("Match = %v %v, want %v", got, ok, r(n-1))
	}
}

func TestSecondWriterInProcess(t *testing.T) {
	path := testPath(t)
	s := mustOpen(t, Options{Path: path, Capacity: 16, RouteCapacity: 4})
	_, err := Open(Options{Path: path})
	var le *LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() || le.Path != path {
		t.Fatalf("second Open: %v, want *LockedError naming pid %d", err, os.Getpid())
	}
	if !strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) {
		t.Errorf("message %q does not name the owner", err)
	}
	s.Close()
	s2, err := Open(Options{Path: path})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	if err := s2.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("file still there after Remove: %v", err)
	}
}

func TestStaleTempRemoved(t *testing.T) {
	path := testPath(t)
	// A creator that died before publishing: pid 2^22+1 is above the largest pid
	// Linux allows, so no live process has it.
	stale := path + ".tmp-4194305-1f"
	if err := os.WriteFile(stale, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	live := fmt.Sprintf("%s.tmp-%d-2f", path, os.Getpid())
	if err := os.WriteFile(live, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := mustOpen(t, Options{Path: path, Capacity: 8, RouteCapacity: 1})
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file survived: %v", err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("a live creator's temporary file was removed: %v", err)
	}
	s.Close()
	// Reopening an existing store removes them too: a reissue (a store
	// copied to take back its readers' access) killed before its rename
	// leaves one as big as the store.
	if err := os.WriteFile(stale, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	mustOpen(t, Options{Path: path}).Close()
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file survived a reopen: %v", err)
	}
	// A store named as a temporary file would be removed as one by the
	// next creator of the store it seems to belong to.
	if _, err := Open(Options{Path: stale}); err == nil || !strings.Contains(err.Error(), "a name with .tmp- in it is kept for the files a store is made in") {
		t.Errorf("a store named as a temporary file: %v", err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("refused, but made: %v", err)
	}
}

// B6: 1 M MACs and 100 k routes fit in 64 MiB.
func TestLayoutBudget(t *testing.T) {
	l := newLayout(1_000_000, 100_000)
	if l.total > 64<<20 {
		t.Errorf("segment for 1 M MACs + 100 k routes is %d bytes, over 64 MiB", l.total)
	}
	t.Logf("1 M MACs + 100 k routes: %.1f MiB (%d MAC slots)", float64(l.total)/(1<<20), l.macSlots)
}

// TestLookupMany: the batched lookup, and a lookup by Key, answer exactly
// as Lookup does, for present and absent keys, IPv4 and IPv6, and batches
// of any length; Keys made before the table changes (deletes move
// entries back along their probes) still find what Lookup finds.
func TestLookupMany(t *testing.T) {
	path := testPath(t)
	st := mustOpen(t, Options{Path: path, Capacity: 4096})
	var keys []entry.MAC
	for i := range 3000 {
		m := entry.MAC{0x02, 0, 0, byte(i >> 16), byte(i >> 8), byte(i)}
		keys = append(keys, m)
		if i%3 == 0 {
			continue // absent
		}
		ip := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		if i%5 == 0 {
			ip = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
		}
		if err := st.CreateMAC(m, ip); err != nil {
			t.Fatal(err)
		}
	}
	rd, err := OpenReader(path, os.Getuid())
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for _, n := range []int{0, 1, 15, 16, 17, 1000, len(keys)} {
		ips := make([]netip.Addr, n)
		errs := make([]error, n)
		rd.LookupMany(keys[:n], ips, errs)
		for i, m := range keys[:n] {
			ip, err := rd.Lookup(m)
			if ip != ips[i] || err != errs[i] {
				t.Fatalf("batch of %d, key %s: LookupMany says %v, %v; Lookup says %v, %v", n, m, ips[i], errs[i], ip, err)
			}
		}
	}
	byKey := make([]Key, len(keys))
	for i, m := range keys {
		byKey[i] = rd.Key(m)
	}
	same := func(when string) {
		t.Helper()
		found := 0
		for i, m := range keys {
			ip, err := rd.Lookup(m)
			kip, kerr := rd.LookupKey(byKey[i])
			if ip != kip || err != kerr {
				t.Fatalf("%s, key %s: LookupKey says %v, %v; Lookup says %v, %v", when, m, kip, kerr, ip, err)
			}
			if err == nil {
				found++
			}
		}
		if found == 0 {
			t.Fatalf("%s: no key found", when)
		}
	}
	same("as made")
	for i, m := range keys {
		switch {
		case i%3 == 0:
		case i%7 == 0:
			if err := st.DeleteMAC(m); err != nil {
				t.Fatal(err)
			}
		case i%11 == 0:
			if err := st.UpdateMAC(m, netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})); err != nil {
				t.Fatal(err)
			}
		}
	}
	same("after deletes and updates")

	// A Key made for one table is still answered right by a table of
	// another size (a segment made anew), and the zero Key by none.
	other := mustOpen(t, Options{Path: testPath(t), Capacity: 9000})
	for _, m := range keys[:500] {
		if ip, err := rd.Lookup(m); err == nil {
			if err := other.CreateMAC(m, ip); err != nil {
				t.Fatal(err)
			}
		}
	}
	rd2, err := OpenReader(other.Path(), os.Getuid())
	if err != nil {
		t.Fatal(err)
	}
	defer rd2.Close()
	// Both ways, for MACs the other table holds and for MACs it lacks: a
	// probe from a home that is wrong in this table must not turn into a
	// miss, nor a miss into anything but ErrNotFound.
	for i, m := range keys[:1000] {
		for _, c := range []struct {
			made, asked *Reader
			k           Key
		}{{rd, rd2, byKey[i]}, {rd2, rd, rd2.Key(m)}} {
			ip, err := c.asked.Lookup(m)
			kip, kerr := c.asked.LookupKey(c.k)
			if ip != kip || err != kerr {
				t.Fatalf("key %s made for a table of %d slots, asked of one of %d: LookupKey says %v, %v; Lookup says %v, %v",
					m, len(c.made.macs), len(c.asked.macs), kip, kerr, ip, err)
			}
		}
	}
	if len(rd.macs) == len(rd2.macs) {
		t.Fatalf("both tables have %d slots: the test needs two sizes", len(rd.macs))
	}
	for _, r := range []*Reader{rd, rd2} {
		if ip, err := r.LookupKey(Key{}); err != entry.ErrNotFound {
			t.Fatalf("the zero Key: %v, %v; want not found", ip, err)
		}
	}
}

// TestRouteTableMatchesNaive: longest-prefix match, exact lookup, length
// and order against a plain list, over random IPv4 and IPv6 tables with
// deletes, every length from /0 to /32 and /128 included.
func TestRouteTableMatchesNaive(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	var rt RouteTable
	naive := map[netip.Prefix]entry.Route{}
	randAddr := func(v6 bool) netip.Addr {
		if v6 {
			var b [16]byte
			b[0], b[1] = 0x20, 0x01
			for i := 2; i < 16; i++ {
				b[i] = byte(rng.IntN(4)) // few values: prefixes nest
			}
			return netip.AddrFrom16(b)
		}
		return netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(4)), byte(rng.IntN(4))})
	}
	for step := range 20_000 {
		v6 := rng.IntN(2) == 0
		a := randAddr(v6)
		p := netip.PrefixFrom(a, rng.IntN(a.BitLen()+1)).Masked()
		switch rng.IntN(3) {
		case 0:
			err := rt.Delete(p)
			if _, had := naive[p]; had != (err == nil) {
				t.Fatalf("step %d: delete %s: %v, had %v", step, p, err, had)
			}
			delete(naive, p)
		default:
			// More names than a scan serves: the interned names switch to a map.
			r := entry.Route{Prefix: p, Dev: fmt.Sprintf("eth%d", step%37)}
			if step%3 == 0 {
				r.Gateway = randAddr(v6)
			}
			rt.Set(&r)
			naive[p] = r
		}
		if rt.Len() != len(naive) {
			t.Fatalf("step %d: len %d, want %d", step, rt.Len(), len(naive))
		}
		ip := randAddr(v6)
		var want entry.Route
		found := false
		for q, r := range naive {
			if q.Contains(ip) && (!found || q.Bits() > want.Prefix.Bits()) {
				want, found = r, true
			}
		}
		if got, ok := rt.Match(ip); ok != found || got != want {
			t.Fatalf("step %d: match %s: %v %v, want %v %v", step, ip, got, ok, want, found)
		}
		if got, ok := rt.Get(p); ok != (naive[p] != entry.Route{}) || got != naive[p] {
			t.Fatalf("step %d: get %s: %v %v", step, p, got, ok)
		}
	}
	var prev netip.Prefix
	n := 0
	for r := range rt.All() {
		if n > 0 && (r.Prefix.Addr().Less(prev.Addr()) || r.Prefix.Addr() == prev.Addr() && r.Prefix.Bits() <= prev.Bits()) {
			t.Fatalf("All out of order: %s after %s", r.Prefix, prev)
		}
		if naive[r.Prefix] != r {
			t.Fatalf("All yields %v, not in the table", r)
		}
		prev = r.Prefix
		n++
	}
	if n != len(naive) {
		t.Fatalf("All yields %d routes, want %d", n, len(naive))
	}
	if r, ok := rt.Match(netip.MustParseAddr("::ffff:10.1.2.3")); ok && !r.Prefix.Addr().Is4() {
		t.Fatalf("a mapped address matched an IPv6 route: %v", r)
	}
}

// TestLockNeedsWriteAccess: the write lock is one that only a descriptor
// open for writing can take, so a process that may only read the store
// (a --group member) cannot keep a server out with a flock. An rtm that
// locks with flock alone and serves the store still keeps this one out.
func TestLockNeedsWriteAccess(t *testing.T) {
	path := testPath(t)
	s := mustOpen(t, Options{Path: path, Capacity: 100, RouteCapacity: 10})
	ro, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ro)
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	if err := unix.FcntlFlock(uintptr(ro), unix.F_OFD_SETLK, &lk); err != unix.EBADF {
		t.Fatalf("a write lock through a read-only descriptor: %v, want EBADF", err)
	}
	s.Close()

	// A reader's flock, held across a restart, keeps nobody out.
	if err := unix.Flock(ro, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, Options{Path: path})
	if _, err := Open(Options{Path: path}); !errors.As(err, new(*LockedError)) {
		t.Fatalf("a second writer beside the first: %v, want a LockedError", err)
	}
	s.Close()
	unix.Flock(ro, unix.LOCK_UN)

	// An older rtm: its flock alone, and the header naming it, alive.
	s = mustOpen(t, Options{Path: path})
	lk.Type = unix.F_UNLCK
	if err := unix.FcntlFlock(uintptr(s.fd), unix.F_OFD_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	var le *LockedError
	if _, err := Open(Options{Path: path}); !errors.As(err, &le) || le.PID != os.Getpid() {
		t.Fatalf("beside a writer that holds a flock alone: %v, want a LockedError naming pid %d", err, os.Getpid())
	}
}

// TestRemoveFiles: RemoveFiles takes the store's writer lock, so it
// refuses a store a server holds (and a server starting meanwhile waits);
// otherwise it removes the store, its lock file and stale temporary files.
func TestRemoveFiles(t *testing.T) {
	path := testPath(t)
	s := mustOpen(t, Options{Path: path, Capacity: 8, RouteCapacity: 1})
	var le *LockedError
	if _, err := RemoveFiles(path); !errors.As(err, &le) || le.PID != os.Getpid() {
		t.Fatalf("RemoveFiles of a store held: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the held store: %v", err)
	}
	s.Close()
	// What a killed server leaves: its lock file, and a creator's
	// temporary file.
	if err := os.WriteFile(LockPath(path), []byte("4194305"), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := path + ".tmp-4194305-1f"
	if err := os.WriteFile(stale, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if gone, err := RemoveFiles(path); !gone || err != nil {
		t.Fatalf("RemoveFiles: %v, %v", gone, err)
	}
	for _, p := range []string{path, LockPath(path), stale} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", p, err)
		}
	}
	if gone, err := RemoveFiles(path); gone || err != nil {
		t.Errorf("RemoveFiles of no store: %v, %v", gone, err)
	}
}

// TestLockFileRefused: a lock file that is not the server's own regular
// file is refused, named as the lock file, with the fix: it holds
// nothing, remove it.
func TestLockFileRefused(t *testing.T) {
	path := testPath(t)
	if err := os.Mkdir(LockPath(path), 0o700); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(LockPath(path))
	_, err := Open(Options{Path: path, Capacity: 8, RouteCapacity: 1})
	var ue *UnsafeError
	if !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), "lock file "+LockPath(path)+" ") || !strings.Contains(err.Error(), "holds nothing; have it removed") {
		t.Fatalf("a directory where the lock file goes: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("refused, but the store was made: %v", err)
	}
}

// TestInspectWriterOfAnotherUID: a store whose writer has not closed it
// is live only while its writer's pid runs as the store's owner: after a
// crash the pid may be another uid's process (pids are reused), which
// made rtm ls call the store live and rtm rm refuse it.
func TestInspectWriterOfAnotherUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run a process as uid 65534")
	}
	path := testPath(t)
	s := mustOpen(t, Options{Path: path, Capacity: 64, RouteCapacity: 8})
	other := exec.Command("sleep", "60")
	other.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	own := s.hdr.pid.Load()
	defer s.hdr.pid.Store(own)
	for _, tc := range []struct {
		pid  int
		live bool
	}{{os.Getpid(), true}, {other.Process.Pid, false}, {0, false}} {
		s.hdr.pid.Store(uint64(tc.pid))
		in, err := Inspect(path)
		if err != nil || in.Clean || in.Live != tc.live {
			t.Errorf("writer pid %d: %+v, %v; want live %v", tc.pid, in, err, tc.live)
		}
	}
}

// TestRouteSlotsInOrder: a new store's routes take its slots in index
// order without the slots being listed first, a deleted route's slot is
// taken before an untouched one, a flush starts again at slot 0, and a
// full table says so; Check agrees at every step, and a reopened store
// goes on the same way.
func TestRouteSlotsInOrder(t *testing.T) {
	o := Options{Path: testPath(t), Capacity: 64, RouteCapacity: 8}
	s := mustOpen(t, o)
	route := func(i int) entry.Route {
		return entry.Route{Prefix: netip.PrefixFrom(v4(i<<8), 24), Gateway: netip.MustParseAddr("192.0.2.1"), Dev: "eth0"}
	}
	slotOf := func(i int) int32 {
		t.Helper()
		k, ok := s.routes.slot(route(i).Prefix)
		if !ok {
			t.Fatalf("route %d not in the table", i)
		}
		return k
	}
	create := func(i int, wantSlot int32) {
		t.Helper()
		if err := s.CreateRoute(route(i)); err != nil {
			t.Fatalf("create route %d: %v", i, err)
		}
		if k := slotOf(i); k != wantSlot {
			t.Fatalf("route %d in slot %d, want %d", i, k, wantSlot)
		}
		if err := s.Check(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		create(i, int32(i))
	}
	if err := s.DeleteRoute(route(1).Prefix); err != nil {
		t.Fatal(err)
	}
	create(10, 1) // the freed slot first
	create(11, 3) // then the untouched ones, in order
	if err := s.FlushRoutes(); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		create(20+i, int32(i))
	}
	if err := s.CreateRoute(route(40)); !errors.Is(err, ErrFull) {
		t.Fatalf("a ninth route: %v, want ErrFull", err)
	}
	for _, i := range []int{23, 25} {
		if err := s.DeleteRoute(route(i).Prefix); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, o)
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	create(41, 3) // a reopened store lists its free slots, lowest first
	create(42, 5)
	if err := s.CreateRoute(route(43)); !errors.Is(err, ErrFull) {
		t.Fatalf("a ninth route after reopening: %v, want ErrFull", err)
	}
}
