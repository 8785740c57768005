package repl

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"rtm/store/entry"
	"strconv"
	"strings"
	"time"
)

// The word commands. They are rare next to C/U/D lines and may allocate.

// words splits a command line at white space; a double-quoted word (a file
// name with spaces) is unquoted.
func words(line []byte) ([]string, error) {
	var out []string
	for {
		line = trimSpace(line)
		if len(line) == 0 {
			return out, nil
		}
		if line[0] == '"' {
			end := quotedEnd(line)
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote in %s", entry.QuoteInput(line))
			}
			w, err := strconv.Unquote(string(line[:end]))
			if err != nil {
				return nil, fmt.Errorf("bad quoted word %s: %w", line[:end], err)
			}
			out = append(out, w)
			line = line[end:]
			continue
		}
		end := bytes.IndexAny(line, " \t")
		if end < 0 {
			end = len(line)
		}
		out = append(out, string(line[:end]))
		line = line[end:]
	}
}

// quotedEnd returns the index just past the closing quote of b[0]'s quote.
func quotedEnd(b []byte) int {
	for i := 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// commandWords lists the command words, for completion and help.
var commandWords = []string{"show", "lookup", "route", "flush", "dump", "source", "sync", "expect", "help", "quit"}

func (p *parser) parseWords(line []byte) (Command, error) {
	// expect error takes the rest of the line verbatim: it is a command.
	if w, rest := firstWord(line); strings.EqualFold(w, "expect") {
		if w2, rest2 := firstWord(rest); strings.EqualFold(w2, "error") {
			return p.parseExpectError(rest2)
		}
	}
	ws, err := words(line)
	if err != nil {
		return Command{}, err
	}
	name, args := strings.ToLower(ws[0]), ws[1:]
	switch name {
	case "show":
		return parseShow(args)
	case "lookup":
		return parseLookup(args)
	case "route":
		return parseRouteQuery(args)
	case "flush":
		return parseFlush(args)
	case "source", ".":
		if len(args) != 1 {
			return Command{}, errors.New("source: want exactly one FILE (quote a name with spaces)")
		}
		return Command{Kind: KindSource, Arg: args[0]}, nil
	case "sync":
		return parseSync(args)
	case "expect":
		return p.parseExpect(args)
	case "help", "?":
		return parseHelp(args)
	case "quit", "exit", "dump":
		if len(args) != 0 {
			return Command{}, fmt.Errorf("%s: takes no arguments, got %s", name, entry.QuoteInput(strings.Join(args, " ")))
		}
		if name == "dump" {
			return Command{Kind: KindDump}, nil
		}
		return Command{Kind: KindQuit}, nil
	}
	return Command{}, fmt.Errorf("unknown command %s: want C,U,D,R changes or one of %s (type help)", entry.QuoteInput(ws[0]), strings.Join(commandWords, ", "))
}

func firstWord(b []byte) (string, []byte) {
	b = trimSpace(b)
	end := bytes.IndexAny(b, " \t")
	if end < 0 {
		return string(b), nil
	}
	return string(b[:end]), b[end:]
}

// isJSONFlag accepts the three spellings of the JSON switch: `show routes
// json` reads best, `-json` is what `ip -json` users type.
func isJSONFlag(w string) bool { return w == "json" || w == "-json" || w == "--json" || w == "-j" }

// splitJSON removes the JSON switch, wherever it is, from args.
func splitJSON(args []string) ([]string, bool) {
	rest := make([]string, 0, len(args))
	on := false
	for _, a := range args {
		if isJSONFlag(strings.ToLower(a)) {
			on = true
			continue
		}
		rest = append(rest, a)
	}
	return rest, on
}

// tableWord maps a table name (singular accepted) to its Table.
func tableWord(w string) Table {
	switch strings.ToLower(w) {
	case "routes", "route":
		return TableRoutes
	case "macs", "mac":
		return TableMACs
	case "clients", "client":
		return TableClients
	case "stats", "stat":
		return TableStats
	case "info":
		return TableInfo
	}
	return TableNone
}

const showUsage = "want show routes [dev DEV] [within PREFIX] [count] [json] | macs [PATTERN] [count] [json] | clients [count] [json] | stats [local] [json] | info [json]"

func parseShow(args []string) (Command, error) {
	args, js := splitJSON(args)
	if len(args) == 0 {
		return Command{}, fmt.Errorf("show: %s", showUsage)
	}
	t := tableWord(args[0])
	if t == TableNone {
		return Command{}, fmt.Errorf("show: unknown table %s; %s", entry.QuoteInput(args[0]), showUsage)
	}
	cmd := Command{Kind: KindShow, Table: t, JSON: js}
	if err := parseFilter(&cmd, args[1:]); err != nil {
		return Command{}, fmt.Errorf("show %s: %w; %s", t, err, showUsage)
	}
	return cmd, nil
}

// parseFilter reads what may follow show routes and show macs: which
// entries (dev, within, a MAC pattern) and count.
func parseFilter(cmd *Command, args []string) error {
	for len(args) > 0 {
		w := strings.ToLower(args[0])
		switch {
		case w == "count" && (cmd.Table == TableRoutes || cmd.Table == TableMACs || cmd.Table == TableClients):
			cmd.Count = true
			args = args[1:]
			continue
		case w == "local" && cmd.Table == TableStats:
			cmd.Local = true
			args = args[1:]
			continue
		case cmd.Table == TableRoutes && (w == "dev" || w == "within"):
			if len(args) < 2 {
				return fmt.Errorf("%s needs a value", w)
			}
			f := cmd.filter()
			if w == "dev" && f.Dev != "" || w == "within" && f.Within.IsValid() {
				return fmt.Errorf("%s given twice: a route has one device and one prefix", w)
			}
			if w == "dev" {
				if err := entry.CheckIfName(args[1]); err != nil {
					return err
				}
				f.Dev = args[1]
			} else {
				p, err := parseCheckedPrefix(args[1])
				if err != nil {
					return err
				}
				f.Within = p
			}
			args = args[2:]
			continue
		case cmd.Table == TableMACs && cmd.Filter == nil:
			if err := cmd.filter().parseMACPattern(args[0]); err != nil {
				return err
			}
			args = args[1:]
			continue
		}
		return fmt.Errorf("unexpected %s", entry.QuoteInput(args[0]))
	}
	return nil
}

func parseLookup(args []string) (Command, error) {
	args, js := splitJSON(args)
	if len(args) != 1 {
		return Command{}, errors.New("lookup: want lookup MAC [json], as in lookup 00:1a:2b:3c:4d:5e")
	}
	m, err := entry.ParseMAC(args[0])
	if err != nil {
		return Command{}, fmt.Errorf("lookup: %w", err)
	}
	return Command{Kind: KindLookup, MAC: m, JSON: js}, nil
}

func parseRouteQuery(args []string) (Command, error) {
	args, js := splitJSON(args)
	if len(args) != 1 {
		return Command{}, errors.New("route: want route IP [json], as in route 10.1.1.7")
	}
	ip, err := parseAddr([]byte(args[0]))
	if err == nil {
		err = entry.CheckIP(ip)
	}
	if err != nil {
		return Command{}, fmt.Errorf("route: bad address %w", err)
	}
	return Command{Kind: KindRoute, IP: ip, JSON: js}, nil
}

func parseFlush(args []string) (Command, error) {
	switch {
	case len(args) == 0 || len(args) == 1 && strings.EqualFold(args[0], "all"):
		return Command{Kind: KindChange, Change: entry.FlushOf(entry.Both)}, nil
	case len(args) == 1:
		switch tableWord(args[0]) {
		case TableRoutes:
			return Command{Kind: KindChange, Change: entry.FlushOf(entry.Routes)}, nil
		case TableMACs:
			return Command{Kind: KindChange, Change: entry.FlushOf(entry.MACs)}, nil
		}
	}
	return Command{}, fmt.Errorf("flush: unknown table %s; want flush [routes|macs]", entry.QuoteInput(strings.Join(args, " ")))
}

func parseSync(args []string) (Command, error) {
	cmd := Command{Kind: KindSync}
	if len(args) > 0 && strings.EqualFold(args[0], "local") {
		cmd.Local, args = true, args[1:]
	}
	if len(args) == 0 {
		return cmd, nil
	}
	d, err := parseTimeout(args)
	if err != nil {
		return Command{}, fmt.Errorf("sync: %w; want sync [local] [TIMEOUT] as in sync 5s", err)
	}
	cmd.Timeout = d
	return cmd, nil
}

// parseTimeout takes a Go duration (500ms, 5s) or plain seconds (5, 0.5).
func parseTimeout(args []string) (time.Duration, error) {
	if len(args) != 1 {
		return 0, fmt.Errorf("unexpected %s", entry.QuoteInput(strings.Join(args[1:], " ")))
	}
	d, err := time.ParseDuration(args[0])
	if err != nil {
		s, ferr := strconv.ParseFloat(args[0], 64)
		if ferr != nil || s > (1<<62)/float64(time.Second) {
			return 0, fmt.Errorf("bad timeout %s", entry.QuoteInput(args[0]))
		}
		d = time.Duration(s * float64(time.Second))
	}
	if d <= 0 {
		return 0, fmt.Errorf("timeout %s must be positive", entry.QuoteInput(args[0]))
	}
	return d, nil
}

func parseHelp(args []string) (Command, error) {
	switch len(args) {
	case 0:
		return Command{Kind: KindHelp}, nil
	case 1:
		topic := strings.ToLower(strings.TrimSuffix(args[0], ","))
		if _, ok := helpTopic(topic); ok {
			return Command{Kind: KindHelp, Arg: topic}, nil
		}
		return Command{}, fmt.Errorf("help: no command %s; type help for the list", entry.QuoteInput(args[0]))
	}
	return Command{}, errors.New("help: want help [COMMAND], as in help expect")
}

const expectUsage = "want expect route PREFIX [via GW] [dev DEV] | no route PREFIX | mac MAC [IP] | no mac MAC | count routes|macs|clients N | error COMMAND"

func (p *parser) parseExpect(args []string) (Command, error) {
	cmd := Command{Kind: KindExpect, Expect: &Expectation{}}
	if len(args) == 0 {
		return Command{}, errors.New("expect: " + expectUsage)
	}
	what := strings.ToLower(args[0])
	if what == "no" && len(args) > 1 {
		what, args = "no "+strings.ToLower(args[1]), args[1:]
	}
	args = args[1:]
	var err error
	switch what {
	case "route":
		cmd.Expect.Check = CheckRoute
		err = p.parseRouteWant(&cmd, args)
	case "no route":
		cmd.Expect.Check = CheckNoRoute
		if len(args) != 1 {
			return Command{}, errors.New("expect no route: want expect no route PREFIX")
		}
		cmd.Route.Prefix, err = parseCheckedPrefix(args[0])
	case "mac":
		cmd.Expect.Check = CheckMAC
		if len(args) < 1 || len(args) > 2 {
			return Command{}, errors.New("expect mac: want expect mac MAC [IP], as in expect mac 00:1a:2b:3c:4d:5e 10.1.1.7")
		}
		cmd.MAC, err = entry.ParseMAC(args[0])
		if err == nil && len(args) == 2 {
			cmd.IP, err = parseCheckedIP(args[1])
		}
	case "no mac":
		cmd.Expect.Check = CheckNoMAC
		if len(args) != 1 {
			return Command{}, errors.New("expect no mac: want expect no mac MAC")
		}
		cmd.MAC, err = entry.ParseMAC(args[0])
	case "count":
		cmd.Expect.Check = CheckCount
		err = parseCountWant(&cmd, args)
	default:
		return Command{}, fmt.Errorf("expect: unknown check %s; %s", entry.QuoteInput(what), expectUsage)
	}
	if err != nil {
		return Command{}, fmt.Errorf("expect %s: %w", what, err)
	}
	return cmd, nil
}

// parseRouteWant reads PREFIX [via GW] [dev DEV], the `ip route` form that
// `show routes` prints, so a line of its output is a valid expectation.
func (p *parser) parseRouteWant(cmd *Command, args []string) error {
	const want = "want expect route PREFIX [via GW] [dev DEV], as in expect route 10.1.1.0/24 via 192.168.1.1 dev eth0"
	if len(args) == 0 {
		return errors.New(want)
	}
	pfx, err := parseCheckedPrefix(args[0])
	if err != nil {
		return err
	}
	cmd.Route.Prefix = pfx
	for rest := args[1:]; len(rest) > 0; rest = rest[2:] {
		if len(rest) < 2 {
			return fmt.Errorf("%s needs a value; %s", entry.QuoteInput(rest[0]), want)
		}
		switch strings.ToLower(rest[0]) {
		case "via":
			gw, err := parseCheckedIP(rest[1])
			if err != nil {
				return fmt.Errorf("bad gateway %w", err)
			}
			if gw.Is4() != pfx.Addr().Is4() {
				return fmt.Errorf("%w %s is IPv%d, the prefix is IPv%d", entry.ErrBadGateway, gw, family(gw), family(pfx.Addr()))
			}
			cmd.Route.Gateway = gw
		case "dev":
			dev, err := p.ifname([]byte(rest[1]))
			if err != nil {
				return err
			}
			cmd.Route.Dev = dev
		default:
			return fmt.Errorf("unexpected %s; %s", entry.QuoteInput(rest[0]), want)
		}
	}
	return nil
}

func parseCountWant(cmd *Command, args []string) error {
	const want = "want expect count routes|macs|clients N"
	if len(args) != 2 {
		return errors.New(want)
	}
	t := tableWord(args[0])
	if t == TableNone || t == TableStats {
		return fmt.Errorf("unknown table %s; %s", entry.QuoteInput(args[0]), want)
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 0 {
		return fmt.Errorf("bad count %s; %s", entry.QuoteInput(args[1]), want)
	}
	cmd.Table, cmd.Expect.Count = t, n
	return nil
}

func (p *parser) parseExpectError(rest []byte) (Command, error) {
	rest = trimSpace(rest)
	if len(rest) == 0 {
		return Command{}, errors.New("expect error: want expect error COMMAND, as in expect error C,10.1.1.1/24,192.168.1.1,eth0")
	}
	exp := &Expectation{Check: CheckError, Text: string(rest)}
	inner, err := p.parse(rest)
	switch {
	case err != nil:
		exp.ParseErr = err
	case inner.Kind == KindQuit || inner.Kind == KindHelp:
		return Command{}, fmt.Errorf("expect error: %s cannot fail; want a command that can", inner.String())
	default:
		exp.Cmd = &inner
	}
	return Command{Kind: KindExpect, Expect: exp}, nil
}

func parseCheckedPrefix(s string) (netip.Prefix, error) {
	p, err := parsePrefix([]byte(s))
	if err != nil {
		return p, fmt.Errorf("bad %w", err)
	}
	return p, entry.CheckPrefix(p)
}

func parseCheckedIP(s string) (netip.Addr, error) {
	a, err := parseAddr([]byte(s))
	if err != nil {
		return a, err
	}
	return a, entry.CheckIP(a)
}
