package store

import (
	"fmt"
	"net/netip"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"rtm/store/entry"
	"rtm/store/prefetch"
)

// Reader is a client's read-only mapping of a segment (PROT_READ: a
// client cannot change the store). Lookup is safe for concurrent use by
// many goroutines; Close must wait until they are done.
type Reader struct {
	path string
	mem  []byte
	hdr  *header
	macs []macSlot
	gen  uint64
	lay  layout
}

// OpenReader maps the segment at path read-only after validating its
// header and size. The file must be owner's (the server's uid) and
// writable by nobody else, else *UnsafeError: whoever else could write it
// could forge what the reader returns, or truncate it under the mapping.
func OpenReader(path string, owner int) (*Reader, error) {
	fd, _, err := openOwned(path, unix.O_RDONLY, owner)
	if err != nil {
		return nil, err
	}
	defer closeFD(fd) // the mapping outlives the descriptor
	l, err := readLayout(fd)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	mem, err := mapFD(fd, l.total, false)
	if err != nil {
		return nil, fmt.Errorf("open store %s: mmap %d bytes: %w", path, l.total, err)
	}
	r := &Reader{path: path, mem: mem, hdr: headerAt(mem), macs: macSlotsAt(mem, l.macOff, l.macSlots), lay: l}
	r.gen = r.hdr.generation.Load()
	return r, nil
}

// How long a lookup waits for a writer that is mid-write on the wanted
// slot or mid-shift before it gives up with ErrBusy. A live writer
// finishes a slot in nanoseconds and a shift in well under a microsecond;
// the wait covers a writer that was preempted, and bounds the cost of one
// that was killed.
const (
	busySpins   = 16
	busyYields  = 64
	busySleep   = 20 * time.Microsecond
	busyTimeout = 2 * time.Millisecond
)

// lookup outcomes of one probe
const (
	probeHit = iota
	probeMiss
	probeRetry // the slot was mid-write or changed under us
)

// Lookup returns the address stored for m. It returns entry.ErrNotFound
// (unwrapped, to stay allocation-free) if m is absent, and ErrBusy if the
// writer stayed mid-write on m's slot, or mid-shift while m seemed
// absent, for longer than the bounded wait. Every address it returns is
// one the writer stored for m.
//
// Lookup is small enough to inline, so a caller's loop passes the MAC to
// lookup by address instead of copying the array through the stack.
func (r *Reader) Lookup(m entry.MAC) (netip.Addr, error) {
	return r.lookup(&m)
}

// lookupGroup is how many keys LookupMany has in flight at once: enough
// to cover a memory latency with independent loads, few enough that their
// cache lines are still there when each is probed.
const lookupGroup = 16

// LookupMany is Lookup for many keys: ips[i] and errs[i] receive the
// answer for ms[i] (the three slices have the same length). It first
// prefetches the home slots of a group of keys, so that their cache and
// TLB misses overlap, and then probes each one: a batch of random keys
// costs far less per key than one Lookup after another. The answers are
// exactly Lookup's.
func (r *Reader) LookupMany(ms []entry.MAC, ips []netip.Addr, errs []error) {
	for base := 0; base < len(ms); base += lookupGroup {
		n := min(lookupGroup, len(ms)-base)
		for j := range n {
			prefetch.Line(unsafe.Pointer(&r.macs[macHome(macKeyAt(&ms[base+j]), len(r.macs))]))
		}
		for j := range n {
			ips[base+j], errs[base+j] = r.lookup(&ms[base+j])
		}
	}
}

// Key is a MAC as one Reader's table finds it: the slot's key word and
// the slot where its probe starts, worked out once by Reader.Key. A
// program that looks the same MACs up again and again (a forwarding
// cache, a table of hosts it serves) keeps Keys instead of MACs, and each
// lookup skips the conversion and the hash: a call with less work in it
// lets the CPU overlap more of the cache misses that bound a lookup. A
// Key saves the work for the Reader that made it; any other Reader (a
// segment the server made anew, of another size) still answers it right,
// and the zero Key is found nowhere.
type Key struct {
	word uint64 // the slot's key word, never 0 (it has keyUsed set)
	home int    // where its probe starts in the table of the Reader that made it
}

// Key returns m's Key in r's table.
func (r *Reader) Key(m entry.MAC) Key {
	w := macKeyAt(&m)
	return Key{word: w, home: macHome(w, len(r.macs))}
}

// LookupKey is Lookup for a Key made by Key: the same answers, the same
// errors, the same guarantees.
func (r *Reader) LookupKey(k Key) (netip.Addr, error) {
	return r.lookupFrom(k.word, k.home)
}

// lookup probes for m from its home slot (lookupFrom).
func (r *Reader) lookup(m *entry.MAC) (netip.Addr, error) {
	want := macKeyAt(m)
	return r.lookupFrom(want, macHome(want, len(r.macs)))
}

