package proto

import (
	"sync/atomic"

	"rtm/store/ordered"
	"rtm/store/prefetch"
)

// The change log is the heart of the fan-out. The server appends each
// change once, already encoded; every client's writer copies spans of it
// straight into packets. Memory is bounded by the ring, whatever the number
// of clients or how far behind they are: a writer that falls off the end of
// the ring takes a fresh snapshot instead.
//
// The log is a ring of chunks. A chunk holds whole records, at most
// chunkSize bytes: exactly one batch body. Only the publisher (holding the
// server's lock) appends; it writes bytes past the published size, then
// publishes the new count and size with one store, so readers never see a
// partial record and never need a lock. That store is ordered.Store, not a
// fence: the publisher wakes idle writers only after ordered.Fence
// (Server.kickIdle), which is what a writer going to sleep relies on.
//
// A chunk's bytes are recycled once no writer can read them: each writer
// says the lowest chunk it may still read (serverConn.low), and when the
// publisher seals a chunk it takes back the buffers of the chunks below
// every writer's, for the chunks it starts next. Fresh memory costs a
// page fault per 4 KiB on first touch (16 to a chunk, about 15 µs each
// on this project's machine, BENCHMARKS.md), and a recycled buffer is
// still in the cache; with writers that keep up, a server streams through
// three or four buffers however long it runs.

const (
	chunkSize = MaxPacket - HeaderSize
	// DefaultLogBytes bounds the log: a client further behind than that
	// is resynced by snapshot.
	DefaultLogBytes = 16 << 20
	// MaxLogBytes bounds what may be asked: the log's ring of chunk
	// pointers is made whole at the start, 8 bytes for each 65,520 of
	// the bound (8 MiB at 64 GiB), and far beyond memory a bound bounds
	// nothing.
	MaxLogBytes = 64 << 30
)

type chunk struct {
	num   uint64 // position in the log; ring slot is num % len(ring)
	first uint64 // sequence number of the first record
	data  []byte // chunkSize bytes, allocated once; readers use data[:size]
	n     int    // bytes appended so far; the publisher's alone
	// state packs sealed<<63 | count<<32 | size: what readers may read.
	state atomic.Uint64
}

const sealed = 1 << 63

func unpack(st uint64) (count uint32, size int, isSealed bool) {
	return uint32(st >> 32 & 0x7fffffff), int(uint32(st)), st&sealed != 0
}

// changeLog is owned by the publisher; readers only use at() and the chunk
// state.
type changeLog struct {
	ring []atomic.Pointer[chunk]
	cur  *chunk
	seq  uint64 // last sequence number appended
	// oldest is the first chunk whose bytes are its own: the chunks
	// before it were recycled, and at() no longer returns them.
	oldest atomic.Uint64
	// low returns the lowest chunk a writer may still read (its cursor's,
	// or past the end for a writer that reads none). The publisher calls
	// it, under the server's lock, only when it seals a chunk.
	low  func() uint64
	free [][]byte // recycled chunk buffers, at most maxFree
	// published is seq for other goroutines. It is stored before the
	// chunk state, so no client can apply (and acknowledge) a change that
	// published does not cover yet.
	published atomic.Uint64
}

// maxFree bounds the recycled buffers kept: enough for writers that fall
// a few packets behind and catch up, without holding memory for more.
const maxFree = 8

// newChangeLog starts a log after seq. low says how far back the writers
// read (changeLog.low). The first chunk's buffer and one spare are
// faulted in now (prefetch.Pages), while the server waits for its first
// change: with writers that keep up, the third chunk takes the first's
// buffer back, so a server's first changes meet no fresh memory.
func newChangeLog(seq uint64, bytes int, low func() uint64) *changeLog {
	// Whole chunks, rounded up: the log holds at least what was asked.
	l := &changeLog{seq: seq, ring: make([]atomic.Pointer[chunk], max(2, (bytes+chunkSize-1)/chunkSize)), low: low}
	l.published.Store(seq)
	first, spare := make([]byte, chunkSize), make([]byte, chunkSize)
	prefetch.Pages(first)
	prefetch.Pages(spare)
	l.free = append(l.free, spare)
	l.cur = &chunk{num: 0, first: seq + 1, data: first}
	l.ring[0].Store(l.cur)
	return l
}

// at returns chunk num, or nil if it was overwritten, recycled or does not
// exist yet.
func (l *changeLog) at(num uint64) *chunk {
	c := l.ring[num%uint64(len(l.ring))].Load()
	if c == nil || c.num != num || num < l.oldest.Load() {
		return nil
	}
	return c
}

// buffer returns the bytes for the chunk after the one being sealed,
// taking back first the buffers of the chunks no writer reads any more.
// A writer's low only grows, and a writer that starts reading sets it
// under the server's lock (Server.snapshot), the lock the publisher
// holds here; so a chunk below every low stays unread.
func (l *changeLog) buffer(sealing uint64) []byte {
	end := min(l.low(), sealing)
	for num := l.oldest.Load(); num < end; num++ {
		if c := l.ring[num%uint64(len(l.ring))].Load(); c != nil && c.num == num && len(l.free) < maxFree {
			l.free = append(l.free, c.data)
		}
	}
	if end > l.oldest.Load() {
		l.oldest.Store(end)
	}
	if k := len(l.free); k > 0 {
		b := l.free[k-1]
		l.free = l.free[:k-1]
		return b
	}
	// A writer is behind (a slow or stopped client): fresh memory, mapped
	// at once rather than a fault a page under the appends.
	b := make([]byte, chunkSize)
	prefetch.Pages(b)
	return b
}

// room returns the current chunk's bytes so far (data[:n]), for the
// publisher to append one record of at most MaxRecord bytes to: its
// capacity has room for it, so the append never reallocates and lands
// in the chunk's unpublished tail. It seals the chunk and starts the
// next one first if needed.
func (l *changeLog) room() []byte {
	if l.cur.n+MaxRecord > chunkSize {
		// The next chunk goes into the ring before this one is sealed: a
		// writer that sees the seal moves on to the next chunk at once,
		// and must find it there, not take its absence for an overrun.
		c := l.cur
		l.cur = &chunk{num: c.num + 1, first: l.seq + 1, data: l.buffer(c.num)}
		l.ring[l.cur.num%uint64(len(l.ring))].Store(l.cur)
		c.state.Store(c.state.Load() | sealed)
	}
	return l.cur.data[:l.cur.n]
}

// commit publishes the record the publisher just appended to room()'s
// slice.
func (l *changeLog) commit(buf []byte) uint64 {
	c := l.cur
	c.n = len(buf)
	l.seq++
	ordered.Store(&l.published, l.seq)
	count, _, _ := unpack(c.state.Load())
	ordered.Store(&c.state, uint64(count+1)<<32|uint64(len(buf)))
	return l.seq
}

// cursor is a reader's position: the next record to send.
type cursor struct {
	num uint64 // chunk
	idx uint32 // records of that chunk already sent
	off int    // bytes of that chunk already sent
}

// tail returns the cursor just past the last published record.
func (l *changeLog) tail() cursor {
	count, size, _ := unpack(l.cur.state.Load())
	return cursor{num: l.cur.num, idx: count, off: size}
}
