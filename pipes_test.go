package main

// Programs drive rtm as a coprocess: they write a command into its stdin,
// keep stdin open, and wait for the answer on stdout. These tests do what
// such a program does, with the plain (not --framed) interface, and check
// that every answer arrives whole before the next command is written, and
// that nothing answered is lost when the process is told to go. Then the
// other end of a pipe going away: a reader that quits, a closed stdout.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"rtm/proto/framed"
	"rtm/repl/rtmtest"
	"rtm/store/entry"

	"golang.org/x/sys/unix"
)

// coproc is rtm with its stdin and stdout held open as pipes.
type coproc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	out    []string // stdout lines so far
	errOut []string // stderr lines so far
	more   chan struct{}
	done   chan struct{}
}

func startCoproc(t *testing.T, args ...string) *coproc {
	t.Helper()
	return startCoprocOn(t, nil, nil, args...)
}

// startCoprocOn starts rtm with stdin the read end r of a pipe whose
// write end w the test holds (a new pipe if r is nil).
func startCoprocOn(t *testing.T, r *os.File, w io.WriteCloser, args ...string) *coproc {
	t.Helper()
	c := &coproc{t: t, cmd: exec.Command(rtmBin, args...), more: make(chan struct{}, 1), done: make(chan struct{})}
	var err error
	if r == nil {
		if c.stdin, err = c.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
	} else {
		c.cmd.Stdin, c.stdin = r, w
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go c.collect(stdout, &c.out, &readers)
	go c.collect(stderr, &c.errOut, &readers)
	go func() { readers.Wait(); c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-c.done
	})
	return c
}

func (c *coproc) collect(r io.Reader, into *[]string, wg *sync.WaitGroup) {
	defer wg.Done()
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			c.mu.Lock()
			*into = append(*into, strings.TrimSuffix(line, "\n"))
			c.mu.Unlock()
			select {
			case c.more <- struct{}{}:
			default:
			}
		}
		if err != nil {
			return
		}
	}
}

func (c *coproc) write(lines ...string) {
	c.t.Helper()
	if _, err := io.WriteString(c.stdin, strings.Join(lines, "\n")+"\n"); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// await waits until stdout holds n lines past from, and returns them; it
// fails the test if they do not all arrive within 20 s.
func (c *coproc) await(from, n int, what string) []string {
	c.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		c.mu.Lock()
		got := len(c.out) - from
		if got >= n {
			lines := append([]string(nil), c.out[from:from+n]...)
			c.mu.Unlock()
			return lines
		}
		c.mu.Unlock()
		select {
		case <-c.more:
		case <-deadline:
			c.t.Fatalf("%s: %d of %d lines arrived in 20s with stdin held open: the answer was held back", what, got, n)
		case <-c.done:
			c.t.Fatalf("%s: rtm exited after %d of %d lines: %s", what, got, n, c.stderr())
		}
	}
}

// awaitErr waits for an error line on stderr that contains want.
func (c *coproc) awaitErr(want string) {
	c.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		if strings.Contains(c.stderr(), want) {
			return
		}
		select {
		case <-c.more:
		case <-deadline:
			c.t.Fatalf("no %q on stderr in 20s with stdin held open; stderr: %s", want, c.stderr())
		}
	}
}

func (c *coproc) lines() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.out)
}

func (c *coproc) stderr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.errOut, "\n")
}

// exited waits for the exit and returns the status.
func (c *coproc) exited() int {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		c.t.Fatalf("%v still running: %s", c.cmd.Args, c.stderr())
	}
	return c.cmd.ProcessState.ExitCode()
}

const coprocMACs = 50_000

func coprocMAC(i int) string { return fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16, i>>8&0xff, i&0xff) }
func coprocIP(i int) string  { return fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&0xff, i&0xff) }

// converse runs the same conversation with a server or a client: each
// answer must arrive whole while stdin stays open.
func converse(t *testing.T, c *coproc, who string) {
	n := c.lines()
	c.write("show routes")
	routes := c.await(n, 2, who+": show routes")
	if routes[0] != "10.1.0.0/16 via 192.168.1.1 dev eth0" || routes[1] != "10.2.0.0/16 via 192.168.1.2 dev eth1" {
		t.Fatalf("%s: show routes: %q", who, routes)
	}
	n += 2
	c.write("lookup " + coprocMAC(4242))
	if got := c.await(n, 1, who+": lookup")[0]; got != coprocMAC(4242)+" "+coprocIP(4242) {
		t.Fatalf("%s: lookup: %q", who, got)
	}
	n++
	c.write("show macs")
	macs := c.await(n, coprocMACs, who+": show macs")
	for i, l := range macs {
		if want := coprocMAC(i) + " " + coprocIP(i); l != want {
			t.Fatalf("%s: show macs line %d: %q, want %q", who, i+1, l, want)
		}
	}
	n += coprocMACs
	c.write("route 10.2.3.4")
	if got := c.await(n, 1, who+": route")[0]; got != "10.2.0.0/16 via 192.168.1.2 dev eth1" {
		t.Fatalf("%s: route: %q", who, got)
	}
	c.write("lookup 02:ff:ff:ff:ff:ff")
	c.awaitErr("lookup 02:ff:ff:ff:ff:ff: not found")
}

