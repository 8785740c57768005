package proto

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"rtm/store/entry"
)

// The server's end of requests and queries (reply.go). Both run in the
// client's reader goroutine, so a client's requests are applied in the
// order it sent them, interleaved with every other change on the server's
// mutex; a sync waits in a goroutine of its own, so the reader goes on
// taking the acks it waits for.

// maxSyncWait bounds a client's sync: a wait is a goroutine and a timer.
const maxSyncWait = time.Hour

// request applies a client's changes and replies.
func (c *serverConn) request(h Header, body []byte) error {
	if len(body) < 8 {
		return fmt.Errorf("%w: request of %d bytes", ErrProtocol, len(body))
	}
	epoch, recs := binary.LittleEndian.Uint64(body), body[8:]
	// A malformed request changes nothing: check it whole first.
	d := Decoder{Values: true}
	d.Reset(recs, h.Count)
	var ch entry.Change
	for d.Next(&ch) {
	}
	if err := d.Err(); err != nil {
		return err
	}
	bail := h.Flags&FlagBail != 0
	var r Reply
	switch {
	case bail && c.failedEpoch == epoch && epoch != 0:
		r.Skipped = true
	case c.origin.refusal != nil:
		if bail && h.Count > 0 {
			c.failedEpoch = epoch
		}
		return c.refuseAll(h.Seq, h.Count, bail)
	default:
		d.Reset(recs, h.Count)
		c.apply(&d, bail, &r)
		if bail && len(r.Failures) > 0 {
			c.failedEpoch = epoch
		}
	}
	r.Published = c.s.log.published.Load()
	return c.reply(h.Seq, &r)
}

// apply applies the changes of d through the client's origin, at most one
// failure if bail. Like a replay, it loads the store's slots and index
// lines of a group of changes before making them, so their cache misses
// overlap, and makes them as runs under one lock (Origin.ApplyAll).
func (c *serverConn) apply(d *Decoder, bail bool, r *Reply) {
	c.origin.Hold()
	defer c.origin.Send()
	var group [applyGroup]entry.Change
	var run [applyGroup]*entry.Change
	for i := range group {
		run[i] = &group[i]
	}
	var macs [applyGroup]entry.MAC
	var prefixes [applyGroup]netip.Prefix
	for {
		n, m, p := 0, 0, 0
		for n < len(group) && d.Next(&group[n]) {
			switch g := &group[n]; {
			case g.Op == entry.Flush:
			case g.Table == entry.MACs:
				macs[m], m = g.MAC, m+1
			default:
				prefixes[p], p = g.Route.Prefix, p+1
			}
			n++
		}
		if m > 1 {
			c.s.PrefetchMACs(macs[:m])
		}
		if p > 1 {
			c.s.PrefetchRoutes(prefixes[:p])
		}
		for i := 0; i < n; {
			made, err := c.origin.ApplyAll(run[i:n])
			i, r.Ran = i+made, r.Ran+made
			if err != nil {
				r.Failures = append(r.Failures, Failure{Index: r.Ran, Msg: entry.Reason(err)})
				i, r.Ran = i+1, r.Ran+1
				if bail {
					return
				}
			}
		}
		if n < len(group) {
			return
		}
	}
}

// query answers a client's question. A sync answers from a goroutine of
// its own, when every client has caught up or the wait is over; a new
// sync of the same client ends the one before (whose client gave up on
// it), so each client has one at most.
func (c *serverConn) query(h Header, body []byte) error {
	if len(body) == 0 {
		return fmt.Errorf("%w: empty query", ErrProtocol)
	}
	var r Reply
	var v any
	switch Query(body[0]) {
	case QueryClients:
		v, _ = c.s.Clients()
	case QueryInfo:
		v, _ = c.s.Info()
	case QueryStats:
		v = c.s.Stats()
	case QuerySync:
		if len(body) != 9 {
			return fmt.Errorf("%w: sync query of %d bytes", ErrProtocol, len(body))
		}
		wait := min(time.Duration(binary.LittleEndian.Uint64(body[1:])), maxSyncWait)
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		c.syncMu.Lock()
		if c.syncCancel != nil {
			c.syncCancel()
		}
		c.syncCancel = cancel
		c.syncMu.Unlock()
		go c.sync(ctx, cancel, h.Seq)
		return nil
	default:
		return fmt.Errorf("%w: unknown query %q", ErrProtocol, body[0])
	}
	out, err := json.Marshal(v)
	if err != nil {
		r.Failures = []Failure{{Msg: err.Error()}}
	}
	r.Output = out
	return c.reply(h.Seq, &r)
}

// sync waits as the server's own sync does, until ctx ends or the
// server quits, and replies with its outcome.
func (c *serverConn) sync(ctx context.Context, cancel context.CancelFunc, id uint64) {
	defer cancel()
	go func() {
		select {
		case <-c.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	var r Reply
	if err := c.s.Sync(ctx); err != nil {
		r.Failures = []Failure{{Msg: err.Error()}}
	}
	r.Published = c.s.log.published.Load()
	c.reply(id, &r)
}

// refuseAll answers the request of a client that may only read: each of
// its n changes is refused (the first alone with bail) and none is made,
// as apply would. The answer is written as it is made, a packet at a
// time: a reader's request of 65,000 one-byte changes is an answer of
// megabytes, and a reader that never reads it would otherwise hold them
// in the server's memory for as long as it stays connected.
func (c *serverConn) refuseAll(id uint64, n uint32, bail bool) error {
	const room = MaxPacket - HeaderSize
	if bail {
		n = min(n, 1)
	}
	msg := entry.Reason(c.origin.refusal)
	left := 17 + int(n)*(8+len(msg)) // the bytes of the answer not sent yet
	out := make([]byte, 0, room+8+len(msg))
	out = binary.LittleEndian.AppendUint64(out, c.s.log.published.Load())
	out = binary.LittleEndian.AppendUint32(out, n) // ran
	out = append(out, 0)                           // not skipped
	out = binary.LittleEndian.AppendUint32(out, n) // failures
	send := func(last bool) error {
		for len(out) >= room || last && len(out) > 0 {
			k := min(len(out), room)
			h := Header{Kind: KindReply, Seq: id}
			if left -= k; left > 0 {
				h.Flags = FlagMore
			}
			if err := writePacket(c.uc, h, out[:k]); err != nil {
				return err
			}
			out = out[:copy(out, out[k:])]
		}
		return nil
	}
	for i := range n {
		out = binary.LittleEndian.AppendUint32(out, i)
		out = binary.LittleEndian.AppendUint32(out, uint32(len(msg)))
		out = append(out, msg...)
		if err := send(false); err != nil {
			return err
		}
	}
	return send(true)
}

// reply sends an encoded reply in as many packets as it takes. The
// client's writer goroutine sends on the same socket; each packet goes
// out whole.
func (c *serverConn) reply(id uint64, r *Reply) error {
	const room = MaxPacket - HeaderSize
	b := encodeReply(r)
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
