package proto

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"rtm/store/entry"
)

// Version is the protocol version carried in every packet header. A peer
// speaking another version is refused at hello time. Version 2 added
// connected routes and the requests a client sends for the server to run;
// version 3 made a record an entry.Change and a request a batch of them.
const Version = 3

// The packet header, 16 bytes, little-endian:
//
//	0  'R'       magic, so a stray writer is caught at once
//	1  version
//	2  kind      packet kind (Kind)
//	3  flags     Flag* below (FlagSnapshot on batches of a snapshot, ...)
//	4  count     records in a batch or a request; in snapshot-end, the
//	             changes the log held past it; 0 for other kinds
//	8  seq       kind-dependent: first change of a batch, snapshot sequence,
//	             acknowledged sequence, server's sequence in welcome/pong,
//	             request id in request, reply and query
//
// A payload follows: records for a batch, a small body for the others.
const (
	HeaderSize = 16
	magic      = 'R'

	// MaxPacket bounds every packet in both directions. Larger batches are
	// split; a larger packet from a peer is a protocol error.
	MaxPacket = 64 << 10
)

// Kind is the type of a packet.
type Kind uint8

const (
	KindHello         Kind = 1  // client → server: name
	KindWelcome       Kind = 2  // server → client: store path and generation; seq = server's sequence
	KindSnapshotBegin Kind = 3  // server → client: body = route count, MAC count (u64 each); snapshot batches follow, and the tables are replaced at snapshot-end
	KindBatch         Kind = 4  // server → client: records
	KindSnapshotEnd   Kind = 5  // server → client: seq = last change the snapshot contains; count = changes the log held past it
	KindAck           Kind = 6  // client → server: seq = last change applied
	KindShutdown      Kind = 7  // server → client: server is quitting; body = reason
	KindError         Kind = 8  // either way: body = message; the sender closes
	KindResync        Kind = 9  // client → server: send me a fresh snapshot
	KindPing          Kind = 10 // client → server: body = 8-byte token, which the pong echoes
	KindPong          Kind = 11 // server → client: seq = server's sequence when the ping arrived; body = the ping's token
	KindRequest       Kind = 12 // client → server: seq = request id; changes to apply (reply.go)
	KindReply         Kind = 13 // server → client: seq = request id; the outcome (reply.go)
	KindQuery         Kind = 14 // client → server: seq = request id; a question only the server answers (reply.go)
)

