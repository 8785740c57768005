package repl

import (
	"bytes"
	"fmt"
	"net/netip"
	"rtm/store/entry"
	"sync"
)

// Parse parses one line (without its file:line context: callers add it).
// A blank or comment-only line gives KindNone. Parsing a C/U/D line with
// IPv4 addresses does not allocate once its interface name has been seen.
func Parse(line []byte) (Command, error) {
	shared.Lock()
	defer shared.Unlock()
	return shared.p.parse(line)
}

// shared is Parse's parser; an Interp has its own, unlocked.
var shared struct {
	sync.Mutex
	p parser
}

// parser holds the interface names met so far, so that route lines do
// not allocate or check a string each. Not safe for concurrent use.
type parser struct {
	ifnames entry.IfNames
}

// ifname returns the interned, validated interface name spelled by b.
func (p *parser) ifname(b []byte) (string, error) { return p.ifnames.Intern(b) }

func (p *parser) parse(line []byte) (Command, error) {
	var cmd Command
	err := p.parseInto(line, &cmd)
	return cmd, err
}

// parseInto is parse writing into cmd, which a replay reuses: a change
// is parsed in place, without copying a Command on the way up.
func (p *parser) parseInto(line []byte, cmd *Command) error {
	if parseMACChange(line, cmd) || p.parseRouteChange(line, cmd) {
		return nil
	}
	return p.parseLine(line, cmd)
}

// parseMACChange is the short path of the line nearly every replayed MAC
// change is: the op letter, a comma, the MAC as aa:bb:cc:dd:ee:ff (or
// with dashes), and for C, U and R a comma and a dotted-quad IPv4
// address, then only the line's end. It reports false for any other line,
// which parseLine then takes; for a line it accepts, parseLine would give
// the same command (FuzzParseMACChange checks that).
func parseMACChange(line []byte, cmd *Command) bool {
	for len(line) > 0 && isSpace(line[len(line)-1]) {
		line = line[:len(line)-1]
	}
	const macLen = 17
	if len(line) < 2+macLen || line[1] != ',' || (line[4] != ':' && line[4] != '-') {
		return false
	}
	op := opOf(line[0])
	if op == 0 {
		return false
	}
	m, err := entry.ParseMACBytes(line[2 : 2+macLen])
	if err != nil {
		return false
	}
	rest, done, ok := shortTail(op, line[2+macLen:])
	switch {
	case !ok:
		return false
	case done:
		setChange(cmd, entry.MACChange(op, m, netip.Addr{}))
		return true
	}
	// A dotted quad passes entry.CheckIP (valid, no zone, not
	// IPv4-mapped); one CheckHostIP refuses is parseLine's to report.
	ip, ok := parseIPv4(rest)
	if !ok || !hostIPv4(ip) {
		return false
	}
	setChange(cmd, entry.MACChange(op, m, ip))
	return true
}

// hostIPv4 is entry.CheckHostIP's rule for an IPv4 address, inline: not
// 0.0.0.0, 127/8, 224/4 or 255.255.255.255.
func hostIPv4(ip netip.Addr) bool {
	a := ip.As4()
	return a[0] != 127 && a[0]&0xf0 != 224 && a != [4]byte{} && a != [4]byte{255, 255, 255, 255}
}

