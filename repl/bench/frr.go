package bench

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// K3: BGP through FRR, in network namespaces the benchmark makes (as
// root, with Debian's frr package) and removes. h1 and h2 each run zebra
// and bgpd and are joined by a veth pair (2001:db8::1 and ::2, eBGP over
// IPv6); h2 also runs rtm (--from-kernel or --from-fpm) with --clients
// clients. h1 announces --frr-prefixes /48s inside 2001:db8:8000::/33:
// ip -batch adds them to h1's kernel as blackholes and h1's FRR
// redistributes them. From the start of that ip -batch, the benchmark
// times how long FRR takes to install them all in h2's kernel (a netlink
// listener in h2 counts them), and how long until every rtm client on h2
// has them: rtm's time against FRR's own, in the same run. Only tables
// are programmed; the only packets are the daemons' own BGP.

const frrDaemons = "/usr/lib/frr"

// k3Block holds the announced prefixes, and nothing else of the
// benchmark's: counting the routes inside it counts them.
var k3Block = netip.MustParsePrefix("2001:db8:8000::/33")

// frrSkip says why K3 cannot run here ("" if it can).
func frrSkip() string {
	if why := kernelSkip(); why != "" {
		return why
	}
	for _, d := range []string{"zebra", "bgpd"} {
		if _, err := os.Stat(filepath.Join(frrDaemons, d)); err != nil {
			return "needs FRR, Debian's frr package: " + err.Error()
		}
	}
	if _, err := exec.LookPath("vtysh"); err != nil {
		return "needs FRR's vtysh: " + err.Error()
	}
	if _, err := user.Lookup("frr"); err != nil {
		return "needs FRR's user frr: " + err.Error()
	}
	return ""
}

// frrHost is a namespace with zebra and bgpd of its own; their files are
// in a directory the user frr owns.
type frrHost struct {
	ns      *kernelNS
	dir     string
	daemons []*exec.Cmd
}

func (b *bench) newFRRHost(tag string) (*frrHost, error) {
	ns, err := b.emptyNS(tag)
	if err != nil {
		return nil, err
	}
	h := &frrHost{ns: ns}
	b.frrHosts = append(b.frrHosts, h)
	if h.dir, err = os.MkdirTemp("", "rtm-bench-frr-"); err != nil {
		b.dropFRRHost(h)
		return nil, err
	}
	u, err := user.Lookup("frr")
	if err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		err = errors.Join(os.Chmod(h.dir, 0o755), os.Chown(h.dir, uid, gid))
	}
	if err != nil {
		b.dropFRRHost(h)
		return nil, err
	}
	return h, nil
}

