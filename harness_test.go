package main

// The harness of the multi-process tests: the built rtm binary as server
// and clients, talking over a real socket and a real shared segment, each
// process driven through framed.Proc.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"rtm/proto"
	"rtm/proto/framed"
	"rtm/repl/rtmtest"
)

var rtmBin string

// storeDir holds the stores of this test binary's instances: the private
// directory rtmtest.Main points RTM_STORE_DIR at, so an rtm a test starts
// by --name alone meets no other rtm of this uid either.
var storeDir string

// TestMain builds rtm once. The parallel tests here mostly wait on the
// processes they start (BGP timers, kills and restarts, sync timeouts),
// so four of them run at once, not one per core.
func TestMain(m *testing.M) {
	rtmtest.Main(m, rtmtest.Roles{"readers": readersRole, "readlock": readlockRole, "squat": squatRole}, func() (err error) {
		storeDir = rtmtest.StoreDir()
		if rtmBin, err = rtmtest.Build(); err != nil {
			return err
		}
		return rtmtest.Parallel(4)
	})
}

// shmDir is where stores go by default: /dev/shm, or the temporary
// directory ("") where there is none.
func shmDir() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return ""
}

// makeDir makes a new directory in parent ("": the temporary directory)
// with exactly mode, whatever the umask.
func makeDir(parent string, mode os.FileMode) (string, error) {
	dir, err := os.MkdirTemp(parent, "rtm-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, mode); err != nil {
		os.Remove(dir)
		return "", err
	}
	return dir, nil
}

