package repl

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"rtm/store/entry"
)

// The word commands. They are rare next to C/U/D lines and may allocate.
//
// They are parsed from a wordList, which remembers what the parser would
// have taken next when the words run out. Tab completion runs the same
// parser over the words typed so far and offers exactly that, so the
// grammar is written once, here, and what the prompt offers cannot drift
// from what it accepts.

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

// valueKind is a kind of value a command takes, for completion: the
// tables' MACs, prefixes and devices, files, help topics. Values that
// cannot be listed (an address, a count) have none.
type valueKind uint8

const (
	valueMAC valueKind = 1 << iota
	valuePrefix
	valueDev
	valueFile
	valueTopic
	valueCommand // expect error: a whole command follows
)

// wordList is the words of one command, read by its parser. When the
// parser looks past the last word, the list records what it would have
// taken there (next, kinds).
type wordList struct {
	ws     []string
	pos    int
	json   bool // the command takes json: offered wherever a word may come
	twice  bool // the JSON switch was given twice (takeJSON)
	next   []string
	kinds  valueKind
	needed bool // the words ran out where a value must come
}

// peek returns the next word, lowercased, without taking it; at the end
// it records the keywords and kinds the parser would take there.
func (l *wordList) peek(kinds valueKind, keywords ...string) (string, bool) {
	if l.pos == len(l.ws) {
		l.next = append(l.next, keywords...)
		l.kinds |= kinds
		return "", false
	}
	return strings.ToLower(l.ws[l.pos]), true
}

// need is peek where a value must come: at the end, only a value of
// kinds is offered (json is not).
func (l *wordList) need(kinds valueKind) bool {
	_, ok := l.peek(kinds)
	l.needed = l.needed || !ok
	return ok
}

// take takes the next word as it was typed.
func (l *wordList) take() string {
	w := l.ws[l.pos]
	l.pos++
	return w
}

// rest is the words not taken.
func (l *wordList) rest() []string { return l.ws[l.pos:] }

// The command words, for completion, help, and "did you mean".
var commandWords = []string{"show", "lookup", "route", "flush", "dump", "source", "sync", "expect", "help", "quit"}

// aliases are other spellings of command words.
var aliases = map[string]string{".": "source", "?": "help", "exit": "quit"}

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
	return p.parseCommand(&wordList{ws: ws})
}

// parseCommand parses the words of a word command.
func (p *parser) parseCommand(l *wordList) (Command, error) {
	w, ok := l.peek(0, commandWords...)
	if !ok {
		return Command{}, nil
	}
	name := w
	if a, ok := aliases[name]; ok {
		name = a
	}
	l.take()
	switch name {
	case "show":
		return parseShow(l)
	case "lookup":
		return parseLookup(l)
	case "route":
		return parseRouteQuery(l)
	case "flush":
		return parseFlush(l)
	case "source":
		l.need(valueFile)
		if args := l.rest(); len(args) != 1 {
			return Command{}, errors.New("source: want exactly one FILE (quote a name with spaces)")
		}
		return Command{Kind: KindSource, Arg: l.take()}, nil
	case "sync":
		return parseSync(l)
	case "expect":
		return p.parseExpect(l)
	case "help":
		return parseHelp(l)
	case "quit", "dump":
		if args := l.rest(); len(args) != 0 {
			return Command{}, fmt.Errorf("%s: takes no arguments, got %s", w, entry.QuoteInput(strings.Join(args, " ")))
		}
		if name == "dump" {
			return Command{Kind: KindDump}, nil
		}
		return Command{Kind: KindQuit}, nil
	}
	if w := l.ws[0]; len(w) == 1 && opOf(w[0]) != 0 {
		// A change's letter alone, or with spaces where commas go.
		op := opOf(w[0])
		return Command{}, fmt.Errorf("%s: a change's fields follow its letter, each after a comma; want %s or %s", op, usage(op, entry.Routes), usage(op, entry.MACs))
	}
	return Command{}, unknownCommand(l.ws[0])
}

// unknownCommand refuses a word that is no command, suggesting the one it
// is closest to when it looks like a slip of the fingers.
func unknownCommand(w string) error {
	return fmt.Errorf("unknown command %s: %swant C,U,D,R changes or one of %s (type help)", entry.QuoteInput(w), meant(w, commandWords), strings.Join(commandWords, ", "))
}