// lookupFrom probes for want from slot home once, and returns only a hit
// read under a stable seqlock. Lookups are bound by memory latency, and
// the fewer instructions each takes, the more of them the CPU overlaps:
// so this first attempt reads no shift epoch, and everything else (a
// miss, which is trusted only with an epoch check, a slot mid-write, an
// entry moved under the probe) goes to retry.
//
// home is where the probe starts. The table needs no check that it is
// want's home in this table: a hit is right wherever the probe started,
// since each key is in one slot at most, and a probe from the wrong slot
// (a Key made for a table of another size) can only miss, which retry
// confirms from want's home in this table. Only a home beyond the table
// or the zero Key, whose word would match an empty slot, go to retry
// at once.
func (r *Reader) lookupFrom(want uint64, home int) (netip.Addr, error) {
	macs := r.macs
	if uint(home) >= uint(len(macs)) || want == 0 {
		return r.retry(want)
	}
	for i, n := home, 0; n < len(macs); n++ {
		sl := &macs[i]
		seq := sl.seq.Load()
		k := sl.key.Load()
		if k&keyMatch == want {
			hi, lo := sl.hi.Load(), sl.lo.Load()
			if seq&1|(sl.seq.Load()^seq) != 0 { // odd, or moved: mid-write
				break
			}
			if k&keyIPv6 == 0 {
				return decodeIPv4(lo), nil
			}
			return decodeIPv6(hi, lo), nil
		}
		if k == 0 {
			break
		}
		if i++; i == len(macs) {
			i = 0
		}
	}
	return r.retry(want)
}

// retry repeats the lookup after a first probe that missed, met a slot
// mid-write or an entry move: at once, then backing off, until it gets a
// trustworthy answer or the wait bound passes. It probes from want's
// home in this table: a miss costs a second probe, of cache lines the
// first one has just loaded.
func (r *Reader) retry(want uint64) (netip.Addr, error) {
	if want == 0 { // the zero Key
		return netip.Addr{}, entry.ErrNotFound
	}
	home := macHome(want, len(r.macs))
	var start time.Time
	for attempt := 0; ; attempt++ {
		switch {
		case attempt < busySpins:
		case attempt < busyYields:
			runtime.Gosched()
		default:
			if start.IsZero() {
				start = time.Now()
			} else if time.Since(start) > busyTimeout {
				return netip.Addr{}, ErrBusy
			}
			time.Sleep(busySleep) // give the CPU to a writer preempted mid-write
		}
		e := r.hdr.epoch.Load()
		a, st := r.probe(want, home)
		if st == probeHit {
			return a, nil // a hit is good even while entries move
		}
		// A miss counts only if no entry moved during the probe: a
		// backward shift can carry the key past a probe in flight.
		if st == probeMiss && e&1 == 0 && r.hdr.epoch.Load() == e {
			return netip.Addr{}, entry.ErrNotFound
		}
	}
}

// probe walks the probe sequence of want once. Each slot is read under
// its seqlock: seq, key, and on a match the value and seq again. A slot
// mid-write shows either its old or its new key, and passing either is
// safe; only a matching key needs a stable seq.
func (r *Reader) probe(want uint64, i int) (netip.Addr, int) {
	macs := r.macs
	for range macs {
		sl := &macs[i]
		seq := sl.seq.Load()
		k := sl.key.Load()
		if k&keyMatch == want {
			hi, lo := sl.hi.Load(), sl.lo.Load()
			if seq&1 == 1 || sl.seq.Load() != seq {
				return netip.Addr{}, probeRetry
			}
			return decodeIP(k, hi, lo), probeHit
		}
		if k == 0 {
			return netip.Addr{}, probeMiss
		}
		if i++; i == len(macs) {
			i = 0
		}
	}
	return netip.Addr{}, probeMiss // no empty slot at all: only a damaged file
}

// Generation is the segment's generation (see Store.Generation).
func (r *Reader) Generation() uint64 { return r.gen }

// Count is the number of MAC entries at this instant.
func (r *Reader) Count() int { return int(r.hdr.macCount.Load()) }

// Path is the segment file's path.
func (r *Reader) Path() string { return r.path }

// Capacities are the segment's MAC and route capacities: a client sizes
// its copy of the tables for them.
func (r *Reader) Capacities() (macs, routes int) { return r.lay.macCap, r.lay.routeCap }

// Close unmaps the segment. No Lookup may be running or start after it.
func (r *Reader) Close() error {
	if r.mem == nil {
		return nil
	}
	err := unmap(r.mem)
	r.mem, r.hdr, r.macs = nil, nil, nil
	if err != nil {
		return fmt.Errorf("close store reader %s: %w", r.path, err)
	}
	return nil
}