// newDir is makeDir for one test: removed, with all it holds, when the
// test ends.
func newDir(t *testing.T, parent string, mode os.FileMode) string {
	t.Helper()
	dir, err := makeDir(parent, mode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// newStoreDir is a store directory of the test's own, readable by all
// as the default one is, so that clients of other uids can map a store
// in it that lets them.
func newStoreDir(t *testing.T) string { return newDir(t, shmDir(), 0o755) }

// sharedDir is a directory in parent where every uid may create files,
// sticky as /tmp is: none may remove or rename another's.
func sharedDir(t *testing.T, parent string) string {
	return newDir(t, parent, 0o777|os.ModeSticky)
}

// home is a runtime directory and a store directory of one test's own,
// and the environment that points rtm at them: an instance it starts by
// --name meets no other test's, and rtm ls and rm see its own only.
type home struct {
	t               *testing.T
	runtime, stores string
	env             []string
}

func newHome(t *testing.T) *home {
	runtime, stores := t.TempDir(), newStoreDir(t)
	return &home{t: t, runtime: runtime, stores: stores,
		env: append(os.Environ(), "XDG_RUNTIME_DIR="+runtime, proto.StoreDirEnv+"="+stores)}
}

// command is rtm with args, in h.
func (h *home) command(args ...string) *exec.Cmd {
	cmd := exec.Command(rtmBin, args...)
	cmd.Env = h.env
	return cmd
}

// rtm runs rtm with args in h to its end, stdin its input.
func (h *home) rtm(stdin string, args ...string) result {
	h.t.Helper()
	return runCmd(h.t, h.command(args...), stdin, time.Minute)
}

var instSeq atomic.Uint64

// instance is one private rtm instance: its socket and store are unique
// to the test and removed at its end. So tests share nothing, and those
// that mostly wait on their processes (kills, restarts, timeouts) call
// t.Parallel.
type instance struct {
	t      *testing.T
	name   string
	socket string
	store  string
}

func newInstance(t *testing.T) *instance {
	name := fmt.Sprintf("t%d-%d", os.Getpid(), instSeq.Add(1))
	in := &instance{t: t, name: name, socket: filepath.Join(t.TempDir(), "rtm.sock"), store: filepath.Join(storeDir, "rtm."+name)}
	t.Cleanup(func() { os.Remove(in.store) })
	return in
}

func (in *instance) flags() []string {
	return []string{"--name", in.name, "--socket", in.socket, "--store", in.store}
}

// server starts `rtm server --framed` and returns once the store is open,
// the socket listens and the start-up banner has been read.
func (in *instance) server(extra ...string) *proc {
	in.t.Helper()
	p := start(in.t, append(append([]string{"server", "--framed"}, in.flags()...), extra...)...)
	p.must("") // answered once the store is open and the socket listens
	in.waitBanner(p)
	return p
}

// waitBanner waits until the server's start-up banner (after any report
// of a recovery) has been read from its stderr. The server writes it
// before it serves, but stderr is read apart from stdout: a test that
// looks at it must not race the reader.
func (in *instance) waitBanner(p *proc) {
	in.t.Helper()
	banner := "rtm server " + in.name + ": socket "
	if !rtmtest.WaitFor(10*time.Second, func() bool { return strings.Contains(p.errb.String(), banner) }) {
		in.t.Fatalf("server serves but never wrote its banner: %s", p.errb)
	}
}

// streamServer starts a server that reads a plain stream of commands
// (not --framed): the test pours changes into it without reading answers.
// It returns once the server serves and has written its start-up banner
// (after any report of a recovery): the socket comes up before both.
func (in *instance) streamServer(extra ...string) *proc {
	in.t.Helper()
	p := start(in.t, append(append([]string{"server"}, in.flags()...), extra...)...)
	in.waitSocket(p)
	in.waitBanner(p)
	return p
}

// client starts `rtm client --framed` and returns once it has the snapshot.
func (in *instance) client(name string, extra ...string) *proc {
	in.t.Helper()
	p := start(in.t, append([]string{"client", "--framed", "--socket", in.socket, "--client-name", name}, extra...)...)
	p.must("") // answered once the snapshot is in
	return p
}

// waitSocket waits until a server started without --framed serves.
func (in *instance) waitSocket(p *proc) {
	in.t.Helper()
	up := rtmtest.WaitFor(10*time.Second, func() bool {
		return p.fp.Exited() || runRTM(in.t, "", "client", "--socket", in.socket).code == 0
	})
	if p.fp.Exited() {
		in.t.Fatalf("server exited: %s: %s", p.fp.Status(), p.errb)
	}
	if !up {
		in.t.Fatalf("server socket %s never came up: %s", in.socket, p.errb)
	}
}

// waitClients waits until the server lists n clients.
func (in *instance) waitClients(srv *proc, n int) {
	in.t.Helper()
	if !rtmtest.WaitFor(30*time.Second, func() bool { return srv.do(fmt.Sprintf("expect count clients %d", n)).err == "" }) {
		in.t.Fatalf("server never had %d clients: %s", n, srv.must("show clients"))
	}
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

// proc is a running rtm process. Started with --framed, it answers each
// line sent with the line's output and a terminator, so a test knows
// exactly when a command has run.
type proc struct {
	t      *testing.T
	fp     *framed.Proc
	cmd    *exec.Cmd
	done   <-chan struct{} // closed once the process has exited and its output is read
	out    output          // every stdout line so far, answers' included (the last MiB)
	errb   output          // stderr so far (the last MiB)
	framed bool            // started with --framed: every line gets an answer
}

// output is what a process has written so far, read when it is printed.
type output func() string

func (o output) String() string { return o() }

// frame is the answer to one line: its output, and the error if it failed.
type frame struct {
	out string
	err string
}

func start(t *testing.T, args ...string) *proc {
	t.Helper()
	return startCmd(t, exec.Command(rtmBin, args...))
}

// startCmd starts cmd (an rtm command) as a proc, killed when the test
// ends.
func startCmd(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	fp, err := framed.Start(strings.Join(cmd.Args[1:], " "), cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fp.Kill)
	return &proc{t: t, fp: fp, cmd: cmd, done: fp.Done(), out: fp.Stdout, errb: fp.Stderr,
		framed: slices.Contains(cmd.Args, "--framed")}
}

// do sends one line to a --framed process and returns its answer.
func (p *proc) do(line string) frame {
	p.t.Helper()
	out, err := p.fp.Do(context.Background(), line, time.Minute)
	var f frame
	if len(out) > 0 {
		f.out = strings.Join(out, "\n") + "\n"
	}
	var ae *framed.AnswerError
	switch {
	case errors.As(err, &ae):
		f.err = ae.Msg
	case err != nil:
		p.t.Fatalf("%v\nstderr: %s", err, p.errb)
	}
	return f
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

// send writes lines without waiting for their answers (a stream the
// process may still be working through when the test acts).
func (p *proc) send(lines ...string) {
	p.t.Helper()
	if err := p.fp.Send(lines...); err != nil {
		p.t.Fatalf("%v (stderr: %s)", err, p.errb)
	}
}

// stream writes lines to a process not started with --framed, in the
// background; the channel is closed when all are written or the pipe
// broke. Such a process answers nothing, so Send may take a whole block
// of lines as one.
func (p *proc) stream(lines []string) <-chan struct{} {
	p.t.Helper()
	if p.framed {
		p.t.Fatal("stream is for processes that answer nothing; use send")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for len(lines) > 0 {
			n := min(len(lines), 4096)
			if p.fp.Send(strings.Join(lines[:n], "\n")) != nil {
				return
			}
			lines = lines[n:]
		}
	}()
	return done
}

// exited waits up to timeout for the process to exit on its own (its
// stdin stays open) and returns the exit code, -1 after a signal.
func (p *proc) exited(timeout time.Duration) int {
	p.t.Helper()
	if err := p.fp.Wait(context.Background(), timeout); err != nil {
		p.t.Fatalf("%v\nstderr: %s", err, p.errb)
	}
	return p.fp.ExitCode()
}

// wait closes stdin and waits for the exit; it returns the exit code.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	p.fp.CloseInput()
	return p.exited(timeout)
}

func (p *proc) signal(sig syscall.Signal) {
	p.fp.Signal(sig)
	if sig == syscall.SIGSTOP {
		waitStopped(p.t, p.fp.Pid())
	}
}

// waitStopped waits until every thread of pid has stopped. A stop signal
// takes effect when a thread of the process takes it, and under load
// another thread, woken by a packet, may run first: a client "stopped"
// that way applied and acknowledged a change made after kill returned.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	stopped := func() bool {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return true // gone: nothing runs
		}
		for _, task := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
			if err != nil {
				continue
			}
			// The state follows the command name, in parentheses.
			if i := bytes.LastIndexByte(b, ')'); i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
				return false
			}
		}
		return true
	}
	if !rtmtest.WaitFor(10*time.Second, stopped) {
		t.Fatalf("pid %d has not stopped 10 s after SIGSTOP", pid)
	}
}

