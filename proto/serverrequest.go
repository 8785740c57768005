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
// it) and waits for its answer to be written, so each client has one at
// most: a client that sends syncs and never reads its answers holds up
// its own reader, not a goroutine and a packet for each sync.
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
		if c.syncCancel != nil {
			c.syncCancel()
			<-c.syncDone
		}
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		done := make(chan struct{})
		c.syncCancel, c.syncDone = cancel, done
		go func() {
			defer close(done)
			c.sync(ctx, cancel, h.Seq)
		}()
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
		select {
		case <-c.quit:
			// Cut short by the quit, not timed out: the goodbye that
			// follows ends the client's wait and says why.
			return
		default:
		}
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
	if bail {
		n = min(n, 1)
	}
	msg := entry.Reason(c.origin.refusal)
	left := replyHeadSize + int(n)*(8+len(msg))
	buf := make([]byte, 0, MaxPacket+8+len(msg))
	out := appendReplyHead(buf, c.s.log.published.Load(), int(n), false, int(n))
	var err error
	for i := range int(n) {
		if out, err = c.writeReply(id, appendFailure(out, i, msg), &left, false); err != nil {
			return err
		}
		out = append(buf[:0], out...) // what is left of a packet, to the front
	}
	_, err = c.writeReply(id, out, &left, true)
	return err
}

// reply sends an encoded reply in as many packets as it takes. The
// client's writer goroutine sends on the same socket; each packet goes
// out whole.
func (c *serverConn) reply(id uint64, r *Reply) error {
	b := encodeReply(r)
	left := len(b)
	_, err := c.writeReply(id, b, &left, true)
	return err
}

// writeReply writes out, the next bytes of reply id, of which left are
// not written yet: every full packet of it, and with last the rest; all
// but the reply's last packet are marked FlagMore. It returns what of out
// it did not write.
func (c *serverConn) writeReply(id uint64, out []byte, left *int, last bool) ([]byte, error) {
	const room = MaxPacket - HeaderSize
	for len(out) >= room || last && len(out) > 0 {
		k := min(len(out), room)
		h := Header{Kind: KindReply, Seq: id}
		if *left -= k; *left > 0 {
			h.Flags = FlagMore
		}
		if err := c.answer(h, out[:k]); err != nil {
			return out, err
		}
		out = out[k:]
	}
	return out, nil
}