// parseRouteChange is parseMACChange for an IPv4 route change: the op
// letter, a comma, a masked dotted-quad prefix, and for C, U and R a comma,
// a dotted-quad gateway or -, a comma and an interface name, then only the
// line's end. Anything else, an error included, is left to parseLine, so a
// line it accepts gets the same command from both (FuzzParseRouteChange).
func (p *parser) parseRouteChange(line []byte, cmd *Command) bool {
	for len(line) > 0 && isSpace(line[len(line)-1]) {
		line = line[:len(line)-1]
	}
	if len(line) < len("D,0.0.0.0/0") || line[1] != ',' {
		return false
	}
	op := opOf(line[0])
	if op == 0 {
		return false
	}
	a, n, ok := scanIPv4(line[2:])
	rest := line[2+n:]
	if !ok || len(rest) < 2 || rest[0] != '/' {
		return false
	}
	bits, n := int(rest[1]-'0'), 2
	if bits > 9 {
		return false
	}
	if len(rest) > 2 && rest[2]-'0' <= 9 {
		if bits = bits*10 + int(rest[2]-'0'); bits < 10 || bits > 32 {
			return false // a leading zero, or too long
		}
		n = 3
	}
	pfx := netip.PrefixFrom(a, bits)
	if pfx.Masked() != pfx {
		return false // host bits: the parser says which
	}
	c := entry.Change{Op: op, Table: entry.Routes, Route: entry.Route{Prefix: pfx}}
	rest, done, ok := shortTail(op, rest[n:])
	switch {
	case !ok:
		return false
	case done:
		setChange(cmd, c)
		return true
	}
	if rest[0] == '-' {
		rest = rest[1:] // a connected route
	} else if c.Route.Gateway, n, ok = scanIPv4(rest); ok && entry.CheckGateway(c.Route.Gateway) == nil {
		rest = rest[n:]
	} else {
		return false
	}
	if len(rest) < 2 || rest[0] != ',' {
		return false
	}
	dev := rest[1:]
	for _, b := range dev {
		if b == ',' || isSpace(b) {
			return false // another field, or spaces the parser trims or refuses
		}
	}
	var err error
	if c.Route.Dev, err = p.ifname(dev); err != nil {
		return false
	}
	setChange(cmd, c)
	return true
}

// setChange makes cmd the change c. A replay parses line after line into
// the same few Commands, and writing all of one (280 bytes, pointers
// among them) cost about a third of a MAC line's parse; a Command that is
// a change already has every other field zero (each parse of a change
// makes a whole Command, as parseLine starts from a zero one), so then
// only the change is written.
func setChange(cmd *Command, c entry.Change) {
	if cmd.Kind != KindChange {
		*cmd = Command{Kind: KindChange}
	}
	cmd.Change = c
}

// shortTail reads what follows a short path's key: nothing for a delete
// (done), else a comma and the fields after it, at least one byte.
func shortTail(op entry.Op, rest []byte) (fields []byte, done, ok bool) {
	if op == entry.Delete {
		return nil, true, len(rest) == 0
	}
	if len(rest) < 2 || rest[0] != ',' {
		return nil, false, false
	}
	return rest[1:], false, true
}

// opOf is the op of a change's letter, either case; 0 for another.
func opOf(letter byte) entry.Op {
	switch letter | 0x20 {
	case 'c':
		return entry.Create
	case 'u':
		return entry.Update
	case 'd':
		return entry.Delete
	case 'r':
		return entry.Replace
	}
	return 0
}

// parseLine is the parser of every line, which parseMACChange shortens
// for the commonest.
func (p *parser) parseLine(line []byte, cmd *Command) error {
	*cmd = Command{}
	line = trimSpace(stripComment(line))
	if len(line) == 0 {
		return nil
	}
	if op, rest, ok := cutOp(line); ok {
		return p.parseChange(op, rest, cmd)
	}
	var err error
	*cmd, err = p.parseWords(line)
	return err
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// stripComment cuts the line at a '#' that starts it or follows white
// space, as in the shell: "eth#1" stays an interface name (Linux allows
// it) while "C,... # note" carries a comment. A quoted word (a file name)
// is skipped, where words takes one: a '"' that starts a word, on a line
// that is not a change. A change has no quoted fields, and a device may
// hold '"' anywhere ("a\"b"), so there it is a letter like any other:
// whatever parses, parses the same with "  # seq 7" after it, as --watch
// prints it.
func stripComment(b []byte) []byte {
	if bytes.IndexByte(b, '#') < 0 {
		return b // the common case, found at memchr speed
	}
	change := false
	if t := trimSpace(b); len(t) > 0 {
		_, _, change = cutOp(t)
	}
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"' && !change && (i == 0 || isSpace(b[i-1])):
			// Unterminated, it quotes nothing (words refuses it
			// where a word is wanted).
			if end := quotedEnd(b[i:]); end > 0 {
				i += end - 1
			}
		case c == '#' && (i == 0 || isSpace(b[i-1])):
			return b[:i]
		}
	}
	return b
}

