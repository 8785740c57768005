package scenario

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"rtm/proto"
	"rtm/repl"
	"rtm/store"
	"rtm/store/entry"
)

// DefaultLineTimeout bounds how long a scenario waits for a process to
// answer one line (a sync waits its own timeout on top).
const DefaultLineTimeout = 10 * time.Second

// Options configure Run.
type Options struct {
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

// Result is the outcome of one scenario.
type Result struct {
	Path     string
	Duration time.Duration
	Lines    int   // lines run, sourced ones included
	Err      error // nil if the scenario passed, else an *Error
}

// Run runs the scenario file at path: a fresh server on a private socket
// and store, clients as the scenario starts them, the scenario's lines.
// Whatever happens (a failure, a panic, opts.Context canceled), every
// process it started is killed and its socket and store removed before
// it returns.
func Run(path string, opts Options) Result {
	start := time.Now()
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultLineTimeout
	}
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	s := &scenario{opts: opts, ctx: opts.Context, clients: map[string]*child{}, ended: map[string]string{}}
	s.sources.Stopped = func() bool { return s.ctx != nil && s.ctx.Err() != nil }
	defer s.cleanup()
	err := s.run(path)
	return Result{Path: path, Duration: time.Since(start), Lines: s.lines, Err: err}
}

var scenarioSeq atomic.Uint64

var sweepOnce sync.Once

// sweepStale removes the sockets and stores of runners that died without
// cleaning up (SIGKILL): their names carry the runner's pid.
func sweepStale() {
	for _, pattern := range []string{filepath.Join(proto.StoreDir(), "rtm-test-*"), filepath.Join(os.TempDir(), "rtm-test-*")} {
		paths, _ := filepath.Glob(pattern)
		for _, p := range paths {
			pid, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(p), "rtm-test-"), "-")
			n, err := strconv.Atoi(pid)
			if err == nil && n > 0 && !store.ProcessAlive(n) {
				os.RemoveAll(p)
			}
		}
	}
}

// scenario is one run: its private paths, its processes, and what the
// runner must remember between lines.
type scenario struct {
	opts   Options
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

	checked    map[string]bool // files whose directives were checked before they ran
	lines      int
	changes    int           // changes sent to the server
	lastChange repl.Location // where the last one was
	sources    repl.Sources  // files being run, innermost last, to refuse cycles
}

// errEnd is `quit`: the scenario ends there and passes.
var errEnd = errors.New("end of scenario")

func (s *scenario) run(path string) error {
	if s.opts.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return &Error{Msg: fmt.Sprintf("find the rtm binary: %v", err), Err: err}
		}
		s.opts.Binary = exe
	}
	sweepOnce.Do(sweepStale)
	dir, err := os.MkdirTemp("", fmt.Sprintf("rtm-test-%d-", os.Getpid()))
	if err != nil {
		return &Error{Msg: err.Error(), Err: err}
	}
	// A slip in a directive is reported before the processes before it
	// start, and their output buries it.
	if err := s.checkDirectives(path); err != nil {
		os.Remove(dir)
		return err
	}
	s.dir, s.socket = dir, filepath.Join(dir, "rtm.sock")
	if !proto.SocketPathFits(s.socket) {
		// The server would advise flags this runner sets itself.
		os.Remove(dir)
		msg := fmt.Sprintf("its socket %s is too long for a Unix socket's path: rtm test makes it in the temporary directory (%s)", s.socket, os.TempDir())
		return &Error{Text: "server start", Msg: msg, Hint: "set TMPDIR to a shorter one", Err: errors.New(msg)}
	}
	s.store = filepath.Join(proto.StoreDir(), fmt.Sprintf("rtm-test-%d-%d", os.Getpid(), scenarioSeq.Add(1)))
	if err := s.startServer(true); err != nil {
		return s.failure(repl.Location{}, "server start", err)
	}
	err = s.runFile(path)
	var se *Error
	switch {
	case errors.Is(err, errEnd):
		err = nil
	case err != nil && !errors.As(err, &se):
		err = s.failure(repl.Location{File: path}, "", err)
	}
	if err == nil {
		err = s.checkAlive(path)
	}
	return err
}

// runFile runs the lines of a scenario file. A failing line ends it with
// an *Error; a file it cannot read is a plain error, which the caller
// locates.
func (s *scenario) runFile(path string) error {
	if err := s.checkDirectives(path); err != nil {
		return err
	}
	f, err := s.sources.Open(path)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer f.Close()
	defer s.sources.Pop()

	return s.eachLine(f, path, func(loc repl.Location, text string) error {
		err := s.step(loc, text)
		var se *Error
		if err == nil || errors.As(err, &se) || errors.Is(err, errEnd) {
			return err
		}
		return s.failure(loc, text, err)
	})
}