// TestCoprocess drives a server and then a client the way a program
// does: 50,000 MACs created through the server's stdin, then show routes,
// lookup, the whole show macs and route at each, every answer awaited in
// full before the next command is written, and an error awaited on
// stderr. Then each is told to go (SIGTERM, the server quitting) with
// stdin still open, and exits cleanly.
func TestCoprocess(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	// --keep-going, as a program that converses wants: a failed command
	// is answered on stderr and the conversation goes on (the exit status
	// then says that a line failed).
	srv := startCoproc(t, append([]string{"server", "--keep-going"}, in.flags()...)...)
	var lines []string
	lines = append(lines, "C,10.1.0.0/16,192.168.1.1,eth0", "C,10.2.0.0/16,192.168.1.2,eth1")
	for i := range coprocMACs {
		lines = append(lines, "C,"+coprocMAC(i)+","+coprocIP(i))
	}
	srv.write(lines...)
	converse(t, srv, "server")

	cl := startCoproc(t, "client", "--keep-going", "--socket", in.socket, "--client-name", "coproc")
	converse(t, cl, "client")

	// The server quits with both stdins still open; each has written
	// every answer already, and exits 1 because one of its lines failed.
	srv.cmd.Process.Signal(syscall.SIGTERM)
	if code := srv.exited(); code != 1 {
		t.Fatalf("server exit %d after SIGTERM, want 1 (a line failed): %s", code, srv.stderr())
	}
	if code := cl.exited(); code != 1 {
		t.Fatalf("client exit %d after the server quit, want 1 (a line failed): %s", code, cl.stderr())
	}
	if want := "server " + in.name + " got terminated"; !strings.Contains(cl.stderr(), want) {
		t.Fatalf("client stderr lacks %q: %s", want, cl.stderr())
	}
}

// TestSignalMidAnswer sends SIGTERM (then, to another server, SIGINT)
// while a 50,000-line answer is being written: the process finishes the
// answer it started and writes all of it. The line after it, if it did
// not run, is named as not run, nor any after it, and the exit status is
// 1; if it ran, the status is 0.
func TestSignalMidAnswer(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		in := newInstance(t)
		srv := startCoproc(t, append([]string{"server"}, in.flags()...)...)
		var lines []string
		for i := range coprocMACs {
			lines = append(lines, "C,"+coprocMAC(i)+","+coprocIP(i))
		}
		srv.write(lines...)
		srv.write("lookup " + coprocMAC(0))
		srv.await(0, 1, "lookup")
		n := 1
		srv.write("show macs", "show routes json")
		srv.await(n, 1, "the first line of show macs")
		srv.cmd.Process.Signal(sig)
		code := srv.exited()
		got := srv.lines() - n
		// show macs was answered in full; show routes json may or may not
		// have run before the signal, and is whole if it did.
		cut := fmt.Sprintf("<stdin>:%d: not applied, nor any line after it: interrupted by %s", coprocMACs+3, unix.SignalName(sig))
		switch {
		case got == coprocMACs+1 && code == 0:
		case got == coprocMACs && code == 1 && strings.Contains(srv.stderr(), cut):
		default:
			t.Fatalf("%v: exit %d, %d lines of output after the signal; want the %d of show macs and exit 1 saying %q, or one more line and exit 0: %s", sig, code, got, coprocMACs, cut, srv.stderr())
		}
	}
}

// pagePipe is a pipe of one page (4 KiB, the least Linux makes), both
// ends closed when the test ends.
func pagePipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	if _, err := unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, 4096); err != nil {
		t.Fatal(err)
	}
	return r, w
}

