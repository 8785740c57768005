package main

// Multi-process tests: the built rtm binary as server and clients, talking
// over a real socket and a real shared segment.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var rtmBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rtm-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rtmBin = filepath.Join(dir, "rtm")
	if out, err := exec.Command("go", "build", "-o", rtmBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build rtm: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var instSeq atomic.Uint64

// instance is one private rtm instance: its socket and store are unique
// to the test and removed at its end.
type instance struct {
	t      *testing.T
	name   string
	socket string
	store  string
}

func newInstance(t *testing.T) *instance {
	name := fmt.Sprintf("t%d-%d", os.Getpid(), instSeq.Add(1))
	in := &instance{t: t, name: name, socket: filepath.Join(t.TempDir(), "rtm.sock"), store: "/dev/shm/rtm-test." + name}
	t.Cleanup(func() { os.Remove(in.store) })
	return in
}

func (in *instance) flags() []string {
	return []string{"--name", in.name, "--socket", in.socket, "--store", in.store}
}

// proc is a running rtm process. Started with --framed, it answers each
// line sent with the line's output and a terminator, so a test knows
// exactly when a command has run.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	frames chan frame
	skip   atomic.Int64 // answers to lines sent with send, to discard
	out    *syncBuffer  // unframed stdout, for processes not started framed
	errb   *syncBuffer
	done   chan struct{}
}

// frame is the answer to one line: its output, and the error if it failed.
type frame struct {
	out string
	err string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startCmd(t, exec.Command(rtmBin, args...))
}

// startCmd starts cmd (an rtm command) as a proc.
func startCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{t: t, cmd: cmd, out: &syncBuffer{}, errb: &syncBuffer{}, done: make(chan struct{}), frames: make(chan frame, 16)}
	p.cmd.Stderr = p.errb
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer close(p.frames)
		br := bufio.NewReader(stdout)
		var out strings.Builder
		for {
			line, err := br.ReadString('\n')
			switch {
			case strings.HasPrefix(line, "\x00ok"), strings.HasPrefix(line, "\x00err\t"):
				f := frame{out: out.String()}
				if strings.HasPrefix(line, "\x00err\t") {
					f.err = strings.TrimSpace(line[5:])
				}
				out.Reset()
				if p.skip.Load() > 0 {
					p.skip.Add(-1)
				} else {
					p.frames <- f
				}
			default:
				out.WriteString(line)
				p.out.Write([]byte(line))
			}
			if err != nil {
				return
			}
		}
	}()
	go func() { <-read; p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.cmd.Process.Signal(syscall.SIGCONT)
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// do sends one line to a --framed process and returns its answer.
func (p *proc) do(line string) frame {
	p.t.Helper()
	if _, err := io.WriteString(p.stdin, line+"\n"); err != nil {
		p.t.Fatalf("write %q: %v (stderr: %s)", line, err, p.errb.String())
	}
	select {
	case f, ok := <-p.frames:
		if !ok {
			p.t.Fatalf("%v exited before answering %q: %s", p.cmd.Args, line, p.errb.String())
		}
		return f
	case <-time.After(60 * time.Second):
		p.t.Fatalf("no answer to %q in 60s: %s", line, p.errb.String())
	}
	return frame{}
}

// send writes lines without waiting for their answers (a stream the
// process may still be working through when the test acts).
func (p *proc) send(lines ...string) {
	p.t.Helper()
	for _, l := range lines {
		p.skip.Add(1)
		if _, err := io.WriteString(p.stdin, l+"\n"); err != nil {
			p.t.Fatalf("write %q: %v (stderr: %s)", l, err, p.errb.String())
		}
	}
}

// must runs lines that have to succeed.
func (p *proc) must(lines ...string) string {
	p.t.Helper()
	var out strings.Builder
	for _, l := range lines {
		f := p.do(l)
		if f.err != "" {
			p.t.Fatalf("%q failed: %s", l, f.err)
		}
		out.WriteString(f.out)
	}
	return out.String()
}

// wait closes stdin and waits for the exit; it returns the exit code.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("%v still running after %v\nstderr: %s", p.cmd.Args, timeout, p.errb.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *proc) signal(sig syscall.Signal) {
	p.cmd.Process.Signal(sig)
}

