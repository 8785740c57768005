package proto

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Requests: a client asks the server to run command lines — its changes,
// and the questions only the server can answer (show clients, show info).
// The server runs them on the same path as lines typed at its prompt, one
// request after another, and answers each with a reply. A client keeps
// several requests in flight, so a script piped through it costs no round
// trip per line.
//
//	request  seq = request id, count = lines, FlagBail
//	         body: epoch (8) | the lines, each ending in '\n'
//	reply    seq = request id, FlagMore on every packet but the last
//	         body, over one or more packets:
//	         published (8) | ran (4) | skipped (1) | failures (4) |
//	         per failure: line (4) | length (4) | message | then the output
//
// With FlagBail a request stops at its first failing line, and the server
// skips the later requests of the same epoch: a replay that stops at its
// first error applies nothing after it, however many requests were in
// flight. A new epoch (a new replay, a new line at the prompt) runs again.

// maxReply bounds what a client reassembles of one reply.
const maxReply = 64 << 20

// Commands runs the command lines of a client's requests. The server
// gets one per client, from ServerOptions.Commands, and calls it from
// that client's reader goroutine only.
type Commands interface {
	// RunRemote runs lines (each ending in '\n') in order, writing their
	// output to w. After each line it calls after with the line's index
	// and error, and stops when after returns false.
	RunRemote(lines []byte, w io.Writer, after func(i int, err error) bool)
}

// Failure is a line of a request that failed.
type Failure struct {
	Line int    // index of the line in the request, from 0
	Msg  string // the error, as the server's prompt would print it
}

// Reply is the server's answer to a request.
type Reply struct {
	Published uint64 // the server's last change once the request ran
	Ran       int    // lines run, failed ones included
	Skipped   bool   // not run: an earlier request of its epoch failed
	Failures  []Failure
	Output    []byte
	// Err says the request got no reply: the connection was lost first,
	// and its changes may or may not have been applied.
	Err error
}

// ErrNoReply is wrapped by Reply.Err.
var ErrNoReply = errors.New("the server went away before it answered")

func encodeReply(r *Reply) []byte {
	b := binary.LittleEndian.AppendUint64(nil, r.Published)
	b = binary.LittleEndian.AppendUint32(b, uint32(r.Ran))
	skipped := byte(0)
	if r.Skipped {
		skipped = 1
	}
	b = append(b, skipped)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Failures)))
	for _, f := range r.Failures {
		b = binary.LittleEndian.AppendUint32(b, uint32(f.Line))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(f.Msg)))
		b = append(b, f.Msg...)
	}
	return append(b, r.Output...)
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
		line, size := binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:])
		if uint64(len(b)-8) < uint64(size) {
			return r, fmt.Errorf("%w: reply failure message cut short", ErrMalformed)
		}
		r.Failures = append(r.Failures, Failure{Line: int(line), Msg: string(b[8 : 8+size])})
		b = b[8+size:]
	}
	r.Output = b
	return r, nil
}

// request runs a client's request and replies. It runs in the client's
// reader goroutine, so a client's requests run in the order it sent them,
// interleaved with every other change on the server's mutex.
func (c *serverConn) request(h Header, body []byte) error {
	if len(body) < 8 {
		return fmt.Errorf("%w: request of %d bytes", ErrProtocol, len(body))
	}
	epoch, lines := binary.LittleEndian.Uint64(body), body[8:]
	if bytes.Count(lines, []byte{'\n'}) != int(h.Count) || len(lines) > 0 && lines[len(lines)-1] != '\n' {
		return fmt.Errorf("%w: request says %d lines", ErrProtocol, h.Count)
	}
	bail := h.Flags&FlagBail != 0
	var r Reply
	if bail && c.failedEpoch == epoch && epoch != 0 {
		r.Skipped = true
	} else {
		r = c.run(lines, bail)
		if bail && len(r.Failures) > 0 {
			c.failedEpoch = epoch
		}
	}
	r.Published = c.s.log.published.Load()
	return c.reply(h.Seq, encodeReply(&r))
}

// run runs the lines of a request, at most one failure if bail.
func (c *serverConn) run(lines []byte, bail bool) Reply {
	var r Reply
	if c.commands == nil {
		if c.s.opts.Commands == nil {
			r.Failures = []Failure{{Line: 0, Msg: "this server runs no commands for its clients"}}
			return r
		}
		c.commands = c.s.opts.Commands(c.origin)
	}
	var out bytes.Buffer
	c.commands.RunRemote(lines, &out, func(i int, err error) bool {
		r.Ran++
		if err != nil {
			r.Failures = append(r.Failures, Failure{Line: i, Msg: err.Error()})
			if bail {
				return false
			}
		}
		if out.Len() > maxReply/2 {
			r.Failures = append(r.Failures, Failure{Line: i, Msg: fmt.Sprintf("output of more than %d bytes: ask for less", maxReply/2)})
			out.Reset()
			return false
		}
		return true
	})
	r.Output = out.Bytes()
	return r
}