// startOwnStdout starts cmd with the stdout the test gave it (a pipe
// whose reader goes away) and its stderr kept, unless the test gave it
// one too; it is killed when the test ends. The channel is closed once
// it has exited.
func startOwnStdout(t *testing.T, cmd *exec.Cmd) (<-chan struct{}, *framed.Buffer) {
	t.Helper()
	errb := framed.NewBuffer(1 << 20)
	if cmd.Stderr == nil {
		cmd.Stderr = errb
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	return done, errb
}

// TestClosedPipes: `rtm client --watch | head -1` ends the client when
// head goes, without SIGPIPE killing it, and a server whose stdout is
// gone is not killed either.
func TestClosedPipes(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.server()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(rtmBin, "client", "--socket", in.socket, "--watch")
	cmd.Stdout = pw
	done, errb := startOwnStdout(t, cmd)
	pw.Close()
	// head -1: read one line (the snapshot's), then go away.
	pr.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(pr).ReadString('\n')
	if want := "# snapshot: 0 routes, 0 MACs (seq 0)\n"; err != nil || line != want {
		t.Fatalf("first watched line %q (%v), want %q; stderr %s", line, err, want, errb)
	}
	pr.Close()
	// No change comes: it notices the reader gone without writing.
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("`rtm client --watch | head -1` never ends: the watcher did not notice its reader was gone")
	}
	if ws := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() || ws.ExitStatus() != 0 {
		t.Fatalf("watcher ended with %v after its reader went away: %s", cmd.ProcessState, errb)
	}

	// rtm client -c dump | head -1: the reader has what it wanted; the
	// client ends quietly, with status 0.
	for i := range 3000 {
		srv.send(fmt.Sprintf("C,10.%d.%d.0/24,-,eth0", i>>8, i&255))
	}
	srv.must("sync")
	if code, stderr := headOne(t, "client", "--socket", in.socket, "-c", "dump"); code != 0 || stderr != "" {
		t.Fatalf("`rtm client -c dump | head -1`: exit %d, stderr %q; want 0 and nothing", code, stderr)
	}
	// With lines still to run when the reader goes, the client says they
	// were not, and fails: the change after the show is not made. (The
	// show's answer is more than the pipe holds.)
	for i := range 3000 {
		srv.send(fmt.Sprintf("C,10.%d.%d.0/24,192.168.%d.%d,eth0", 100+i>>8, i&255, i>>8, 1+i&127))
	}
	srv.must("sync")
	want := "-c:2: not run, nor any line after it: the reader of the output went away at line 1 (write output: write /dev/stdout: broken pipe)\n"
	if code, stderr := headOne(t, "client", "--socket", in.socket, "-c", "show routes", "-c", "C,172.16.0.0/12,-,eth0"); code != 1 || stderr != want {
		t.Fatalf("`rtm client -c 'show routes' -c C,... | head -1`: exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}
	if got := srv.must("show routes within 172.16.0.0/12"); got != "" {
		t.Fatalf("the change after the show whose reader went away was made: %q", got)
	}

	// A server whose stdout is closed is not killed by SIGPIPE: a command
	// whose output cannot be written fails, naming the cause, and the
	// server quits, as a filter does, saying why: not for a failed line.
	in2 := newInstance(t)
	pr2, pw2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	scmd := exec.Command(rtmBin, append([]string{"server"}, in2.flags()...)...)
	scmd.Stdout = pw2
	stdin, err := scmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	sdone, serrb := startOwnStdout(t, scmd)
	pw2.Close()
	pr2.Close()
	if !rtmtest.WaitFor(10*time.Second, func() bool { return runRTM(t, "", "client", "--socket", in2.socket).code == 0 }) {
		t.Fatalf("server socket %s never came up: %s", in2.socket, serrb)
	}
	io.WriteString(stdin, "C,10.1.1.0/24,192.168.1.1,eth0\nshow routes\n")
	select {
	case <-sdone:
	case <-time.After(10 * time.Second):
		t.Fatalf("a server whose stdout's reader went away still runs 10 s after its answer: %s", serrb)
	}
	if ws := scmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() || ws.ExitStatus() != 1 {
		t.Fatalf("server with a closed stdout: %v, want exit 1: %s", scmd.ProcessState, serrb)
	}
	e := serrb.String()
	if !strings.Contains(e, "<stdin>:2: write output: write /dev/stdout: broken pipe") || !strings.Contains(e, "\nrtm server: quitting, as the reader of its output went away\n") || strings.Contains(e, "a line of its input failed") {
		t.Fatalf("server with a closed stdout: stderr %q", e)
	}
}

// TestFramedPipeline: a program writes thousands of lines to a --framed
// client before it reads a byte. The client sends the changes in
// batches, several in flight, and still answers every line, in order:
// each failure with its own reason, blank lines and reads after the
// changes before them. A failed line does not stop the stream, and the
// exit status says that lines failed, as for plain input.
func TestFramedPipeline(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	in.server()
	const n = 20_000
	var script strings.Builder
	var want []string // "ok", or the error message wanted
	add := func(line, answer string) {
		script.WriteString(line + "\n")
		want = append(want, answer)
	}
	for i := range n {
		m := entry.MACFromUint64(0x020000000000 | uint64(i))
		add(fmt.Sprintf("C,%s,10.0.%d.%d", m, i>>8&255, i&255), "ok")
		switch {
		case i%5000 == 4999:
			add("show macs count", fmt.Sprintf("%d", i+1))
		case i%1000 == 999:
			add(fmt.Sprintf("C,%s,10.9.9.9", m), "create MAC "+m.String()+": already exists")
		case i%777 == 0:
			add("", "ok")
		}
	}
	add("D,10.99.0.0/16", "delete route 10.99.0.0/16: not found")
	add("show macs count", fmt.Sprint(n))
	cmd := exec.Command(rtmBin, "client", "--framed", "--socket", in.socket)
	r := runCmd(t, cmd, script.String(), time.Minute)
	if r.code != 1 {
		t.Errorf("exit %d, want 1: lines failed (stderr %q)", r.code, r.stderr)
	}
	got := framed.Answers(r.stdout)
	if len(got) != len(want) {
		t.Fatalf("%d answers to %d lines", len(got), len(want))
	}
	for i, a := range got {
		switch w := want[i]; {
		case w == "ok" && (a.Failed || len(a.Out) > 0):
			t.Fatalf("line %d: %+v, want ok", i+1, a)
		case strings.Contains(w, ": ") && (!a.Failed || a.Msg != w):
			t.Fatalf("line %d: %+v, want the error %q", i+1, a, w)
		case w != "ok" && !strings.Contains(w, ": ") && (a.Failed || strings.Join(a.Out, "\n") != w):
			t.Fatalf("line %d: %+v, want the output %q", i+1, a, w)
		}
	}
}

// TestStdinOwnDescription: rtm reads a pipe on stdin through a
// non-blocking file description of its own (repl/stdin.go), and the
// description it shares with the program that started it stays blocking:
// a shell or a program reading the same pipe after rtm must not get
// EAGAIN. Lines written while rtm waits in the poller are answered, and
// the end of the pipe still ends the input.
func TestStdinOwnDescription(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	blocking := func(when string) {
		t.Helper()
		fl, err := unix.FcntlInt(r.Fd(), unix.F_GETFL, 0)
		if err != nil {
			t.Fatal(err)
		}
		if fl&unix.O_NONBLOCK != 0 {
			t.Fatalf("%s: the pipe's shared description is non-blocking (flags %#o)", when, fl)
		}
	}
	blocking("before rtm")
	srv := startCoprocOn(t, r, w, append([]string{"server", "--exit-at-eof"}, in.flags()...)...)
	srv.write("C,"+coprocMAC(1)+","+coprocIP(1), "lookup "+coprocMAC(1))
	if got := srv.await(0, 1, "lookup")[0]; got != coprocMAC(1)+" "+coprocIP(1) {
		t.Fatalf("lookup: %q", got)
	}
	blocking("while rtm reads")

	// rtm's own description: another descriptor of the same pipe, open
	// non-blocking.
	pid := srv.cmd.Process.Pid
	pipe, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/0", pid))
	if err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	own := false
	for _, fd := range fds {
		if fd.Name() == "0" {
			continue
		}
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); l != pipe {
			continue
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, fd.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var flags int
		for _, l := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(l, "flags:"); ok {
				fmt.Sscanf(strings.TrimSpace(v), "%o", &flags)
			}
		}
		own = own || flags&unix.O_NONBLOCK != 0
	}
	if !own {
		t.Fatalf("rtm reads %s without a non-blocking description of its own", pipe)
	}

	// A line written after a pause, while rtm waits in the poller.
	time.Sleep(50 * time.Millisecond)
	srv.write("C,"+coprocMAC(2)+","+coprocIP(2), "lookup "+coprocMAC(2))
	if got := srv.await(1, 1, "lookup after a pause")[0]; got != coprocMAC(2)+" "+coprocIP(2) {
		t.Fatalf("lookup after a pause: %q", got)
	}
	w.Close()
	if code := srv.exited(); code != 0 {
		t.Fatalf("exit %d at the end of stdin, want 0: %s", code, srv.stderr())
	}
}

// TestServerQuitsUnderAPipe: a client whose stdin is a pipe held open,
// its first line applied and the second not yet written, when its
// server quits cleanly (SIGTERM). It ends with its server, as a watch
// does, exit status 1, naming the second line, and every line after it,
// not applied, with the server's reason, as it does when the server dies
// and does not come back. A client once exited 0 here: a program writing
// more lost them without a word. A --framed client the same.
func TestServerQuitsUnderAPipe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		sync bool // a sync waits (a watcher is stopped) as the server quits
		want string
	}{
		{"piped", nil, false, "<stdin>:2: not applied, nor any line after it: the server quit: server "},
		{"framed", []string{"--framed"}, false, "<framed>:2: not applied, nor any line after it: the server quit: server "},
		// It said "sync timed out after 20s", or nothing and exit 0.
		{"piped, in a sync", nil, true, "<stdin>:2: the server quit: server "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := newInstance(t)
			srv := in.streamServer()
			if tc.sync {
				in.client("stopped").signal(syscall.SIGSTOP)
			}
			c := startCoproc(t, append([]string{"client", "--socket", in.socket, "--client-name", "batch"}, tc.args...)...)
			c.write("C,10.1.0.0/16,192.0.2.1,eth0")
			if tc.sync {
				c.write("sync 20s", "C,10.2.0.0/16,192.0.2.1,eth0")
			}
			if !rtmtest.WaitFor(20*time.Second, func() bool { return strings.Contains(in.dump(), "10.1.0.0/16") }) {
				t.Fatalf("the first line was not applied: %s", c.stderr())
			}
			srv.signal(syscall.SIGTERM)
			if code := c.exited(); code != 1 {
				t.Fatalf("exit %d after the server quit under an open pipe, want 1: %s", code, c.stderr())
			}
			if e := c.stderr(); !strings.Contains(e, tc.want) || !strings.Contains(e, "got terminated") {
				t.Errorf("stderr %q, want %q and the server's reason", e, tc.want)
			}
		})
	}
}

