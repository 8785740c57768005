package repl

import (
	"fmt"
	"net/netip"
	"rtm/store/entry"
	"strconv"
	"strings"
	"time"
)

// Kind says what a Command does.
type Kind uint8

// The command kinds; KindNone is a blank or comment-only line.
const (
	KindNone   Kind = iota
	KindChange      // C,KEY,... U,KEY,... D,KEY R,KEY,... flush [routes|macs]
	KindShow        // show TABLE [json]
	KindLookup      // lookup MAC
	KindRoute       // route IP
	KindSource      // source FILE
	KindSync        // sync [TIMEOUT]
	KindExpect      // expect ...
	KindHelp        // help [COMMAND]
	KindQuit        // quit
	KindDump        // dump: both tables as replayable lines
)

// Table names the table a command reads or writes.
type Table uint8

// The tables.
const (
	TableNone Table = iota
	TableRoutes
	TableMACs
	TableClients
	TableStats
	TableInfo
)

var tableNames = [...]string{"", "routes", "macs", "clients", "stats", "info"}

// String returns the name the language uses ("routes", "macs", ...).
func (t Table) String() string { return tableNames[t] }

// Check says what an expect command asserts.
type Check uint8

// The assertions of expect.
const (
	CheckRoute   Check = iota + 1 // expect route PREFIX [via GW] [dev DEV]
	CheckNoRoute                  // expect no route PREFIX
	CheckMAC                      // expect mac MAC [IP]
	CheckNoMAC                    // expect no mac MAC
	CheckCount                    // expect count routes|macs|clients N
	CheckError                    // expect error COMMAND
)

// Expectation is the assertion of an expect command.
type Expectation struct {
	Check Check
	Count int // CheckCount: the wanted number of entries
	// CheckError: the command that must fail, as written (Text) and
	// parsed (Cmd). A command the parser rejects has failed already:
	// ParseErr holds why and Cmd is nil, so `expect error` can assert
	// that a malformed line is refused.
	Text     string
	Cmd      *Command
	ParseErr error
}

// Filter selects the entries show prints: routes out of Dev, routes
// within a prefix, MACs that start with the first Bytes bytes of MAC.
type Filter struct {
	Dev    string
	Within netip.Prefix
	MAC    entry.MAC
	Bytes  int // 0: every MAC
}

func (c *Command) filter() *Filter {
	if c.Filter == nil {
		c.Filter = new(Filter)
	}
	return c.Filter
}

// parseMACPattern takes "02:00:*" (the first bytes, then *; 02-00-* and
// 0200.* too, as a MAC is written) or a whole MAC.
func (f *Filter) parseMACPattern(s string) error {
	head, star := strings.CutSuffix(s, "*")
	if !star {
		m, err := entry.ParseMAC(s)
		if err != nil {
			return fmt.Errorf("%s is neither a whole MAC (6 bytes, as aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabb.ccdd.eeff) nor a pattern (its first bytes, then *, as in 02:00:*)", entry.QuoteInput(s))
		}
		f.MAC, f.Bytes = m, 6
		return nil
	}
	bad := fmt.Errorf("MAC pattern %s: a pattern is a MAC's first bytes, then * (02:00:*, 02-00-* or 0200.*), or a whole MAC", entry.QuoteInput(s))
	// Bytes of two digits between ':' or '-', or groups of four between
	// '.'; a whole MAC is no pattern.
	sep, digits, most := func(r rune) bool { return r == ':' || r == '-' }, 2, 5
	if strings.Contains(head, ".") {
		sep, digits, most = func(r rune) bool { return r == '.' }, 4, 2
	}
	head = strings.TrimRight(head, ":-.")
	if head == "" {
		f.Bytes = 0
		return nil
	}
	parts := strings.FieldsFunc(head, sep)
	if len(parts) > most {
		return bad
	}
	n := 0
	for _, p := range parts {
		if len(p) != digits {
			return bad
		}
		for i := 0; i < digits; i += 2 {
			b, err := strconv.ParseUint(p[i:i+2], 16, 8)
			if err != nil {
				return bad
			}
			f.MAC[n], n = byte(b), n+1
		}
	}
	f.Bytes = n
	return nil
}

// appendMACPattern appends the pattern as show macs takes it.
func (f *Filter) appendMACPattern(b []byte) []byte {
	if f.Bytes == 6 {
		return f.MAC.AppendTo(b)
	}
	for i := range f.Bytes {
		b = append(b, hexDigits[f.MAC[i]>>4], hexDigits[f.MAC[i]&0xf], ':')
	}
	return append(b, '*')
}

const hexDigits = "0123456789abcdef"

// MatchRoute reports whether r passes the filter.
func (f *Filter) MatchRoute(r entry.Route) bool {
	return (f.Dev == "" || r.Dev == f.Dev) &&
		(!f.Within.IsValid() || f.Within.Bits() <= r.Prefix.Bits() && f.Within.Contains(r.Prefix.Addr()))
}

// MatchMAC reports whether m passes the filter.
func (f *Filter) MatchMAC(m entry.MAC) bool { return string(m[:f.Bytes]) == string(f.MAC[:f.Bytes]) }

