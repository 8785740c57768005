package scenario

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"time"

	"rtm/proto"
	"rtm/repl"
)

type directiveOp uint8

const (
	opClientStart directiveOp = iota + 1
	opClientStop
	opClientKill
	opClientSignal
	opClientPause
	opClientResume
	opServerKill
	opServerSignal
	opServerRestart
	opAt
)

// directive is a parsed directive line.
type directive struct {
	op    directiveOp
	name  string         // the client (opAt: "server" too)
	sig   syscall.Signal // the kills and signals
	fresh bool           // opServerRestart: --fresh
	cmd   string         // opAt: the command
}

// directiveWords start a directive line: the command language has no
// such word.
var directiveWords = []string{"client", "server", "at"}

// isDirectiveWord says whether a line starting with w is a directive.
func isDirectiveWord(w string) bool {
	return slices.Contains(directiveWords, strings.ToLower(w))
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
		_, rest := repl.FirstWord([]byte(line))
		_, rest = repl.FirstWord(rest)
		return directive{op: opAt, name: name, cmd: string(repl.CleanLine(rest))}, nil
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
	case "client signal":
		d.op = opClientSignal
	case "client pause":
		d.op = opClientPause
	case "client resume":
		d.op = opClientResume
	case "server kill":
		d.op = opServerKill
	case "server signal":
		d.op = opServerSignal
	case "server restart":
		d.op = opServerRestart
	default:
		return directive{}, fmt.Errorf("%s: unknown %q; %swant %s", verb, ws[1], repl.Meant(sub, directiveVerbs[verb]), directiveUsage[verb])
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
	switch d.op {
	case opClientKill, opServerKill:
		d.sig = syscall.SIGKILL
		if len(args) > 0 {
			sig, err := parseSignal(args[0], killSignals, "KILL, TERM, INT, QUIT or ABRT (one that ends rtm; "+verb+" signal sends one it survives)")
			if err != nil {
				return directive{}, fmt.Errorf("%s kill: %w", verb, err)
			}
			d.sig, args = sig, args[1:]
		}
	case opClientSignal, opServerSignal:
		if len(args) == 0 {
			return directive{}, fmt.Errorf("%s signal: want a SIGNAL, HUP or USR1; want %s", verb, directiveUsage[verb])
		}
		sig, err := parseSignal(args[0], liveSignals, "HUP or USR1 (one rtm survives; "+verb+" kill ends it)")
		if err != nil {
			return directive{}, fmt.Errorf("%s signal: %w", verb, err)
		}
		d.sig, args = sig, args[1:]
	case opServerRestart:
		if len(args) > 0 && strings.EqualFold(args[0], "--fresh") {
			d.fresh, args = true, args[1:]
		}
	}
	if len(args) > 0 {
		return directive{}, fmt.Errorf("%s %s: unexpected %q; want %s", verb, sub, strings.Join(args, " "), directiveUsage[verb])
	}
	return d, nil
}

// directiveVerbs are the words that may follow each directive's name.
var directiveVerbs = map[string][]string{
	"client": {"start", "stop", "pause", "resume", "kill", "signal"},
	"server": {"kill", "signal", "restart"},
}

var directiveUsage = map[string]string{
	"client": "client start|stop|pause|resume NAME, client kill NAME [SIGNAL] or client signal NAME HUP|USR1",
	"server": "server kill [SIGNAL], server signal HUP|USR1 or server restart [--fresh]",
	"at":     "at NAME COMMAND, as in at a expect route 10.1.1.0/24",
}

// killSignals are the signals that end an rtm process: kill waits for the
// exit, so a signal rtm survives would only time out.
var killSignals = map[string]syscall.Signal{
	"KILL": syscall.SIGKILL, "TERM": syscall.SIGTERM, "INT": syscall.SIGINT,
	"QUIT": syscall.SIGQUIT, "ABRT": syscall.SIGABRT,
}

// liveSignals are the signals an rtm process survives once it serves: a
// server syncs its store on HUP, a client takes a fresh snapshot on USR1;
// each ignores the other.
var liveSignals = map[string]syscall.Signal{"HUP": syscall.SIGHUP, "USR1": syscall.SIGUSR1}

func parseSignal(s string, known map[string]syscall.Signal, want string) (syscall.Signal, error) {
	if sig, ok := known[strings.TrimPrefix(strings.ToUpper(s), "SIG")]; ok {
		return sig, nil
	}
	return 0, fmt.Errorf("signal %q: want %s", s, want)
}

func sigName(sig syscall.Signal) string {
	for _, m := range []map[string]syscall.Signal{killSignals, liveSignals} {
		for n, s := range m {
			if s == sig {
				return n
			}
		}
	}
	return sig.String()
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
	// The client is started with it as --client-name.
	return proto.CheckClientName(n)
}