// TestServerLogNobodyReads: a server whose stderr is a pipe nobody reads
// (a pager left paused, a terminal stopped with Ctrl-S, a stalled log
// shipper) goes on welcoming clients: its log waits for the reader and,
// once read, holds every client's lines.
func TestServerLogNobodyReads(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	// The smallest pipe Linux makes, one page: a few dozen lines fill it.
	logR, logW := pagePipe(t)
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdinW.Close()
	srv := exec.Command(rtmBin, append([]string{"server"}, in.flags()...)...)
	srv.Stdin, srv.Stderr = stdinR, logW
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	stdinR.Close()
	logW.Close()
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	if !rtmtest.WaitFor(10*time.Second, func() bool {
		return runRTM(t, "", "client", "--socket", in.socket, "-c", "show routes count").code == 0
	}) {
		t.Fatal("server never served")
	}
	const clients = 100 // each logs a line as it comes and one as it goes: 4 KiB in 30 or so
	for i := range clients {
		cmd := exec.Command(rtmBin, "client", "--socket", in.socket, "--client-name", fmt.Sprintf("c%d", i), "--wait", "5s", "-c", "show routes count")
		if r := runCmd(t, cmd, "", 20*time.Second); r.code != 0 || r.stdout != "0\n" {
			t.Fatalf("client %d with the server's log unread: exit %d, %q %q", i, r.code, r.stdout, r.stderr)
		}
	}
	// The reader comes back: the log has every line.
	var log strings.Builder
	rd := bufio.NewReader(logR)
	for i := 0; i < clients; {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("log: %v after\n%s", err, log.String())
		}
		log.WriteString(line)
		if strings.Contains(line, fmt.Sprintf("client c%d (pid", i)) && strings.Contains(line, "disconnected") {
			i++
		}
	}
	if strings.Contains(log.String(), "dropped") {
		t.Errorf("lines dropped from a log of %d clients:\n%s", clients, log.String())
	}
}

// headOne runs `rtm ARGS | head -1`: it reads the first line of rtm's
// stdout, closes the pipe, and returns rtm's exit status and stderr.
func headOne(t *testing.T, args ...string) (int, string) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(rtmBin, args...)
	cmd.Stdout = pw
	done, errb := startOwnStdout(t, cmd)
	pw.Close()
	pr.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := bufio.NewReader(pr).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	pr.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("`rtm %s | head -1` never ends", strings.Join(args, " "))
	}
	return cmd.ProcessState.ExitCode(), errb.String()
}

