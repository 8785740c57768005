package proto

import (
	"sync/atomic"

	"rtm/store/ordered"
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

const (
	chunkSize = MaxPacket - HeaderSize
	// DefaultLogBytes bounds the log: a client further behind than that
	// is resynced by snapshot.
	DefaultLogBytes = 16 << 20
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
	// published is seq for other goroutines. It is stored before the
	// chunk state, so no client can apply (and acknowledge) a change that
	// published does not cover yet.
	published atomic.Uint64
}

func newChunk(num, first uint64) *chunk {
	return &chunk{num: num, first: first, data: make([]byte, chunkSize)}
}

func newChangeLog(seq uint64, bytes int) *changeLog {
	l := &changeLog{seq: seq, ring: make([]atomic.Pointer[chunk], max(2, bytes/chunkSize))}
	l.published.Store(seq)
	l.cur = newChunk(0, seq+1)
	l.ring[0].Store(l.cur)
	return l
}

// at returns chunk num, or nil if it was overwritten or does not exist yet.
func (l *changeLog) at(num uint64) *chunk {
	c := l.ring[num%uint64(len(l.ring))].Load()
	if c == nil || c.num != num {
		return nil
	}
	return c
}

// room returns the current chunk's unpublished tail, with space for one
// record of at most MaxRecord bytes, sealing the chunk and starting the
// next one if needed. Appending to it never reallocates.
func (l *changeLog) room() []byte {
	if l.cur.n+MaxRecord > chunkSize {
		// The next chunk goes into the ring before this one is sealed: a
		// writer that sees the seal moves on to the next chunk at once,
		// and must find it there, not take its absence for an overrun.
		c := l.cur
		l.cur = newChunk(c.num+1, l.seq+1)
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