func (s *scenario) directive(loc repl.Location, d directive) error {
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
		// The clients keep running; they are back once a server lists them.
		for _, c := range s.clients {
			c.lost = true
		}
		return nil
	case opServerSignal:
		return s.signalServer(d.sig)
	case opServerRestart:
		if s.server != nil {
			if err := s.stopServer(); err != nil {
				return err
			}
			if err := s.clientsEnd(loc); err != nil {
				return err
			}
		}
		if err := s.startServer(d.fresh); err != nil {
			return err
		}
		return s.awaitBack(s.lostClients())
	case opAt:
		return s.at(loc, d)
	case opClientStart:
		if c := s.clients[d.name]; c != nil {
			return fmt.Errorf("client start: %s is running already", c.name)
		}
		return s.startClient(loc, d.name)
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
		if c.Exited() {
			return &processError{where: c.name, msg: c.name + " exited unexpectedly: " + c.Status()}
		}
		c.kill(sig)
		c.paused = pause
		if pause {
			// SIGSTOP takes effect asynchronously: until every thread
			// has stopped, the client may still read and acknowledge.
			return s.awaitStopped(c)
		}
		if c.lost {
			return s.awaitBack([]*child{c})
		}
		return nil
	case opClientStop:
		if !c.ready {
			return s.notReady(c, "it reads its input only once it has")
		}
		s.forget(d.name, fmt.Sprintf("stopped at %s", loc))
		c.resume()
		c.CloseInput()
		if err := c.wait(s.ctx, s.opts.Timeout); err != nil {
			return err
		}
		if code := c.ExitCode(); code != 0 {
			return &processError{where: c.name, msg: c.name + " exited with " + c.Status() + " when its stdin closed; want status 0"}
		}
		return s.awaitDropped(c)
	case opClientKill:
		s.forget(d.name, fmt.Sprintf("killed with SIG%s at %s", sigName(d.sig), loc))
		if err := s.kill(c, d.sig); err != nil {
			return err
		}
		return s.awaitDropped(c)
	case opClientSignal:
		return s.signalClient(c, d.sig)
	}
	return fmt.Errorf("directive %d not runnable", d.op)
}

// lostClients returns the running clients, not paused, that are not
// known to be connected to the server.
func (s *scenario) lostClients() []*child {
	return slices.DeleteFunc(s.running(), func(c *child) bool { return !c.lost })
}

func (s *scenario) notRunning(name string) error {
	why := s.ended[name]
	if why == "" {
		why = "never started; client start " + name + " starts it"
	}
	return &processError{where: "client " + name, msg: "client " + name + " is not running: " + why}
}

// notReady refuses what a client cannot do before it has reached a server.
func (s *scenario) notReady(c *child, why string) error {
	return &processError{where: c.name, msg: fmt.Sprintf("%s has not reached the server yet (it was started at %s while the server was down), and %s; server restart brings the server back",
		c.name, c.started, why)}
}

// forget takes a client out of the running set.
func (s *scenario) forget(name, why string) {
	delete(s.clients, name)
	s.order = slices.DeleteFunc(s.order, func(n string) bool { return n == name })
	s.ended[name] = why
}

// signalServer sends the server a signal it survives. After HUP it waits
// for the server to log its checkpoint; then the server must answer.
func (s *scenario) signalServer(sig syscall.Signal) error {
	c := s.server
	if c == nil {
		return &processError{where: "server", msg: "the server is not running: " + s.serverEnded}
	}
	n, _ := c.checkpoints.count()
	c.kill(sig)
	if sig == syscall.SIGHUP {
		deadline := time.Now().Add(s.opts.Timeout)
		for {
			m, last := c.checkpoints.count()
			if m > n {
				if !strings.HasSuffix(last, " synced") {
					return &processError{where: "server", msg: "SIGHUP: " + last}
				}
				break
			}
			if c.Exited() {
				return &processError{where: "server", msg: "the server exited on SIGHUP: " + c.Status()}
			}
			if time.Now().After(deadline) {
				return &processError{where: "server", msg: fmt.Sprintf("the server did not log its checkpoint (%q) within %v of SIGHUP", checkpointPrefix+"store ... synced", s.opts.Timeout)}
			}
			if err := s.sleep("server", 2*time.Millisecond); err != nil {
				return err
			}
		}
	}
	_, err := c.do(s.ctx, "", s.opts.Timeout)
	return err
}

