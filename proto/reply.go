package proto

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Requests and queries: a client asks the server to apply its changes,
// or asks what only the server knows (its clients, its counters, a sync
// of every client). The server answers each with a reply. A client keeps
// several requests in flight, so a script piped through it costs no round
// trip per line.
//
//	request  seq = request id, count = changes, FlagBail
//	         body: epoch (8) | the changes, as records with their values
//	query    seq = request id; body: the Query (1) | its argument
//	reply    seq = request id, FlagMore on every packet but the last
//	         body, over one or more packets:
//	         published (8) | ran (4) | skipped (1) | failures (4) |
//	         per failure: index (4) | length (4) | message | then the output
//
// With FlagBail a request stops at its first failing change, and the
// server skips the later requests of the same epoch: a replay that stops
// at its first error applies nothing after it, however many requests were
// in flight. A new epoch (a new replay, a new line at the prompt) runs
// again.

// Query is a question a client asks the server.
type Query byte

const (
	QueryClients Query = 'c' // the connected clients, as JSON []ClientInfo
	QueryInfo    Query = 'i' // the server, as JSON ServerInfo
	QueryStats   Query = 's' // its counters, as JSON []Stat
	// QuerySync waits until every client has applied every change
	// published when it arrived, for at most the timeout in its argument
	// (8 bytes, nanoseconds).
	QuerySync Query = 'y'
)

// maxReply bounds what a client reassembles of one reply.
const maxReply = 64 << 20

// Failure is a change of a request that the server refused, or a query
// it could not answer.
type Failure struct {
	Index int    // of the change in the request, from 0
	Msg   string // why, without the key: entry.Reason
}

// Reply is the server's answer to a request or a query.
type Reply struct {
	Published uint64 // the server's last change once the request ran
	Ran       int    // changes tried, refused ones included
	Skipped   bool   // not run: an earlier request of its epoch failed
	Failures  []Failure
	Output    []byte // a query's answer
	// Conn is the connection the reply came on, for CatchUp.
	Conn uint64
	// Err says the request got no reply: the connection was lost first,
	// and its changes may or may not have been applied.
	Err error
}

func encodeReply(r *Reply) []byte {
	b := appendReplyHead(nil, r.Published, r.Ran, r.Skipped, len(r.Failures))
	for _, f := range r.Failures {
		b = appendFailure(b, f.Index, f.Msg)
	}
	return append(b, r.Output...)
}

// replyHeadSize is the size of what appendReplyHead appends.
const replyHeadSize = 8 + 4 + 1 + 4

// appendReplyHead appends what comes before a reply's failures.
func appendReplyHead(b []byte, published uint64, ran int, skipped bool, failures int) []byte {
	b = binary.LittleEndian.AppendUint64(b, published)
	b = binary.LittleEndian.AppendUint32(b, uint32(ran))
	s := byte(0)
	if skipped {
		s = 1
	}
	b = append(b, s)
	return binary.LittleEndian.AppendUint32(b, uint32(failures))
}

// appendFailure appends one of a reply's failures.
func appendFailure(b []byte, index int, msg string) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(index))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(msg)))
	return append(b, msg...)
}

// fits checks a reply against its request of n changes (0 for a query):
// it ran at most n, and its failures name changes of the request, each
// once and in order, as the server makes them. A reply that names others
// would have the client answer for lines it never sent.
func (r *Reply) fits(n int) error {
	if r.Ran > n {
		return fmt.Errorf("%w: a reply says %d changes ran of a request of %d", ErrProtocol, r.Ran, n)
	}
	next := 0
	for _, f := range r.Failures {
		// A query's failure, or a refused request's, is change 0.
		if f.Index < next || f.Index >= max(n, 1) {
			return fmt.Errorf("%w: a reply names change %d of a request of %d", ErrProtocol, f.Index, n)
		}
		next = f.Index + 1
	}
	return nil
}

// Printable is text a peer sent, to be shown to a user: what does not
// print as itself (control and format characters, such as U+202E that
// turns the text after it around; bytes that are not UTF-8) is written
// as Go escapes. rtm's own messages quote what
// they name, so they come through as they are.
func Printable(b []byte) string {
	for _, r := range string(b) {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			q := strconv.QuoteToGraphic(string(b))
			return q[1 : len(q)-1]
		}
	}
	return string(b)
}

func decodeReply(b []byte) (Reply, error) {
	var r Reply
	if len(b) < 17 {
		return r, fmt.Errorf("%w: reply of %d bytes", ErrMalformed, len(b))
	}
	r.Published = binary.LittleEndian.Uint64(b)
	r.Ran = int(binary.LittleEndian.Uint32(b[8:]))
	r.Skipped = b[12] == 1
	n := binary.LittleEndian.Uint32(b[13:])
	b = b[17:]
	for range n {
		if len(b) < 8 {
			return r, fmt.Errorf("%w: reply failure cut short", ErrMalformed)
		}
		index, size := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
		if uint64(len(b)-8) < uint64(size) {
			return r, fmt.Errorf("%w: reply failure message cut short", ErrMalformed)
		}
		r.Failures = append(r.Failures, Failure{Index: int(index), Msg: Printable(b[8 : 8+size])})
		b = b[8+size:]
	}
	r.Output = b
	return r, nil
}