func (in *instance) server(extra ...string) *proc {
	in.t.Helper()
	p := start(in.t, append(append([]string{"server", "--framed"}, in.flags()...), extra...)...)
	p.must("") // answered once the store is open and the socket listens
	return p
}

func (in *instance) client(name string, extra ...string) *proc {
	in.t.Helper()
	p := start(in.t, append([]string{"client", "--framed", "--socket", in.socket, "--client-name", name}, extra...)...)
	p.must("") // answered once the snapshot is in
	return p
}

// waitSocket waits until a server started without --framed serves.
func (in *instance) waitSocket(p *proc) {
	in.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if runRTM(in.t, "", "client", "--socket", in.socket).code == 0 {
			return
		}
		select {
		case <-p.done:
			in.t.Fatalf("server exited: %s", p.errb.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	in.t.Fatalf("server socket %s never came up: %s", in.socket, p.errb.String())
}

// waitClients waits until the server lists n clients.
func (in *instance) waitClients(srv *proc, n int) {
	in.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for srv.do(fmt.Sprintf("expect count clients %d", n)).err != "" {
		if time.Now().After(deadline) {
			in.t.Fatalf("server never had %d clients: %s", n, srv.must("show clients"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type result struct {
	code           int
	stdout, stderr string
}

// runRTM runs rtm to completion with the given stdin.
func runRTM(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return runCmd(t, exec.Command(rtmBin, args...), stdin, time.Minute)
}

// runCmd runs cmd to completion with stdin, killing it (and failing the
// test) if it takes longer than timeout.
func runCmd(t *testing.T, cmd *exec.Cmd, stdin string, timeout time.Duration) result {
	t.Helper()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v hung after %v:\n%s%s", cmd.Args, timeout, out.String(), errb.String())
	}
	return result{cmd.ProcessState.ExitCode(), out.String(), errb.String()}
}

// dump is what a fresh client sees: every route and every MAC with the
// address it reads from the shared store.
func (in *instance) dump() string {
	in.t.Helper()
	r := runRTM(in.t, "show routes\nshow macs\n", "client", "--socket", in.socket, "--client-name", "dump")
	if r.code != 0 {
		in.t.Fatalf("dump client: exit %d: %s", r.code, r.stderr)
	}
	return r.stdout
}

// model is what the tables must hold after the lines the test sent.
type model struct {
	routes map[string]string // prefix -> "via GW dev DEV"
	macs   map[string]string // mac -> ip
}

func newModel() *model { return &model{routes: map[string]string{}, macs: map[string]string{}} }

// gen returns n random valid changes and applies them to the model.
func (m *model) gen(rng *rand.Rand, n int) []string {
	var lines []string
	for len(lines) < n {
		i := rng.IntN(300)
		pfx := fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)
		mac := fmt.Sprintf("02:00:00:00:%02x:%02x", i/256, i%256)
		switch rng.IntN(6) {
		case 0, 1:
			gw, dev := fmt.Sprintf("192.168.%d.%d", rng.IntN(256), 1+rng.IntN(254)), fmt.Sprintf("eth%d", rng.IntN(4))
			op := "C"
			if _, ok := m.routes[pfx]; ok {
				op = "U"
			}
			m.routes[pfx] = "via " + gw + " dev " + dev
			lines = append(lines, fmt.Sprintf("%s,%s,%s,%s", op, pfx, gw, dev))
		case 2:
			if _, ok := m.routes[pfx]; ok {
				delete(m.routes, pfx)
				lines = append(lines, "D,"+pfx)
			}
		case 3, 4:
			ip := fmt.Sprintf("10.200.%d.%d", rng.IntN(256), rng.IntN(256))
			if rng.IntN(3) == 0 {
				ip = fmt.Sprintf("2001:db8::%x", rng.IntN(65536))
			}
			op := "C"
			if _, ok := m.macs[mac]; ok {
				op = "U"
			}
			m.macs[mac] = ip
			lines = append(lines, fmt.Sprintf("%s,%s,%s", op, mac, ip))
		case 5:
			if _, ok := m.macs[mac]; ok {
				delete(m.macs, mac)
				lines = append(lines, "D,"+mac)
			}
		}
	}
	return lines
}

// lines returns the sorted show output lines the model predicts.
func (m *model) lines() []string {
	var out []string
	for p, rest := range m.routes {
		out = append(out, p+" "+rest)
	}
	for mac, ip := range m.macs {
		out = append(out, mac+" "+ip)
	}
	slices.Sort(out)
	return out
}

func sortedLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

func assertLines(t *testing.T, who string, got []string, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: %d lines, want %d\nfirst difference: %s", who, len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(got, want []string) string {
	for i := 0; i < len(got) || i < len(want); i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			return fmt.Sprintf("line %d: got %q, want %q", i+1, g, w)
		}
	}
	return "none"
}

// TestConvergenceProcesses: a server and three client processes; a few
// thousand mixed changes; every client, and a late one, ends with exactly
// the tables the changes describe.
func TestConvergenceProcesses(t *testing.T) {
	in := newInstance(t)
	srv := in.server()
	clients := []*proc{in.client("a"), in.client("b"), in.client("c")}
	m := newModel()
	rng := rand.New(rand.NewPCG(7, 7))
	srv.must(m.gen(rng, 3000)...)
	srv.must("sync")
	want := m.lines()
	for i, c := range clients {
		got := sortedLines(c.must("sync", "show routes", "show macs"))
		assertLines(t, fmt.Sprintf("client %d", i), got, want)
	}
	assertLines(t, "late client", sortedLines(in.dump()), want)
	srv.do("quit")
	if code := srv.wait(10 * time.Second); code != 0 {
		t.Fatalf("server exit %d: %s", code, srv.errb.String())
	}
	for i, c := range clients {
		if code := c.wait(10 * time.Second); code != 0 {
			t.Errorf("client %d exit %d after the server quit: %s", i, code, c.errb.String())
		}
	}
	if _, err := os.Stat(in.socket); !os.IsNotExist(err) {
		t.Errorf("socket left after quit: %v", err)
	}
}

// TestServerCrashRestart kills the server mid-stream with SIGKILL and
// restarts it on the same store: the store validates, the state is there,
// and clients reconnect and converge to it.
func TestServerCrashRestart(t *testing.T) {
	in := newInstance(t)
	srv := in.server()
	watcher := in.client("w")
	rng := rand.New(rand.NewPCG(3, 9))
	m := newModel()
	srv.must(m.gen(rng, 2000)...)
	srv.must("sync")
	before := m.lines()
	// Still streaming when it dies: written without waiting for answers.
	go func() {
		for _, l := range m.gen(rng, 20000) {
			srv.skip.Add(1)
			if _, err := io.WriteString(srv.stdin, l+"\n"); err != nil {
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	srv.signal(syscall.SIGKILL)
	<-srv.done

	srv2 := in.server()
	after := sortedLines(in.dump())
	if len(after) < len(before)/2 {
		t.Fatalf("restarted server lost its state: %d lines before the crash, %d after", len(before), len(after))
	}
	// The old client reconnects by itself and resyncs to the same state.
	in.waitClients(srv2, 1)
	got := sortedLines(watcher.must("sync", "show routes", "show macs"))
	assertLines(t, "reconnected client", got, after)
	if !strings.Contains(watcher.errb.String(), "reconnect") {
		t.Errorf("client did not report the lost server: %s", watcher.errb.String())
	}
	if !strings.Contains(srv2.errb.String(), "not closed cleanly") {
		t.Errorf("restarted server did not report the crash recovery: %s", srv2.errb.String())
	}
}

func TestSecondServerRefused(t *testing.T) {
	in := newInstance(t)
	srv := in.server()
	r := runRTM(t, "", append([]string{"server", "--exit-at-eof"}, in.flags()...)...)
	if r.code == 0 {
		t.Fatal("second server on the same store started")
	}
	if want := fmt.Sprintf("pid %d", srv.cmd.Process.Pid); !strings.Contains(r.stderr, want) {
		t.Fatalf("refusal does not name the owner (%s): %s", want, r.stderr)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	in := newInstance(t)
	srv := in.server()
	srv.must("C,10.1.1.0/24,192.168.1.1,eth0")
	srv.signal(syscall.SIGKILL)
	<-srv.done
	if _, err := os.Stat(in.socket); err != nil {
		t.Fatalf("a killed server should leave its socket file: %v", err)
	}
	in.server()
	if got := in.dump(); !strings.Contains(got, "10.1.1.0/24 via 192.168.1.1 dev eth0") {
		t.Fatalf("restarted server lost the route: %q", got)
	}
}

func TestCleanQuitOnSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			in := newInstance(t)
			srv := in.server()
			c := in.client("x")
			srv.must("C,00:1a:2b:3c:4d:5e,10.1.1.7", "sync")
			srv.signal(sig)
			select {
			case <-srv.done:
			case <-time.After(10 * time.Second):
				t.Fatal("server ignored", sig)
			}
			if code := srv.cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("server exit %d after %v: %s", code, sig, srv.errb.String())
			}
			select {
			case <-c.done:
			case <-time.After(10 * time.Second):
				t.Fatal("client did not exit when the server quit")
			}
			if code := c.cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("client exit %d: %s", code, c.errb.String())
			}
			if _, err := os.Stat(in.socket); !os.IsNotExist(err) {
				t.Errorf("socket left after %v: %v", sig, err)
			}
		})
	}
}

func TestClientRejectsWrites(t *testing.T) {
	// A client of the server's own uid may change the tables: the server
	// applies the change and every client, the sender too, gets it.
	in := newInstance(t)
	srv := in.server()
	r := runRTM(t, "C,10.1.1.0/24,192.168.1.1,eth0\nshow routes\n", "client", "--socket", in.socket)
	if r.code != 0 || r.stdout != "10.1.1.0/24 via 192.168.1.1 dev eth0\n" {
		t.Fatalf("client write: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	srv.must("expect route 10.1.1.0/24 via 192.168.1.1 dev eth0")
}

// TestClientSIGUSR1Resync: SIGUSR1 makes a client drop its copy and take a
// fresh snapshot; the server counts the request and the copy is complete.
func TestClientSIGUSR1Resync(t *testing.T) {
	in := newInstance(t)
	srv := in.server()
	srv.must("C,10.1.1.0/24,192.168.1.1,eth0", "C,00:1a:2b:3c:4d:5e,10.1.1.7")
	c := in.client("usr1")
	c.signal(syscall.SIGUSR1)
	deadline := time.Now().Add(10 * time.Second)
	for !regexp.MustCompile(`resyncs_requested +1\n`).MatchString(srv.must("show stats")) {
		if time.Now().After(deadline) {
			t.Fatalf("server never saw the resync request: %s", srv.must("show stats"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := sortedLines(c.must("sync", "show routes", "show macs"))
	assertLines(t, "client after SIGUSR1", got, []string{"00:1a:2b:3c:4d:5e 10.1.1.7", "10.1.1.0/24 via 192.168.1.1 dev eth0"})
	if !strings.Contains(c.errb.String(), "SIGUSR1") {
		t.Errorf("client did not say what it did: %q", c.errb.String())
	}
}

// TestClientRemapsNewStore: the server dies and its store is removed, so
// the next server creates a new one (a new generation). The client must
// map the new segment: lookups answer from it, not from the old mapping.
func TestClientRemapsNewStore(t *testing.T) {
	in := newInstance(t)
	srv := in.server()
	srv.must("C,00:1a:2b:3c:4d:5e,10.1.1.7")
	c := in.client("remap")
	if got := c.must("lookup 00:1a:2b:3c:4d:5e"); !strings.Contains(got, "10.1.1.7") {
		t.Fatalf("lookup before: %q", got)
	}
	srv.signal(syscall.SIGKILL)
	<-srv.done
	// During the outage the client answers from its last mapping.
	if got := c.must("lookup 00:1a:2b:3c:4d:5e"); !strings.Contains(got, "10.1.1.7") {
		t.Fatalf("lookup during the outage: %q", got)
	}
	if err := os.Remove(in.store); err != nil {
		t.Fatal(err)
	}
	srv2 := in.server()
	srv2.must("C,00:1a:2b:3c:4d:5e,10.9.9.9")
	in.waitClients(srv2, 1)
	if got := c.must("sync", "lookup 00:1a:2b:3c:4d:5e"); !strings.Contains(got, "10.9.9.9") {
		t.Fatalf("client still reads the old segment: %q (stderr %s)", got, c.errb.String())
	}
	if !strings.Contains(c.errb.String(), "remapped") {
		t.Errorf("client did not report the new generation: %s", c.errb.String())
	}
}
