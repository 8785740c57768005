package repl

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"rtm/proto/framed"
)

// testUsage is `rtm test -h`. The directives are also explained, with
// examples, in scripts/seed.rtm.
const testUsage = `Usage: rtm test [flags] FILE|DIR...

Runs each scenario file in isolation: a fresh server on a private socket
and store, real rtm client processes as the scenario starts them, then the
scenario's lines in order. The first failing line fails the scenario. A
directory stands for the *.rtm files in it.

A scenario is the command language (type help at the rtm prompt) plus
these directives:

  client start NAME          start a client process; returns once it has its snapshot
  client stop NAME           close its stdin: it must exit with status 0
  client kill NAME [SIGNAL]  send SIGNAL (KILL, the default, TERM, INT, QUIT or
                             ABRT) and wait until it has exited. Stop and kill
                             return once the server no longer lists the client
  client pause NAME          SIGSTOP it; sync and expect leave it out until resumed
  client resume NAME         SIGCONT it
  server kill [SIGNAL]       as client kill. KILL leaves the clients running (they
                             reconnect to a restarted server); TERM and INT are a
                             clean quit, which ends every client
  server restart             start the server again on the same store and socket;
                             if it is running, quit it cleanly first (ending every
                             client)
  at NAME COMMAND            run a read-only COMMAND (expect, show, lookup, route,
                             sync) at client NAME only; "at server" at the server only
  sync [TIMEOUT]             wait until every running client has applied every change
                             so far; fail after TIMEOUT (default 10s)
  expect CHECK               check at the server, then at every running client; a
                             client answers from its own copy of the tables and reads
                             a MAC's IP from the shared store. "expect count clients"
                             and "expect error" of a change run at the server only
  source FILE                run FILE's lines here (path relative to this file)
  quit                       end the scenario here

Every other line goes to the server. Directive words are case-insensitive.
Client names are letters, digits, '-', '_' and '.'.

Output: one line per scenario ("ok" or "FAIL", and its time); a failure
shows the failing line as FILE:LINE, what was wanted and what was found,
and the last lines the processes logged. The last line is "N passed, N
failed"; the exit status is 1 when a scenario failed, 130 if interrupted.

Flags:
`

// Test is `rtm test`: it runs the scenario files in args and reports like
// a test runner. It returns the exit status.
func Test(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rtm test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "show every line as it runs, and its output")
	run := fs.String("run", "", "run only the scenarios whose path matches `regexp`")
	timeout := fs.Duration("timeout", DefaultLineTimeout, "how long a process may take to answer one line")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), testUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var re *regexp.Regexp
	if *run != "" {
		var err error
		if re, err = regexp.Compile(*run); err != nil {
			fmt.Fprintf(stderr, "rtm test: -run: %v\n", err)
			return 2
		}
	}
	files, err := scenarioFiles(fs.Args())
	if err != nil {
		fmt.Fprintln(stderr, "rtm test:", err)
		return 2
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "rtm test: no scenario files; want rtm test FILE|DIR... (rtm test -h)")
		return 2
	}

	// Ctrl-C ends the running scenario, which still cleans up. Children
	// are in their own process groups, so only the runner gets it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := ScenarioOptions{Timeout: *timeout, Context: ctx}
	if *verbose {
		opts.Verbose = stdout
	}
	passed, failed := 0, 0
	for _, f := range files {
		if re != nil && !re.MatchString(f) || ctx.Err() != nil {
			continue
		}
		if *verbose {
			fmt.Fprintf(stdout, "=== RUN  %s\n", f)
		}
		res := RunScenario(f, opts)
		secs := res.Duration.Seconds()
		if res.Err == nil {
			passed++
			fmt.Fprintf(stdout, "ok   %s (%.2fs)\n", f, secs)
			continue
		}
		failed++
		fmt.Fprintf(stdout, "FAIL %s (%.2fs)\n%s", f, secs, indent(res.Err.Error(), "    "))
		if ctx.Err() != nil {
			break
		}
	}
	if passed+failed == 0 {
		fmt.Fprintf(stderr, "rtm test: no scenario matches -run %q\n", *run)
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", passed, failed)
	switch {
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "rtm test: interrupted")
		return 130
	case failed > 0:
		return 1
	}
	return 0
}