// meant is "did you mean WORD? " for a word w that looks like a slip of
// the fingers for one of ws; "" for any other.
func meant(w string, ws []string) string {
	if near := closest(strings.ToLower(w), ws); near != "" {
		return "did you mean " + near + "? "
	}
	return ""
}

// Meant is meant for the words ws alone (a directive's own words): "did
// you mean WORD? " for a word w that looks like a slip for one of them.
func Meant(w string, ws []string) string { return meant(w, ws) }

// Closest is the command word or word of extra (a scenario's
// directives) that w, in any case, is a slip for, as closest finds it;
// "" if none is.
func Closest(w string, extra []string) string {
	return closest(strings.ToLower(w), append(slices.Clip(commandWords), extra...))
}

// closest returns the word of ws within two edits (insertions,
// deletions, substitutions, swaps of neighbours) of w, the nearest first;
// "" if none is.
func closest(w string, ws []string) string {
	best, bestD := "", 3
	for _, c := range ws {
		// The distance is at least the difference in length: a long word
		// (a stray line of junk) costs nothing to rule out.
		if len(w) > len(c)+2 || len(c) > len(w)+2 {
			continue
		}
		if d := editDistance(w, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

func firstWord(b []byte) (string, []byte) {
	b = trimSpace(b)
	end := bytes.IndexAny(b, " \t")
	if end < 0 {
		return string(b), nil
	}
	return string(b[:end]), b[end:]
}

// isJSONFlag accepts the spellings of the JSON switch: `show routes json`
// reads best, `-json` is what `ip -json` users type.
func isJSONFlag(w string) bool { return w == "json" || w == "-json" || w == "--json" || w == "-j" }

// takeJSON removes the JSON switch, wherever it is, from the words not
// taken yet, and says whether it was there. The list offers it at the
// end until it is given. A spelling of it right after dev is the
// device's name (show routes dev json), not the switch.
func (l *wordList) takeJSON() bool {
	rest := l.ws[:l.pos:l.pos]
	on := false
	for i := l.pos; i < len(l.ws); i++ {
		a := l.ws[i]
		switch {
		case strings.EqualFold(a, "dev") && i+1 < len(l.ws):
			rest = append(rest, a, l.ws[i+1]) // the value, whatever it is
			i++
			continue
		case isJSONFlag(strings.ToLower(a)):
			l.twice = l.twice || on
			on = true
			continue
		}
		rest = append(rest, a)
	}
	l.ws = rest
	l.json = !on
	return on
}

// givenTwice says, for an error, that the JSON switch was given twice
// (in any of its spellings: json -j is twice too).
func (l *wordList) givenTwice() string {
	if !l.twice {
		return ""
	}
	return "json given twice; "
}

// tableSpec is a table show takes: its name (the singular is accepted
// too) and what may follow it, json aside.
type tableSpec struct {
	name  string
	table Table
	words []string
	kinds valueKind
}

var tables = []tableSpec{
	{"routes", TableRoutes, []string{"dev", "within", "count"}, 0},
	{"macs", TableMACs, []string{"count"}, valueMAC},
	{"clients", TableClients, []string{"count"}, 0},
	{"stats", TableStats, []string{"local"}, 0},
	{"info", TableInfo, nil, 0},
}

func tableWords(only ...Table) []string {
	var out []string
	for _, t := range tables {
		if len(only) == 0 || slices.Contains(only, t.table) {
			out = append(out, t.name)
		}
	}
	return out
}

// tableWord maps a table name (singular accepted) to its Table.
func tableWord(w string) Table {
	w = strings.ToLower(w)
	for _, t := range tables {
		if w == t.name || w == strings.TrimSuffix(t.name, "s") {
			return t.table
		}
	}
	return TableNone
}

const showUsage = "want show routes [dev DEV] [within PREFIX] [count] [json] | macs [PATTERN] [count] [json] | clients [count] [json] | stats [local] [json] | info [json]"

func parseShow(l *wordList) (Command, error) {
	js := l.takeJSON()
	w, ok := l.peek(0, tableWords()...)
	if !ok {
		return Command{}, fmt.Errorf("show: %s", showUsage)
	}
	t := tableWord(w)
	if t == TableNone {
		w := l.take()
		return Command{}, fmt.Errorf("show: unknown table %s; %s%s", entry.QuoteInput(w), meant(w, tableWords()), showUsage)
	}
	l.take()
	cmd := Command{Kind: KindShow, Table: t, JSON: js}
	if l.twice {
		return Command{}, fmt.Errorf("show %s: %s%s", t, l.givenTwice(), showUsage)
	}
	if err := parseFilter(&cmd, l); err != nil {
		return Command{}, fmt.Errorf("show %s: %w; %s", t, err, showUsage)
	}
	return cmd, nil
}

// parseFilter reads what may follow show TABLE: which entries (dev,
// within, a MAC pattern), count, local.
func parseFilter(cmd *Command, l *wordList) error {
	spec := tables[slices.IndexFunc(tables, func(t tableSpec) bool { return t.table == cmd.Table })]
	for {
		kinds := spec.kinds
		if cmd.Filter != nil {
			kinds = 0 // one MAC pattern
		}
		w, ok := l.peek(kinds, cmd.filterWords(spec.words)...)
		if !ok {
			return nil
		}
		switch {
		case w == "count" && slices.Contains(spec.words, w):
			if cmd.Count {
				return errors.New("count given twice")
			}
			cmd.Count = true
			l.take()
		case w == "local" && slices.Contains(spec.words, w):
			if cmd.Local {
				return errors.New("local given twice")
			}
			cmd.Local = true
			l.take()
		case (w == "dev" || w == "within") && slices.Contains(spec.words, w):
			l.take()
			kind := valueDev
			if w == "within" {
				kind = valuePrefix
			}
			if !l.need(kind) {
				return fmt.Errorf("%s needs a value", w)
			}
			f := cmd.filter()
			if w == "dev" && f.Dev != "" || w == "within" && f.Within.IsValid() {
				return fmt.Errorf("%s given twice: a route has one device and one prefix", w)
			}
			if w == "dev" {
				dev := l.take()
				if err := entry.CheckIfName(dev); err != nil {
					return err
				}
				f.Dev = dev
			} else {
				p, err := parseCheckedPrefix(l.take())
				if err != nil {
					return err
				}
				f.Within = p
			}
		case cmd.Table == TableMACs && cmd.Filter == nil:
			if err := cmd.filter().parseMACPattern(l.take()); err != nil {
				return err
			}
		default:
			w := l.take()
			msg := "unexpected " + entry.QuoteInput(w)
			if hint := strings.TrimSpace(meant(w, append(slices.Clip(spec.words), "json"))); hint != "" {
				msg += " (" + hint + ")" // the caller adds "; want ..."
			}
			return errors.New(msg)
		}
	}
}

// filterWords is words less those cmd has been given: each may come once.
func (cmd *Command) filterWords(words []string) []string {
	f := cmd.Filter
	return slices.DeleteFunc(slices.Clone(words), func(w string) bool {
		return w == "count" && cmd.Count || w == "local" && cmd.Local ||
			f != nil && (w == "dev" && f.Dev != "" || w == "within" && f.Within.IsValid())
	})
}

func parseLookup(l *wordList) (Command, error) {
	js := l.takeJSON()
	l.need(valueMAC)
	if len(l.rest()) != 1 || l.twice {
		return Command{}, fmt.Errorf("lookup: %swant lookup MAC [json], as in lookup 00:1a:2b:3c:4d:5e", l.givenTwice())
	}
	m, err := entry.ParseMAC(l.take())
	if err != nil {
		return Command{}, fmt.Errorf("lookup: %w", err)
	}
	l.peek(0)
	return Command{Kind: KindLookup, MAC: m, JSON: js}, nil
}

func parseRouteQuery(l *wordList) (Command, error) {
	js := l.takeJSON()
	l.need(0)
	if len(l.rest()) != 1 || l.twice {
		return Command{}, fmt.Errorf("route: %swant route IP [json], as in route 10.1.1.7", l.givenTwice())
	}
	ip, err := parseAddr([]byte(l.take()))
	if err != nil {
		return Command{}, fmt.Errorf("route: bad address %w", err)
	}
	if err := entry.CheckIP(ip); err != nil {
		return Command{}, fmt.Errorf("route: %w", err) // it says "bad IP address"
	}
	l.peek(0)
	return Command{Kind: KindRoute, IP: ip, JSON: js}, nil
}

// flushWords are what flush takes: a table, or all (both, as flush alone).
var flushWords = append(tableWords(TableRoutes, TableMACs), "all")

func parseFlush(l *wordList) (Command, error) {
	w, ok := l.peek(0, flushWords...)
	switch {
	case !ok:
		return Command{Kind: KindChange, Change: entry.FlushOf(entry.Both)}, nil
	case len(l.rest()) == 1 && w == "all":
		return Command{Kind: KindChange, Change: entry.FlushOf(entry.Both)}, nil
	case len(l.rest()) == 1:
		switch tableWord(w) {
		case TableRoutes:
			return Command{Kind: KindChange, Change: entry.FlushOf(entry.Routes)}, nil
		case TableMACs:
			return Command{Kind: KindChange, Change: entry.FlushOf(entry.MACs)}, nil
		}
	}
	if args := l.rest(); len(args) > 1 {
		if _, known := l.peek(0, flushWords...); known {
			return Command{}, fmt.Errorf("flush: one table at most, got %s after %s; want flush [routes|macs]", entry.QuoteInput(strings.Join(args[1:], " ")), args[0])
		}
	}
	return Command{}, fmt.Errorf("flush: unknown table %s; %swant flush [routes|macs]", entry.QuoteInput(strings.Join(l.rest(), " ")), meant(strings.Join(l.rest(), " "), append(tableWords(TableRoutes, TableMACs), "all")))
}

func parseSync(l *wordList) (Command, error) {
	cmd := Command{Kind: KindSync}
	if w, ok := l.peek(0, "local"); ok && w == "local" {
		cmd.Local = true
		l.take()
	}
	if len(l.rest()) == 0 {
		return cmd, nil
	}
	d, err := parseTimeout(l.rest())
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
		if ferr != nil || math.IsNaN(s) || s > (1<<62)/float64(time.Second) {
			return 0, fmt.Errorf("bad timeout %s", entry.QuoteInput(args[0]))
		}
		d = time.Duration(s * float64(time.Second))
	}
	if d <= 0 {
		return 0, fmt.Errorf("timeout %s must be positive", entry.QuoteInput(args[0]))
	}
	return d, nil
}

func parseHelp(l *wordList) (Command, error) {
	l.peek(valueTopic)
	switch args := l.rest(); len(args) {
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

func (p *parser) parseExpect(l *wordList) (Command, error) {
	cmd := Command{Kind: KindExpect, Expect: &Expectation{}}
	what, ok := l.peek(0, "route", "no", "mac", "count", "error")
	if !ok {
		return Command{}, errors.New("expect: " + expectUsage)
	}
	l.take()
	if what == "no" {
		w, ok := l.peek(0, "route", "mac")
		if !ok {
			return Command{}, errors.New("expect no: want expect no route PREFIX or expect no mac MAC")
		}
		what = "no " + w
		l.take()
	}
	var err error
	switch what {
	case "route":
		cmd.Expect.Check = CheckRoute
		err = p.parseRouteWant(&cmd, l)
	case "no route":
		cmd.Expect.Check = CheckNoRoute
		l.need(valuePrefix)
		if len(l.rest()) != 1 {
			return Command{}, errors.New("expect no route: want expect no route PREFIX")
		}
		cmd.Route.Prefix, err = parseCheckedPrefix(l.take())
	case "mac":
		cmd.Expect.Check = CheckMAC
		l.need(valueMAC)
		if n := len(l.rest()); n < 1 || n > 2 {
			return Command{}, errors.New("expect mac: want expect mac MAC [IP], as in expect mac 00:1a:2b:3c:4d:5e 10.1.1.7")
		}
		cmd.MAC, err = entry.ParseMAC(l.take())
		if err == nil && len(l.rest()) == 1 {
			cmd.IP, err = parseCheckedIP(l.take())
		}
	case "no mac":
		cmd.Expect.Check = CheckNoMAC
		l.need(valueMAC)
		if len(l.rest()) != 1 {
			return Command{}, errors.New("expect no mac: want expect no mac MAC")
		}
		cmd.MAC, err = entry.ParseMAC(l.take())
	case "count":
		cmd.Expect.Check = CheckCount
		err = parseCountWant(&cmd, l)
	default:
		return Command{}, fmt.Errorf("expect: unknown check %s; %s%s", entry.QuoteInput(what), meant(what, []string{"route", "mac", "count", "error"}), expectUsage)
	}
	if err != nil {
		return Command{}, fmt.Errorf("expect %s: %w", what, err)
	}
	return cmd, nil
}

// parseRouteWant reads PREFIX [via GW] [dev DEV], the `ip route` form that
// `show routes` prints, so a line of its output is a valid expectation.
func (p *parser) parseRouteWant(cmd *Command, l *wordList) error {
	const want = "want expect route PREFIX [via GW] [dev DEV], as in expect route 10.1.1.0/24 via 192.168.1.1 dev eth0"
	if !l.need(valuePrefix) {
		return errors.New(want)
	}
	pfx, err := parseCheckedPrefix(l.take())
	if err != nil {
		return err
	}
	cmd.Route.Prefix = pfx
	via := false
	for {
		var keys []string
		if !via {
			keys = append(keys, "via")
		}
		if cmd.Route.Dev == "" {
			keys = append(keys, "dev")
		}
		w, ok := l.peek(0, keys...)
		if !ok {
			return nil
		}
		key := l.take()
		if !slices.Contains(keys, w) {
			return fmt.Errorf("unexpected %s; %s%s", entry.QuoteInput(key), meant(key, keys), want)
		}
		kind := valueKind(0)
		if w == "dev" {
			kind = valueDev
		}
		if !l.need(kind) {
			return fmt.Errorf("%s needs a value; %s", entry.QuoteInput(key), want)
		}
		switch w {
		case "via":
			gw, err := parseAddr([]byte(l.take()))
			if err != nil {
				return fmt.Errorf("bad gateway %w", err)
			}
			if err := entry.CheckIP(gw); err != nil {
				return fmt.Errorf("%w: %w", entry.ErrBadGateway, err) // as a change says it
			}
			if gw.Is4() != pfx.Addr().Is4() {
				return fmt.Errorf("%w %s is IPv%d, the prefix is IPv%d", entry.ErrBadGateway, gw, family(gw), family(pfx.Addr()))
			}
			if gw.IsUnspecified() {
				// A change takes it for a connected route, which shows
				// no gateway: there is none to expect.
				return fmt.Errorf("%w %s: a connected route has no gateway; expect route PREFIX dev DEV", entry.ErrBadGateway, gw)
			}
			cmd.Route.Gateway, via = gw, true
		case "dev":
			dev, err := p.ifname([]byte(l.take()))
			if err != nil {
				return err
			}
			cmd.Route.Dev = dev
		default:
			return fmt.Errorf("unexpected %s; %s", entry.QuoteInput(key), want)
		}
	}
}

func parseCountWant(cmd *Command, l *wordList) error {
	const want = "want expect count routes|macs|clients N"
	l.peek(0, tableWords(TableRoutes, TableMACs, TableClients)...)
	args := l.rest()
	if len(args) != 2 {
		return errors.New(want)
	}
	t := tableWord(args[0])
	if t == TableNone || t == TableStats || t == TableInfo {
		return fmt.Errorf("unknown table %s; %s%s", entry.QuoteInput(args[0]), meant(args[0], tableWords(TableRoutes, TableMACs, TableClients)), want)
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

// expected runs the parser over the complete words of a partial command
// line and returns what it would take next: the keywords (with json where
// the command takes it) and the kinds of values. Tab completion offers
// exactly these.
func (p *parser) expected(ws []string) ([]string, valueKind) {
	if len(ws) >= 2 && strings.EqualFold(ws[0], "expect") && strings.EqualFold(ws[1], "error") {
		if len(ws) == 2 {
			next, kinds := p.expected(nil)
			return next, kinds | valueCommand
		}
		return p.expected(ws[2:]) // what follows is a command of its own
	}
	l := &wordList{ws: ws}
	_, err := p.parseCommand(l)
	next := l.next
	// json may come wherever a word may: after a whole command, or where
	// the parser looked for more at the end; not after a word it refused.
	if l.json && !l.needed && (err == nil || len(next) > 0 || l.kinds != 0) {
		next = append(next, "json")
	}
	return next, l.kinds
}
