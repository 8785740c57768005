package proto

import (
	"context"
	"errors"
	"net/netip"

	"rtm/proto/kernel"
	"rtm/store/entry"
)

// The kernel bridge on both sides of the wire: a server whose tables
// follow its kernel (rtm server --from-kernel), and a client that
// programs what it receives into its own kernel (rtm client --to-kernel).
// The rules are package kernel's.

// ImportKernel makes the kernel of this process's network namespace a
// source of changes: it dumps the kernel's routes and neighbours into the
// tables, then follows them until ctx ends. The changes go through the
// same path as every other, counted as changes_from_kernel; the
// importer's counters appear in show stats as kernel_*. It returns once
// the first dump is in.
func (s *Server) ImportKernel(ctx context.Context, o kernel.ImporterOptions) (*kernel.Importer, error) {
	im, err := kernel.NewImporter(kernelSink{s.Origin("kernel")}, o)
	if err != nil {
		return nil, err
	}
	s.AddStats("kernel_", func() []Stat { return kernelStats(im.Stats()) })
	errc := make(chan error, 1)
	go func() { errc <- im.Run(ctx) }()
	select {
	case <-im.Ready():
		go func() {
			if err := <-errc; err != nil {
				s.opts.Logf("kernel import stopped: %v", err)
			}
		}()
		return im, nil
	case err := <-errc:
		im.Close()
		if err == nil {
			err = errors.New("stopped before its first dump")
		}
		return nil, err
	}
}

// kernelSink is the importer's way into the tables.
type kernelSink struct{ o *Origin }

func (k kernelSink) SetRoute(r entry.Route) error { return k.o.ReplaceRoute(r) }
func (k kernelSink) DeleteRoute(p netip.Prefix) error {
	return ignoreNotFound(k.o.DeleteRoute(p))
}
func (k kernelSink) SetMAC(m entry.MAC, ip netip.Addr) error { return k.o.ReplaceMAC(m, ip) }
func (k kernelSink) DeleteMAC(m entry.MAC) error             { return ignoreNotFound(k.o.DeleteMAC(m)) }

func ignoreNotFound(err error) error {
	if errors.Is(err, entry.ErrNotFound) {
		return nil
	}
	return err
}

func kernelStats(ks []kernel.Stat) []Stat {
	out := make([]Stat, len(ks))
	for i, k := range ks {
		out[i] = Stat{k.Name, k.Value}
	}
	return out
}

// install gives the installer what the client applied: the whole tables
// after a snapshot, the changes after a batch.
func (c *Client) installSnapshot() {
	c.mu.RLock()
	routes := make([]entry.Route, 0, c.routes.Len())
	for r := range c.routes.Range() {
		routes = append(routes, r)
	}
	keys := make([]entry.MAC, 0, c.macs.Len())
	for m := range c.macs.All() {
		keys = append(keys, m)
	}
	c.mu.RUnlock()
	r := c.reader.Load()
	macs := make([]kernel.MACEntry, 0, len(keys))
	for _, m := range keys {
		if ip, err := r.Lookup(m); err == nil {
			macs = append(macs, kernel.MACEntry{MAC: m, IP: ip})
		}
	}
	if err := c.opts.Install.Reconcile(routes, macs); err != nil {
		c.opts.Logf("kernel: %v", err)
	}
}

func (c *Client) installChanges(changes []Change) {
	kc := make([]kernel.Change, 0, len(changes))
	for _, ch := range changes {
		switch ch.Op {
		case OpRouteCreate, OpRouteUpdate:
			kc = append(kc, kernel.Change{Op: kernel.OpSetRoute, Route: ch.Route})
		case OpRouteDelete:
			kc = append(kc, kernel.Change{Op: kernel.OpDeleteRoute, Route: ch.Route})
		case OpMACCreate, OpMACUpdate:
			if ch.IP.IsValid() { // else gone again: its delete follows
				kc = append(kc, kernel.Change{Op: kernel.OpSetMAC, MAC: ch.MAC, IP: ch.IP})
			}
		case OpMACDelete:
			kc = append(kc, kernel.Change{Op: kernel.OpDeleteMAC, MAC: ch.MAC})
		case OpFlush:
			if ch.Flush&FlushRoutes != 0 {
				kc = append(kc, kernel.Change{Op: kernel.OpFlushRoutes})
			}
			if ch.Flush&FlushMACs != 0 {
				kc = append(kc, kernel.Change{Op: kernel.OpFlushMACs})
			}
		}
	}
	if err := c.opts.Install.Apply(kc); err != nil {
		c.opts.Logf("kernel: %v", err)
	}
}