// scenarioFiles expands directories to the *.rtm files in them.
func scenarioFiles(args []string) ([]string, error) {
	var files []string
	for _, a := range args {
		fi, err := os.Stat(a)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			files = append(files, a)
			continue
		}
		m, err := filepath.Glob(filepath.Join(a, "*.rtm"))
		if err != nil {
			return nil, err
		}
		files = append(files, m...)
	}
	return files, nil
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(prefix)
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// DefaultLineTimeout bounds how long a scenario waits for a process to
// answer one line (a sync waits its own timeout on top).
const DefaultLineTimeout = 10 * time.Second

// ScenarioOptions configure RunScenario.
type ScenarioOptions struct {
	// Binary is the rtm executable the server and clients run; empty
	// means the running one (os.Executable).
	Binary string
	// Timeout bounds each answer; 0 means DefaultLineTimeout.
	Timeout time.Duration
	// Verbose, if set, receives every line as it runs and its output.
	Verbose io.Writer
	// Context interrupts the scenario; it is cleaned up all the same.
	Context context.Context
}

// ScenarioResult is the outcome of one scenario.
type ScenarioResult struct {
	Path     string
	Duration time.Duration
	Lines    int   // lines run, sourced ones included
	Err      error // nil if the scenario passed, else a *ScenarioError
}

// ScenarioError is a failed scenario: the line, the process that failed
// it, why, and what the processes logged.
type ScenarioError struct {
	Loc   Location // the failing line; zero if the scenario failed before its first line
	Where string   // "server", "client NAME", or "" for the runner
	Text  string   // the line, comment removed
	Msg   string   // what went wrong, as the process or the runner said it
	Hint  string   // a likely cause, if the runner sees one
	Logs  []ProcessLog
	Err   error // the cause when it is not a process's answer (context.Canceled when interrupted)
}

// ProcessLog is the end of what one process wrote to stderr.
type ProcessLog struct {
	Name   string // "server (pid 123)", "client a (pid 124)"
	Stderr string
}

func (e *ScenarioError) Unwrap() error { return e.Err }

// Error is the report rtm test prints under FAIL: the line, then the
// expectation's want and got on lines of their own, then the logs.
func (e *ScenarioError) Error() string {
	var b strings.Builder
	switch {
	case e.Loc.Line > 0:
		fmt.Fprintf(&b, "%s: ", e.Loc)
	case e.Loc.File != "":
		fmt.Fprintf(&b, "%s: ", e.Loc.File)
	}
	if w, _ := firstWord([]byte(e.Text)); e.Where != "" && !isDirectiveWord(w) {
		fmt.Fprintf(&b, "at %s: ", e.Where)
	}
	b.WriteString(e.Text)
	b.WriteByte('\n')
	if want, got, ok := splitWantGot(e.Msg); ok {
		fmt.Fprintf(&b, "    want: %s\n    got:  %s\n", want, got)
	} else {
		fmt.Fprintf(&b, "    %s\n", e.Msg)
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, "    (%s)\n", e.Hint)
	}
	for _, l := range e.Logs {
		fmt.Fprintf(&b, "%s stderr:\n%s", l.Name, indent(l.Stderr, "    "))
	}
	return b.String()
}

// splitWantGot finds the two sides of a failed expectation, which says
// "expect failed: want X, got Y".
func splitWantGot(msg string) (want, got string, ok bool) {
	_, rest, ok := strings.Cut(msg, ErrExpect.Error()+": want ")
	if !ok {
		return "", "", false
	}
	i := strings.LastIndex(rest, ", got ")
	if i < 0 {
		return "", "", false
	}
	return rest[:i], rest[i+len(", got "):], true
}

// RunScenario runs the scenario file at path: a fresh server on a private
// socket and store, clients as the scenario starts them, the scenario's
// lines. Whatever happens (a failure, a panic, opts.Context canceled),
// every process it started is killed and its socket and store removed
// before it returns.
func RunScenario(path string, opts ScenarioOptions) ScenarioResult {
	start := time.Now()
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultLineTimeout
	}
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	s := &scenario{opts: opts, ctx: opts.Context, clients: map[string]*child{}, ended: map[string]string{}}
	defer s.cleanup()
	err := s.run(path)
	return ScenarioResult{Path: path, Duration: time.Since(start), Lines: s.lines, Err: err}
}