// cutOp recognises "X," (the op letter, optional spaces, a comma) and
// returns the op letter and the data after the comma.
func cutOp(line []byte) (op byte, rest []byte, ok bool) {
	if !isLetter(line[0]) {
		return 0, nil, false
	}
	i := 1
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	if i == len(line) || line[i] != ',' {
		return 0, nil, false
	}
	return line[0], line[i+1:], true
}

func isLetter(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

// maxFields is one more than the longest change (C,PREFIX,GATEWAY,DEV has
// three data fields) so an extra field is seen and reported.
const maxFields = 4

// splitFields splits the data of a change at commas, trimming the spaces
// around each field, into a fixed array: no allocation.
func splitFields(b []byte, f *[maxFields][]byte) int {
	n := 0
	for {
		i := bytes.IndexByte(b, ',')
		if i < 0 || n == maxFields-1 {
			f[n] = trimSpace(b)
			return n + 1
		}
		f[n] = trimSpace(b[:i])
		n++
		b = b[i+1:]
	}
}

// parseChange parses the data of a change into cmd, which is zero.
func (p *parser) parseChange(letter byte, data []byte, cmd *Command) error {
	op := opOf(letter)
	if op == 0 {
		return fmt.Errorf("unknown op %q: want C (create), U (update), D (delete) or R (replace), as in C,10.1.1.0/24,192.168.1.1,eth0", string(rune(letter)))
	}
	var f [maxFields][]byte
	n := splitFields(data, &f)
	key := f[0]
	switch {
	case len(key) == 0:
		return fmt.Errorf("%s: missing key; want %s or %s", op, usage(op, entry.Routes), usage(op, entry.MACs))
	case bytes.EqualFold(key, []byte("default")):
		// As ip route writes it: the IPv4 default, or the IPv6 one when
		// the gateway is IPv6 (ip -6 route). A D takes the IPv4 one.
		f[0] = []byte("0.0.0.0/0")
		if n > 1 && bytes.IndexByte(f[1], ':') >= 0 {
			f[0] = []byte("::/0")
		}
		fallthrough
	case bytes.IndexByte(key, '/') >= 0:
		c := entry.Change{Op: op, Table: entry.Routes}
		if err := p.parseRoute(&c, f[:n]); err != nil {
			return err
		}
		*cmd = Command{Kind: KindChange, Change: c}
		return nil
	}
	m, err := entry.ParseMACBytes(key)
	if err != nil {
		return badKey(op, key, err)
	}
	c := entry.MACChange(op, m, netip.Addr{})
	if err := parseMACData(&c, f[:n]); err != nil {
		return err
	}
	*cmd = Command{Kind: KindChange, Change: c}
	return nil
}

// badKey explains a key that is neither a prefix nor a MAC, guessing from
// its shape which one was meant.
func badKey(op entry.Op, key []byte, macErr error) error {
	if _, err := netip.ParseAddr(string(key)); err == nil {
		return fmt.Errorf("%s route: %s has no prefix length; want a prefix such as %s/%d", op, entry.QuoteInput(key), key, hostBits(key))
	}
	if looksLikeMAC(key) {
		return fmt.Errorf("%s MAC: %w", op, macErr)
	}
	return fmt.Errorf("%s: key %s is neither a prefix (10.1.1.0/24, 2001:db8::/32) nor a MAC (00:1a:2b:3c:4d:5e)", op, entry.QuoteInput(key))
}

func hostBits(addr []byte) int {
	if bytes.IndexByte(addr, ':') >= 0 {
		return 128
	}
	return 32
}

// looksLikeMAC: mostly hex digits, so a near miss (a typo, a byte too
// many) gets the MAC parser's message rather than a generic one.
func looksLikeMAC(b []byte) bool {
	hex := 0
	for _, c := range b {
		if '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f' {
			hex++
		}
	}
	return hex >= 6 && 2*hex >= len(b)
}

// usage is the syntax of a change, with an example, for error messages.
func usage(o entry.Op, t entry.Table) string {
	op := string(o.Letter())
	switch {
	case t == entry.Routes && o == entry.Delete:
		return "D,PREFIX as in D,10.1.1.0/24"
	case t == entry.Routes:
		return op + ",PREFIX,GATEWAY,DEV as in " + op + ",10.1.1.0/24,192.168.1.1,eth0"
	case o == entry.Delete:
		return "D,MAC as in D,00:1a:2b:3c:4d:5e"
	}
	return op + ",MAC,IP as in " + op + ",00:1a:2b:3c:4d:5e,10.1.1.7"
}

var routeFields = [...]string{"PREFIX", "GATEWAY", "DEV"}

// fieldCount checks that a change has exactly want fields, none empty.
func fieldCount(c *entry.Change, f [][]byte, want int, names []string) error {
	for i := 1; i < want; i++ {
		if i >= len(f) || len(f[i]) == 0 {
			return fmt.Errorf("missing %s; want %s", names[i], usage(c.Op, c.Table))
		}
	}
	if len(f) > want {
		return fmt.Errorf("unexpected field %s after %s; want %s", entry.QuoteInput(f[want]), names[want-1], usage(c.Op, c.Table))
	}
	return nil
}

// routeOps name the route changes in messages, without building a string
// on the success path.
var routeOps = [...]string{entry.Create: "create route", entry.Update: "update route", entry.Delete: "delete route", entry.Replace: "replace route"}

// parseRoute reads a route change's fields into c.
func (p *parser) parseRoute(c *entry.Change, f [][]byte) error {
	what := routeOps[c.Op]
	pfx, err := parsePrefix(f[0])
	if err != nil {
		return fmt.Errorf("%s: bad %w", what, err)
	}
	if err := entry.CheckPrefix(pfx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	c.Route.Prefix = pfx
	want := 3
	if c.Op == entry.Delete {
		want = 1
	}
	if err := fieldCount(c, f, want, routeFields[:]); err != nil {
		return fmt.Errorf("%s %s: %w", what, pfx, err)
	}
	if c.Op == entry.Delete {
		return nil
	}
	var gw netip.Addr // "-": none, a connected route
	if len(f[1]) != 1 || f[1][0] != '-' {
		if gw, err = parseAddr(f[1]); err != nil {
			return fmt.Errorf("%s %s: bad gateway %w (or - for a connected route)", what, pfx, err)
		}
		if err := entry.CheckIP(gw); err != nil {
			return fmt.Errorf("%s %s: %w: %w", what, pfx, entry.ErrBadGateway, err)
		}
		if gw.Is4() != pfx.Addr().Is4() {
			return fmt.Errorf("%s %s: %w %s is IPv%d, the prefix is IPv%d", what, pfx, entry.ErrBadGateway, gw, family(gw), family(pfx.Addr()))
		}
		if gw.IsUnspecified() {
			gw = netip.Addr{} // "via 0.0.0.0" is connected, to Linux and here
		} else if err := entry.CheckGateway(gw); err != nil {
			return fmt.Errorf("%s %s: %w", what, pfx, err)
		}
	}
	dev, err := p.ifname(f[2])
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, pfx, err)
	}
	c.Route.Gateway, c.Route.Dev = gw, dev
	return nil
}

var macFields = [...]string{"MAC", "IP"}

// parseMACData reads a MAC change's fields after the key into c.
func parseMACData(c *entry.Change, f [][]byte) error {
	want := 2
	if c.Op == entry.Delete {
		want = 1
	}
	if err := fieldCount(c, f, want, macFields[:]); err != nil {
		return fmt.Errorf("%s MAC %s: %w", c.Op, c.MAC, err)
	}
	if c.Op == entry.Delete {
		return nil
	}
	ip, err := parseAddr(f[1])
	if err == nil {
		err = entry.CheckHostIP(ip)
	} else {
		err = fmt.Errorf("%w %w", entry.ErrBadIP, err)
	}
	if err != nil {
		return fmt.Errorf("%s MAC %s: %w", c.Op, c.MAC, err)
	}
	c.IP = ip
	return nil
}