var kindNames = [...]string{
	KindHello: "hello", KindWelcome: "welcome", KindSnapshotBegin: "snapshot-begin",
	KindBatch: "batch", KindSnapshotEnd: "snapshot-end", KindAck: "ack", KindShutdown: "shutdown",
	KindError: "error", KindResync: "resync", KindPing: "ping", KindPong: "pong",
	KindRequest: "request", KindReply: "reply", KindQuery: "query",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Header flags.
const (
	// FlagSnapshot marks a batch whose records belong to a snapshot: they
	// carry no sequence numbers.
	FlagSnapshot = 1
	// FlagBail marks a request that stops at its first failure, and is
	// skipped if an earlier request of its epoch failed.
	FlagBail = 2
	// FlagMore marks a reply packet that the next one continues.
	FlagMore = 4
	// FlagQueryOnly marks the hello of a connection that only asks
	// queries (Ask): it gets no snapshot and no changes, and is no client
	// in show clients.
	FlagQueryOnly = 8
	// FlagRetry marks a refusal that may pass later (the server was
	// full): a client that waits for the server tries again.
	FlagRetry = 16
	// FlagFinal marks a goodbye after which the server applies none of
	// the client's requests, having answered every one it applied before
	// it: the requests a client has no answer to were not applied.
	FlagFinal = 32
)

// Header is the decoded fixed part of a packet.
type Header struct {
	Kind  Kind
	Flags uint8
	Count uint32
	Seq   uint64
}

// PutHeader writes h into b[:HeaderSize].
func PutHeader(b []byte, h Header) {
	b[0], b[1], b[2], b[3] = magic, Version, byte(h.Kind), h.Flags
	binary.LittleEndian.PutUint32(b[4:], h.Count)
	binary.LittleEndian.PutUint64(b[8:], h.Seq)
}

// ParseHeader validates and decodes the header of packet p.
func ParseHeader(p []byte) (Header, error) {
	switch {
	case len(p) < HeaderSize:
		return Header{}, fmt.Errorf("%w (%d bytes)", ErrShort, len(p))
	case len(p) > MaxPacket:
		return Header{}, fmt.Errorf("%w (%d bytes)", ErrTooLarge, len(p))
	case p[0] != magic:
		return Header{}, ErrMagic
	case p[1] != Version:
		return Header{}, fmt.Errorf("%w %d (this rtm speaks %d)", ErrVersion, p[1], Version)
	}
	return Header{
		Kind:  Kind(p[2]),
		Flags: p[3],
		Count: binary.LittleEndian.Uint32(p[4:]),
		Seq:   binary.LittleEndian.Uint64(p[8:]),
	}, nil
}

// Records are encoded as an op byte and a body. The op byte holds the
// change's entry.Op in its low four bits, its entry.Table in bits 4-5,
// and recordValue in bit 7 on a MAC record that carries its address:
//
//	route create/update/replace  fam(4|6, +famConnected) bits addr [gateway] devlen dev
//	route delete                 fam bits addr
//	MAC                          6 bytes; with recordValue: fam addr
//	flush                        nothing: the table bits say which
//
// Addresses are 4 or 16 bytes by family; a connected route has no
// gateway bytes. The fan-out sends MAC records without their address
// (the address is in the shared store); a client's request carries it.
const (
	recordOpMask    = 0x0f
	recordTableBits = 4
	recordValue     = 0x80
)

// famConnected marks a route record without a gateway.
const famConnected = 0x80

// MaxRecord is the largest encoded record (an IPv6 route, 15-byte dev).
const MaxRecord = 1 + 2 + 16 + 16 + 1 + entry.IfNameMax

// AppendChange appends c as one record. withValue puts a MAC create's,
// update's or replace's address in the record, as a request needs; the
// fan-out leaves it out.
func AppendChange(b []byte, c entry.Change, withValue bool) []byte {
	return appendChange(b, &c, withValue)
}

// appendChange is AppendChange without copying the change.
func appendChange(b []byte, c *entry.Change, withValue bool) []byte {
	op := byte(c.Op) | byte(c.Table)<<recordTableBits
	switch {
	case c.Op == entry.Flush:
		return append(b, op)
	case c.Table == entry.MACs:
		if withValue && c.Op != entry.Delete {
			return appendAddr(append(append(b, op|recordValue), c.MAC[:]...), c.IP, true)
		}
		return append(append(b, op), c.MAC[:]...)
	case c.Op == entry.Delete:
		return appendPrefix(append(b, op), c.Route.Prefix)
	}
	n := len(b) + 1
	b = appendPrefix(append(b, op), c.Route.Prefix)
	if c.Route.Connected() {
		b[n] |= famConnected
	} else {
		b = appendAddr(b, c.Route.Gateway, false)
	}
	b = append(b, byte(len(c.Route.Dev)))
	return append(b, c.Route.Dev...)
}

func appendPrefix(b []byte, p netip.Prefix) []byte {
	return appendAddr(append(b, family(p.Addr()), byte(p.Bits())), p.Addr(), false)
}

func family(a netip.Addr) byte {
	if a.Is4() {
		return 4
	}
	return 6
}

// appendAddr appends a's 4 or 16 bytes, after its family byte if withFamily.
func appendAddr(b []byte, a netip.Addr, withFamily bool) []byte {
	if withFamily {
		b = append(b, family(a))
	}
	if a.Is4() {
		v := a.As4()
		return append(b, v[:]...)
	}
	v := a.As16()
	return append(b, v[:]...)
}

// Decoder walks the records of one batch or request. It never panics on
// hostile input: every length is checked against what is left, and every
// change it returns passes entry.Change.CheckStored, its interface names
// entry.CheckIfName unless StoredNames (but for the address a client's
// MAC record leaves out: the store holds it). A request's changes meet
// every rule of the input when the server makes them.
type Decoder struct {
	// Values says the records are a request's: a MAC create, update or
	// replace must carry its address.
	Values bool
	// StoredNames says the records are a server's tables, whose interface
	// names are held to the rules a store's are (entry.CheckStoredIfName):
	// a store an earlier rtm left may hold names the input may not. Set
	// it before the first Reset; without it, every rule of the input
	// applies (entry.CheckIfName).
	StoredNames bool

	buf  []byte
	left uint32
	err  error
	// devs interns interface names, checked once, so a batch of routes
	// through the same few devices neither allocates nor checks a string
	// per record.
	devs entry.IfNames
}

// Reset points the decoder at the body of a batch holding count records.
func (d *Decoder) Reset(body []byte, count uint32) {
	d.buf, d.left, d.err = body, count, nil
	d.devs.Stored = d.StoredNames
}

// Next decodes the next record into c. It returns false at the end of the
// batch or on error; Err tells which.
func (d *Decoder) Next(c *entry.Change) bool {
	if d.err != nil {
		return false
	}
	if d.left == 0 {
		if len(d.buf) != 0 {
			d.err = fmt.Errorf("%w: %d bytes after the last record", ErrMalformed, len(d.buf))
		}
		return false
	}
	d.left--
	if len(d.buf) == 0 {
		d.err = fmt.Errorf("%w: batch ends before its last record", ErrMalformed)
		return false
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	*c = entry.Change{Op: entry.Op(b & recordOpMask), Table: entry.Table(b >> recordTableBits & 3)}
	switch {
	case c.Op < entry.Create || c.Op > entry.Flush || c.Table == 0 || b&0x40 != 0,
		b&recordValue != 0 && (c.Table != entry.MACs || c.Op == entry.Delete || c.Op == entry.Flush):
		d.fail(fmt.Sprintf("unknown record op %#x", b))
	case c.Op == entry.Flush:
	case c.Table == entry.MACs:
		if len(d.buf) < 6 {
			d.fail("short MAC record")
			return false
		}
		copy(c.MAC[:], d.buf)
		d.buf = d.buf[6:]
		if b&recordValue != 0 && c.Op != entry.Delete {
			if len(d.buf) < 1 || d.buf[0] != 4 && d.buf[0] != 6 {
				d.fail("bad address family")
				return false
			}
			fam := d.buf[0]
			d.buf = d.buf[1:]
			c.IP = d.addr(fam == 4)
		} else if d.Values && c.Op != entry.Delete {
			d.fail("MAC record without its address")
		}
	case c.Table != entry.Routes:
		d.fail(fmt.Sprintf("record op %#x names both tables", b))
	case c.Op == entry.Delete:
		c.Route.Prefix, _ = d.prefix(false)
	default:
		var connected bool
		c.Route.Prefix, connected = d.prefix(true)
		if !connected {
			c.Route.Gateway = d.addr(c.Route.Prefix.Addr().Is4())
		}
		c.Route.Dev = d.dev()
	}
	if d.err == nil {
		d.check(c)
	}
	return d.err == nil
}

// check is c.CheckStored() for a change the decoder built: what holds by
// construction is not checked again (a gateway's family is the prefix's,
// decoded addresses have no zone, an interned name was checked). A
// gateway refused by Check alone passes: a server may send a route an
// earlier rtm stored, and a change through one is refused by the store.
func (d *Decoder) check(c *entry.Change) {
	var err error
	switch {
	case c.Op == entry.Flush:
	case c.Table == entry.MACs:
		if c.IP.IsValid() {
			err = entry.CheckIP(c.IP)
		}
	default:
		err = entry.CheckPrefix(c.Route.Prefix)
		if gw := c.Route.Gateway; err == nil && gw.Is6() {
			err = entry.CheckIP(gw)
		}
	}
	if err != nil {
		d.err = fmt.Errorf("%w: %w", ErrMalformed, err)
	}
}

// Err returns the first decoding error, or nil after a clean end.
func (d *Decoder) Err() error { return d.err }

// prefix decodes a family, a length and an address; with connectedOK the
// family byte may carry famConnected, which is returned.
func (d *Decoder) prefix(connectedOK bool) (netip.Prefix, bool) {
	if d.err != nil || len(d.buf) < 2 {
		d.fail("short prefix")
		return netip.Prefix{}, false
	}
	fam, bits := d.buf[0], int(d.buf[1])
	connected := connectedOK && fam&famConnected != 0
	if connected {
		fam &^= famConnected
	}
	if fam != 4 && fam != 6 {
		d.fail("bad address family")
		return netip.Prefix{}, false
	}
	d.buf = d.buf[2:]
	return netip.PrefixFrom(d.addr(fam == 4), bits), connected
}

func (d *Decoder) addr(is4 bool) netip.Addr {
	if d.err != nil {
		return netip.Addr{}
	}
	if is4 {
		if len(d.buf) < 4 {
			d.fail("short IPv4 address")
			return netip.Addr{}
		}
		a := netip.AddrFrom4([4]byte(d.buf[:4]))
		d.buf = d.buf[4:]
		return a
	}
	if len(d.buf) < 16 {
		d.fail("short IPv6 address")
		return netip.Addr{}
	}
	a := netip.AddrFrom16([16]byte(d.buf[:16]))
	d.buf = d.buf[16:]
	return a
}

func (d *Decoder) dev() string {
	if d.err != nil || len(d.buf) < 1 || len(d.buf) < 1+int(d.buf[0]) {
		d.fail("short interface name")
		return ""
	}
	n := int(d.buf[0])
	raw := d.buf[1 : 1+n]
	d.buf = d.buf[1+n:]
	s, err := d.devs.Intern(raw)
	if err != nil {
		d.err = fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return s
}

func (d *Decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, what)
	}
}
