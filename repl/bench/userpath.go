package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"rtm/proto/framed"
)

// B9 as users run it: real rtm processes of one binary, nothing of rtm in
// this process. The lines go into `rtm server`'s stdin through a pipe;
// K `rtm client` processes, started first, keep their stdin open on a
// pipe (a program's clients, not a watch). The time runs from the first
// byte written until `sync` has returned and the line after it has been
// answered on the server's stdout; then every client's tables are read
// back (`show routes json`, `show macs json`) and checked line by line.
// Each run starts new processes on a new store, so every build runs from
// the same empty start, and the CPU time of each process (the sum of its
// threads' run time, /proc/PID/task/*/schedstat) is read just before the
// first byte and just after the answer.

// lineProc is an rtm process driven through its plain stdin and stdout.
type lineProc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string // stdout, one line at a time; closed at its end
	stderr *framed.Buffer
	done   chan struct{} // closed once the process has exited
}

// startLine starts exe with args, its stdin and stdout pipes of its own.
// Like a child it has a process group of its own and dies with the
// benchmark.
func (b *bench) startLine(name, exe string, args ...string) (*lineProc, error) {
	cmd := exec.Command(exe, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &lineProc{name: name, cmd: cmd, lines: make(chan string, 64), stderr: framed.NewBuffer(64 << 10), done: make(chan struct{})}
	cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	b.lineProcs = append(b.lineProcs, p)
	go func() {
		br := bufio.NewReaderSize(out, 1<<20)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				break
			}
			p.lines <- strings.TrimSuffix(line, "\n")
		}
		close(p.lines)
		cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// line waits for the next line of stdout.
func (p *lineProc) line(ctx context.Context, timeout time.Duration) (string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l, ok := <-p.lines:
		if !ok {
			return "", fmt.Errorf("%s ended: %s", p.name, lastLine(p.stderr.String()))
		}
		return l, nil
	case <-t.C:
		return "", fmt.Errorf("%s: no answer within %v (%s)", p.name, timeout, lastLine(p.stderr.String()))
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// stop ends the process: the end of its input (a client exits), with
// term SIGTERM at once (a server, which stays at the end of its input),
// and SIGKILL for one still there a second later.
func (p *lineProc) stop(term bool) {
	p.stdin.Close()
	go func() {
		for range p.lines { // drain: the process must not block on its output
		}
	}()
	if term {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	}
	select {
	case <-p.done:
		return
	case <-time.After(time.Second):
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// cpuSeconds is the CPU time the process pid has run so far: the sum of
// its threads' run time (ns in schedstat, not the 10 ms ticks of stat).
func cpuSeconds(pid int) float64 {
	dirs, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var ns uint64
	for _, d := range dirs {
		data, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		f, _, _ := strings.Cut(string(data), " ")
		v, _ := strconv.ParseUint(f, 10, 64)
		ns += v
	}
	return float64(ns) / 1e9
}

// userRun is one run of B9 as users run it.
type userRun struct {
	elapsed float64   // from the first byte written until the answer after sync
	server  float64   // the server's CPU seconds in that time
	clients []float64 // each client's
}

// classicInput is the classic workload as a program writes it into a
// server: the lines, a sync, and a lookup whose answer says sync returned.
type classicInput struct {
	n      int
	lines  []byte
	answer string          // the lookup's expected answer
	routes map[string]bool // every client's routes: "dst gateway dev"
	macs   map[string]bool // and MACs: "mac ip"
}

func newClassicInput(n int) *classicInput {
	in := &classicInput{n: n, routes: make(map[string]bool, n), macs: make(map[string]bool, n)}
	var buf []byte
	for i := range n {
		buf = append(routeCreate(buf, i), '\n')
		buf = append(macCreate(buf, i), '\n')
		r := routeCreate(nil, i)
		f := strings.Split(string(r[2:]), ",")
		in.routes[f[0]+" "+f[1]+" "+f[2]] = true
		in.macs[workloadMAC(i).String()+" "+workloadIP(i).String()] = true
	}
	last := workloadMAC(n - 1)
	in.answer = last.String() + " " + workloadIP(n-1).String()
	in.lines = fmt.Appendf(buf, "sync 600s\nlookup %s\n", last)
	return in
}

// userClassic runs B9 once with exe as server and clients. It does
// what a program does that pipes a script into a server: write it all,
// then close the server's stdin (the server keeps serving). Builds
// before the stream answered as it went (2a862b0) write their answers
// only at the end of input, so the end of input is part of the run for
// every build alike.
func (b *bench) userClassic(exe string, in *classicInput) (run userRun, err error) {
	b.seq++
	tag := fmt.Sprintf("user-%d", b.seq)
	socket := filepath.Join(b.dir, tag+".sock")
	storePath := shmPath(tag)
	b.shm = append(b.shm, storePath)
	defer removeStore(storePath)
	srv, err := b.startLine("server "+filepath.Base(exe), exe, "server", "--socket", socket, "--store", storePath,
		"--fresh", "--unlink", "--capacity", strconv.Itoa(headroom(in.n)), "--route-capacity", strconv.Itoa(headroom(in.n)))
	if err != nil {
		return run, err
	}
	var clients []*lineProc
	defer func() {
		for _, c := range clients {
			c.stop(false)
		}
		srv.stop(true)
	}()
	if err := b.waitFor(srv, func() bool { _, err := os.Stat(socket); return err == nil }, "its socket"); err != nil {
		return run, err
	}
	for i := range b.o.clients {
		c, err := b.startLine(fmt.Sprintf("client %d", i+1), exe, "client", "--socket", socket, "--client-name", fmt.Sprintf("bench-%s-%d", tag, i+1))
		if err != nil {
			return run, err
		}
		clients = append(clients, c)
	}
	// Every build logs each client it admits; the empty snapshot that
	// follows takes microseconds, and the pause lets it land.
	connected := func() bool { return strings.Count(srv.stderr.String(), ") connected") == len(clients) }
	if err := b.waitFor(srv, connected, "its clients"); err != nil {
		return run, err
	}
	time.Sleep(100 * time.Millisecond)
	pids := []int{srv.cmd.Process.Pid}
	for _, c := range clients {
		pids = append(pids, c.cmd.Process.Pid)
	}
	cpu0 := make([]float64, len(pids))
	for i, pid := range pids {
		cpu0[i] = cpuSeconds(pid)
	}
	written := make(chan error, 1)
	t0 := time.Now()
	go func() {
		_, err := srv.stdin.Write(in.lines)
		written <- errors.Join(err, srv.stdin.Close())
	}()
	got, err := srv.line(b.ctx, 600*time.Second)
	run.elapsed = time.Since(t0).Seconds()
	if err != nil {
		return run, err
	}
	for i, pid := range pids {
		d := cpuSeconds(pid) - cpu0[i]
		if i == 0 {
			run.server = d
		} else {
			run.clients = append(run.clients, d)
		}
	}
	if err := <-written; err != nil {
		return run, fmt.Errorf("write to the server: %w", err)
	}
	if got != in.answer {
		return run, fmt.Errorf("the server answered %q after sync, want %q", got, in.answer)
	}
	for _, c := range clients {
		if err := b.checkTables(c, in); err != nil {
			return run, err
		}
	}
	return run, nil
}

// waitFor polls cond for up to 30 s while p runs.
func (b *bench) waitFor(p *lineProc, cond func() bool, what string) error {
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		select {
		case <-p.done:
			return fmt.Errorf("%s ended: %s", p.name, lastLine(p.stderr.String()))
		case <-b.ctx.Done():
			return b.ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: waited 30 s for %s", p.name, what)
		}
	}
	return nil
}

// checkTables reads a client's tables back and compares them with the
// workload's, entry by entry.
func (b *bench) checkTables(c *lineProc, in *classicInput) error {
	var routes []struct{ Dst, Gateway, Dev string }
	var macs []struct{ MAC, IP string }
	for _, q := range []struct {
		cmd string
		v   any
	}{{"show routes json", &routes}, {"show macs json", &macs}} {
		if _, err := io.WriteString(c.stdin, q.cmd+"\n"); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	// The end of its input: a client exits, and writes what it still held.
	c.stdin.Close()
	for _, q := range []struct {
		cmd string
		v   any
	}{{"show routes json", &routes}, {"show macs json", &macs}} {
		line, err := c.line(b.ctx, 60*time.Second)
		if err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(line), q.v); err != nil {
			return fmt.Errorf("%s: %s: %w", c.name, q.cmd, err)
		}
	}
	var bad []string
	if len(routes) != len(in.routes) {
		bad = append(bad, fmt.Sprintf("%d routes, want %d", len(routes), len(in.routes)))
	}
	for _, r := range routes {
		if k := r.Dst + " " + r.Gateway + " " + r.Dev; !in.routes[k] {
			bad = append(bad, "route "+k)
			break
		}
	}
	if len(macs) != len(in.macs) {
		bad = append(bad, fmt.Sprintf("%d MACs, want %d", len(macs), len(in.macs)))
	}
	for _, m := range macs {
		if k := m.MAC + " " + m.IP; !in.macs[k] {
			bad = append(bad, "MAC "+k)
			break
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s holds the wrong tables: %s", c.name, strings.Join(bad, "; "))
	}
	return nil
}

// build is an rtm binary that B9 runs: this one (--rtm) or a --baseline.
type build struct {
	name, exe string
	runs      []userRun
}

// runB9User runs B9 as users run it, with this rtm and each --baseline,
// alternating builds run by run (the first build of each run rotates).
func (b *bench) runB9User() ([]Row, error) {
	exe, err := b.rtmBinary()
	if err != nil {
		return nil, err
	}
	builds := []*build{{name: "rtm", exe: exe}}
	for _, x := range b.o.baselines {
		builds = append(builds, &build{name: filepath.Base(x), exe: x})
	}
	in := newClassicInput(b.o.n)
	for run := range b.o.runs {
		for i := range builds {
			bd := builds[(run+i)%len(builds)]
			r, err := b.userClassic(bd.exe, in)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", bd.name, err)
			}
			bd.runs = append(bd.runs, r)
		}
	}
	changes := float64(2 * b.o.n)
	what := fmt.Sprintf("%s routes + %s MACs piped into rtm server, %d rtm clients", count(b.o.n), count(b.o.n), b.o.clients)
	var rows []Row
	for i, bd := range builds {
		id, who := "B9", what
		if i > 0 {
			id, who = "LB9", bd.name+": "+what
		}
		col := func(f func(userRun) float64, div float64) []float64 {
			var out []float64
			for _, r := range bd.runs {
				out = append(out, f(r)/div)
			}
			return out
		}
		elapsed := func(r userRun) float64 { return r.elapsed }
		rows = append(rows,
			figure(id, who+", until sync answered, per change", "s", col(elapsed, changes)),
			figure(id, who+", until sync answered, total", "s", col(elapsed, 1)),
			figure(id, who+": server CPU per change", "s", col(func(r userRun) float64 { return r.server }, changes)))
		for k := range b.o.clients {
			rows = append(rows, figure(id, fmt.Sprintf("%s: client %d CPU per change", who, k+1), "s",
				col(func(r userRun) float64 { return r.clients[k] }, changes)))
		}
	}
	for i, bd := range builds[1:] {
		speed, cpu := make([]float64, b.o.runs), make([]float64, b.o.runs)
		for run := range b.o.runs {
			mine, theirs := builds[0].runs[run], bd.runs[run]
			speed[run] = theirs.elapsed / mine.elapsed
			cpu[run] = sum(mine.clients) / sum(theirs.clients)
		}
		r := figure("B9", "speed vs "+bd.name+" (its time ÷ this rtm's, run by run)", "x", speed)
		if i == 0 {
			r = r.judge(">= 3x the first --baseline", func(r Row) bool { return r.Median >= 3 })
		}
		rows = append(rows, r, figure("B9", "clients' CPU per change vs "+bd.name+" (this rtm's ÷ its, run by run)", "x", cpu))
	}
	return rows, nil
}

func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}