var scenarioSeq atomic.Uint64

var sweepOnce sync.Once

// sweepStale removes the sockets and stores of runners that died without
// cleaning up (SIGKILL): their names carry the runner's pid.
func sweepStale() {
	for _, pattern := range []string{"/dev/shm/rtm-test-*", filepath.Join(os.TempDir(), "rtm-test-*")} {
		paths, _ := filepath.Glob(pattern)
		for _, p := range paths {
			pid, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(p), "rtm-test-"), "-")
			n, err := strconv.Atoi(pid)
			if err == nil && n > 0 && syscall.Kill(n, 0) == syscall.ESRCH {
				os.RemoveAll(p)
			}
		}
	}
}

// scenario is one run: its private paths, its processes, and what the
// runner must remember between lines.
type scenario struct {
	opts   ScenarioOptions
	ctx    context.Context
	dir    string // holds the socket
	socket string
	store  string

	server      *child // nil while stopped
	serverEnded string // why it is stopped, for messages
	clients     map[string]*child
	order       []string          // client names in start order
	ended       map[string]string // name -> why a client is gone, for messages
	procs       []*child          // every process started, for cleanup and logs

	lines      int
	changes    int      // changes sent to the server
	lastChange Location // where the last one was
	sources    []string // files being run, innermost last, to refuse cycles
}

// bannerPrefix starts the line a server writes when it starts: the
// runner made the instance, so the line tells a failure report nothing.
const bannerPrefix = "rtm server default: socket "

// errEnd is `quit`: the scenario ends there and passes.
var errEnd = errors.New("end of scenario")

func (s *scenario) run(path string) error {
	if s.opts.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return &ScenarioError{Msg: fmt.Sprintf("find the rtm binary: %v", err), Err: err}
		}
		s.opts.Binary = exe
	}
	sweepOnce.Do(sweepStale)
	dir, err := os.MkdirTemp("", fmt.Sprintf("rtm-test-%d-", os.Getpid()))
	if err != nil {
		return &ScenarioError{Msg: err.Error(), Err: err}
	}
	s.dir, s.socket = dir, filepath.Join(dir, "rtm.sock")
	s.store = fmt.Sprintf("/dev/shm/rtm-test-%d-%d", os.Getpid(), scenarioSeq.Add(1))
	if err := s.startServer(true); err != nil {
		return s.failure(Location{}, "server start", err)
	}
	err = s.runFile(path)
	var se *ScenarioError
	switch {
	case errors.Is(err, errEnd):
		err = nil
	case err != nil && !errors.As(err, &se):
		err = s.failure(Location{File: path}, "", err)
	}
	if err == nil {
		err = s.checkAlive(path)
	}
	return err
}

