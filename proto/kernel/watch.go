package kernel

import (
	"errors"
	"os"

	"rtm/store/entry"

	"golang.org/x/sys/unix"
)

// The installer watches the kernel as well as it programs it: device
// events (devices.go) bring back the entries that waited for a device,
// and route and neighbour events tell it when an entry it installed was
// replaced by another owner's or deleted behind its back. It then no
// longer takes the key for its own: the next round adds it again with
// NLM_F_EXCL, which restores an entry someone deleted (within a moment
// of the event), takes over one that still carries rtm's mark, and
// leaves another owner's alone (counted as foreign). So an update never
// replaces an entry another owner put in its place, unless that owner
// does it in the instant before rtm's own replace reaches the kernel.

// watchKernel follows the watch socket's events until Close.
func (in *Installer) watchKernel() {
	defer in.wg.Done()
	for {
		b, err := in.watch.recv()
		if err != nil {
			select {
			case <-in.done:
				return
			default:
			}
			if errors.Is(err, os.ErrClosed) {
				return
			}
			in.stats.inc(inNetlinkErrors)
			in.mu.Lock()
			if !in.closed {
				in.logf("kernel install: events: %v; re-reading the kernel", err)
				// The events queued so far are older than the re-read,
				// which reflects them all (as Importer.reload): replayed
				// after it, a device's "down" before an "up" the overflow
				// lost forgot routes the kernel kept, and left those
				// waiting for it pending on a device that was up.
				if err := in.watch.drain(); err != nil {
					in.logf("kernel install: drain events: %v", err)
				}
				if err := in.resync(); err != nil {
					in.logf("%v", err)
				}
				in.converge()
			}
			in.mu.Unlock()
			continue
		}
		in.mu.Lock()
		if in.closed {
			in.mu.Unlock()
			return
		}
		if err := forMessages(b, in.kernelMessage); err != nil {
			in.stats.inc(inNetlinkErrors)
		}
		in.converge()
		in.mu.Unlock()
	}
}

func (in *Installer) kernelMessage(m message) error {
	switch m.typ {
	case unix.RTM_NEWLINK, unix.RTM_DELLINK:
		return in.linkMessage(m)
	case unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
		r, err := decodeRoute(m.data)
		if err == nil && (r.family == unix.AF_INET || r.family == unix.AF_INET6) {
			in.routeChanged(&r, m.typ == unix.RTM_DELROUTE)
		}
		return err
	case unix.RTM_NEWNEIGH, unix.RTM_DELNEIGH:
		n, err := decodeNeigh(m.data)
		if err == nil && n.ip.IsValid() {
			in.neighChanged(&n, m.typ == unix.RTM_DELNEIGH)
		}
		return err
	}
	return nil
}

// routeChanged takes a route event for a key of rtm's table: its own
// route deleted, or another owner's put in its place (same metric), and
// it is no longer rtm's; another owner's route gone from a prefix rtm
// waits for, and rtm tries again at once.
func (in *Installer) routeChanged(r *kroute, deleted bool) {
	k := in.key(r.dst.Addr())
	if r.table != k.table || r.metric != k.metric || r.flags&unix.RTM_F_CLONED != 0 {
		return
	}
	ours := r.protocol == k.proto
	if _, inst := in.instRoutes[r.dst]; inst && ours == deleted {
		delete(in.instRoutes, r.dst)
		in.dirtyRoutes[r.dst] = struct{}{}
		return
	}
	if pe := in.pendRoutes[r.dst]; pe != nil && pe.foreign && deleted && !ours {
		in.dirtyRoutes[r.dst] = struct{}{}
	}
}

// neighChanged is routeChanged for neighbours: rtm's entry for an IP
// deleted, or another owner's entry (or another MAC) in its place.
func (in *Installer) neighChanged(n *kneigh, deleted bool) {
	have, inst := in.instNeigh[n.ip]
	switch {
	case inst && n.ifindex != have.ifindex:
	case inst && (deleted || n.protocol != in.proto || n.llen == 6 && entry.MAC(n.lladdr) != have.mac):
		delete(in.instNeigh, n.ip)
		in.dirtyNeigh[n.ip] = struct{}{}
	case !inst && deleted && n.protocol != in.proto:
		if pe := in.pendNeigh[n.ip]; pe != nil && pe.foreign {
			in.dirtyNeigh[n.ip] = struct{}{}
		}
	}
}