// checkDirectives parses the directives of the file at path, and the
// words that look like one, before any of its lines runs: a slip there
// would otherwise be found only when the scenario reaches it. So are the
// commands the scenario runs itself (expect, sync, source, quit); the
// others are left to the server, which says what is wrong with one when
// it runs (a scenario may expect that). A file it cannot open, or one that
// is no regular file, is left to runFile.
func (s *scenario) checkDirectives(path string) error {
	if s.checked[path] {
		return nil
	}
	if s.checked == nil {
		s.checked = map[string]bool{}
	}
	s.checked[path] = true
	// A regular file only, opened without waiting (the open of a FIFO
	// would wait for its writer): a pipe read here would be read no more,
	// and what is not a file is runFile's to refuse.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	// A line too long, or a read that fails, is reported here as runFile
	// would, only sooner.
	return s.eachLine(f, path, func(loc repl.Location, text string) error {
		if err := checkDirectiveLine(text); err != nil {
			return s.failure(loc, text, err)
		}
		return nil
	})
}

// eachLine calls fn with each line of r that is not blank once its
// comment is cut, numbered from 1, until fn fails, the end, a read error
// or a line of maxLine bytes or more, each an *Error at its line.
func (s *scenario) eachLine(r io.Reader, path string, fn func(loc repl.Location, text string) error) error {
	br := bufio.NewReaderSize(r, maxLine)
	loc := repl.Location{File: path}
	for {
		line, rerr := br.ReadSlice('\n')
		if rerr == bufio.ErrBufferFull {
			// Nothing a scenario says comes near it; reading on would
			// hold all of a file with no newline (/dev/zero) in memory.
			return s.failure(repl.Location{File: path, Line: loc.Line + 1}, entry.QuoteInput(string(line[:min(len(line), 40)]))+"…",
				fmt.Errorf("a line of %d bytes or more: no directive or command comes near it (is this a scenario file?)", maxLine))
		}
		if len(line) > 0 {
			if loc.Line++; loc.Line == 1 {
				line = repl.TrimBOM(line)
			}
			if text := string(repl.CleanLine(line)); text != "" {
				if err := fn(loc, text); err != nil {
					return err
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

// checkDirectiveLine is step's refusal of a directive (at's command
// included), of a command the scenario runs itself (expect, sync,
// source, quit), or of a word nearer a directive than any command,
// without running anything.
func checkDirectiveLine(text string) error {
	if text == "" {
		return nil
	}
	word, _ := repl.FirstWord([]byte(text))
	if isDirectiveWord(word) {
		d, err := parseDirective(text)
		if err == nil && d.op == opAt {
			_, err = atCommand(d)
		}
		return err
	}
	if slices.Contains(scenarioCommands, strings.ToLower(word)) {
		_, err := repl.Parse([]byte(text))
		return err
	}
	return nearDirective(word, text)
}

// scenarioCommands are the commands step runs itself, at every process
// or none, rather than send to the server as they are.
var scenarioCommands = []string{"expect", "sync", "source", "quit"}

// nearDirective refuses a line that the parser rejects and whose first
// word is a slip of a directive's name: sent to the server, it would be
// an unknown command, which knows no directives.
func nearDirective(word, text string) error {
	if len(word) <= 2 {
		return nil // any short word is two edits from at
	}
	if _, perr := repl.Parse([]byte(text)); perr == nil {
		return nil
	}
	switch near := repl.Closest(word, directiveWords); {
	case isDirectiveWord(near):
		return fmt.Errorf("unknown directive or command %q: did you mean %s? (%s)", word, near, directiveUsage[near])
	case slices.Contains(scenarioCommands, near):
		// expect, sync, source and quit are step's own: a slip of one
		// would go to the server and fail there, mid-scenario.
		return fmt.Errorf("unknown directive or command %q: did you mean %s?", word, near)
	}
	return nil
}

// maxLine bounds a scenario's lines.
const maxLine = 64 << 10

// step runs one line (comment removed, trimmed, not empty).
func (s *scenario) step(loc repl.Location, text string) error {
	s.lines++
	s.logf("%s: %s\n", loc, text)
	if word, _ := repl.FirstWord([]byte(text)); isDirectiveWord(word) {
		d, err := parseDirective(text)
		if err != nil {
			return err
		}
		return s.directive(loc, d)
	}
	cmd, perr := repl.Parse([]byte(text))
	if perr != nil {
		// Only a word nearer a directive than any command is refused
		// here: the server says what is wrong with any other line, and
		// suggests the command itself, as it would at the prompt.
		word, _ := repl.FirstWord([]byte(text))
		if err := nearDirective(word, text); err != nil {
			return err
		}
		return s.exec(s.server, "server", text, 0)
	}
	switch cmd.Kind {
	case repl.KindSource:
		path := cmd.Arg
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(loc.File), path)
		}
		return s.source(path)
	case repl.KindQuit:
		return errEnd
	case repl.KindSync:
		return s.syncAll(syncDeadline(cmd.Timeout))
	case repl.KindExpect:
		if err := s.exec(s.server, "server", text, 0); err != nil || serverOnly(&cmd) {
			return err
		}
		for _, c := range s.running() {
			if err := s.exec(c, c.name, text, 0); err != nil {
				s.hintUnsynced(c, err)
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

// serverOnly: a client asks the server for its clients, and sends it its
// changes, so asking the clients too would tell nothing more.
func serverOnly(cmd *repl.Command) bool {
	e := cmd.Expect
	return cmd.Table == repl.TableClients && e.Check == repl.CheckCount ||
		e.Check == repl.CheckError && (e.Cmd == nil || e.Cmd.IsWrite())
}

// hintUnsynced adds a hint to a client's failed expectation when the
// client has not synced since the last change.
func (s *scenario) hintUnsynced(c *child, err error) {
	var pe *processError
	if errors.As(err, &pe) && pe.err == nil && c.synced < s.changes {
		pe.hint = fmt.Sprintf("%s has not synced since the change at %s; a sync before the expect waits for it", c.name, s.lastChange)
	}
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
		timeout = repl.DefaultSyncTimeout
	}
	return time.Now().Add(timeout)
}

// syncAll is `sync`: every running client catches up with the server.
func (s *scenario) syncAll(deadline time.Time) error {
	cs := s.running()
	if len(cs) > 0 && s.server == nil {
		return &processError{where: "server", msg: "the server is not running, so no client can catch up with it: " + s.serverEnded}
	}
	for _, c := range cs {
		if err := s.syncClient(c, deadline); err != nil {
			return err
		}
	}
	return nil
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
		err := s.exec(c, c.name, "sync local "+left.String(), left)
		var pe *processError
		if err == nil || !errors.As(err, &pe) || pe.err != nil || time.Until(deadline) < 50*time.Millisecond {
			if err == nil {
				c.synced = s.changes
			}
			return err
		}
		if err := s.sleep(c.name, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// awaitBack waits until each client of cs, which lost the server or never
// reached it, is back: the running server lists it with its snapshot
// sent, and a sync at the client then finds the snapshot applied. A
// client reconnects with a backoff of up to 2s, so this takes up to that.
func (s *scenario) awaitBack(cs []*child) error {
	if len(cs) == 0 || s.server == nil {
		return nil
	}
	deadline := syncDeadline(0)
	for {
		listed, err := s.listed()
		if err != nil {
			return err
		}
		var missing []string
		for _, c := range cs {
			if c.Exited() {
				return &processError{where: c.name, msg: c.name + " exited unexpectedly: " + c.Status()}
			}
			if listed[c.Pid()] != "live" {
				missing = append(missing, c.name)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return &processError{where: "server", msg: fmt.Sprintf("%s not back %v after the server started: the server does not list it with its snapshot sent",
				strings.Join(missing, ", "), repl.DefaultSyncTimeout)}
		}
		if err := s.sleep("server", 10*time.Millisecond); err != nil {
			return err
		}
	}
	for _, c := range cs {
		if err := s.syncClient(c, deadline); err != nil {
			return err
		}
		c.lost, c.ready = false, true
	}
	return nil
}

// listed returns the clients the server lists, as pid -> state ("live"
// once its snapshot is sent).
func (s *scenario) listed() (map[int]string, error) {
	out, err := s.server.do(s.ctx, "show clients json", s.opts.Timeout)
	if err != nil {
		return nil, err
	}
	var cs []struct {
		PID   int    `json:"pid"`
		State string `json:"state"`
	}
	if err := json.Unmarshal([]byte(strings.Join(out, "\n")), &cs); err != nil {
		return nil, &processError{where: "server", msg: fmt.Sprintf("show clients json: %v", err)}
	}
	m := make(map[int]string, len(cs))
	for _, c := range cs {
		m[c.PID] = c.State
	}
	return m, nil
}

// awaitDropped waits until the server no longer lists c, which has
// exited, so that what follows (expect count clients) sees it gone.
func (s *scenario) awaitDropped(c *child) error {
	if s.server == nil {
		return nil
	}
	deadline := time.Now().Add(s.opts.Timeout)
	for {
		listed, err := s.listed()
		if err != nil {
			return err
		}
		if _, ok := listed[c.Pid()]; !ok {
			return nil
		}
		if time.Now().After(deadline) {
			return &processError{where: "server", msg: fmt.Sprintf("the server still lists %s (pid %d) %v after it exited", c.name, c.Pid(), s.opts.Timeout)}
		}
		if err := s.sleep("server", 5*time.Millisecond); err != nil {
			return err
		}
	}
}

// sleep pauses the runner, unless the scenario is interrupted.
func (s *scenario) sleep(where string, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-s.ctx.Done():
		return &processError{where: where, msg: "interrupted", err: s.ctx.Err()}
	}
}

// checkAlive fails a scenario whose processes died behind its back.
func (s *scenario) checkAlive(path string) error {
	procs := []*child{s.server}
	for _, n := range s.order {
		procs = append(procs, s.clients[n])
	}
	for _, c := range procs {
		if c != nil && c.Exited() {
			return s.failure(repl.Location{File: path}, "end of scenario", &processError{where: c.name, msg: c.name + " exited unexpectedly: " + c.Status()})
		}
	}
	return nil
}

func (s *scenario) logf(format string, args ...any) {
	if s.opts.Verbose != nil {
		fmt.Fprintf(s.opts.Verbose, "    "+format, args...)
	}
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
		// With a killed server's lock file and temporary files.
		store.RemoveFiles(s.store)
	}
}
