package proto

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// The client's end of requests and queries (reply.go): the requests in
// flight, the reply being reassembled, and the catch-up that follows a
// reply, so that a client sees its own changes in its own tables.

// requests is the client's side: the requests in flight and the reply
// being reassembled.
type requests struct {
	mu      sync.Mutex
	next    uint64
	pending map[uint64]pendingRequest
	partial []byte // the reply arriving in several packets
}

// pendingRequest is a request in flight: where its reply goes, and how
// many changes it sent, which the reply's counts must fit.
type pendingRequest struct {
	ch      chan Reply
	changes int
	query   bool // a question (KindQuery): it applies nothing
}

// MaxRequest is the room for changes in one request: records appended
// with AppendChange(…, true) up to this many bytes fit in its packet.
const MaxRequest = MaxPacket - HeaderSize - 8

// MaxInflight is how many full requests a client may have sent before
// the first is answered. They must fit in the socket's send buffer with
// room to spare: a send that waits for room holds the connection's write
// lock, the client's receive loop then waits on that lock to ack and
// stops reading, and the server, whose reply to an earlier request waits
// for room in this client's receive buffer, stops reading its requests.
// Neither side would move again (sixteen in flight did exactly that).
// TestInflightFitsSendBuffer checks the room on this kernel.
const MaxInflight = 4

// Request sends n changes, encoded with AppendChange(b, c, true), for
// the server to apply in order, and returns the channel its Reply will
// arrive on. With bail, the request stops at its first failure and the
// server skips the later requests of the same epoch. Requests go out in
// the order they are made; it does not wait for the reply. While the
// session reconnects it waits for the next connection until ctx ends.
func (c *Client) Request(ctx context.Context, epoch uint64, changes []byte, n int, bail bool) (<-chan Reply, error) {
	if len(changes) > MaxRequest {
		return nil, fmt.Errorf("request of %d bytes: at most %d fit in a packet", len(changes), MaxRequest)
	}
	h := Header{Kind: KindRequest, Count: uint32(n)}
	if bail {
		h.Flags = FlagBail
	}
	// The epoch goes out ahead of the changes, which are sent from where
	// they lie: a copy of each 64 KiB request into fresh memory faulted
	// 16 pages a request in a client's replay.
	var lead [8]byte
	binary.LittleEndian.PutUint64(lead[:], epoch)
	_, ch, err := c.ask(ctx, h, lead[:], changes)
	return ch, err
}

// ask sends a request or a query, lead and then body, and returns its id
// and the channel of its reply; without a connection it waits for one
// until ctx ends.
func (c *Client) ask(ctx context.Context, h Header, lead, body []byte) (uint64, <-chan Reply, error) {
	ch := make(chan Reply, 1)
	c.req.mu.Lock()
	c.req.next++
	id := c.req.next
	if c.req.pending == nil {
		c.req.pending = make(map[uint64]pendingRequest)
	}
	c.req.pending[id] = pendingRequest{ch, int(h.Count), h.Kind == KindQuery}
	c.req.mu.Unlock()
	h.Seq = id
	if err := c.sendLead(ctx, h, lead, body); err != nil {
		c.forget(id)
		return 0, nil, fmt.Errorf("send to the server: %w", err)
	}
	return id, ch, nil
}

// forget drops a request whose reply no one waits for any more; the
// reply, if it comes, is discarded.
func (c *Client) forget(id uint64) {
	c.req.mu.Lock()
	delete(c.req.pending, id)
	c.req.mu.Unlock()
}

// askTimeout bounds how long a request waits for a connection to the
// server to send on.
const askTimeout = 10 * time.Second

// query asks the server q and waits for the answer (its output), until
// ctx ends.
func (c *Client) query(ctx context.Context, q Query, arg []byte) ([]byte, error) {
	id, ch, err := c.ask(ctx, Header{Kind: KindQuery}, []byte{byte(q)}, arg)
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
		c.forget(id)
		return nil, context.Cause(ctx)
	}
}

// queryJSON asks q and decodes the JSON answer into v, waiting at most
// askTimeout, and no longer than ctx.
func (c *Client) queryJSON(ctx context.Context, q Query, v any) error {
	ctx, cancel := context.WithTimeoutCause(ctx, askTimeout, fmt.Errorf("no answer within %v", askTimeout))
	defer cancel()
	out, err := c.query(ctx, q, nil)
	if err != nil {
		return fmt.Errorf("ask the server: %w", err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("the server's answer: %w", err)
	}
	return nil
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
	p, ok := q.pending[h.Seq]
	switch {
	case ok:
		if err := r.fits(p.changes); err != nil {
			return err
		}
		delete(q.pending, h.Seq)
		r.Output = bytes.Clone(r.Output)
		r.Conn = c.connGen.Load()
		p.ch <- r
	case h.Seq == 0 || h.Seq > q.next:
		return fmt.Errorf("%w: reply to request %d, which was never sent", ErrProtocol, h.Seq)
	}
	// Else a reply no one waits for any more (an interrupted sync).
	return nil
}

// failRequests answers every request in flight when the connection is
// lost: their replies will never come. After a goodbye that says so
// (QuitError.Final) they were not applied; else nobody knows.
func (c *Client) failRequests(cause error) {
	q := &c.req
	q.mu.Lock()
	defer q.mu.Unlock()
	q.partial = nil
	err := fmt.Errorf("%w (%v)", ErrNoReply, cause)
	notApplied := err
	if qe, ok := cause.(*QuitError); ok && qe.Final {
		notApplied = fmt.Errorf("%w, %w (%w)", ErrNoReply, ErrNotApplied, qe)
	}
	for id, p := range q.pending {
		if p.query {
			p.ch <- Reply{Err: err}
		} else {
			p.ch <- Reply{Err: notApplied}
		}
		delete(q.pending, id)
	}
}

// CatchUp waits until this client has applied every change up to seq of
// connection conn (a Reply's Published and Conn): after a reply, the
// changes it made are in the client's own tables. Once that connection
// is lost there is nothing to wait for: the next one begins with a
// snapshot of whatever the server has.
func (c *Client) CatchUp(ctx context.Context, conn, seq uint64) error {
	c.syncWaiters.Add(1)
	defer c.syncWaiters.Add(-1)
	for {
		wake := c.progress.wait()
		if c.applied.Load() >= seq || c.connGen.Load() != conn {
			return nil
		}
		select {
		case <-ctx.Done():
			return &waitError{what: fmt.Sprintf("this client is at change %d of %d", c.applied.Load(), seq), err: ctx.Err()}
		case <-c.done:
			return c.ended()
		case <-wake:
		}
	}
}
