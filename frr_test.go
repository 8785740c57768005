package main

// BGP through FRR. zebra and bgpd from Debian's frr package run in
// network namespaces the tests make, one pair per host; rtm takes their
// routes from the kernel (--from-kernel) or straight from zebra
// (--from-fpm), and gives its own to them (--to-kernel with FRR's
// redistribute kernel). Hosts are joined by veth pairs, both ends inside
// the test's namespaces, and a link's device is named after the host at
// its other end (on h2, the link to h1 is "h1"). Only documentation
// prefixes are used, and no packet is sent but the daemons' own BGP.

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"rtm/repl/rtmtest"
)

const frrDaemons = "/usr/lib/frr"

// frrUser returns the uid and gid FRR's daemons run as, or skips the
// test if FRR is not installed.
func frrUser(t *testing.T) (uid, gid int) {
	t.Helper()
	why := ""
	for _, d := range []string{"zebra", "bgpd"} {
		if _, err := os.Stat(filepath.Join(frrDaemons, d)); err != nil {
			why = err.Error()
		}
	}
	if _, err := exec.LookPath("vtysh"); err != nil {
		why = err.Error()
	}
	u, err := user.Lookup("frr")
	if err != nil {
		why = err.Error()
	}
	if why != "" {
		t.Skipf("package main (rtm): the BGP tests need FRR, Debian's frr package (apt-get install frr): %s", why)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// frrHost is one host: a namespace with zebra and bgpd of its own, their
// runtime files (config, pid files, sockets, logs) in a directory the
// user frr owns.
type frrHost struct {
	*netns
	host    string
	dir     string
	daemons map[string]*exec.Cmd
	zebra   []string // extra zebra arguments
	conf    string   // frr.conf, as last started
}

func newFRRHost(t *testing.T, host string) *frrHost {
	t.Helper()
	uid, gid := frrUser(t)
	h := &frrHost{netns: emptyNetns(t), host: host, daemons: map[string]*exec.Cmd{}}
	h.ip("link", "set", "lo", "up")
	dir, err := os.MkdirTemp("", "rtm-frr-"+host+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	h.dir = dir
	// Registered after the namespace's removal, so run before it.
	t.Cleanup(func() {
		for _, d := range []string{"bgpd", "zebra"} {
			h.stop(d, syscall.SIGTERM)
		}
		if t.Failed() {
			for _, d := range []string{"zebra", "bgpd"} {
				b, _ := os.ReadFile(filepath.Join(dir, d+".log"))
				t.Logf("%s %s log:\n%s", host, d, b)
			}
		}
	})
	return h
}

// linkFRR joins a and b with a veth pair, a's end named b.host with
// address aAddr, b's named a.host with bAddr.
func linkFRR(a, b *frrHost, aAddr, bAddr string) {
	a.t.Helper()
	a.ip("link", "add", b.host, "type", "veth", "peer", "name", a.host, "netns", b.name)
	a.ip("addr", "add", aAddr, "dev", b.host)
	b.ip("addr", "add", bAddr, "dev", a.host)
	a.ip("link", "set", b.host, "up")
	b.ip("link", "set", a.host, "up")
}

// start writes conf as the host's frr.conf and starts zebra, then bgpd.
func (h *frrHost) start(conf string) {
	h.t.Helper()
	uid, gid := frrUser(h.t)
	h.conf = conf
	path := filepath.Join(h.dir, "frr.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		h.t.Fatal(err)
	}
	os.Chown(path, uid, gid)
	h.startDaemon("zebra")
	if !rtmtest.WaitFor(10*time.Second, func() bool { _, err := os.Stat(filepath.Join(h.dir, "zserv.api")); return err == nil }) {
		h.t.Fatalf("%s: zebra never opened its socket", h.host)
	}
	h.startDaemon("bgpd")
}

// startDaemon starts zebra or bgpd in the host's namespace with its own
// pid file, zebra socket and vty socket directory.
func (h *frrHost) startDaemon(d string) {
	h.t.Helper()
	args := []string{"netns", "exec", h.name, filepath.Join(frrDaemons, d),
		"-f", filepath.Join(h.dir, "frr.conf"), "-i", filepath.Join(h.dir, d+".pid"),
		"-z", filepath.Join(h.dir, "zserv.api"), "--vty_socket", h.dir, "-P", "0",
		"--log", "file:" + filepath.Join(h.dir, d+".log")}
	if d == "zebra" {
		args = append(args, h.zebra...)
	}
	cmd := exec.Command("ip", args...)
	if err := cmd.Start(); err != nil {
		h.t.Fatalf("%s: start %s: %v", h.host, d, err)
	}
	h.daemons[d] = cmd
}

// stop ends a daemon with sig (SIGKILL: a crash) and waits for it.
func (h *frrHost) stop(d string, sig syscall.Signal) {
	cmd := h.daemons[d]
	if cmd == nil {
		return
	}
	delete(h.daemons, d)
	cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// vtysh runs commands at the host's daemons, in configuration mode if
// the first is "conf t".
func (h *frrHost) vtysh(cmds ...string) string {
	h.t.Helper()
	args := []string{"netns", "exec", h.name, "vtysh", "--vty_socket", h.dir}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		h.t.Fatalf("%s: vtysh %q: %v: %s", h.host, cmds, err, out)
	}
	return string(out)
}

// bgpConf is a host's frr.conf: eBGP to each neighbour (address: AS),
// with timers that converge in seconds, and the given lines in the IPv4
// unicast address family. zebra and bgpd both read it and skip what is
// the other's.
func bgpConf(host string, as int, id string, neighbours map[string]int, zebra []string, af ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "frr defaults datacenter\nhostname %s\n", host)
	for _, l := range zebra {
		b.WriteString(l + "\n")
	}
	fmt.Fprintf(&b, "router bgp %d\n bgp router-id %s\n no bgp ebgp-requires-policy\n no bgp network import-check\n", as, id)
	for _, n := range slices.Sorted(maps.Keys(neighbours)) {
		fmt.Fprintf(&b, " neighbor %s remote-as %d\n neighbor %s timers connect 1\n", n, neighbours[n], n)
	}
	b.WriteString(" address-family ipv4 unicast\n")
	for _, l := range af {
		b.WriteString("  " + l + "\n")
	}
	b.WriteString(" exit-address-family\n")
	return b.String()
}

// announce makes h announce (or, with no, withdraw) prefixes.
func (h *frrHost) announce(as int, no bool, prefixes ...string) {
	h.t.Helper()
	cmds := []string{"conf t", fmt.Sprintf("router bgp %d", as), "address-family ipv4 unicast"}
	for _, p := range prefixes {
		if no {
			cmds = append(cmds, "no network "+p)
		} else {
			cmds = append(cmds, "network "+p)
		}
	}
	h.vtysh(cmds...)
}

// waitRoutes waits until the routes client c of server srv shows for
// prefixes are want, as `show routes` prints them.
func waitRoutes(t *testing.T, srv, c *proc, prefixes []string, want ...string) {
	t.Helper()
	var got []string
	ok := rtmtest.WaitFor(30*time.Second, func() bool {
		got = got[:0]
		for _, l := range strings.Split(c.must("show routes"), "\n") {
			if f := strings.Fields(l); len(f) > 0 && slices.Contains(prefixes, f[0]) {
				got = append(got, l)
			}
		}
		slices.Sort(got)
		return slices.Equal(got, want)
	})
	if !ok {
		t.Fatalf("client's routes:\n%s\nwant:\n%s\nserver's stats:\n%s\nserver's stderr:\n%s",
			strings.Join(got, "\n"), strings.Join(want, "\n"), srv.must("show stats"), srv.errb)
	}
}

// frrPair is h1 and h2 joined by a link, h1 announcing two prefixes over
// eBGP, and rtm on h2 taking its routes from source (--from-kernel or
// --from-fpm) to a client, which has h1's prefixes when it returns.
type frrPair struct {
	h1, h2   *frrHost
	srv, cl  *proc
	srvArgs  []string // to start rtm's server on h2 again
	prefixes []string // h1's
	routes   []string // h1's as rtm shows them on h2
}

func newFRRPair(t *testing.T, source string) *frrPair {
	t.Helper()
	p := &frrPair{h1: newFRRHost(t, "h1"), h2: newFRRHost(t, "h2"),
		prefixes: []string{"198.51.100.0/24", "203.0.113.0/25"},
		routes:   []string{"198.51.100.0/24 via 192.0.2.1 dev h1", "203.0.113.0/25 via 192.0.2.1 dev h1"}}
	linkFRR(p.h1, p.h2, "192.0.2.1/24", "192.0.2.2/24")
	in := newInstance(t)
	// rtm listens first: zebra dials FPM 3 s after it starts, then every 3 s.
	p.srvArgs = append([]string{"server", "--framed", source}, in.flags()...)
	p.srv = p.h2.rtm(p.srvArgs...)
	p.srv.must("")
	var zebra []string
	if source == "--from-fpm" {
		p.h2.zebra = []string{"-M", "dplane_fpm_nl"}
		zebra = []string{"fpm address 127.0.0.1 port 2620"}
	}
	p.h1.start(bgpConf("h1", 65001, "192.0.2.1", map[string]int{"192.0.2.2": 65002}, nil,
		"network 198.51.100.0/24", "network 203.0.113.0/25"))
	p.h2.start(bgpConf("h2", 65002, "192.0.2.2", map[string]int{"192.0.2.1": 65001}, zebra))
	p.cl = p.h2.rtm("client", "--framed", "--socket", in.socket, "--client-name", "app")
	p.cl.must("")
	p.has(p.routes...)
	return p
}

// has waits until rtm's client on h2 shows exactly routes of h1's
// prefixes.
func (p *frrPair) has(routes ...string) {
	p.h2.t.Helper()
	waitRoutes(p.h2.t, p.srv, p.cl, p.prefixes, routes...)
}

// TestFRRTwoHosts: prefixes h1 announces over eBGP reach the clients of
// rtm on h2, through h2's kernel (--from-kernel) or straight from h2's
// zebra (--from-fpm); a withdrawal removes one; the session going down
// (h1's bgpd killed, then h2's link down) removes them, and they return
// when it comes back.
func TestFRRTwoHosts(t *testing.T) {
	t.Parallel()
	for _, source := range []string{"--from-kernel", "--from-fpm"} {
		t.Run(source[2:], func(t *testing.T) {
			t.Parallel()
			p := newFRRPair(t, source)
			p.h1.announce(65001, true, "203.0.113.0/25")
			p.has(p.routes[0])
			p.h1.announce(65001, false, "203.0.113.0/25")
			p.has(p.routes...)

			p.h1.stop("bgpd", syscall.SIGKILL)
			p.has()
			p.h1.startDaemon("bgpd")
			p.has(p.routes...)

			p.h2.ip("link", "set", "h1", "down")
			p.has()
			p.h2.ip("link", "set", "h1", "up")
			p.has(p.routes...)

			stats := p.srv.must("show stats")
			what := strings.TrimPrefix(source, "--from-")
			if n := statValue(stats, "changes_from_"+what); n < 8 {
				t.Errorf("changes_from_%s = %d, want at least 8:\n%s", what, n, stats)
			}
		})
	}
}

// TestFRRZebraRestart: h2's FRR crashes and restarts (as watchfrr
// restarts every daemon when zebra dies) while h1 withdraws a prefix.
// The new zebra replays its table to rtm over FPM; it lacks the prefix,
// and rtm drops it once the replay is over.
func TestFRRZebraRestart(t *testing.T) {
	t.Parallel()
	p := newFRRPair(t, "--from-fpm")
	zebraIs := func(want string) {
		t.Helper()
		var info string
		if !rtmtest.WaitFor(10*time.Second, func() bool {
			info = p.srv.must("show info")
			return strings.Contains(info, "\nzebra     "+want)
		}) {
			t.Errorf("show info does not say zebra is %q:\n%s", want, info)
		}
	}
	zebraIs("connected from 127.0.0.1:")
	// zebra first: a zebra that outlived bgpd would withdraw bgpd's
	// routes over FPM itself, and leave rtm nothing stale to find.
	p.h2.stop("zebra", syscall.SIGKILL)
	zebraIs("not connected: the last left ")
	p.h2.stop("bgpd", syscall.SIGKILL)
	p.h1.announce(65001, true, "203.0.113.0/25")
	p.h2.start(p.h2.conf)
	p.has(p.routes[0])
	zebraIs("connected from 127.0.0.1:")
	stats := p.srv.must("show stats")
	if statValue(stats, "fpm_connections") != 2 || statValue(stats, "fpm_replays") < 1 || statValue(stats, "fpm_stale_routes_removed") < 1 {
		t.Errorf("after zebra's restart:\n%s", stats)
	}
}

// TestFRRRestartOfRTM: rtm's --from-fpm server on h2, holding h1's two
// prefixes and a typed route, is killed and started again while h1
// withdraws a prefix. The new server keeps its store's routes until
// zebra, which dials again every 3 s, has replayed its table: its client
// never loses them (an empty server made a --to-kernel client delete
// every route it had installed for a second or more). Then the routes
// zebra did not send go, but for one typed again since the start.
func TestFRRRestartOfRTM(t *testing.T) {
	t.Parallel()
	p := newFRRPair(t, "--from-fpm")
	p.srv.must("C,10.77.0.0/16,192.0.2.1,h1")
	p.srv.signal(syscall.SIGKILL)
	<-p.srv.done
	p.h1.announce(65001, true, "203.0.113.0/25")
	p.srv = p.h2.rtm(p.srvArgs...)
	p.srv.must("")
	awaitReconnects(t, p.cl, 1)
	// Until zebra is back, the routes it sent before are all there, and
	// show info says they wait for its table (asked first: a replay that
	// had not ended by the stats had not by then).
	info := p.srv.must("show info")
	held := p.srv.must("show stats")
	got := p.cl.must("show routes")
	if statValue(held, "fpm_replays") < 1 {
		var n int
		if i := strings.Index(info, "\nroutes    "); i >= 0 {
			fmt.Sscanf(info[i+len("\nroutes    "):], "%d", &n)
		}
		if want := fmt.Sprintf("the store's %d routes stay until its table is in, and those it does not send go then (--from-fpm on ", n); n < len(p.routes)+1 || !strings.Contains(info, want) {
			t.Errorf("show info of the restarted server lacks %q:\n%s", want, info)
		}
		for _, r := range p.routes {
			if !strings.Contains(got, r) {
				t.Errorf("the restarted server's client lacks %q before zebra's replay:\n%s\n%s", r, got, held)
			}
		}
		// An operator's route for a prefix zebra has withdrawn.
		p.srv.must("R,203.0.113.0/25,-,h1")
		typed := "203.0.113.0/25 dev h1"
		p.has(p.routes[0], typed)
		if !rtmtest.WaitFor(30*time.Second, func() bool { return statValue(p.srv.must("show stats"), "fpm_replays") >= 1 }) {
			t.Fatalf("zebra's replay never ended:\n%s", p.srv.errb)
		}
		p.has(p.routes[0], typed)
		if stats := p.srv.must("show stats"); statValue(stats, "fpm_stale_routes_removed") != 1 {
			t.Errorf("after rtm's restart and zebra's replay, want one stale route removed, the typed 10.77.0.0/16:\n%s", stats)
		}
		if log := p.srv.errb.String(); !strings.Contains(log, "1 stale route removed: 10.77.0.0/16") {
			t.Errorf("the log does not name the typed route that went:\n%s", log)
		}
	} else {
		t.Logf("zebra replayed before the client was asked; nothing to see of the held routes")
		p.has(p.routes[0])
	}
	if got := p.cl.must("show routes within 10.77.0.0/16"); got != "" {
		t.Errorf("a route of the store zebra never sent is still there after its replay: %q", got)
	}
}

// TestFRRThreeHosts: h1, h2 and h3 in a line; h3 learns h1's prefixes
// through h2, and rtm on h3 has them.
func TestFRRThreeHosts(t *testing.T) {
	t.Parallel()
	h1, h2, h3 := newFRRHost(t, "h1"), newFRRHost(t, "h2"), newFRRHost(t, "h3")
	linkFRR(h1, h2, "192.0.2.1/25", "192.0.2.2/25")
	linkFRR(h2, h3, "192.0.2.129/25", "192.0.2.130/25")
	in := newInstance(t)
	srv := h3.rtm(append([]string{"server", "--framed", "--from-kernel"}, in.flags()...)...)
	srv.must("")
	h1.start(bgpConf("h1", 65001, "192.0.2.1", map[string]int{"192.0.2.2": 65002}, nil, "network 198.51.100.0/24"))
	h2.start(bgpConf("h2", 65002, "192.0.2.2", map[string]int{"192.0.2.1": 65001, "192.0.2.130": 65003}, nil))
	h3.start(bgpConf("h3", 65003, "192.0.2.130", map[string]int{"192.0.2.129": 65002}, nil))
	cl := h3.rtm("client", "--framed", "--socket", in.socket, "--client-name", "app")
	cl.must("")
	waitRoutes(t, srv, cl, []string{"198.51.100.0/24"}, "198.51.100.0/24 via 192.0.2.129 dev h2")
	h1.announce(65001, true, "198.51.100.0/24")
	waitRoutes(t, srv, cl, []string{"198.51.100.0/24"})
}

// TestFRRFromRTM: the other way. A route created at rtm on h2 is
// installed in h2's kernel by rtm client --to-kernel (protocol 82), and
// h2's FRR announces it (redistribute kernel): it reaches h1's kernel,
// and its delete withdraws it there.
func TestFRRFromRTM(t *testing.T) {
	t.Parallel()
	h1, h2 := newFRRHost(t, "h1"), newFRRHost(t, "h2")
	linkFRR(h1, h2, "192.0.2.1/24", "192.0.2.2/24")
	in := newInstance(t)
	srv := h2.rtm(append([]string{"server", "--framed"}, in.flags()...)...)
	srv.must("")
	inst := h2.rtm("client", "--framed", "--to-kernel", "--socket", in.socket, "--client-name", "installer")
	inst.must("")
	h1.start(bgpConf("h1", 65001, "192.0.2.1", map[string]int{"192.0.2.2": 65002}, nil))
	h2.start(bgpConf("h2", 65002, "192.0.2.2", map[string]int{"192.0.2.1": 65001}, nil, "redistribute kernel"))
	srv.must("C,203.0.113.0/24,192.0.2.9,h1")
	var got string
	if !rtmtest.WaitFor(30*time.Second, func() bool {
		got = h1.ip("route", "show", "203.0.113.0/24")
		return strings.Contains(got, "via 192.0.2.9 dev h2 proto bgp")
	}) {
		t.Fatalf("h1's kernel: %q; h2's: %q", got, h2.ip("route", "show", "proto", "82"))
	}
	srv.must("D,203.0.113.0/24")
	if !rtmtest.WaitFor(30*time.Second, func() bool { got = h1.ip("route", "show", "203.0.113.0/24"); return got == "" }) {
		t.Fatalf("after the delete, h1's kernel: %q", got)
	}
}