// dropFRRHost stops the host's daemons, then removes its namespace and
// files.
func (b *bench) dropFRRHost(h *frrHost) {
	for _, cmd := range h.daemons {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	h.daemons = nil
	b.dropNS(h.ns)
	if h.dir != "" {
		os.RemoveAll(h.dir)
	}
	for i, x := range b.frrHosts {
		if x == h {
			b.frrHosts = append(b.frrHosts[:i], b.frrHosts[i+1:]...)
			break
		}
	}
}

// start writes conf and starts zebra (with zebraArgs), then bgpd once
// zebra's socket is there.
func (h *frrHost) start(conf string, zebraArgs ...string) error {
	path := filepath.Join(h.dir, "frr.conf")
	// Chmod, not the umask, makes it readable by the daemons' user: a
	// server of this process may narrow the umask for its bind
	// (proto.listen) while the file is made (TestEveryWorkload runs K3
	// beside the in-process workloads).
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return err
	}
	if err := os.Chmod(path, 0o644); err != nil {
		return err
	}
	for _, d := range []string{"zebra", "bgpd"} {
		args := []string{"netns", "exec", h.ns.name, filepath.Join(frrDaemons, d), "-f", path,
			"-i", filepath.Join(h.dir, d+".pid"), "-z", filepath.Join(h.dir, "zserv.api"),
			"--vty_socket", h.dir, "-P", "0", "--log", "file:" + filepath.Join(h.dir, d+".log")}
		if d == "zebra" {
			// A large netlink receive buffer: with zebra's default, 10,000
			// kernel routes added at once overflowed it, and zebra (8.4)
			// went on without 322 of them, so h2 never got them and the
			// run waited for prefixes that were never sent.
			args = append(append(args, "-s", strconv.Itoa(128<<20)), zebraArgs...)
		}
		cmd := exec.Command("ip", args...)
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start %s: %w", d, err)
		}
		h.daemons = append(h.daemons, cmd)
		if d == "zebra" {
			if err := waitUntil(10*time.Second, "zebra's socket", func() (bool, error) {
				_, err := os.Stat(filepath.Join(h.dir, "zserv.api"))
				return err == nil, nil
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// established says whether h's BGP session with peer is up. Until bgpd
// has opened its vty socket, vtysh fails: the session is not up yet.
func (h *frrHost) established(peer string) (bool, error) {
	out, _ := exec.Command("ip", "netns", "exec", h.ns.name, "vtysh", "--vty_socket", h.dir,
		"-c", "show bgp neighbors "+peer+" json").Output()
	return strings.Contains(string(out), `"bgpState":"Established"`), nil
}

// waitUntil polls cond for at most d: every 10 ms for the first half
// second, then every 50 ms, since a cond that runs vtysh costs
// milliseconds of CPU and a BGP session takes seconds to come up.
func waitUntil(d time.Duration, what string, cond func() (bool, error)) error {
	start := time.Now()
	for deadline := start.Add(d); ; {
		ok, err := cond()
		switch {
		case err != nil:
			return fmt.Errorf("waiting for %s: %w", what, err)
		case ok:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("no %s after %v", what, d)
		}
		if time.Since(start) < 500*time.Millisecond {
			time.Sleep(10 * time.Millisecond)
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// frrConf is a host's frr.conf: eBGP with one IPv6 neighbour, timers that
// converge in seconds, and lines for zebra and for the IPv6 address
// family.
func frrConf(as int, id, peer string, peerAS int, zebra, af string) string {
	return fmt.Sprintf(`frr defaults datacenter
%srouter bgp %d
 bgp router-id %s
 no bgp ebgp-requires-policy
 neighbor %s remote-as %d
 neighbor %s timers connect 1
 address-family ipv6 unicast
  neighbor %s activate
%s exit-address-family
`, zebra, as, id, peer, peerAS, peer, peer, af)
}

// runK3 runs K3 for both of rtm's import paths.
func (b *bench) runK3() ([]Row, error) {
	if why := frrSkip(); why != "" {
		b.progress("K3: skipped: %s", why)
		return nil, nil
	}
	n := b.o.frrPrefixes
	prefixes, err := b.writeFile("k3.batch", n, func(buf []byte, i int) []byte {
		p := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x80 | byte(i>>8), byte(i)}), 48)
		return p.AppendTo(append(buf, "route add blackhole "...))
	})
	if err != nil {
		return nil, err
	}
	what := count(n) + " prefixes over BGP"
	var rows []Row
	for _, source := range []string{"--from-kernel", "--from-fpm"} {
		var viaRTM, viaFRR []float64
		for range b.o.runs {
			d, df, err := b.k3Run(source, prefixes, n)
			if err != nil {
				return nil, fmt.Errorf("K3 %s: %w", source, err)
			}
			viaRTM, viaFRR = append(viaRTM, d.Seconds()), append(viaFRR, df.Seconds())
		}
		limit := figure("LK3", what+" into h2's kernel by FRR", "s", viaFRR)
		rows = append(rows,
			figure("K3", what+" to every client, "+source, "s", viaRTM).against(limit).
				judge("<= 1.2x FRR's own time", func(r Row) bool { return r.Ratio <= 1.2 }),
			limit)
	}
	return rows, nil
}

// k3Run is one run of K3 on hosts of its own: the time from the
// announcement until every client has the prefixes, and until h2's
// kernel has them.
func (b *bench) k3Run(source string, prefixes file, n int) (toClients, frr time.Duration, err error) {
	h1, err := b.newFRRHost("k3a")
	if err != nil {
		return 0, 0, err
	}
	defer b.dropFRRHost(h1)
	h2, err := b.newFRRHost("k3b")
	if err != nil {
		return 0, 0, err
	}
	defer b.dropFRRHost(h2)
	for _, args := range [][]string{
		{"-n", h1.ns.name, "link", "add", "h2", "type", "veth", "peer", "name", "h1", "netns", h2.ns.name},
		{"-n", h1.ns.name, "addr", "add", "2001:db8::1/64", "dev", "h2", "nodad"},
		{"-n", h2.ns.name, "addr", "add", "2001:db8::2/64", "dev", "h1", "nodad"},
		{"-n", h1.ns.name, "link", "set", "h2", "up"},
		{"-n", h2.ns.name, "link", "set", "h1", "up"},
	} {
		if err := run("ip", args...); err != nil {
			return 0, 0, err
		}
	}
	socket := filepath.Join(b.dir, "k3.sock")
	path := shmPath("k3")
	defer removeStore(path)
	srv, err := b.startIn(h2.ns, "bench-k3-server", "server", "--framed", source, "--fresh", "--unlink",
		"--socket", socket, "--store", path, "--capacity", "1000", "--route-capacity", strconv.Itoa(headroom(n)))
	if err == nil {
		_, err = srv.Do(b.ctx, "", time.Minute)
	}
	if srv != nil {
		defer b.stop(srv)
	}
	if err != nil {
		return 0, 0, err
	}
	zebra, zebraArgs := "", []string(nil)
	if source == "--from-fpm" {
		zebra, zebraArgs = "fpm address 127.0.0.1 port 2620\n", []string{"-M", "dplane_fpm_nl"}
	}
	if err := h1.start(frrConf(65001, "192.0.2.1", "2001:db8::2", 65002, "", "  redistribute kernel\n")); err != nil {
		return 0, 0, err
	}
	if err := h2.start(frrConf(65002, "192.0.2.2", "2001:db8::1", 65001, zebra, ""), zebraArgs...); err != nil {
		return 0, 0, err
	}
	clients, err := b.connectClients(socket)
	defer func() { b.stop(clients...) }()
	if err != nil {
		return 0, 0, err
	}
	if err := waitUntil(time.Minute, "the BGP session", func() (bool, error) { return h2.established("2001:db8::1") }); err != nil {
		return 0, 0, err
	}
	// One prefix first, outside the block, through the whole path: the
	// first updates of a new session wait for bgpd's coalesce timer, and
	// zebra dials FPM only 3 s after it starts.
	if err := run("ip", "-n", h1.ns.name, "route", "add", "blackhole", "2001:db8:1::/48"); err != nil {
		return 0, 0, err
	}
	if err := b.awaitCount(srv, b.answer(srv, "show routes within 2001:db8:1::/48 count"), 1); err != nil {
		return 0, 0, fmt.Errorf("the first prefix at rtm: %w", err)
	}
	// Then the server is asked for its route count: a counter, where
	// counting routes would walk them all, every millisecond, on the
	// server's path.
	routes := func() (int, error) {
		out, err := srv.Do(b.ctx, "show stats", time.Minute)
		for _, l := range out {
			if f := strings.Fields(l); len(f) == 2 && f[0] == "routes" {
				return strconv.Atoi(f[1])
			}
		}
		return 0, errors.Join(err, errors.New("no routes in the server's show stats"))
	}
	before, err := routes()
	if err != nil {
		return 0, 0, err
	}
	installed, err := watchKernel(h2.ns.name, n)
	if err != nil {
		return 0, 0, err
	}
	defer installed.stop()

	t0 := time.Now()
	if err := run("ip", "-n", h1.ns.name, "-batch", prefixes.path); err != nil {
		return 0, 0, err
	}
	if err := b.awaitCount(srv, routes, before+n); err != nil {
		return 0, 0, fmt.Errorf("routes at the server: %w", err)
	}
	toClients = time.Since(t0)
	if got, err := b.answer(srv, "show routes within "+k3Block.String()+" count")(); err != nil || got != n {
		return 0, 0, errors.Join(err, fmt.Errorf("the server holds %d of the %d prefixes", got, n))
	}
	select {
	case t := <-installed.done:
		frr = t.Sub(t0)
	case <-time.After(time.Minute):
		return 0, 0, fmt.Errorf("h2's kernel never had the %d prefixes: %v", n, installed.err())
	}
	total, err := srv.Do(b.ctx, "show routes count", time.Minute)
	if err != nil {
		return 0, 0, err
	}
	for _, c := range clients {
		var rep clientReport
		if err := c.ask(b.ctx, "report", time.Minute, &rep); err != nil {
			return 0, 0, err
		}
		if len(total) != 1 || strconv.Itoa(rep.Routes) != total[0] {
			return 0, 0, fmt.Errorf("client %s holds %d routes, the server %v", c.Name, rep.Routes, total)
		}
	}
	return toClients, frr, nil
}

// kernelWatch counts the BGP routes of k3Block that appear in a
// namespace's kernel; done gets the time the last one came.
type kernelWatch struct {
	done chan time.Time
	quit chan struct{}
	errc chan error
}

// watchKernel listens to the IPv6 routes of namespace name until n of
// k3Block's, installed by BGP, have appeared.
func watchKernel(name string, n int) (*kernelWatch, error) {
	h, err := netns.GetFromName(name)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	w := &kernelWatch{done: make(chan time.Time, 1), quit: make(chan struct{}), errc: make(chan error, 1)}
	updates := make(chan netlink.RouteUpdate, 4096)
	err = netlink.RouteSubscribeWithOptions(updates, w.quit, netlink.RouteSubscribeOptions{
		Namespace: &h, ReceiveBufferSize: 32 << 20, ReceiveBufferForceSize: true,
		ErrorCallback: func(err error) {
			select {
			case w.errc <- err:
			default:
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("listen to routes in %s: %w", name, err)
	}
	go func() {
		seen := map[netip.Prefix]bool{}
		for u := range updates {
			if u.Type != unix.RTM_NEWROUTE || u.Protocol != unix.RTPROT_BGP || u.Dst == nil {
				continue
			}
			p, ok := prefixOf(u.Dst)
			if !ok || !k3Block.Overlaps(p) || seen[p] {
				continue
			}
			seen[p] = true
			if len(seen) == n {
				w.done <- time.Now()
			}
		}
	}()
	return w, nil
}

func (w *kernelWatch) stop() { close(w.quit) }

// err is what the listener reported, if anything.
func (w *kernelWatch) err() error {
	select {
	case err := <-w.errc:
		return err
	default:
		return errors.New("no error from the listener")
	}
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), bits), true
}