// runFile runs the lines of a scenario file. A failing line ends it with
// a *ScenarioError; a file it cannot read is a plain error, which the
// caller locates.
func (s *scenario) runFile(path string) error {
	abs, err := filepath.Abs(path)
	if err == nil && slices.Contains(s.sources, abs) {
		err = fmt.Errorf("source %s: cycle: %s -> %s", path, strings.Join(s.sources, " -> "), abs)
	}
	var f *os.File
	if err == nil {
		f, err = os.Open(path)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	s.sources = append(s.sources, abs)
	defer func() { s.sources = s.sources[:len(s.sources)-1] }()

	br := bufio.NewReaderSize(f, 64<<10)
	loc := Location{File: path}
	for {
		line, rerr := br.ReadString('\n')
		if len(line) > 0 {
			loc.Line++
			text := string(trimSpace(stripComment([]byte(line))))
			if text != "" {
				if err := s.step(loc, text); err != nil {
					var se *ScenarioError
					if errors.As(err, &se) || errors.Is(err, errEnd) {
						return err
					}
					return s.failure(loc, text, err)
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return s.failure(loc, "", fmt.Errorf("read %s: %w", path, rerr))
		}
	}
}

// processError is a process's refusal of a line, or its failure to answer.
type processError struct {
	where string // "server", "client a"
	msg   string
	hint  string
	err   error // set when the process did not answer (exited, timed out, interrupted)
}

func (e *processError) Error() string { return e.where + ": " + e.msg }
func (e *processError) Unwrap() error { return e.err }

// failure builds the report of a failed line.
func (s *scenario) failure(loc Location, text string, err error) *ScenarioError {
	se := &ScenarioError{Loc: loc, Text: text, Msg: err.Error(), Err: err}
	var pe *processError
	if errors.As(err, &pe) {
		se.Where, se.Msg, se.Hint, se.Err = pe.where, pe.msg, pe.hint, pe.err
	}
	if errors.Is(err, context.Canceled) {
		se.Msg = "interrupted"
	}
	for _, c := range s.procs {
		if t := c.StderrTail(10, bannerPrefix); t != "" {
			se.Logs = append(se.Logs, ProcessLog{Name: fmt.Sprintf("%s (pid %d)", c.name, c.Pid()), Stderr: t})
		}
	}
	return se
}

// step runs one line (comment removed, trimmed, not empty).
func (s *scenario) step(loc Location, text string) error {
	s.lines++
	s.logf("%s: %s\n", loc, text)
	if word, _ := firstWord([]byte(text)); isDirectiveWord(word) {
		d, err := parseDirective(text)
		if err != nil {
			return err
		}
		return s.directive(loc, d)
	}
	cmd, perr := Parse([]byte(text))
	if perr != nil {
		// The server says what is wrong with it, as it would at the prompt.
		return s.exec(s.server, "server", text, 0)
	}
	switch cmd.Kind {
	case KindSource:
		path := cmd.Arg
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(loc.File), path)
		}
		return s.runFile(path)
	case KindQuit:
		return errEnd
	case KindSync:
		deadline := syncDeadline(cmd.Timeout)
		for _, c := range s.running() {
			if err := s.syncClient(c, deadline); err != nil {
				return err
			}
		}
		return nil
	case KindExpect:
		if err := s.exec(s.server, "server", text, 0); err != nil || serverOnly(&cmd) {
			return err
		}
		for _, c := range s.running() {
			if err := s.exec(c, c.name, text, 0); err != nil {
				var pe *processError
				if errors.As(err, &pe) && pe.err == nil && c.synced < s.changes {
					pe.hint = fmt.Sprintf("%s has not synced since the change at %s; a sync before the expect waits for it", c.name, s.lastChange)
				}
				return err
			}
		}
		return nil
	}
	if cmd.IsWrite() {
		s.changes++
		s.lastChange = loc
	}
	return s.exec(s.server, "server", text, 0)
}

// serverOnly: a client has no clients table, and refuses every change, so
// asking it would tell nothing.
func serverOnly(cmd *Command) bool {
	e := cmd.Expect
	return cmd.Table == TableClients && e.Check == CheckCount ||
		e.Check == CheckError && (e.Cmd == nil || e.Cmd.IsWrite())
}

// running returns the clients that are running and not paused, in the
// order they were started.
func (s *scenario) running() []*child {
	var out []*child
	for _, n := range s.order {
		if c := s.clients[n]; c != nil && !c.paused {
			out = append(out, c)
		}
	}
	return out
}

// exec sends one line to a process (nil: stopped) and waits for its
// answer; extra adds to the line timeout (a sync's own timeout).
func (s *scenario) exec(c *child, where, text string, extra time.Duration) error {
	if c == nil {
		return &processError{where: where, msg: "the server is not running: " + s.serverEnded}
	}
	out, err := c.do(s.ctx, text, s.opts.Timeout+extra)
	if s.opts.Verbose != nil {
		for _, l := range out {
			s.logf("        %s| %s\n", c.name, l)
		}
	}
	return err
}

func syncDeadline(timeout time.Duration) time.Time {
	if timeout <= 0 {
		timeout = DefaultSyncTimeout
	}
	return time.Now().Add(timeout)
}

// syncClient waits until c has applied every change the server has
// published. A client that has lost the server (killed and restarted)
// cannot ask it until it has reconnected, so a failed sync is retried
// until the deadline.
func (s *scenario) syncClient(c *child, deadline time.Time) error {
	for {
		left := time.Until(deadline).Round(time.Millisecond)
		if left < 10*time.Millisecond {
			left = 10 * time.Millisecond
		}
		err := s.exec(c, c.name, "sync "+left.String(), left)
		var pe *processError
		if err == nil || !errors.As(err, &pe) || pe.err != nil || time.Until(deadline) < 50*time.Millisecond {
			if err == nil {
				c.synced = s.changes
			}
			return err
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-s.ctx.Done():
			return &processError{where: c.name, msg: "interrupted", err: s.ctx.Err()}
		}
	}
}

// checkAlive fails a scenario whose processes died behind its back.
func (s *scenario) checkAlive(path string) error {
	procs := []*child{s.server}
	for _, n := range s.order {
		procs = append(procs, s.clients[n])
	}
	for _, c := range procs {
		if c != nil && c.exited() {
			return s.failure(Location{File: path}, "end of scenario", &processError{where: c.name, msg: c.name + " exited unexpectedly: " + c.status()})
		}
	}
	return nil
}

func (s *scenario) logf(format string, args ...any) {
	if s.opts.Verbose != nil {
		fmt.Fprintf(s.opts.Verbose, "    "+format, args...)
	}
}

// The directives.

type directiveOp uint8

const (
	opClientStart directiveOp = iota + 1
	opClientStop
	opClientKill
	opClientPause
	opClientResume
	opServerKill
	opServerRestart
	opAt
)

// directive is a parsed directive line.
type directive struct {
	op   directiveOp
	name string         // the client (opAt: "server" too)
	sig  syscall.Signal // the kills
	cmd  string         // opAt: the command
}

// isDirectiveWord says whether a line starting with w is a directive: the
// command language has no such word.
func isDirectiveWord(w string) bool {
	switch strings.ToLower(w) {
	case "client", "server", "at":
		return true
	}
	return false
}

// parseDirective parses a line whose first word is client, server or at.
func parseDirective(line string) (directive, error) {
	ws := strings.Fields(line)
	verb := strings.ToLower(ws[0])
	if verb == "at" {
		if len(ws) < 3 {
			return directive{}, errors.New("at: want at NAME COMMAND, as in at a expect route 10.1.1.0/24")
		}
		name := ws[1]
		if !strings.EqualFold(name, "server") {
			if err := checkClientName(name); err != nil {
				return directive{}, fmt.Errorf("at: %w", err)
			}
		} else {
			name = "server"
		}
		_, rest := firstWord([]byte(line))
		_, rest = firstWord(rest)
		return directive{op: opAt, name: name, cmd: string(trimSpace(rest))}, nil
	}
	if len(ws) < 2 {
		return directive{}, fmt.Errorf("%s: want %s", verb, directiveUsage[verb])
	}
	sub, args := strings.ToLower(ws[1]), ws[2:]
	var d directive
	switch verb + " " + sub {
	case "client start":
		d.op = opClientStart
	case "client stop":
		d.op = opClientStop
	case "client kill":
		d.op = opClientKill
	case "client pause":
		d.op = opClientPause
	case "client resume":
		d.op = opClientResume
	case "server kill":
		d.op = opServerKill
	case "server restart":
		d.op = opServerRestart
	default:
		return directive{}, fmt.Errorf("%s: unknown %q; want %s", verb, ws[1], directiveUsage[verb])
	}
	if verb == "client" {
		if len(args) == 0 {
			return directive{}, fmt.Errorf("client %s: want a client NAME; want %s", sub, directiveUsage[verb])
		}
		if err := checkClientName(args[0]); err != nil {
			return directive{}, fmt.Errorf("client %s: %w", sub, err)
		}
		d.name, args = args[0], args[1:]
	}
	if d.op == opClientKill || d.op == opServerKill {
		d.sig = syscall.SIGKILL
		if len(args) > 0 {
			sig, err := parseSignal(args[0])
			if err != nil {
				return directive{}, fmt.Errorf("%s kill: %w", verb, err)
			}
			d.sig, args = sig, args[1:]
		}
	}
	if len(args) > 0 {
		return directive{}, fmt.Errorf("%s %s: unexpected %q; want %s", verb, sub, strings.Join(args, " "), directiveUsage[verb])
	}
	return d, nil
}

var directiveUsage = map[string]string{
	"client": "client start|stop|pause|resume NAME, or client kill NAME [SIGNAL]",
	"server": "server kill [SIGNAL] or server restart",
}

// killSignals are the signals that end an rtm process: kill waits for the
// exit, so a signal rtm survives (HUP, USR1) would only time out.
var killSignals = map[string]syscall.Signal{
	"KILL": syscall.SIGKILL, "TERM": syscall.SIGTERM, "INT": syscall.SIGINT,
	"QUIT": syscall.SIGQUIT, "ABRT": syscall.SIGABRT,
}

func parseSignal(s string) (syscall.Signal, error) {
	if sig, ok := killSignals[strings.TrimPrefix(strings.ToUpper(s), "SIG")]; ok {
		return sig, nil
	}
	return 0, fmt.Errorf("signal %q: want KILL, TERM, INT, QUIT or ABRT (one that ends rtm)", s)
}

func checkClientName(n string) error {
	if strings.EqualFold(n, "server") {
		return errors.New(`"server" names the server; pick another client name`)
	}
	for _, c := range n {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("client name %q: want letters, digits, '-', '_' or '.'", n)
		}
	}
	return nil
}

