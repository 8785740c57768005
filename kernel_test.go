package main

// The kernel bridge with real processes and real kernels: a server that
// mirrors the kernel of one network namespace, a client that installs the
// tables into another. The namespaces are the test's own, made and removed
// here; they are configured only, and no packet is sent.

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"rtm/repl/rtmtest"
)

// netns is a network namespace the test made, with a veth pair inside it
// (dummy links do not work on every machine; veth pairs do).
type netns struct {
	t    *testing.T
	name string
}

func newNetns(t *testing.T, addr, addr6 string) *netns {
	t.Helper()
	n := emptyNetns(t)
	n.ip("link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
	n.ip("link", "set", "veth0", "up")
	n.ip("link", "set", "veth1", "up")
	n.ip("addr", "add", addr, "dev", "veth0")
	n.ip("addr", "add", addr6, "dev", "veth0", "nodad")
	return n
}

// emptyNetns makes a network namespace with nothing in it, removed when
// the test ends.
func emptyNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_ADMIN) to make network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip (iproute2) to make network namespaces")
	}
	n := &netns{t: t, name: fmt.Sprintf("rtm-test-%d-%d", os.Getpid(), instSeq.Add(1))}
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace here: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.name).Run() })
	return n
}

func (n *netns) ip(args ...string) string {
	n.t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", n.name}, args...)...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("ip -n %s %s: %v: %s", n.name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// rtm starts rtm in the namespace.
func (n *netns) rtm(args ...string) *proc {
	n.t.Helper()
	return startCmd(n.t, exec.Command("ip", append([]string{"netns", "exec", n.name, rtmBin}, args...)...))
}

// marked lists the namespace's routes and neighbours that carry proto as
// "ip route" and "ip neigh" print them, sorted.
func (n *netns) marked(proto string) []string {
	var out []string
	var routes, routes6 []struct {
		Dst, Gateway, Dev string
	}
	json.Unmarshal([]byte(n.ip("-j", "route", "show", "proto", proto)), &routes)
	json.Unmarshal([]byte(n.ip("-j", "-6", "route", "show", "proto", proto)), &routes6)
	for _, r := range append(routes, routes6...) {
		l := r.Dst
		if r.Gateway != "" {
			l += " via " + r.Gateway
		}
		out = append(out, l+" dev "+r.Dev)
	}
	var neigh []struct {
		Dst, Dev, Lladdr string
		State            []string
	}
	json.Unmarshal([]byte(n.ip("-j", "neigh", "show", "proto", proto)), &neigh)
	for _, e := range neigh {
		out = append(out, fmt.Sprintf("%s lladdr %s dev %s %v", e.Dst, e.Lladdr, e.Dev, e.State))
	}
	slices.Sort(out)
	return out
}

// TestKernelMirror: namespace A's kernel, to an rtm server, to a client
// installing into namespace B's kernel. Routes with and without gateway,
// neighbours, deletes; a blackhole route is counted, not mirrored; B's
// own routes are never touched; a client killed and restarted with less
// to install cleans up after itself.
func TestKernelMirror(t *testing.T) {
	t.Parallel()
	a := newNetns(t, "192.0.2.1/24", "2001:db8::a/64")
	b := newNetns(t, "192.0.2.2/24", "2001:db8::b/64")
	b.ip("route", "add", "203.0.113.0/24", "via", "192.0.2.9", "dev", "veth0", "proto", "static")
	in := newInstance(t)
	a.ip("route", "add", "198.51.100.0/24", "via", "192.0.2.254", "dev", "veth0")
	srv := a.rtm(append([]string{"server", "--framed", "--from-kernel"}, in.flags()...)...)
	srv.must("")
	srv.must("expect route 198.51.100.0/24 via 192.0.2.254 dev veth0", "expect route 192.0.2.0/24 dev veth0")
	cl := b.rtm("client", "--framed", "--to-kernel", "--socket", in.socket, "--client-name", "installer")
	cl.must("")
	a.ip("route", "add", "198.51.100.128/25", "dev", "veth0")
	a.ip("route", "add", "2001:db8:1::/64", "via", "2001:db8::1", "dev", "veth0")
	a.ip("route", "add", "blackhole", "203.0.113.128/25")
	a.ip("neigh", "add", "192.0.2.77", "lladdr", "02:00:00:00:00:77", "dev", "veth0", "nud", "permanent")
	// A's connected IPv6 prefix is installed beside B's own: IPv6 routes
	// of one prefix with other metrics coexist. Its IPv4 one is B's.
	want := []string{
		"192.0.2.77 lladdr 02:00:00:00:00:77 dev veth0 [PERMANENT]",
		"198.51.100.0/24 via 192.0.2.254 dev veth0",
		"198.51.100.128/25 dev veth0",
		"2001:db8:1::/64 via 2001:db8::1 dev veth0",
		"2001:db8::/64 dev veth0",
	}
	var got []string
	if !rtmtest.WaitFor(20*time.Second, func() bool { got = b.marked("82"); return slices.Equal(got, want) }) {
		t.Fatalf("namespace B's rtm entries:\n%s\nwant:\n%s\nserver: %s\nclient: %s", strings.Join(got, "\n"), strings.Join(want, "\n"), srv.errb.String(), cl.errb.String())
	}
	if s := srv.must("show stats"); statValue(s, "kernel_skipped_blackhole") < 1 || statValue(s, "changes_from_kernel") < 5 {
		t.Fatalf("server stats:\n%s", s)
	}
	// The prefix of B's own connected route was not fought over, and B's
	// static route is there as it was.
	if r := b.ip("route", "show", "203.0.113.0/24"); !strings.Contains(r, "via 192.0.2.9") || !strings.Contains(r, "proto static") {
		t.Fatalf("B's own route: %q", r)
	}
	if s := cl.must("show stats local"); statValue(s, "kernel_route_foreign") != 1 {
		t.Fatalf("client stats:\n%s", s)
	}
	// Deletes follow.
	a.ip("route", "del", "198.51.100.128/25")
	a.ip("neigh", "del", "192.0.2.77", "dev", "veth0")
	want = want[1:]
	want = slices.DeleteFunc(want, func(s string) bool { return strings.HasPrefix(s, "198.51.100.128/25") })
	if !rtmtest.WaitFor(20*time.Second, func() bool { got = b.marked("82"); return slices.Equal(got, want) }) {
		t.Fatalf("after deletes, B's rtm entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// An installer killed, then the tables shrink, then another starts: it
	// deletes what its predecessor installed and rtm no longer has.
	cl.cmd.Process.Kill()
	<-cl.done
	a.ip("route", "del", "2001:db8:1::/64")
	srv.must("sync", "expect no route 2001:db8:1::/64")
	cl = b.rtm("client", "--framed", "--to-kernel", "--socket", in.socket, "--client-name", "installer2")
	cl.must("")
	want = []string{"198.51.100.0/24 via 192.0.2.254 dev veth0", "2001:db8::/64 dev veth0"}
	if !rtmtest.WaitFor(20*time.Second, func() bool { got = b.marked("82"); return slices.Equal(got, want) }) {
		t.Fatalf("after the installer's restart, B's rtm entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A typed change at the server reaches B too.
	srv.must("C,192.0.2.128/25,192.0.2.253,veth0")
	want = append(want, "192.0.2.128/25 via 192.0.2.253 dev veth0")
	slices.Sort(want)
	if !rtmtest.WaitFor(20*time.Second, func() bool { got = b.marked("82"); return slices.Equal(got, want) }) {
		t.Fatalf("after a typed change, B's rtm entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// SIGTERM ends both within a second whatever they do: the installer
	// while it waits to reconnect to a server that was killed, the server
	// with its kernel import running.
	timeExit := func(p *proc) string {
		t0 := time.Now()
		p.signal(syscall.SIGTERM)
		p.exited(3 * time.Second)
		return time.Since(t0).Round(time.Millisecond).String()
	}
	srv.signal(syscall.SIGKILL)
	<-srv.done
	time.Sleep(100 * time.Millisecond) // the installer has lost it
	client := timeExit(cl)
	srv = a.rtm(append([]string{"server", "--framed", "--from-kernel"}, in.flags()...)...)
	srv.must("")
	t.Logf("SIGTERM to exit: --to-kernel client waiting to reconnect %s, --from-kernel server %s", client, timeExit(srv))
}

// TestInstallIntoItsSource: a --to-kernel client refuses to install into
// the table its --from-kernel server imports, in the same namespace (the
// routes would loop), and installs into another table of it routes only:
// neighbours have no table, and one installed there came back to the
// server as the kernel's, and stayed after its source was deleted. A
// server busy with questions is asked again, not passed over.
func TestInstallIntoItsSource(t *testing.T) {
	a := newNetns(t, "192.0.2.1/24", "2001:db8::a/64")
	in := newInstance(t)
	srv := a.rtm(append([]string{"server", "--framed", "--from-kernel"}, in.flags()...)...)
	srv.must("")
	if info := srv.must("show info"); !strings.Contains(info, "kernel    imports table 254 of network namespace "+a.name+", ") {
		t.Errorf("show info does not name the imported table:\n%s", info)
	}
	if info := srv.must("show info json"); !strings.Contains(info, `"netns_name":"`+a.name+`"`) {
		t.Errorf("show info json does not name the namespace:\n%s", info)
	}
	// Every place for questions taken until the server has refused the
	// installer's question as busy: it asks again until one is free, and
	// does not install unchecked.
	held, refusals, err := holdQuestionPlaces(in.socket, 64)
	if err != nil || len(held) != 64 {
		t.Fatalf("holding the server's 64 places for questions: %d held, %v %q", len(held), err, refusals)
	}
	var stderr syncBuffer
	inst := exec.Command("ip", "netns", "exec", a.name, rtmBin, "client", "--to-kernel", "--socket", in.socket)
	inst.Stderr = &stderr
	if err := inst.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- inst.Wait() }()
	refused := rtmtest.WaitFor(10*time.Second, func() bool { return strings.Contains(srv.errb.String(), "refused: busy") })
	for _, uc := range held {
		uc.Close()
	}
	if !refused {
		inst.Process.Kill()
		<-exited
		t.Fatalf("the server never refused the installer's question as busy:\n%s", srv.errb)
	}
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		inst.Process.Kill()
		<-exited
		t.Fatalf("the installer asked while the server was busy is still running: %s", stderr.String())
	}
	if code := inst.ProcessState.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "imports table 254 of this network namespace (--from-kernel), the table rtm would install into") {
		t.Fatalf("--to-kernel into the server's own table, asked while the server was busy: exit %d, stderr %q", code, stderr.String())
	}
	cl := a.rtm("client", "--framed", "--to-kernel", "--kernel-table", "100", "--socket", in.socket)
	cl.must("")
	if !rtmtest.WaitFor(10*time.Second, func() bool { return strings.Contains(a.ip("route", "show", "table", "100"), "192.0.2.0/24 dev veth0") }) {
		t.Fatalf("table 100: %q; client: %s", a.ip("route", "show", "table", "100"), cl.errb.String())
	}
	if !strings.Contains(cl.errb.String(), "routes only: server "+in.name+" imports this network namespace's neighbours") {
		t.Errorf("the client into table 100 does not say it installs routes only: %q", cl.errb.String())
	}
	// A MAC, then a route: once the route is in table 100, the client
	// has had the MAC, and installed no neighbour for it.
	srv.must("C,02:00:00:00:00:77,192.0.2.77", "C,198.51.100.0/24,192.0.2.9,veth0")
	if !rtmtest.WaitFor(10*time.Second, func() bool {
		return strings.Contains(a.ip("route", "show", "table", "100"), "198.51.100.0/24 via 192.0.2.9")
	}) {
		t.Fatalf("table 100: %q; client: %s", a.ip("route", "show", "table", "100"), cl.errb.String())
	}
	if n := a.ip("neigh", "show", "proto", "82"); strings.TrimSpace(n) != "" {
		t.Fatalf("neighbours installed beside the server that imports them: %q", n)
	}
}

// TestInstallIntoZebrasTable: a --from-fpm server listening on a loopback
// address takes its routes from a zebra of its own namespace, which
// takes the kernel's routes as its own: a --to-kernel client there
// refuses to install into that table (a withdrawn route came back
// through zebra for good), installs into another, and one of a server
// whose zebra may be on another host (a non-loopback address) installs.
func TestInstallIntoZebrasTable(t *testing.T) {
	a := newNetns(t, "192.0.2.1/24", "2001:db8::a/64")
	a.ip("link", "set", "lo", "up") // for the FPM listener
	in := newInstance(t)
	srv := a.rtm(append([]string{"server", "--framed", "--from-fpm"}, in.flags()...)...)
	srv.must("")
	if info := srv.must("show info"); !strings.Contains(info, "kernel    takes table 254 of network namespace ") || !strings.Contains(info, "from its zebra (--from-fpm)") {
		t.Errorf("show info does not name zebra's table:\n%s", info)
	}
	if info := srv.must("show info"); !strings.Contains(info, "\nzebra     not connected yet (--from-fpm on 127.0.0.1:2620)\n") {
		t.Errorf("show info does not say no zebra has connected:\n%s", info)
	}
	if info := srv.must("show info json"); !strings.Contains(info, `"fpm":{"listen":"127.0.0.1:2620"}`) {
		t.Errorf("show info json does not name the FPM listener alone:\n%s", info)
	}
	r := runCmd(t, exec.Command("ip", "netns", "exec", a.name, rtmBin, "client", "--to-kernel", "--socket", in.socket), "", 20*time.Second)
	if r.code != 1 || !strings.Contains(r.stderr, "takes table 254 of this network namespace from its zebra (--from-fpm), the table rtm would install into") {
		t.Fatalf("--to-kernel into zebra's table: exit %d, stderr %q", r.code, r.stderr)
	}
	srv.must("C,192.0.2.0/24,-,veth0", "C,198.51.100.0/24,192.0.2.9,veth0", "C,02:00:00:00:00:77,192.0.2.77")
	cl := a.rtm("client", "--framed", "--to-kernel", "--kernel-table", "100", "--socket", in.socket)
	cl.must("")
	if !rtmtest.WaitFor(10*time.Second, func() bool { return strings.Contains(a.ip("neigh", "show", "proto", "82"), "192.0.2.77") }) {
		t.Fatalf("neighbours: %q; client: %s", a.ip("neigh", "show", "proto", "82"), cl.errb.String())
	}
	if strings.Contains(cl.errb.String(), "routes only") || !strings.Contains(a.ip("route", "show", "table", "100"), "198.51.100.0/24 via 192.0.2.9") {
		t.Errorf("into table 100 beside --from-fpm: table 100 %q; client: %q", a.ip("route", "show", "table", "100"), cl.errb.String())
	}
	cl.send("quit")
	cl.wait(10 * time.Second)
	srv.send("quit")
	srv.wait(10 * time.Second)

	// Listening on every address, it takes zebra's 127.0.0.1 too, and
	// so it does given the IPv4-mapped wildcard.
	for _, addr := range []string{"0.0.0.0:2621", "[::ffff:0.0.0.0]:2622"} {
		wild := newInstance(t)
		srv = a.rtm(append([]string{"server", "--framed", "--from-fpm", addr}, wild.flags()...)...)
		srv.must("")
		r = runCmd(t, exec.Command("ip", "netns", "exec", a.name, rtmBin, "client", "--to-kernel", "--socket", wild.socket), "", 20*time.Second)
		if r.code != 1 || !strings.Contains(r.stderr, "from its zebra (--from-fpm), the table rtm would install into") {
			t.Fatalf("--to-kernel into zebra's table beside a --from-fpm server on %s: exit %d, stderr %q", addr, r.code, r.stderr)
		}
		srv.send("quit")
		srv.wait(10 * time.Second)
	}

	remote := newInstance(t)
	srv = a.rtm(append([]string{"server", "--framed", "--from-fpm", "192.0.2.1:2620"}, remote.flags()...)...)
	srv.must("C,203.0.113.0/24,192.0.2.9,veth0")
	cl = a.rtm("client", "--framed", "--to-kernel", "--socket", remote.socket)
	cl.must("")
	if !rtmtest.WaitFor(10*time.Second, func() bool {
		return strings.Contains(a.ip("route", "show", "proto", "82"), "203.0.113.0/24 via 192.0.2.9")
	}) {
		t.Fatalf("main table beside a --from-fpm server on a non-loopback address: %q; client: %s", a.ip("route", "show", "proto", "82"), cl.errb.String())
	}
}

// TestInstallNeedsPrivilege: a --to-kernel client without CAP_NET_ADMIN
// over the network namespace says so and exits at once, instead of
// keeping every route pending.
func TestInstallNeedsPrivilege(t *testing.T) {
	bin := nobodyBinary(t)
	r := runCmd(t, commandAs(nobody, nil, bin, "client", "--to-kernel", "--socket", filepath.Join(t.TempDir(), "none.sock")), "", 20*time.Second)
	if r.code != 1 || !strings.Contains(r.stderr, "needs CAP_NET_ADMIN (root), which this process (uid 65534) lacks") {
		t.Fatalf("--to-kernel as uid 65534: exit %d, stderr %q", r.code, r.stderr)
	}
	// Root of a user namespace of its own holds the capability, but not
	// over a network namespace that another user namespace owns.
	a := emptyNetns(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare (util-linux) for a user namespace")
	}
	r = runCmd(t, exec.Command("ip", "netns", "exec", a.name, "unshare", "--user", "--map-root-user", rtmBin, "client", "--to-kernel", "--socket", filepath.Join(t.TempDir(), "none.sock")), "", 20*time.Second)
	if r.code != 1 || !strings.Contains(r.stderr, "this network namespace refuses changes from this process") {
		t.Fatalf("--to-kernel as root of a user namespace that does not own the network namespace: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestKernelFlags: the kernel flags are usage errors without the flag
// they tune, and a bad table or protocol is named.
func TestKernelFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"server", "--kernel-table", "7"}, "--kernel-table tunes --from-kernel or --from-fpm: give --from-kernel or --from-fpm too"},
		{[]string{"server", "--from-fpm", "--kernel-prefer", "6"}, "--kernel-prefer tunes --from-kernel: give --from-kernel too"},
		{[]string{"server", "--from-fpm", "--from-kernel"}, "--from-kernel and --from-fpm: give one"},
		{[]string{"server", "--from-fpm", "zebra:2620"}, `invalid value "zebra:2620" for flag -from-fpm: want an IP address to listen on, with a port or without (2620)`},
		{[]string{"server", "--from-fpm=127.0.0.1:0"}, `want an IP address to listen on, with a port or without (2620)`},
		{[]string{"server", "--from-kernel", "--kernel-table", "x"}, `want main or a table number from 1, got "x"`},
		{[]string{"server", "--from-kernel", "--kernel-prefer", "5"}, `invalid value "5" for flag -kernel-prefer: want 4 or 6, got "5"`},
		{[]string{"client", "--to-kernel", "--kernel-table", "255"}, "255 is the kernel's local table"},
		{[]string{"client", "--kernel-proto", "90"}, "--kernel-proto tunes --to-kernel: give --to-kernel too"},
		{[]string{"client", "--to-kernel", "--kernel-proto", "300"}, "--kernel-proto 300: want 1 to 255"},
		// Numbers others' entries carry: the installer would delete them.
		{[]string{"client", "--to-kernel", "--kernel-proto", "2"}, "--kernel-proto 2: 2 is taken (kernel: ip route show proto 2)"},
		{[]string{"client", "--to-kernel", "--kernel-proto", "3"}, "3 is taken (boot"},
		{[]string{"client", "--to-kernel", "--kernel-proto", "186"}, "186 is taken (bgp"},
		{[]string{"client", "--to-kernel", "--kernel-proto", "196"}, "196 is taken (static of FRR"},
		{[]string{"client", "--to-kernel", "-c", "show routes"}, "-c runs its commands and exits: it goes with none of --watch, --framed and --to-kernel"},
	} {
		r := runRTM(t, "", tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

// TestTwoInstallersOneProtocol: a second --to-kernel client with the
// same protocol number in one network namespace is refused, naming the
// first: each would delete the other's entries as ones its tables lack,
// and reinstall its own, for as long as both ran. Another number, or
// another namespace, is no conflict, and the number is free again once
// the first has gone.
func TestTwoInstallersOneProtocol(t *testing.T) {
	a, b := newNetns(t, "192.0.2.1/24", "2001:db8::a/64"), newNetns(t, "192.0.2.1/24", "2001:db8::a/64")
	in := newInstance(t)
	srv := in.server()
	srv.must("C,198.51.100.0/24,192.0.2.9,veth0")
	first := a.rtm("client", "--framed", "--to-kernel", "--socket", in.socket)
	first.must("")
	// Every one refused says so at once: the first takes each
	// connection the refused ones make to learn its pid, so that its
	// queue never fills (the third waited for good when it did).
	for try := range 4 {
		r := runCmd(t, exec.Command("ip", "netns", "exec", a.name, rtmBin, "client", "--to-kernel", "--socket", in.socket), "", 20*time.Second)
		want := fmt.Sprintf("pid %d installs entries with protocol 82 in this network namespace already", first.fp.Pid())
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Fatalf("second installer of protocol 82, try %d: exit %d, stderr %q; want %q", try+1, r.code, r.stderr, want)
		}
	}
	// Started, each answers (protocol 83's route waits: 82's holds the
	// prefix at the same metric).
	a.rtm("client", "--framed", "--to-kernel", "--kernel-proto", "83", "--socket", in.socket).must("")
	b.rtm("client", "--framed", "--to-kernel", "--socket", in.socket).must("")
	if !rtmtest.WaitFor(10*time.Second, func() bool { return strings.Contains(b.ip("route", "show", "proto", "82"), "198.51.100.0/24") }) {
		t.Fatalf("protocol 82 in b: %q", b.ip("route", "show", "proto", "82"))
	}
	first.send("quit")
	first.wait(10 * time.Second)
	again := a.rtm("client", "--framed", "--to-kernel", "--socket", in.socket)
	again.must("")

	// Abstract names have no owner: one that uid 65534 took first, for
	// protocol 85, keeps no installer out; the installer says it goes on
	// without the guard.
	squat := exec.Command("ip", "netns", "exec", b.name, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", roleBinary(t), "-test.run=^$")
	squat.Env = append(os.Environ(), rtmtest.RoleEnv+"=squat", "RTM_SQUAT=@rtm-kernel-install-proto-85")
	_, out, _ := startRole(t, squat)
	if line, err := out.ReadString('\n'); line != "bound\n" {
		t.Fatalf("the squatter: %q, %v", line, err)
	}
	// An installer of another uid that holds CAP_NET_ADMIN (as a daemon
	// given the capability runs) is one: another is refused beside it.
	// Waiting for a server it cannot reach, it holds its name meanwhile.
	capped := exec.Command("ip", "netns", "exec", b.name, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps=+net_admin", "--ambient-caps=+net_admin", nobodyCopy(t, rtmBin, "rtm"),
		"client", "--to-kernel", "--kernel-proto", "86", "--socket", filepath.Join(t.TempDir(), "none.sock"), "--wait", "60s")
	if err := capped.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { capped.Process.Kill(); capped.Wait() })
	if !rtmtest.WaitFor(10*time.Second, func() bool {
		out, _ := exec.Command("ip", "netns", "exec", b.name, "cat", "/proc/net/unix").Output()
		return strings.Contains(string(out), "@rtm-kernel-install-proto-86")
	}) {
		t.Fatal("uid 65534's installer never took its name")
	}
	r := runCmd(t, exec.Command("ip", "netns", "exec", b.name, rtmBin, "client", "--to-kernel", "--kernel-proto", "86", "--socket", in.socket), "", 20*time.Second)
	if r.code != 1 || !strings.Contains(r.stderr, fmt.Sprintf("pid %d installs entries with protocol 86", capped.Process.Pid)) {
		t.Errorf("beside uid 65534's installer with CAP_NET_ADMIN: exit %d, stderr %q", r.code, r.stderr)
	}

	past := b.rtm("client", "--framed", "--to-kernel", "--kernel-proto", "85", "--socket", in.socket)
	past.must("")
	if !rtmtest.WaitFor(10*time.Second, func() bool {
		return strings.Contains(past.errb.String(), fmt.Sprintf("is held by pid %d (uid 65534), which lacks CAP_NET_ADMIN: no installer; going on without it", squat.Process.Pid))
	}) {
		t.Errorf("the installer past a squatter of its name says: %q", past.errb.String())
	}
}

// squatRole binds the abstract socket RTM_SQUAT names and listens, says
// "bound", and holds it until stdin ends.
func squatRole() int {
	ln, err := net.Listen("unixpacket", os.Getenv("RTM_SQUAT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("bound")
	io.Copy(io.Discard, os.Stdin)
	ln.Close()
	return 0
}