// reply sends an encoded reply in as many packets as it takes. The
// client's writer goroutine sends on the same socket; each packet goes
// out whole.
func (c *serverConn) reply(id uint64, b []byte) error {
	const room = MaxPacket - HeaderSize
	for {
		h := Header{Kind: KindReply, Seq: id}
		n := len(b)
		if n > room {
			n, h.Flags = room, FlagMore
		}
		if err := writePacket(c.uc, h, b[:n]); err != nil {
			return err
		}
		if b = b[n:]; len(b) == 0 {
			return nil
		}
	}
}

// requests is the client's side: the requests in flight and the reply
// being reassembled.
type requests struct {
	mu      sync.Mutex
	next    uint64
	pending map[uint64]chan Reply
	partial []byte // the reply arriving in several packets
}

// Request sends n command lines (each ending in '\n') for the server to
// run in order, and returns the channel its Reply will arrive on. With
// bail, the request stops at its first failure and the server skips the
// later requests of the same epoch. Requests go out in the order they
// are made; it does not wait for the reply.
func (c *Client) Request(epoch uint64, lines []byte, n int, bail bool) (<-chan Reply, error) {
	if len(lines)+8 > MaxPacket-HeaderSize {
		return nil, fmt.Errorf("request of %d bytes: at most %d fit in a packet", len(lines), MaxPacket-HeaderSize-8)
	}
	ch := make(chan Reply, 1)
	c.req.mu.Lock()
	c.req.next++
	id := c.req.next
	if c.req.pending == nil {
		c.req.pending = make(map[uint64]chan Reply)
	}
	c.req.pending[id] = ch
	c.req.mu.Unlock()
	h := Header{Kind: KindRequest, Count: uint32(n), Seq: id}
	if bail {
		h.Flags = FlagBail
	}
	body := binary.LittleEndian.AppendUint64(make([]byte, 0, 8+len(lines)), epoch)
	body = append(body, lines...)
	ctx, cancel := context.WithTimeout(context.Background(), askTimeout)
	defer cancel()
	if err := c.send(ctx, h, body); err != nil {
		c.req.mu.Lock()
		delete(c.req.pending, id)
		c.req.mu.Unlock()
		return nil, fmt.Errorf("send to the server: %w", err)
	}
	return ch, nil
}

// Run sends one command line and waits for the server's answer: its
// output, or its failure as the server phrased it.
func (c *Client) Run(ctx context.Context, line string) ([]byte, error) {
	ch, err := c.Request(0, []byte(line+"\n"), 1, false)
	if err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		switch {
		case r.Err != nil:
			return nil, r.Err
		case len(r.Failures) > 0:
			return r.Output, errors.New(r.Failures[0].Msg)
		}
		return r.Output, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// gotReply takes one reply packet.
func (c *Client) gotReply(h Header, body []byte) error {
	q := &c.req
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.partial)+len(body) > maxReply {
		return fmt.Errorf("%w: reply larger than %d bytes", ErrProtocol, maxReply)
	}
	q.partial = append(q.partial, body...)
	if h.Flags&FlagMore != 0 {
		return nil
	}
	r, err := decodeReply(q.partial)
	q.partial = nil
	if err != nil {
		return err
	}
	r.Output = bytes.Clone(r.Output)
	ch := q.pending[h.Seq]
	if ch == nil {
		return fmt.Errorf("%w: reply to request %d, which is not pending", ErrProtocol, h.Seq)
	}
	delete(q.pending, h.Seq)
	ch <- r
	return nil
}

// failRequests answers every request in flight when the connection is
// lost: their replies will never come.
func (c *Client) failRequests(cause error) {
	q := &c.req
	q.mu.Lock()
	defer q.mu.Unlock()
	q.partial = nil
	for id, ch := range q.pending {
		ch <- Reply{Err: fmt.Errorf("%w (%v): its changes may or may not have been applied", ErrNoReply, cause)}
		delete(q.pending, id)
	}
}

// CatchUp waits until this client has applied every change up to seq:
// after a reply, the changes it made are in the client's own tables.
func (c *Client) CatchUp(ctx context.Context, seq uint64) error {
	c.syncWaiters.Add(1)
	defer c.syncWaiters.Add(-1)
	for {
		wake := c.progress.wait()
		if c.applied.Load() >= seq {
			return nil
		}
		select {
		case <-ctx.Done():
			return &waitError{what: fmt.Sprintf("this client is at change %d of %d", c.applied.Load(), seq), err: ctx.Err()}
		case <-c.done:
			return errors.New("the session ended")
		case <-wake:
		}
	}
}
