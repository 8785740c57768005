package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// K1 and K2: the kernel bridge against ip -batch, in network namespaces
// the benchmark makes (as root) and removes. Each namespace has a veth
// pair, up, with 192.0.2.2/24: the routes go via 192.0.2.1 on it. Only
// tables are programmed; no packet is sent.

// kernelNS is a network namespace of the benchmark.
type kernelNS struct{ name string }

// kernelSkip says why the kernel workloads cannot run here ("" if they can).
func kernelSkip() string {
	if os.Geteuid() != 0 {
		return "needs root (CAP_NET_ADMIN) to make network namespaces"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "needs ip (iproute2)"
	}
	return ""
}

func (b *bench) newNS(tag string) (*kernelNS, error) {
	ns, err := b.emptyNS(tag)
	if err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"link", "add", "veth0", "type", "veth", "peer", "name", "veth1"},
		{"link", "set", "veth0", "up"},
		{"link", "set", "veth1", "up"},
		{"addr", "add", "192.0.2.2/24", "dev", "veth0"},
	} {
		if err := ns.ip(args...); err != nil {
			b.dropNS(ns)
			return nil, err
		}
	}
	return ns, nil
}

// emptyNS makes a namespace with only lo in it, up.
func (b *bench) emptyNS(tag string) (*kernelNS, error) {
	b.seq++
	ns := &kernelNS{name: fmt.Sprintf("rtm-bench-%d-%s-%d", os.Getpid(), tag, b.seq)}
	if err := run("ip", "netns", "add", ns.name); err != nil {
		return nil, err
	}
	b.namespaces = append(b.namespaces, ns)
	if err := ns.ip("link", "set", "lo", "up"); err != nil {
		b.dropNS(ns)
		return nil, err
	}
	return ns, nil
}

func (ns *kernelNS) ip(args ...string) error {
	return run("ip", append([]string{"-n", ns.name}, args...)...)
}

// routes counts the namespace's IPv4 routes of table main with proto
// (any protocol if proto is "").
func (ns *kernelNS) routes(proto string) (int, error) {
	args := []string{"-n", ns.name, "-4", "route", "show", "table", "main"}
	if proto != "" {
		args = append(args, "proto", proto)
	}
	out, err := exec.Command("ip", args...).Output()
	if err != nil {
		return 0, fmt.Errorf("ip %s: %w", strings.Join(args, " "), err)
	}
	return bytes.Count(out, []byte{'\n'}), nil
}

// dropNS removes a namespace; what runs in it was stopped first.
func (b *bench) dropNS(ns *kernelNS) {
	exec.Command("ip", "netns", "del", ns.name).Run()
	for i, x := range b.namespaces {
		if x == ns {
			b.namespaces = append(b.namespaces[:i], b.namespaces[i+1:]...)
			break
		}
	}
}

func run(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// kernelFiles writes the routes of K1 and K2 twice: as rtm lines and as
// ip -batch lines, n /32s via 192.0.2.1.
func (b *bench) kernelFiles(n int) (rtmLines, ipLines file, err error) {
	dst := func(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff) }
	rtmLines, err = b.writeFile("kernel.rtm", n, func(buf []byte, i int) []byte {
		return fmt.Appendf(buf, "C,%s/32,192.0.2.1,veth0", dst(i))
	})
	if err == nil {
		ipLines, err = b.writeFile("kernel.batch", n, func(buf []byte, i int) []byte {
			return fmt.Appendf(buf, "route add %s/32 via 192.0.2.1 dev veth0", dst(i))
		})
	}
	return rtmLines, ipLines, err
}

// ipBatch times ip -batch of f in namespace ns.
func ipBatch(ns *kernelNS, f file) (time.Duration, error) {
	t0 := time.Now()
	err := run("ip", "-n", ns.name, "-batch", f.path)
	return time.Since(t0), err
}

// startIn starts `rtm ARGS...` in namespace ns, driven with the framed
// protocol, and waits for its first answer.
func (b *bench) startIn(ns *kernelNS, name string, args ...string) (*child, error) {
	exe, err := b.rtmBinary()
	if err != nil {
		return nil, err
	}
	return b.startChild(name, exec.Command("ip", append([]string{"netns", "exec", ns.name, exe}, args...)...))
}

// K1: install n routes into a kernel with rtm client --to-kernel: from
// the client's start until its first answer, which comes once its
// snapshot is applied and installed; against ip -batch of the same
// routes into another namespace, in the same run.
func (b *bench) runK1() ([]Row, error) {
	if why := kernelSkip(); why != "" {
		b.progress("K1: skipped: %s", why)
		return nil, nil
	}
	n := b.o.kernelRoutes
	rtmLines, ipLines, err := b.kernelFiles(n)
	if err != nil {
		return nil, err
	}
	in, err := b.startInstance("kernel", 1, n)
	if err != nil {
		return nil, err
	}
	defer b.stopInstance(in)
	if _, err := in.replay(rtmLines); err != nil {
		return nil, err
	}
	var viaRTM, viaIP []float64
	for range b.o.runs {
		ns, err := b.newNS("ip")
		if err != nil {
			return nil, err
		}
		d, err := ipBatch(ns, ipLines)
		b.dropNS(ns)
		if err != nil {
			return nil, err
		}
		viaIP = append(viaIP, float64(n)/d.Seconds())

		ns, err = b.newNS("k1")
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		c, err := b.startIn(ns, "bench-k1", "client", "--framed", "--to-kernel", "--socket", in.socket, "--client-name", "bench-k1")
		if err == nil {
			_, err = c.Do(b.ctx, "", 10*time.Minute)
		}
		d = time.Since(t0)
		if c != nil {
			b.stop(c)
		}
		var got int
		if err == nil {
			got, err = ns.routes("82")
		}
		b.dropNS(ns)
		if err != nil {
			return nil, err
		}
		if got != n {
			return nil, fmt.Errorf("K1: the kernel holds %d of rtm's %d routes", got, n)
		}
		viaRTM = append(viaRTM, float64(n)/d.Seconds())
	}
	routes := count(n) + " routes"
	limit := figure("LK1", "ip -batch of "+routes, "/s", viaIP)
	return []Row{
		figure("K1", routes+" installed by rtm client --to-kernel", "/s", viaRTM).against(limit).
			judge(">= 0.8x ip -batch", func(r Row) bool { return r.Ratio >= 0.8 }),
		limit,
	}, nil
}

