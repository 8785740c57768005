package kernel

import (
	"net/netip"
	"time"
)

// On every connection zebra sends its whole table again (dplane_fpm_nl.c:
// fpm_lsp_reset, fpm_nhg_reset, fpm_rib_reset, each followed by a walk):
// first every nexthop object, then every route it selected, table by
// table, each once, then its live changes. Nothing in the stream marks
// where the walk ends, and live changes interleave with it. rtm's rule:
//
//	The replay is over once ReplayQuiet has passed (3 s by default)
//	without a frame that names a route or nexthop object not yet named
//	on this connection, or with fewer than replayTrickle such frames.
//
// Every frame of the walk names one it has not named before; the walk
// stops between frames only when zebra's 1 MiB output buffer is full,
// for 1 s (fpm_rib_send), so while it runs it names thousands a second.
// Live changes to what was already named, however frequent, do not hold
// the replay open; nor do prefixes announced for the first time at the
// pace of live changes, which on a busy network come every few seconds
// and would otherwise hold it open for as long as they come. When it is
// over, the routes and objects rtm holds from before the connection that
// zebra did not name are removed: rtm then equals zebra's table. Until
// then they stay, so a reconnecting zebra never makes routes flap.

// replayTrickle is how many frames naming something new a quiet time
// may hold and still be live changes, not zebra's walk.
const replayTrickle = 32

// replayClock tells when a replay is over (the rule above).
type replayClock struct {
	quiet    time.Duration
	lastNew  time.Time // the last frame that named something new
	since    time.Time // the start of the current quiet time
	inWindow int       // frames since then that named something new
}

func newReplayClock(quiet time.Duration, now time.Time) *replayClock {
	return &replayClock{quiet: quiet, lastNew: now, since: now}
}

// named counts n frames, read at now, that named something new.
func (r *replayClock) named(now time.Time, n int) {
	if n > 0 {
		r.lastNew = now
		r.inWindow += n
	}
}

// over says whether the replay is over at now. A quiet time that passed
// busier than a trickle starts the next.
func (r *replayClock) over(now time.Time) bool {
	if now.Sub(r.lastNew) >= r.quiet {
		return true
	}
	if now.Sub(r.since) >= r.quiet {
		if r.inWindow < replayTrickle {
			return true
		}
		r.since, r.inWindow = now, 0
	}
	return false
}

// deadline is when over is next worth asking: a read waits until then.
func (r *replayClock) deadline() time.Time {
	d := r.lastNew.Add(r.quiet)
	if w := r.since.Add(r.quiet); w.Before(d) {
		d = w
	}
	return d
}

// replay is what an FPMImporter tracks of zebra's replay on one
// connection.
type replay struct {
	stale   map[netip.Prefix]bool // routes held from before, not named yet
	staleNH map[uint32]bool       // likewise, nexthop objects
	named   map[tableKey]bool     // routes named on this connection, any table
	namedNH map[uint32]bool
}

// tableKey is a route's key in zebra: its table and prefix.
type tableKey struct {
	table  uint32
	prefix netip.Prefix
}

// newReplay starts tracking a replay: everything v holds is stale until
// named.
func newReplay(v *routeView) *replay {
	r := &replay{
		stale:   make(map[netip.Prefix]bool, len(v.cands)),
		staleNH: make(map[uint32]bool, len(v.nexthops)),
		named:   map[tableKey]bool{},
		namedNH: map[uint32]bool{},
	}
	for p := range v.cands {
		r.stale[p] = true
	}
	for id := range v.nexthops {
		r.staleNH[id] = true
	}
	return r
}

// route records that a frame named route k, of the view's table if
// inView; it reports whether k is new on this connection.
func (r *replay) route(k tableKey, inView bool) bool {
	if inView {
		delete(r.stale, k.prefix)
	}
	if r.named[k] {
		return false
	}
	r.named[k] = true
	return true
}

// nexthop records that a frame named object id.
func (r *replay) nexthop(id uint32) bool {
	delete(r.staleNH, id)
	if r.namedNH[id] {
		return false
	}
	r.namedNH[id] = true
	return true
}

// end removes from v what the replay did not name, and returns the
// prefixes of the routes rtm held of that: a route rtm could not take (a
// blackhole, say) goes from the view without a word.
func (r *replay) end(v *routeView) (removed []netip.Prefix) {
	for p := range r.stale {
		if _, ok := v.cands[p]; ok {
			v.setCands(p, nil)
			if _, held := v.routes[p]; held {
				removed = append(removed, p)
			}
		}
	}
	for id := range r.staleNH {
		v.deleteNexthop(id)
	}
	return removed
}
