package proto

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"rtm/store"
	"rtm/store/entry"
)

// A client's tables, as the command language sees them: routes from its
// local copy, MAC keys from its local set, their addresses read from the
// shared store, and what only the server knows asked of the server.

// Routes returns the local copy, sorted.
func (c *Client) Routes() []entry.Route {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]entry.Route, 0, c.routes.Len())
	for r := range c.routes.All() {
		out = append(out, r)
	}
	return out
}

func (c *Client) GetRoute(p netip.Prefix) (entry.Route, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.routes.Get(p)
}

func (c *Client) MatchRoute(ip netip.Addr) (entry.Route, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.routes.Match(ip)
}

// MACs returns the keys this client was told about, sorted.
func (c *Client) MACs() []entry.MAC {
	c.mu.RLock()
	out := make([]entry.MAC, 0, c.macs.Len())
	for m := range c.macs.All() {
		out = append(out, m)
	}
	c.mu.RUnlock()
	entry.SortMACs(out)
	return out
}

// LookupMAC reads the address from the shared store: no lock, no syscall.
func (c *Client) LookupMAC(m entry.MAC) (netip.Addr, error) {
	ip, err := c.reader.Load().Lookup(m)
	if err != nil {
		return ip, &entry.KeyError{Table: "MAC", Key: m.String(), Err: err}
	}
	return ip, nil
}

// Reader returns the current store mapping, for bulk lookups.
func (c *Client) Reader() *store.Reader { return c.reader.Load() }

// Clients asks the server for its clients. It waits at most 10 s, and
// no longer than ctx. Like every text the server sends, the strings are
// printable (Printable): they go to a terminal.
func (c *Client) Clients(ctx context.Context) ([]ClientInfo, error) {
	var out []ClientInfo
	err := c.queryJSON(ctx, QueryClients, &out)
	for i := range out {
		printables(&out[i].Name, &out[i].State)
	}
	return out, err
}

// Info asks the server to describe itself, as Clients waits.
func (c *Client) Info(ctx context.Context) (ServerInfo, error) {
	var out ServerInfo
	err := c.queryJSON(ctx, QueryInfo, &out)
	printables(&out.Name, &out.Version, &out.Socket, &out.Store, &out.StoreState)
	return out, err
}

// ServerStats asks the server for its counters, as Clients waits.
func (c *Client) ServerStats(ctx context.Context) ([]Stat, error) {
	var out []Stat
	err := c.queryJSON(ctx, QueryStats, &out)
	for i := range out {
		printables(&out[i].Name)
	}
	return out, err
}

// printables makes each string printable in place.
func printables(ss ...*string) {
	for _, s := range ss {
		*s = Printable([]byte(*s))
	}
}

// Sync asks the server to wait until every client has applied every
// change published so far, as the server's own Sync does, for as long as
// ctx allows (DefaultSyncWait without a deadline). When the server's
// wait ends first, the error names the clients behind and wraps
// context.DeadlineExceeded.
func (c *Client) Sync(ctx context.Context) error {
	wait := DefaultSyncWait
	if d, ok := ctx.Deadline(); ok {
		wait = time.Until(d)
	}
	arg := binary.LittleEndian.AppendUint64(nil, uint64(max(wait, 0)))
	// The server answers when its own wait ends: give the answer a moment
	// to arrive before the local wait gives up.
	qctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wait+syncGrace)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cancel() // interrupted: stop waiting at once
		}
	})
	defer stop()
	_, err := c.query(qctx, QuerySync, arg)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded):
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		return &waitError{what: fmt.Sprintf("no answer from the server (waited %v more for it)", syncGrace), err: err}
	case errors.Is(err, ErrNoReply):
		if qe := c.quit.Load(); qe != nil {
			// The server quit as it waited: its goodbye says why.
			return qe
		}
		return fmt.Errorf("sync: %w", err)
	}
	return &waitError{what: err.Error(), err: context.DeadlineExceeded}
}

// DefaultSyncWait bounds a sync whose context has no deadline.
const DefaultSyncWait = 10 * time.Second

// syncGrace is how long past its wait a sync waits for the server's
// answer, which it sends as its own wait ends: a server that is stopped
// or hung would otherwise hold a `sync 2s` for 12 s.
const syncGrace = time.Second

// Stats returns the session's counters.
func (c *Client) Stats() []Stat {
	c.mu.RLock()
	routes, macs := c.routes.Len(), c.macs.Len()
	c.mu.RUnlock()
	st := &c.stats
	return c.extra.append([]Stat{
		{"routes", uint64(routes)},
		{"macs", uint64(macs)},
		{"applied", c.applied.Load()},
		{"packets_received", st.packets.Load()},
		{"records_received", st.records.Load()},
		{"snapshots", st.snapshots.Load()},
		{"reconnects", st.reconnects.Load()},
		{"gaps_detected", st.gaps.Load()},
		{"resyncs_requested", st.resyncs.Load()},
	})
}

// AddStats adds the counters f returns, their names prefixed, to Stats.
func (c *Client) AddStats(prefix string, f func() []Stat) { c.extra.add(prefix, f) }

// SyncLocal waits until this client has applied every change the server
// had published when the call began (`sync local` at a client).
func (c *Client) SyncLocal(ctx context.Context) error {
	token := c.pingSeq.Add(1)
	ch := make(chan uint64, 1)
	c.pongMu.Lock()
	c.pongs[token] = ch
	c.pongMu.Unlock()
	defer func() {
		c.pongMu.Lock()
		delete(c.pongs, token)
		c.pongMu.Unlock()
	}()
	var body [8]byte
	binary.LittleEndian.PutUint64(body[:], token)
	if err := c.send(ctx, Header{Kind: KindPing}, body[:]); err != nil {
		return fmt.Errorf("ask the server: %w", err)
	}
	var target uint64
	select {
	case target = <-ch:
	case <-ctx.Done():
		return &waitError{what: "no answer from the server", err: ctx.Err()}
	case <-c.done:
		return c.ended()
	}
	// A gap is noticed when the next change arrives; if the lost change
	// was the last one, nothing arrives. No progress for a while towards
	// a target the server has already passed means exactly that: resync.
	c.syncWaiters.Add(1)
	defer c.syncWaiters.Add(-1)
	stall := time.NewTimer(stallResync)
	defer stall.Stop()
	last, asked := c.applied.Load(), false
	for {
		wake := c.progress.wait()
		now := c.applied.Load()
		if now >= target {
			return nil
		}
		if now != last {
			last = now
			stall.Reset(stallResync)
		}
		select {
		case <-ctx.Done():
			return &waitError{what: fmt.Sprintf("this client is at change %d of %d", c.applied.Load(), target), err: ctx.Err()}
		case <-c.done:
			return c.ended()
		case <-wake:
		case <-stall.C:
			if !asked {
				c.stats.gaps.Add(1)
				c.opts.Logf("no change since %d while the server is at %d: asking for a fresh snapshot", now, target)
				c.Resync()
				asked = true
			}
		}
	}
}

// stallResync is how long a sync waits without progress before it
// assumes a lost change and asks for a fresh snapshot.
const stallResync = 500 * time.Millisecond
