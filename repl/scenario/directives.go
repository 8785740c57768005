package scenario

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"

	"rtm/repl"
)

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
	op    directiveOp
	name  string         // the client (opAt: "server" too)
	sig   syscall.Signal // the kills
	fresh bool           // opServerRestart: --fresh
	cmd   string         // opAt: the command
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
	switch d.op {
	case opClientKill, opServerKill:
		d.sig = syscall.SIGKILL
		if len(args) > 0 {
			sig, err := parseSignal(args[0])
			if err != nil {
				return directive{}, fmt.Errorf("%s kill: %w", verb, err)
			}
			d.sig, args = sig, args[1:]
		}
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

var directiveUsage = map[string]string{
	"client": "client start|stop|pause|resume NAME, or client kill NAME [SIGNAL]",
	"server": "server kill [SIGNAL] or server restart [--fresh]",
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

func sigName(sig syscall.Signal) string {
	for n, s := range killSignals {
		if s == sig {
			return n
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
	return nil
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

func (s *scenario) at(loc repl.Location, d directive) error {
	cmd, err := repl.Parse([]byte(d.cmd))
	if err != nil {
		return err
	}
	switch {
	case cmd.Kind == repl.KindSource || cmd.Kind == repl.KindQuit || cmd.Kind == repl.KindNone:
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
	case !c.ready:
		return s.notReady(c, "it answers only once it has its snapshot")
	case cmd.Kind == repl.KindSync:
		if s.server == nil {
			return &processError{where: c.name, msg: "the server is not running, so " + c.name + " cannot catch up with it: " + s.serverEnded}
		}
		return s.syncClient(c, syncDeadline(cmd.Timeout))
	}
	err = s.exec(c, c.name, d.cmd, 0)
	if cmd.Kind == repl.KindExpect {
		s.hintUnsynced(c, err)
	}
	return err
}