// TestUnreadOutputWhenServerQuits: a client whose server quits while the
// client's replay cannot be stopped. It ends on its own all the same,
// with exit status 1, and says where it stopped and why:
//   - stuck writing the answer of its first line to a stdout that is a
//     pipe nobody reads: that line, and that no line after it ran (the
//     change on the line after is indeed not in the store when the server
//     comes back);
//   - the same with stderr into that pipe too (2>&1): it ends;
//   - waiting for input on a socket (a read that cannot be cut short),
//     its answers all read: the line after which it waited, and no word
//     of unread answers.
func TestUnreadOutputWhenServerQuits(t *testing.T) {
	t.Parallel()
	// quitUnder starts a client of a server holding macs MACs, with
	// stdin and stdout as given, writes lines, waits until ready says the
	// client is stuck, has the server quit, and returns the client's exit
	// status once it ends.
	quitUnder := func(t *testing.T, macs int, stdout, stderr *os.File, errb *bytes.Buffer, stdin io.Writer, stdinFile *os.File, lines string, ready func() bool) (*instance, int) {
		in := newInstance(t)
		srv := in.server()
		var creates []string
		for i := range macs {
			creates = append(creates, fmt.Sprintf("C,02:00:00:00:%02x:%02x,10.0.%d.%d", i>>8, i&255, i>>8, i&255))
		}
		srv.must(creates...)
		cmd := exec.Command(rtmBin, "client", "--socket", in.socket)
		cmd.Stdin, cmd.Stdout = stdinFile, stdout
		if stderr != nil {
			cmd.Stderr = stderr
		} else {
			cmd.Stderr = errb
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		io.WriteString(stdin, lines)
		if !rtmtest.WaitFor(20*time.Second, ready) {
			t.Fatalf("the client never got stuck: %s", errb.String())
		}
		srv.signal(syscall.SIGTERM)
		srv.exited(20 * time.Second)
		waitCmd(t, cmd, 30*time.Second, errb.String)
		return in, cmd.ProcessState.ExitCode()
	}
	// unreadPipe is a pipe of one page that nobody reads, and a test
	// that it is full.
	unreadPipe := func(t *testing.T) (r, w *os.File, full func() bool) {
		r, w = pagePipe(t)
		return r, w, func() bool {
			n, err := unix.IoctlGetInt(int(r.Fd()), unix.TIOCINQ)
			return err == nil && n >= 4096
		}
	}
	stdinPipe := func(t *testing.T) (*os.File, *os.File) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close(); w.Close() })
		return r, w
	}
	const lines = "show macs\nC,02:00:00:00:ff:ff,10.9.9.9\nshow routes\n"

	t.Run("stdout", func(t *testing.T) {
		t.Parallel()
		_, outW, full := unreadPipe(t)
		inR, inW := stdinPipe(t)
		var errb bytes.Buffer
		in, code := quitUnder(t, 4000, outW, nil, &errb, inW, inR, lines, full)
		if code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		want := "<stdin>: not read to its end: stopped at line 1, its answers not all written (nothing reads them); no line after it was run: the server quit"
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr does not say where the client stopped (%q):\n%s", want, errb.String())
		}
		again := in.server()
		if got := strings.TrimSpace(again.must("show macs count")); got != "4000" {
			t.Errorf("the store holds %s MACs after the restart, want the 4000 before the client's lines", got)
		}
		if got := again.must("show macs 02:00:00:00:ff:ff"); got != "" {
			t.Errorf("the line after the one the client was on was applied: %q", got)
		}
	})
	t.Run("stdout and stderr", func(t *testing.T) {
		t.Parallel()
		_, outW, full := unreadPipe(t)
		inR, inW := stdinPipe(t)
		if _, code := quitUnder(t, 4000, outW, outW, new(bytes.Buffer), inW, inR, lines, full); code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
	})
	t.Run("stdin a socket", func(t *testing.T) {
		t.Parallel()
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		mine, theirs := os.NewFile(uintptr(fds[0]), "stdin"), os.NewFile(uintptr(fds[1]), "stdin")
		t.Cleanup(func() { mine.Close(); theirs.Close() })
		outR, outW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { outR.Close(); outW.Close() })
		var out syncBuffer
		go io.Copy(&out, outR)
		var errb bytes.Buffer
		answered := func() bool { return strings.Contains(out.String(), "10.9.9.9") }
		if _, code := quitUnder(t, 0, outW, nil, &errb, mine, theirs, "C,02:00:00:00:ff:ff,10.9.9.9\nshow macs\n", answered); code != 1 {
			t.Errorf("exit status %d, want 1", code)
		}
		msg := errb.String()
		if want := "<stdin>: not read to its end: stopped waiting for the line after line 2: the server quit"; !strings.Contains(msg, want) || strings.Contains(msg, "nothing reads") {
			t.Errorf("stderr (want %q, and no word of unread answers):\n%s", want, msg)
		}
	})
}

// syncBuffer is a bytes.Buffer that a copying goroutine writes while the
// test reads it.
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

// TestKeepGoingCountsAtSIGINT: a --keep-going client in conversation, a
// line of which failed, stopped by SIGINT as it waits for the next line:
// it says how many lines failed, as at the end of its input, and exits 1.
func TestKeepGoingCountsAtSIGINT(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	in.server()
	c := startCoproc(t, "client", "--socket", in.socket, "--keep-going")
	c.write("D,10.9.0.0/16", "show routes count")
	c.await(0, 1, "the count after the failed delete")
	c.awaitErr("<stdin>:1: delete route 10.9.0.0/16: not found")
	c.cmd.Process.Signal(syscall.SIGINT)
	if code := c.exited(); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if got := c.stderr(); !strings.Contains(got, "<stdin>: 1 of 2 lines failed") {
		t.Errorf("no count of the failed lines at SIGINT: %q", got)
	}
}