// awaitReconnects waits until a client has reconnected after every loss
// of the server it logged, and at least want times.
func awaitReconnects(t *testing.T, c *proc, want int) {
	t.Helper()
	all := func() string { return c.out.String() + c.errb.String() }
	if !rtmtest.WaitFor(15*time.Second, func() bool {
		s := all()
		return countLines(s, "reconnected to") >= want && countLines(s, "reconnected to") == countLines(s, "lost server")
	}) {
		t.Fatalf("client %v: %d losses, %d reconnects, want %d\n%s", c.cmd.Args, countLines(all(), "lost server"), countLines(all(), "reconnected to"), want, c.errb)
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
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitCmd(t, cmd, timeout, func() string { return out.String() + errb.String() })
	return result{cmd.ProcessState.ExitCode(), out.String(), errb.String()}
}

// waitCmd waits for a started cmd to end, killing it (and failing the
// test with what shows) if it takes longer than timeout.
func waitCmd(t *testing.T, cmd *exec.Cmd, timeout time.Duration, shows func() string) {
	t.Helper()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%v hung after %v:\n%s", cmd.Args, timeout, shows())
	}
}

// nobodyInstance is an instance whose socket is in a directory uid 65534
// can reach, and a copy of rtm that uid can run. It skips the test unless
// it runs as root, which is needed to run a process as another uid.
func nobodyInstance(t *testing.T) (*instance, string) {
	t.Helper()
	needRoot(t)
	bin := nobodyBinary(t)
	dir, err := os.MkdirTemp("", "rtm-uid-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	in := newInstance(t)
	in.socket = filepath.Join(dir, "rtm.sock")
	return in, bin
}

// nobodyBinary copies rtm where uid 65534 (and any other) can run it.
func nobodyBinary(t *testing.T) string { return nobodyCopy(t, rtmBin, "rtm") }

// nobodyCopy copies the program src where any uid can run it, as name.
func nobodyCopy(t *testing.T, src, name string) string {
	dir, err := os.MkdirTemp("", "rtm-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, name)
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// asNobody runs `rtm client` as uid 65534 with the given stdin.
func asNobody(t *testing.T, bin, stdin string, args ...string) result {
	t.Helper()
	return runCmd(t, commandAs(nobody, nil, bin, append([]string{"client"}, args...)...), stdin, 20*time.Second)
}

// nobody is uid 65534 with its own group only.
var nobody = &syscall.Credential{Uid: 65534, Gid: 65534}

// commandAs is a command that runs with cred, in a minimal environment
// and env (VAR=value).
// startRole starts cmd, a role of this test binary (rtmtest.Roles), which
// runs until its stdin ends: that is held open until the test ends. It
// returns the role's stdin, stdout and stderr.
func startRole(t *testing.T, cmd *exec.Cmd) (io.Writer, *bufio.Reader, *syncBuffer) {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	errb := new(syncBuffer)
	cmd.Stderr = errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	return stdin, bufio.NewReader(out), errb
}

func commandAs(cred *syscall.Credential, env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "HOME=/"}, env...)
	return cmd
}
