package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"rtm/proto"
	"rtm/proto/framed"
	"rtm/store"
)

// The benchmark's child processes are this binary again, `rtm bench
// child ROLE`, driven through the framed protocol (package framed): the
// parent writes one command per line and each answer that carries
// figures is one JSON line. Roles:
//
//	rtm           an rtm client session (proto.Dial), as `rtm client` has:
//	              connect, report, lookup N, quit
//	raw-receiver  reads its end of a SOCK_SEQPACKET pair on fd 3 and acks
//	              every end marker, with raw syscalls (limits.go): quit
//	raw-lookup    maps a raw table (shmPath) read-only and runs the
//	              raw seqlock loop over it (limits.go): lookup N, quit

// child is a child process of the benchmark. Its Name is also the name
// an rtm child gives the server, so the server's client list finds it.
type child struct {
	*framed.Proc
}

// spawn starts `rtm bench child ARGS...` with files as its fds 3, 4, ...
// It gets a process group of its own (an interrupt at the terminal
// reaches the benchmark, which then ends its children), and dies with
// the benchmark if the benchmark is killed.
func (b *bench) spawn(role string, args []string, files ...*os.File) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b.seq++
	name := fmt.Sprintf("bench-%s-%d", role, b.seq)
	args = append([]string{"bench", "child", role, "--name", name}, args...)
	if b.o.cpuprofile != "" && role == "rtm" {
		args = append(args, "--cpuprofile", b.o.cpuprofile+"."+name+".pprof")
	}
	cmd := exec.Command(exe, args...)
	cmd.ExtraFiles = files
	return b.startChild(name, cmd)
}

// startChild starts cmd as a child of the benchmark, driven with the
// framed protocol.
func (b *bench) startChild(name string, cmd *exec.Cmd) (*child, error) {
	cmd.Stderr = b.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p, err := framed.Start(name, cmd)
	if err != nil {
		return nil, err
	}
	c := &child{p}
	b.children = append(b.children, c)
	return c, nil
}

// ask sends one command and decodes its one-line JSON answer into v (nil:
// an answer without figures).
func (c *child) ask(ctx context.Context, line string, timeout time.Duration, v any) error {
	out, err := c.Do(ctx, line, timeout)
	if err != nil {
		return err
	}
	if v == nil {
		return nil
	}
	if len(out) != 1 {
		return fmt.Errorf("%s: %q: want one JSON line, got %d lines", c.Name, line, len(out))
	}
	if err := json.Unmarshal([]byte(out[0]), v); err != nil {
		return fmt.Errorf("%s: %q: %w", c.Name, line, err)
	}
	return nil
}

// stop ends children: end of input first (an rtm child closes its
// session and exits), then SIGKILL for any that does not exit at once.
func (b *bench) stop(cs ...*child) {
	for _, c := range cs {
		c.CloseInput()
	}
	for _, c := range cs {
		if c.Wait(context.Background(), time.Second) != nil {
			c.Kill()
		}
		c.Kill() // a no-op for an exited process; stops its answer reader
	}
	b.children = slices.DeleteFunc(b.children, func(x *child) bool { return slices.Contains(cs, x) })
}

// startClients starts n rtm clients of in and returns once each has
// applied its snapshot and the server has its acknowledgement.
func (b *bench) startClients(in *instance, n int) ([]*child, error) {
	var cs []*child
	for range n {
		c, err := b.spawn("rtm", []string{"--socket", in.socket})
		if err != nil {
			b.stop(cs...)
			return nil, err
		}
		cs = append(cs, c)
	}
	for _, c := range cs {
		if err := c.ask(b.ctx, "connect", 120*time.Second, nil); err != nil {
			b.stop(cs...)
			return nil, err
		}
	}
	if err := in.waitAcked(cs, in.srv.Published(), 60*time.Second); err != nil {
		b.stop(cs...)
		return nil, err
	}
	return cs, nil
}

// clientReport is an rtm child's answer to "report".
type clientReport struct {
	Seconds float64           `json:"seconds"` // from dial until the snapshot was applied
	Routes  int               `json:"routes"`
	MACs    int               `json:"macs"`
	RSSKiB  uint64            `json:"rss_kib"` // after a GC
	Stats   map[string]uint64 `json:"stats"`   // the session's counters
}

// lookupReport is an answer to "lookup N".
type lookupReport struct {
	Rate      float64 `json:"rate"`                 // lookups/s, one at a time
	KeyRate   float64 `json:"key_rate,omitempty"`   // one at a time by Key (rtm children)
	BatchRate float64 `json:"batch_rate,omitempty"` // through LookupMany (rtm children)
	CopyRate  float64 `json:"copy_rate,omitempty"`  // over the raw table's copy (raw-lookup)
	Misses    int     `json:"misses"`
	// Sum folds the values read (the raw loop's), so that the loads
	// of a loop whose results go nowhere else still count.
	Sum uint64 `json:"sum,omitempty"`
}