// TestEndlessLineStopsAtASignal: a source whose line never ends
// (/dev/zero) is read past, to no end, until a signal: which stops it
// there, naming the file and its line, instead of leaving the session to
// give up on a read it cannot cut short and name only its own input.
func TestEndlessLineStopsAtASignal(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	in.server()
	cmd := exec.Command(rtmBin, "client", "--socket", in.socket, "-c", "source /dev/zero")
	var errb syncBuffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Reading: its CPU time grows.
	if !rtmtest.WaitFor(rtmtest.Wait, func() bool { return cpuTicks(cmd.Process.Pid) > 5 }) {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the client never read its source: %s", errb.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	waitCmd(t, cmd, time.Minute, errb.String)
	if got := errb.String(); !strings.Contains(got, "/dev/zero:1: not applied, nor any line after it: interrupted by SIGTERM") {
		t.Errorf("a source with no line end, stopped by SIGTERM: %q", got)
	}
}

// cpuTicks is the CPU time process pid has used, in clock ticks.
func cpuTicks(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	_, rest, _ := strings.Cut(string(data), ") ") // the name may hold spaces
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return u + s
}

// TestServerOutputNobodyReads: a server whose stdout is a pipe nobody
// reads (a pager left paused, `rtm server | less`), stuck writing
// answers with more lines waiting on its stdin, goes on serving clients:
// a change from a client is applied and answered, and a client that
// connects then gets its snapshot. The replay held its changes back
// while more lines waited, and holding them while stuck on its output
// held every client's changes back too: stuck on a show's answer, or, at
// a --framed server, on the answers of the change lines themselves.
func TestServerOutputNobodyReads(t *testing.T) {
	t.Parallel()
	var routes []string
	for i := range 3000 { // show routes prints some 100 KiB of them
		routes = append(routes, fmt.Sprintf("C,10.%d.%d.0/24,192.168.1.1,eth0", i>>8, i&255))
	}
	for _, tc := range []struct {
		name  string
		flags []string
		lines string
	}{
		{"plain", nil, "show routes\nshow routes\n"},
		{"framed", []string{"--framed"}, macCreatesText(40000)}, // 4 bytes of answer a line: 160 KB
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := newInstance(t)
			first := in.server("--capacity", "50000")
			first.must(routes...)
			first.signal(syscall.SIGTERM)
			first.exited(20 * time.Second)
			// One page: full at 4 KiB, however the answers' writes fall
			// into it.
			outR, outW := pagePipe(t)
			stdinR, stdinW, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer stdinW.Close()
			srv := exec.Command(rtmBin, append(append([]string{"server"}, tc.flags...), in.flags()...)...)
			srv.Stdin, srv.Stdout = stdinR, outW
			var errb syncBuffer
			srv.Stderr = &errb
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			stdinR.Close()
			outW.Close()
			t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
			if !rtmtest.WaitFor(10*time.Second, func() bool { return strings.Contains(errb.String(), "rtm server "+in.name+": socket") }) {
				t.Fatalf("the server never said it serves: %s", errb.String())
			}
			go io.WriteString(stdinW, tc.lines)
			waiting := 0
			if !rtmtest.WaitFor(20*time.Second, func() bool {
				n, err := unix.IoctlGetInt(int(outR.Fd()), unix.TIOCINQ)
				waiting = n
				return err == nil && n >= 3<<10
			}) {
				t.Fatalf("the server's stdout never filled: %d bytes waiting; its stderr: %s", waiting, errb.String())
			}
			cmd := exec.Command(rtmBin, "client", "--socket", in.socket, "--client-name", "changer", "-c", "C,172.17.0.0/16,192.168.1.1,eth0")
			if r := runCmd(t, cmd, "", 20*time.Second); r.code != 0 {
				t.Fatalf("a change from a client, with the server stuck on its output: exit %d: %s", r.code, r.stderr)
			}
			cmd = exec.Command(rtmBin, "client", "--socket", in.socket, "--client-name", "reader", "-c", "show routes count")
			if r := runCmd(t, cmd, "", 20*time.Second); r.code != 0 || r.stdout != "3001\n" {
				t.Fatalf("a client connecting with the server stuck on its output: exit %d, %q: %s", r.code, r.stdout, r.stderr)
			}
		})
	}
}