// Command is one parsed line. Which fields are set depends on Kind:
//
//	change          Change: C/U/D/R and flush, as entry.Change says
//	show            Table, JSON, Count, Filter (nil: every entry)
//	lookup          MAC, JSON
//	route           IP, JSON
//	source, help    Arg (file, topic)
//	sync            Local, Timeout (0: the interpreter's default)
//	expect          Expect, and the fields of what it checks: Route (a zero
//	                Gateway or empty Dev is not checked), MAC and IP (a
//	                zero IP is not checked), Table for count
//
// A Command holds no reference to the line it was parsed from.
type Command struct {
	Kind    Kind
	Change  entry.Change
	Table   Table
	Route   entry.Route
	MAC     entry.MAC
	IP      netip.Addr
	JSON    bool
	Count   bool    // show ... count: how many, not which
	Local   bool    // sync local, show stats local: this process, not the server
	Filter  *Filter // show routes|macs: which entries
	Arg     string
	Timeout time.Duration
	Expect  *Expectation
}

// IsWrite reports whether the command changes the tables.
func (c *Command) IsWrite() bool { return c.Kind == KindChange }

// String returns the command in canonical form: Parse(c.String()) yields c
// again. Route and MAC data print in the C/U/D comma form, addresses and
// MACs in their canonical spelling.
func (c *Command) String() string { return string(c.AppendTo(nil)) }

// AppendTo appends the canonical form of c to b.
func (c *Command) AppendTo(b []byte) []byte {
	switch c.Kind {
	case KindChange:
		return c.Change.AppendTo(b)
	case KindShow:
		b = append(b, "show "...)
		b = append(b, c.Table.String()...)
		if f := c.Filter; f != nil {
			if f.Dev != "" {
				b = append(append(b, " dev "...), quoteArg(f.Dev)...)
			}
			if f.Within.IsValid() {
				b = f.Within.AppendTo(append(b, " within "...))
			}
			if c.Table == TableMACs {
				b = f.appendMACPattern(append(b, ' '))
			}
		}
		if c.Count {
			b = append(b, " count"...)
		}
		if c.Local {
			b = append(b, " local"...)
		}
		return appendJSONFlag(b, c.JSON)
	case KindLookup:
		b = append(b, "lookup "...)
		return appendJSONFlag(c.MAC.AppendTo(b), c.JSON)
	case KindRoute:
		b = append(b, "route "...)
		return appendJSONFlag(c.IP.AppendTo(b), c.JSON)
	case KindSource:
		return append(append(b, "source "...), quoteArg(c.Arg)...)
	case KindSync:
		b = append(b, "sync"...)
		if c.Local {
			b = append(b, " local"...)
		}
		if c.Timeout > 0 {
			b = append(b, ' ')
			b = append(b, c.Timeout.String()...)
		}
		return b
	case KindExpect:
		return c.appendExpect(append(b, "expect "...))
	case KindHelp:
		b = append(b, "help"...)
		if c.Arg != "" {
			b = append(b, ' ')
			b = append(b, c.Arg...)
		}
		return b
	case KindQuit:
		return append(b, "quit"...)
	case KindDump:
		return append(b, "dump"...)
	}
	return b
}

func (c *Command) appendExpect(b []byte) []byte {
	switch c.Expect.Check {
	case CheckRoute:
		b = append(b, "route "...)
		return appendRouteForm(b, c.Route)
	case CheckNoRoute:
		b = append(b, "no route "...)
		return c.Route.Prefix.AppendTo(b)
	case CheckMAC:
		b = append(b, "mac "...)
		b = c.MAC.AppendTo(b)
		if c.IP.IsValid() {
			b = append(b, ' ')
			b = c.IP.AppendTo(b)
		}
		return b
	case CheckNoMAC:
		b = append(b, "no mac "...)
		return c.MAC.AppendTo(b)
	case CheckCount:
		b = append(b, "count "...)
		b = append(b, c.Table.String()...)
		b = append(b, ' ')
		return strconv.AppendInt(b, int64(c.Expect.Count), 10)
	case CheckError:
		b = append(b, "error "...)
		if c.Expect.Cmd == nil {
			return append(b, c.Expect.Text...)
		}
		return c.Expect.Cmd.AppendTo(b)
	}
	return b
}

// appendRouteForm prints a route, or the parts of one an expectation
// checks, in `ip route` form, but for a device name the word commands
// would read otherwise (white space, '#', a quote), which is quoted: what
// show routes, route and an unmet expect print pastes back into expect
// and show routes dev.
func appendRouteForm(b []byte, r entry.Route) []byte {
	b = r.Prefix.AppendTo(b)
	if r.Gateway.IsValid() {
		b = append(b, " via "...)
		b = r.Gateway.AppendTo(b)
	}
	if r.Dev != "" {
		b = append(b, " dev "...)
		b = append(b, quoteArg(r.Dev)...)
	}
	return b
}

func appendJSONFlag(b []byte, on bool) []byte {
	if on {
		b = append(b, " json"...)
	}
	return b
}

// quoteArg quotes a word (a file or interface name) only when it would not
// survive the parser bare: white space would split it, '#' could start a
// comment, a quote would be taken for one.
func quoteArg(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\r\n\v\f#\"\\") {
		return strconv.Quote(s)
	}
	return s
}