func (s *scenario) directive(loc Location, d directive) error {
	switch d.op {
	case opServerKill:
		if s.server == nil {
			return &processError{where: "server", msg: "the server is not running: " + s.serverEnded}
		}
		if err := s.kill(s.server, d.sig); err != nil {
			return err
		}
		s.server, s.serverEnded = nil, fmt.Sprintf("killed with SIG%s at %s; server restart starts it again", sigName(d.sig), loc)
		if d.sig == syscall.SIGTERM || d.sig == syscall.SIGINT {
			return s.clientsEnd(loc)
		}
		return nil
	case opServerRestart:
		if s.server != nil {
			if err := s.stopServer(); err != nil {
				return err
			}
			if err := s.clientsEnd(loc); err != nil {
				return err
			}
		}
		return s.startServer(false)
	case opAt:
		return s.at(loc, d)
	case opClientStart:
		if c := s.clients[d.name]; c != nil {
			return fmt.Errorf("client start: %s is running already", c.name)
		}
		return s.startClient(d.name)
	}
	c := s.clients[d.name]
	if c == nil {
		return s.notRunning(d.name)
	}
	switch d.op {
	case opClientPause, opClientResume:
		pause := d.op == opClientPause
		if c.paused == pause {
			return fmt.Errorf("%s is %s already", c.name, map[bool]string{true: "paused", false: "running"}[pause])
		}
		sig := syscall.SIGCONT
		if pause {
			sig = syscall.SIGSTOP
		}
		if c.exited() {
			return &processError{where: c.name, msg: c.name + " exited unexpectedly: " + c.status()}
		}
		c.kill(sig)
		c.paused = pause
		return nil
	case opClientStop:
		s.forget(d.name, fmt.Sprintf("stopped at %s", loc))
		c.resume()
		c.CloseInput()
		if err := c.wait(s.ctx, s.opts.Timeout); err != nil {
			return err
		}
		if code := c.ExitCode(); code != 0 {
			return &processError{where: c.name, msg: c.name + " exited with " + c.status() + " when its stdin closed; want status 0"}
		}
		return s.awaitDropped(c)
	case opClientKill:
		s.forget(d.name, fmt.Sprintf("killed with SIG%s at %s", sigName(d.sig), loc))
		if err := s.kill(c, d.sig); err != nil {
			return err
		}
		return s.awaitDropped(c)
	}
	return fmt.Errorf("directive %d not runnable", d.op)
}