// signalClient sends a client a signal it survives. After USR1 it waits
// until the client has asked for a fresh snapshot and, if the server
// runs, applied it; then the client has every change so far.
func (s *scenario) signalClient(c *child, sig syscall.Signal) error {
	switch {
	case c.paused:
		return &processError{where: c.name, msg: fmt.Sprintf("%s is paused: it would act on SIG%s only once resumed; client resume first", c.name, sigName(sig))}
	case !c.ready:
		return s.notReady(c, "until it has, SIG"+sigName(sig)+" would end it")
	}
	if sig != syscall.SIGUSR1 {
		c.kill(sig)
		_, err := c.do(s.ctx, "", s.opts.Timeout)
		return err
	}
	before, err := s.clientStats(c)
	if err != nil {
		return err
	}
	c.kill(sig)
	deadline := syncDeadline(0)
	for {
		now, err := s.clientStats(c)
		if err != nil {
			return err
		}
		asked := now["resyncs_requested"] > before["resyncs_requested"]
		if asked && (s.server == nil || now["snapshots"] > before["snapshots"]) {
			break
		}
		if time.Now().After(deadline) {
			what := "asked for a fresh snapshot"
			if asked {
				what = "applied a fresh snapshot"
			}
			return &processError{where: c.name, msg: fmt.Sprintf("%s has not %s %v after SIGUSR1", c.name, what, repl.DefaultSyncTimeout)}
		}
		if err := s.sleep(c.name, 5*time.Millisecond); err != nil {
			return err
		}
	}
	if s.server != nil {
		c.synced = s.changes // the snapshot holds every change so far
	}
	return nil
}

// clientStats returns a client's counters (show stats).
func (s *scenario) clientStats(c *child) (map[string]uint64, error) {
	out, err := c.do(s.ctx, "show stats local json", s.opts.Timeout)
	if err != nil {
		return nil, err
	}
	var m map[string]uint64
	if err := json.Unmarshal([]byte(strings.Join(out, "\n")), &m); err != nil {
		return nil, &processError{where: c.name, msg: fmt.Sprintf("show stats local json: %v", err)}
	}
	return m, nil
}

// sendsChange says whether a client running cmd sends the server a
// change: a change, or an expect error of one.
func sendsChange(cmd *repl.Command) bool {
	if cmd.Kind == repl.KindExpect && cmd.Expect.Check == repl.CheckError && cmd.Expect.Cmd != nil {
		cmd = cmd.Expect.Cmd
	}
	return cmd.IsWrite()
}

// atCommand parses the command of an at directive, one a single
// process runs.
func atCommand(d directive) (repl.Command, error) {
	cmd, err := repl.Parse([]byte(d.cmd))
	if err != nil {
		return cmd, err
	}
	if cmd.Kind == repl.KindSource || cmd.Kind == repl.KindQuit || cmd.Kind == repl.KindNone {
		return cmd, fmt.Errorf("at: want one command such as expect, show, lookup, route or sync, got %q", d.cmd)
	}
	return cmd, nil
}

// hintPaused adds a hint to a failed `at server sync`, the server's own
// sync, which waits for every client connected to it: a paused one,
// which sync leaves out, too.
func (s *scenario) hintPaused(err error) {
	var pe *processError
	if !errors.As(err, &pe) || pe.err != nil {
		return
	}
	// The paused clients the server names as behind, by name and pid: not
	// one not connected to it, which its sync does not wait for.
	var paused []string
	for _, n := range s.order {
		c := s.clients[n]
		if c != nil && c.paused && !c.lost && strings.Contains(pe.msg, fmt.Sprintf("%s (pid %d) at change ", n, c.Pid())) {
			paused = append(paused, n)
		}
	}
	if len(paused) > 0 {
		verb := "is"
		if len(paused) > 1 {
			verb = "are"
		}
		pe.hint = fmt.Sprintf("%s %s paused: the server's own sync waits for every client it has, where sync leaves a paused one out", strings.Join(paused, ", "), verb)
	}
}

func (s *scenario) at(loc repl.Location, d directive) error {
	cmd, err := atCommand(d)
	if err != nil {
		return err
	}
	switch {
	case cmd.IsWrite():
		// At a client, a change goes to the server, as rtm client -c sends it.
		s.changes++
		s.lastChange = loc
	}
	if d.name == "server" {
		err := s.exec(s.server, "server", d.cmd, cmd.Timeout)
		if cmd.Kind == repl.KindSync {
			s.hintPaused(err)
		}
		return err
	}
	c := s.clients[d.name]
	switch {
	case c == nil:
		return s.notRunning(d.name)
	case c.paused:
		return &processError{where: c.name, msg: c.name + " is paused: it cannot answer until client resume " + d.name}
	case !c.ready:
		return s.notReady(c, "it answers only once it has its snapshot")
	case cmd.Kind == repl.KindSync:
		if s.server == nil {
			return &processError{where: c.name, msg: "the server is not running, so " + c.name + " cannot catch up with it: " + s.serverEnded}
		}
		return s.syncClient(c, syncDeadline(cmd.Timeout))
	case sendsChange(&cmd) && s.server == nil:
		// The client would say it does not wait for a server (--wait 0),
		// a flag the scenario never gave, or wait for one.
		return &processError{where: c.name, msg: "not applied: the server is not running, so " + c.name + " cannot send it the change: " + s.serverEnded}
	}
	err = s.exec(c, c.name, d.cmd, 0)
	if cmd.Kind == repl.KindExpect {
		s.hintUnsynced(c, err)
	}
	return err
}