// TestWatchOutputNobodyReads: a watching client whose output's reader
// does not read (rtm client --watch | less, paused) waits in its write;
// SIGTERM still ends it, at once, saying from which change its output
// may be short, with status 1, even when its stderr is that same pipe
// (2>&1 | less). It waited for good: its end waited for the receive
// loop, which waited in the write. What it wrote is whole lines, each a
// change before the one it names: a half line, the rest of which went
// with the process, was taken by a mirror's server for a line of its
// own (…,eth1 for …,eth12). And an output that fails otherwise (a full
// disk) ends the watch saying so, status 1: it ended with 0 in silence.
func TestWatchOutputNobodyReads(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.server()
	seqs := regexp.MustCompile(`(?m)^C,10\.\d+\.\d+\.0/24,192\.168\.1\.1,eth12  # seq (\d+)\n`)
	for n, both := range []bool{false, true} {
		var routes []string
		// More than a stopped client's socket holds (in the small packets
		// its writer sends it first): the rest comes in 64 KiB packets,
		// each printed as one run of lines far larger than the pipe.
		for i := range 20_000 {
			routes = append(routes, fmt.Sprintf("C,10.%d.%d.0/24,192.168.1.1,eth12", 100*n+i>>8, i&255))
		}
		in.waitClients(srv, 0) // the watcher before is gone
		outR, outW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer outR.Close()
		watch := exec.Command(rtmBin, "client", "--socket", in.socket, "--client-name", fmt.Sprintf("watch%d", n), "--watch")
		watch.Stdout = outW
		if both {
			watch.Stderr = outW
		}
		exited, errb := startOwnStdout(t, watch)
		outW.Close()
		in.waitClients(srv, 1)
		// Its snapshot taken, before it stops: the changes come after it,
		// a line each. (Stopped in its snapshot, a client is given a fresh
		// one when it reads again, its first, which a watch sums up.)
		srv.must("sync")
		watch.Process.Signal(syscall.SIGSTOP)
		waitStopped(t, watch.Process.Pid)
		if r := runRTM(t, strings.Join(routes, "\n")+"\n", "client", "--socket", in.socket); r.code != 0 {
			t.Fatalf("the changes: exit %d: %s", r.code, r.stderr)
		}
		watch.Process.Signal(syscall.SIGCONT)
		b := endStuckWatcher(t, fmt.Sprintf("the watcher (stderr to the same pipe: %v)", both), watch, exited, errb, outR)
		if both {
			continue // its message went to the pipe too, or was given up on
		}
		m := regexp.MustCompile(`^rtm client: --watch: ended while its output was not being read: the changes from seq (\d+) on may not have been written\n$`).FindStringSubmatch(errb.String())
		if m == nil {
			t.Fatalf("the watcher's stderr: %q", errb)
		}
		first, _ := strconv.ParseUint(m[1], 10, 64)
		lines := seqs.FindAllSubmatch(b, -1)
		if len(lines) == 0 || strings.Count(string(b), "\n") != len(lines)+1 { // the snapshot's comment, then changes
			t.Fatalf("the watcher wrote %d changes in %d lines: %q", len(lines), strings.Count(string(b), "\n"), b)
		}
		if last, _ := strconv.ParseUint(string(lines[len(lines)-1][1]), 10, 64); last >= first {
			t.Fatalf("the watcher wrote change %d, and says its output may lack the changes from %d on", last, first)
		}
	}
	// --full, stuck in its first snapshot (40,000 routes, some 2 MB of
	// lines): the signal came before the session's own handling of it,
	// and killed the watcher in silence (status 143).
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	snap := exec.Command(rtmBin, "client", "--socket", in.socket, "--client-name", "snapshot", "--watch", "--full")
	snap.Stdout = outW
	exited, errb := startOwnStdout(t, snap)
	outW.Close()
	endStuckWatcher(t, "the --full watcher, in its first snapshot,", snap, exited, errb, outR)
	if !regexp.MustCompile(`^rtm client: --watch: ended while its output was not being read: the changes from seq \d+ on may not have been written\n$`).MatchString(errb.String()) {
		t.Fatalf("the --full watcher, SIGTERM in its first snapshot: stderr %q", errb)
	}

	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full:", err)
	}
	defer full.Close()
	watch := exec.Command(rtmBin, "client", "--socket", in.socket, "--client-name", "full", "--watch")
	watch.Stdout = full
	exited, errb = startOwnStdout(t, watch)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("rtm client --watch >/dev/full: still running after 20 s; stderr %q", errb)
	}
	if code := watch.ProcessState.ExitCode(); code != 1 || !regexp.MustCompile(`^rtm client: --watch: write output: write /dev/stdout: no space left on device: the changes from seq \d+ on were not all written\n$`).MatchString(errb.String()) {
		t.Fatalf("rtm client --watch >/dev/full: exit %d, stderr %q", code, errb)
	}
}

// TestWatchOutputNobodyReadsServerQuits: a watcher stuck in a write to an
// output nobody reads ends when its server quits, once the write has
// been stuck for 5 s, saying so and from which change its output may be
// short, status 1. It stayed for as long as its reader did: the receive
// loop, in the write, never read the server's goodbye.
func TestWatchOutputNobodyReadsServerQuits(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	srv := in.server()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	watch := exec.Command(rtmBin, "client", "--socket", in.socket, "--client-name", "watch", "--watch")
	watch.Stdout = outW
	exited, errb := startOwnStdout(t, watch)
	outW.Close()
	in.waitClients(srv, 1)
	var routes []string
	for i := range 5_000 {
		routes = append(routes, fmt.Sprintf("C,10.%d.%d.0/24,192.168.1.1,eth0", i>>8, i&255))
	}
	srv.must(routes...)
	if !rtmtest.WaitFor(20*time.Second, func() bool { return writeWaits(watch.Process.Pid, outR) }) {
		t.Fatalf("the watcher never waited in a write; its stderr: %s", errb)
	}
	// (Its status is 1: waitClients's first expects failed.)
	srv.signal(syscall.SIGTERM)
	srv.exited(10 * time.Second)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatalf("the watcher, its server gone and its output unread: still running after 20 s; stderr %q", errb)
	}
	want := regexp.MustCompile(`^rtm client: --watch: its server went away while its output was not being read\nrtm client: --watch: ended while its output was not being read: the changes from seq \d+ on may not have been written\n$`)
	if code := watch.ProcessState.ExitCode(); code != 1 || !want.MatchString(errb.String()) {
		t.Fatalf("the watcher, its server gone and its output unread: exit %d, stderr %q", code, errb)
	}
}

// endStuckWatcher waits until the watcher cmd waits in a write to the
// pipe read by r, sends it SIGTERM, and checks that it ends within 10 s
// with status 1, having written whole lines only; it returns them.
func endStuckWatcher(t *testing.T, what string, cmd *exec.Cmd, exited <-chan struct{}, errb fmt.Stringer, r *os.File) []byte {
	t.Helper()
	if !rtmtest.WaitFor(20*time.Second, func() bool { return writeWaits(cmd.Process.Pid, r) }) {
		t.Fatalf("%s never waited in a write; its stderr: %s", what, errb)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s, SIGTERM with its output unread: still running after 10 s; stderr %q", what, errb)
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("%s, SIGTERM with its output unread: exit %d, stderr %q", what, code, errb)
	}
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(r)
	if err != nil || len(b) == 0 || b[len(b)-1] != '\n' {
		t.Fatalf("what %s wrote (%v) ends in the middle of a line: %q", what, err, b[max(0, len(b)-200):])
	}
	return b
}