// childMain is `rtm bench child ROLE [flags]`.
func childMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "rtm bench child: which role? (rtm, raw-receiver, raw-lookup)")
		return 2
	}
	role := args[0]
	fs := flag.NewFlagSet("rtm bench child "+role, flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "bench", "client name")
	socket := fs.String("socket", "", "server socket (rtm)")
	table := fs.String("table", "", "raw table (raw-lookup)")
	storePath := fs.String("store", "", "store whose MAC slots to look up in as well (raw-lookup)")
	keys := fs.Int("keys", 0, "entries of the raw table (raw-lookup)")
	profile := fs.String("cpuprofile", "", "write a CPU profile of this process to `FILE`")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *profile != "" {
		stop, err := startProfile(*profile)
		if err != nil {
			fmt.Fprintln(stderr, "rtm bench child:", err)
			return 1
		}
		defer stop()
	}
	var h framed.Handler
	var done func()
	switch role {
	case "rtm":
		c := &clientChild{socket: *socket, name: *name}
		h, done = c.handle, c.close
	case "raw-receiver":
		h, done = startRawReceiver(3), func() {}
	case "raw-lookup":
		r, err := openRawLookup(*table, *storePath, *keys)
		if err != nil {
			fmt.Fprintln(stderr, "rtm bench child:", err)
			return 1
		}
		h, done = r.handle, r.close
	default:
		fmt.Fprintf(stderr, "rtm bench child: unknown role %q\n", role)
		return 2
	}
	err := framed.Serve(os.Stdin, stdout, h)
	done()
	if err != nil && !errors.Is(err, framed.ErrStopped) {
		fmt.Fprintln(stderr, "rtm bench child:", err)
		return 1
	}
	return 0
}

// command splits a framed line into its word and argument.
func command(line []byte) (cmd, arg string) {
	cmd, arg, _ = strings.Cut(strings.TrimSpace(string(line)), " ")
	return cmd, strings.TrimSpace(arg)
}

// answer writes v as the one JSON line of an answer.
func answer(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}

// clientChild is the rtm role: one client session.
type clientChild struct {
	socket, name string
	c            *proto.Client
	ready        time.Duration
}

func (cc *clientChild) handle(line []byte, w io.Writer) (bool, error) {
	cmd, arg := command(line)
	switch cmd {
	case "":
		return false, nil
	case "connect":
		return false, cc.connect()
	case "report":
		if cc.c == nil {
			return false, errors.New("not connected")
		}
		runtime.GC()
		rep := clientReport{
			Seconds: cc.ready.Seconds(), Routes: len(cc.c.Routes()), MACs: len(cc.c.MACs()),
			RSSKiB: rssKiB("self"), Stats: map[string]uint64{},
		}
		for _, s := range cc.c.Stats() {
			rep.Stats[s.Name] = s.Value
		}
		return false, answer(w, rep)
	case "lookup":
		n, err := strconv.Atoi(arg)
		if err != nil || n < 1 {
			return false, fmt.Errorf("lookup: want a count, got %q", arg)
		}
		rep, err := cc.lookup(n)
		if err != nil {
			return false, err
		}
		return false, answer(w, rep)
	case "quit":
		return true, nil
	}
	return false, fmt.Errorf("unknown command %q (connect, report, lookup N, quit)", cmd)
}

// connect dials the server and waits for the snapshot; ready is the time
// from dial until it was applied (B3).
func (cc *clientChild) connect() error {
	if cc.c != nil {
		return errors.New("connected already")
	}
	t0 := time.Now()
	c, err := proto.Dial(proto.ClientOptions{Socket: cc.socket, Name: cc.name})
	if err != nil {
		return err
	}
	select {
	case <-c.Ready():
	case <-c.Done():
		return fmt.Errorf("session ended before the snapshot: %v", c.Err())
	}
	cc.c, cc.ready = c, time.Since(t0)
	return nil
}

func (cc *clientChild) close() {
	if cc.c != nil {
		cc.c.Close()
	}
}

// lookup looks up n random MACs of the client's table through its
// read-only mapping, one at a time (by MAC, then by Key) and then with
// LookupMany.
func (cc *clientChild) lookup(n int) (lookupReport, error) {
	if cc.c == nil {
		return lookupReport{}, errors.New("not connected")
	}
	keys := cc.c.MACs()
	if len(keys) == 0 {
		return lookupReport{}, errors.New("no MACs to look up")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	r := cc.c.Reader()
	var rep lookupReport
	t := time.Now()
	// No division per lookup: the loop costs next to nothing beside the
	// lookup it measures.
	for i, j := 0, 0; i < n; i, j = i+1, j+1 {
		if j == len(keys) {
			j = 0
		}
		if _, err := r.Lookup(keys[j]); err != nil {
			rep.Misses++
		}
	}
	rep.Rate = float64(n) / time.Since(t).Seconds()
	// The same MACs by Key, made once before the clock starts, as a
	// program that looks the same MACs up again and again keeps them (and
	// as the raw loop keeps its key words).
	byKey := make([]store.Key, len(keys))
	for i, m := range keys {
		byKey[i] = r.Key(m)
	}
	t = time.Now()
	for i, j := 0, 0; i < n; i, j = i+1, j+1 {
		if j == len(byKey) {
			j = 0
		}
		if _, err := r.LookupKey(byKey[j]); err != nil {
			rep.Misses++
		}
	}
	rep.KeyRate = float64(n) / time.Since(t).Seconds()
	// The same keys through LookupMany, 64 at a time: a client that has
	// many keys to resolve lets their memory misses overlap.
	batch := min(64, len(keys))
	ips, errs := make([]netip.Addr, batch), make([]error, batch)
	done := 0
	t = time.Now()
	for off := 0; done < n; off += batch {
		if off+batch > len(keys) {
			off = 0
		}
		r.LookupMany(keys[off:off+batch], ips, errs)
		for _, err := range errs {
			if err != nil {
				rep.Misses++
			}
		}
		done += batch
	}
	rep.BatchRate = float64(done) / time.Since(t).Seconds()
	if rep.Misses > 0 {
		return rep, fmt.Errorf("%d of %d lookups failed", rep.Misses, 2*n+done)
	}
	return rep, nil
}

// rssKiB reads a process's resident set size from /proc ("self" for this
// one).
func rssKiB(pid string) uint64 {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