// awaitDropped waits until the server no longer lists c, which has
// exited, so that what follows (expect count clients) sees it gone.
func (s *scenario) awaitDropped(c *child) error {
	if s.server == nil {
		return nil
	}
	pid := strconv.Itoa(c.Pid())
	deadline := time.Now().Add(s.opts.Timeout)
	for {
		out, err := s.server.do(s.ctx, "show clients", s.opts.Timeout)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(out, func(l string) bool { return fieldAfter(l, "pid") == pid }) {
			return nil
		}
		if time.Now().After(deadline) {
			return &processError{where: "server", msg: fmt.Sprintf("the server still lists %s (pid %s) %v after it exited", c.name, pid, s.opts.Timeout)}
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fieldAfter returns the word after key in a line of words ("" if none).
func fieldAfter(line, key string) string {
	ws := strings.Fields(line)
	for i := 0; i+1 < len(ws); i++ {
		if ws[i] == key {
			return ws[i+1]
		}
	}
	return ""
}

func (s *scenario) notRunning(name string) error {
	why := s.ended[name]
	if why == "" {
		why = "never started; client start " + name + " starts it"
	}
	return &processError{where: "client " + name, msg: "client " + name + " is not running: " + why}
}

// forget takes a client out of the running set.
func (s *scenario) forget(name, why string) {
	delete(s.clients, name)
	s.order = slices.DeleteFunc(s.order, func(n string) bool { return n == name })
	s.ended[name] = why
}

func (s *scenario) at(loc Location, d directive) error {
	cmd, err := Parse([]byte(d.cmd))
	if err != nil {
		return err
	}
	switch {
	case cmd.Kind == KindSource || cmd.Kind == KindQuit || cmd.Kind == KindNone:
		return fmt.Errorf("at: want one command such as expect, show, lookup, route or sync, got %q", d.cmd)
	case d.name == "server":
		if cmd.IsWrite() {
			s.changes++
			s.lastChange = loc
		}
		return s.exec(s.server, "server", d.cmd, cmd.Timeout)
	case cmd.IsWrite():
		return fmt.Errorf("at %s: %s is a change; clients are read-only, so changes go to the server", d.name, d.cmd)
	}
	c := s.clients[d.name]
	switch {
	case c == nil:
		return s.notRunning(d.name)
	case c.paused:
		return &processError{where: c.name, msg: c.name + " is paused: it cannot answer until client resume " + d.name}
	case cmd.Kind == KindSync:
		return s.syncClient(c, syncDeadline(cmd.Timeout))
	}
	err = s.exec(c, c.name, d.cmd, 0)
	var pe *processError
	if errors.As(err, &pe) && pe.err == nil && cmd.Kind == KindExpect && c.synced < s.changes {
		pe.hint = fmt.Sprintf("%s has not synced since the change at %s; a sync before the expect waits for it", c.name, s.lastChange)
	}
	return err
}

func (s *scenario) startServer(fresh bool) error {
	args := []string{"server", "--framed", "--exit-at-eof", "--socket", s.socket, "--store", s.store}
	if fresh {
		args = append(args, "--fresh")
	}
	c, err := s.spawn("server", args)
	if err != nil {
		return err
	}
	// The server reads its first line once it listens.
	if _, err := c.do(s.ctx, "", s.opts.Timeout); err != nil {
		return err
	}
	s.server, s.serverEnded = c, ""
	return nil
}

// stopServer quits the server cleanly.
func (s *scenario) stopServer() error {
	c := s.server
	s.server, s.serverEnded = nil, "it did not restart"
	if _, err := c.do(s.ctx, "quit", s.opts.Timeout); err != nil {
		return err
	}
	if err := c.wait(s.ctx, s.opts.Timeout); err != nil {
		return err
	}
	if code := c.ExitCode(); code != 0 {
		return &processError{where: "server", msg: "the server quit with " + c.status() + "; want status 0"}
	}
	return nil
}

// clientsEnd waits for the clients to exit after a clean server quit
// (the server tells them to). One that cannot hear it (it was paused and
// the goodbye was dropped) is killed.
func (s *scenario) clientsEnd(loc Location) error {
	for _, n := range slices.Clone(s.order) {
		c := s.clients[n]
		s.forget(n, fmt.Sprintf("it ended when the server quit at %s; client start %s starts it again", loc, n))
		c.resume()
		if c.wait(s.ctx, s.opts.Timeout) != nil {
			if s.ctx.Err() != nil {
				return &processError{where: c.name, msg: "interrupted", err: s.ctx.Err()}
			}
			s.logf("%s did not exit when the server quit (a client paused then may miss the goodbye): killed\n", c.name)
			c.kill(syscall.SIGKILL)
		}
	}
	return nil
}

func (s *scenario) startClient(name string) error {
	if s.server == nil {
		return fmt.Errorf("client start %s: a client needs a server, and the server is not running: %s", name, s.serverEnded)
	}
	c, err := s.spawn("client "+name, []string{"client", "--framed", "--socket", s.socket, "--client-name", name})
	if err != nil {
		return err
	}
	// A client reads its first line once it has its snapshot.
	if _, err := c.do(s.ctx, "", s.opts.Timeout); err != nil {
		return err
	}
	c.synced = s.changes
	s.clients[name] = c
	s.order = append(s.order, name)
	delete(s.ended, name)
	return nil
}

// kill signals c and waits for it to exit.
func (s *scenario) kill(c *child, sig syscall.Signal) error {
	c.kill(sig)
	c.resume() // a stopped process acts on any signal but KILL once continued
	return c.wait(s.ctx, s.opts.Timeout)
}

// cleanup kills every process the scenario started and removes its
// socket and store.
func (s *scenario) cleanup() {
	for _, c := range s.procs {
		c.Kill()
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
	if s.store != "" {
		os.Remove(s.store)
		// A server killed while creating the store leaves its temporary file.
		tmps, _ := filepath.Glob(s.store + ".tmp-*")
		for _, t := range tmps {
			os.Remove(t)
		}
	}
}

func (s *scenario) spawn(name string, args []string) (*child, error) {
	cmd := exec.Command(s.opts.Binary, args...)
	// A process group of its own keeps a terminal's Ctrl-C for the
	// runner, which then cleans up; Pdeathsig ends the child if the
	// runner dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p, err := framed.Start(name, cmd)
	if err != nil {
		return nil, err
	}
	c := &child{Proc: p, name: name}
	s.procs = append(s.procs, c)
	return c, nil
}

// child is a process of the scenario: a server or a client, driven with
// the framed protocol.
type child struct {
	*framed.Proc
	name   string // "server", "client a"
	paused bool
	synced int // the scenario's change count when it last synced
}

// do sends one line and returns the process's answer, failures phrased
// for the report.
func (c *child) do(ctx context.Context, line string, timeout time.Duration) ([]string, error) {
	out, err := c.Do(ctx, line, timeout)
	var ae *framed.AnswerError
	switch {
	case err == nil:
		return out, nil
	case errors.As(err, &ae):
		return out, &processError{where: c.name, msg: ae.Msg}
	case errors.Is(err, framed.ErrExited):
		return out, &processError{where: c.name, msg: c.name + " exited instead of answering: " + c.Status(), err: err}
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return out, &processError{where: c.name, msg: fmt.Sprintf("%s did not answer within %v", c.name, timeout), err: err}
	}
	return out, &processError{where: c.name, msg: "interrupted", err: err}
}

// wait waits for c to exit.
func (c *child) wait(ctx context.Context, timeout time.Duration) error {
	if err := c.Wait(ctx, timeout); err != nil {
		if ctx.Err() != nil {
			return &processError{where: c.name, msg: "interrupted", err: err}
		}
		return &processError{where: c.name, msg: fmt.Sprintf("%s still running %v after it was told to exit", c.name, timeout), err: err}
	}
	return nil
}

func (c *child) exited() bool   { return c.Exited() }
func (c *child) status() string { return c.Status() }

// kill signals c's process group: the process and anything it started.
func (c *child) kill(sig syscall.Signal) { c.Signal(sig) }

func (c *child) resume() {
	if c.paused {
		c.Signal(syscall.SIGCONT)
		c.paused = false
	}
}

func sigName(sig syscall.Signal) string {
	for n, s := range killSignals {
		if s == sig {
			return n
		}
	}
	return sig.String()
}