// writeWaits reports whether process pid waits in a write to the pipe
// read by r: one of its threads waits in the kernel's pipe_write (newer
// kernels: anon_pipe_write), or, where /proc does not say (no kernel
// symbols), the pipe is full but for less than a run of whole lines
// (4 KiB) and stays so for 300 ms.
func writeWaits(pid int, r *os.File) bool {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/wchan", pid))
	symbols := false
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		if strings.HasSuffix(string(b), "pipe_write") {
			return true
		}
		symbols = symbols || len(b) > 0 && string(b) != "0"
	}
	if symbols {
		return false
	}
	size, err := unix.FcntlInt(r.Fd(), unix.F_GETPIPE_SZ, 0)
	before, err2 := unix.IoctlGetInt(int(r.Fd()), unix.TIOCINQ)
	time.Sleep(300 * time.Millisecond)
	after, _ := unix.IoctlGetInt(int(r.Fd()), unix.TIOCINQ)
	return err == nil && err2 == nil && before > size-4096 && before == after
}

// TestOutputErrorNamesItsLines: a stdout that fails (a full disk:
// /dev/full) is noticed when the answers are written, which may be lines
// after the one that made them: the error names the lines whose answers
// were lost and says that they ran. (It named no line at all.)
func TestOutputErrorNamesItsLines(t *testing.T) {
	t.Parallel()
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full:", err)
	}
	defer full.Close()
	// toFull runs rtm with stdin and stdout /dev/full; exit status, stderr.
	toFull := func(stdin string, args ...string) (int, string) {
		cmd := exec.Command(rtmBin, args...)
		var errb bytes.Buffer
		cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), full, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitCmd(t, cmd, 20*time.Second, errb.String)
		return cmd.ProcessState.ExitCode(), errb.String()
	}
	in := newInstance(t)
	code, stderr := toFull("show routes count\nC,10.0.0.0/8,192.168.1.1,eth0\nC,10.1.0.0/16,192.168.1.1,eth0\n", append([]string{"server", "--exit-at-eof"}, in.flags()...)...)
	want := "<stdin>:3: write output: write /dev/stdout: no space left on device: the answers of lines 1 to 3 were not all written (the lines ran)\n"
	if code != 1 || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}
	srv := in.server()
	if got := strings.TrimSpace(srv.must("show routes count")); got != "2" {
		t.Errorf("%s routes after the replay; want the 2 it says ran", got)
	}
	// A failing line between answers: the answers lost before it are
	// named too, with --keep-going and without.
	lookups := "show routes count\nlookup 02:bb:00:00:00:00\nshow routes count\n"
	lost := "<stdin>:2: write output: write /dev/stdout: no space left on device: the answers of lines 1 to 2 were not all written (the lines ran)\n"
	for _, keep := range []bool{false, true} {
		args := []string{"client", "--socket", in.socket}
		if keep {
			args = append(args, "--keep-going")
		}
		if code, stderr := toFull(lookups, args...); code != 1 || !strings.Contains(stderr, lost) || !strings.Contains(stderr, "<stdin>:2: lookup 02:bb:00:00:00:00: not found\n") {
			t.Errorf("a failed lookup between answers to /dev/full (--keep-going %v): exit %d, stderr %q; want 1, the lookup's error and %q", keep, code, stderr, lost)
		}
	}
	code, stderr = toFull("", "client", "--socket", in.socket, "-c", "show routes count")
	if want := "-c:1: write output: write /dev/stdout: no space left on device: its answer was not all written (the line ran)\n"; code != 1 || stderr != want {
		t.Fatalf("client: exit %d, stderr %q; want 1 and %q", code, stderr, want)
	}
}

// TestScriptOutputGoneKeepsStore: a server whose --script's answers lose
// their reader (rtm server --script setup.rtm | head -1) stops there,
// says so and exits 1, but the store its start created keeps the lines
// the script applied: an output that went away is no failed setup. (It
// was removed, 3,000 applied lines with it.)
func TestScriptOutputGoneKeepsStore(t *testing.T) {
	t.Parallel()
	in := newInstance(t)
	script := filepath.Join(t.TempDir(), "setup.rtm")
	if err := os.WriteFile(script, []byte(macCreatesText(3000)+"show macs\nC,10.9.0.0/16,192.168.1.1,eth0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stderr := headOne(t, append([]string{"server", "--exit-at-eof", "--script", script}, in.flags()...)...)
	if code != 1 || strings.Contains(stderr, "removed store") || !strings.Contains(stderr, "broken pipe") {
		t.Fatalf("exit %d, stderr %q; want 1, the broken pipe named, and the store kept", code, stderr)
	}
	srv := in.server()
	if got := strings.TrimSpace(srv.must("show macs count")); got != "3000" {
		t.Errorf("%s MACs in the store after the script's reader went away; want the 3000 it applied", got)
	}
	srv.signal(syscall.SIGTERM)
	srv.exited(20 * time.Second)
	// An answer longer than the replay writes at once, with lines after
	// it: the script says they were not run, and the store is kept all
	// the same (it was removed, the start taken for failed).
	in2 := newInstance(t)
	if err := os.WriteFile(script, []byte(macCreatesText(30000)+"show macs\nC,10.9.0.0/16,192.168.1.1,eth0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stderr = headOne(t, append([]string{"server", "--exit-at-eof", "--capacity", "40000", "--script", script}, in2.flags()...)...)
	if code != 1 || strings.Contains(stderr, "removed store") || !strings.Contains(stderr, "rtm server: quitting, as the reader of its output went away") {
		t.Fatalf("a longer answer: exit %d, stderr %q; want 1, the reader gone named, and the store kept", code, stderr)
	}
	if got := strings.TrimSpace(in2.server("--capacity", "40000").must("show macs count")); got != "30000" {
		t.Errorf("%s MACs in the store after the script's reader went away; want the 30000 it applied", got)
	}
}