// K2: ip -batch adds n routes to the kernel of a server running
// --from-kernel, with K clients connected: from the start of ip -batch
// until every client has acknowledged them all; against the time of ip
// -batch itself. None may be lost: the server's tables must equal the
// kernel's, and every client's the server's.
func (b *bench) runK2() ([]Row, error) {
	if why := kernelSkip(); why != "" {
		b.progress("K2: skipped: %s", why)
		return nil, nil
	}
	n := b.o.kernelRoutes
	_, ipLines, err := b.kernelFiles(n)
	if err != nil {
		return nil, err
	}
	var toClients, batch []float64
	for run := range b.o.runs {
		d, di, err := b.k2Run(run, ipLines, n)
		if err != nil {
			return nil, err
		}
		toClients, batch = append(toClients, d.Seconds()), append(batch, di.Seconds())
	}
	routes := count(n) + " routes"
	limit := figure("LK2", "ip -batch adding "+routes, "s", batch)
	return []Row{
		figure("K2", routes+" from the kernel to every client", "s", toClients).against(limit).
			judge("<= 1.5x ip -batch, none lost", func(r Row) bool { return r.Ratio <= 1.5 }),
		limit,
	}, nil
}

// k2Run is one run of K2 in a namespace of its own.
func (b *bench) k2Run(run int, ipLines file, n int) (toClients, batch time.Duration, err error) {
	ns, err := b.newNS("k2")
	if err != nil {
		return 0, 0, err
	}
	defer b.dropNS(ns)
	socket := filepath.Join(b.dir, fmt.Sprintf("k2-%d.sock", run))
	path := shmPath(fmt.Sprintf("k2-%d", run))
	defer removeStore(path)
	srv, err := b.startIn(ns, "bench-k2-server", "server", "--framed", "--from-kernel", "--unlink",
		"--socket", socket, "--store", path, "--capacity", "1000", "--route-capacity", strconv.Itoa(headroom(n)))
	if err == nil {
		_, err = srv.Do(b.ctx, "", time.Minute)
	}
	if err != nil {
		if srv != nil {
			b.stop(srv)
		}
		return 0, 0, err
	}
	defer b.stop(srv)
	clients, err := b.connectClients(socket)
	defer func() { b.stop(clients...) }()
	if err != nil {
		return 0, 0, err
	}
	before, err := ns.routes("")
	if err != nil {
		return 0, 0, err
	}
	want := before + n // the namespace's connected route, then the batch's
	t0 := time.Now()
	if batch, err = ipBatch(ns, ipLines); err != nil {
		return 0, 0, err
	}
	if err := b.awaitCount(srv, b.answer(srv, "show routes count"), want); err != nil {
		return 0, 0, fmt.Errorf("K2: routes at the server: %w", err)
	}
	toClients = time.Since(t0)
	if got, err := ns.routes(""); err != nil || got != want {
		return 0, 0, errors.Join(err, fmt.Errorf("K2: the kernel holds %d routes, want %d", got, want))
	}
	for _, c := range clients {
		var rep clientReport
		if err := c.ask(b.ctx, "report", time.Minute, &rep); err != nil {
			return 0, 0, err
		}
		if rep.Routes != want {
			return 0, 0, fmt.Errorf("K2: client %s holds %d routes, the kernel %d", c.Name, rep.Routes, want)
		}
	}
	return toClients, batch, nil
}

// connectClients starts --clients rtm clients of the server at socket
// and connects each; the caller stops those returned, even on an error.
func (b *bench) connectClients(socket string) ([]*child, error) {
	var clients []*child
	for range b.o.clients {
		c, err := b.spawn("rtm", []string{"--socket", socket})
		if err != nil {
			return clients, err
		}
		clients = append(clients, c)
		if err := c.ask(b.ctx, "connect", time.Minute, nil); err != nil {
			return clients, err
		}
	}
	return clients, nil
}

// awaitCount polls count until it is want, then waits until every
// client has applied everything (sync).
func (b *bench) awaitCount(srv *child, count func() (int, error), want int) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		n, err := count()
		if err != nil {
			return err
		}
		if n == want {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d 5 minutes on", n, want)
		}
		time.Sleep(time.Millisecond)
	}
	_, err := srv.Do(b.ctx, "sync 60s", 2*time.Minute)
	return err
}

// answer is the number a framed server answers to q ("show routes
// count").
func (b *bench) answer(srv *child, q string) func() (int, error) {
	return func() (int, error) {
		out, err := srv.Do(b.ctx, q, time.Minute)
		if err != nil {
			return 0, err
		}
		if len(out) != 1 {
			return 0, fmt.Errorf("%q: answered %q", q, out)
		}
		return strconv.Atoi(out[0])
	}
}
