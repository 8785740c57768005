package proto

import (
	"bytes"
	"math"
	"testing"
	"unsafe"
)

// appendRecords publishes n records of 100 bytes, each filled with its
// sequence number's low byte, so a chunk's contents can be checked.
func appendRecords(l *changeLog, n int) {
	for range n {
		b := l.room()
		rec := bytes.Repeat([]byte{byte(l.seq + 1)}, 100)
		l.commit(append(b, rec...))
	}
}

// intact says whether chunk c still holds the records it was given.
func intact(c *chunk) bool {
	count, size, _ := unpack(c.state.Load())
	for i := range int(count) {
		want := byte(c.first + uint64(i))
		for _, b := range c.data[i*100 : (i+1)*100] {
			if b != want {
				return false
			}
		}
	}
	return size == int(count)*100
}

// TestChangeLogRecycles: a chunk's buffer is reused only once every
// writer is past it. With no writer the log runs on two buffers; a
// writer's low keeps its chunk and every later one whole and reachable,
// and raising it lets them go.
func TestChangeLogRecycles(t *testing.T) {
	low := uint64(math.MaxUint64)
	l := newChangeLog(0, 64*chunkSize, func() uint64 { return low })
	perChunk := chunkSize / 100
	buffers := map[*byte]bool{}
	for range 20 {
		appendRecords(l, perChunk)
		buffers[unsafe.SliceData(l.cur.data)] = true
	}
	if l.cur.num < 19 {
		t.Fatalf("20 chunks' worth of records filled %d chunks", l.cur.num)
	}
	if len(buffers) > 2 {
		t.Errorf("with no writer the log used %d buffers, want at most 2", len(buffers))
	}
	for num := range l.cur.num - 1 {
		if l.at(num) != nil {
			t.Errorf("chunk %d was recycled but at() still returns it", num)
		}
	}

	pinned := l.cur.num // a writer still reading the current chunk
	low = pinned
	appendRecords(l, 10*perChunk)
	for num := pinned; num <= l.cur.num; num++ {
		c := l.at(num)
		if c == nil {
			t.Fatalf("chunk %d, at or past the writer's low %d, is gone", num, pinned)
		}
		if !intact(c) {
			t.Fatalf("chunk %d, at or past the writer's low %d, was overwritten", num, pinned)
		}
	}

	low = l.cur.num // the writer caught up
	last := l.cur.num
	appendRecords(l, 3*perChunk)
	for num := pinned; num < last; num++ {
		if l.at(num) != nil {
			t.Errorf("chunk %d is below every low but was not recycled", num)
		}
	}
	if len(l.free) > maxFree {
		t.Errorf("%d free buffers kept, at most %d", len(l.free), maxFree)
	}
	for num := last; num <= l.cur.num; num++ {
		if c := l.at(num); c == nil || !intact(c) {
			t.Fatalf("chunk %d, at or past the low, lost its records", num)
		}
	}
}

// TestChangeLogSize: the log holds at least the bytes asked for, in
// whole chunks, and two chunks at least.
func TestChangeLogSize(t *testing.T) {
	for _, tc := range []struct{ bytes, chunks int }{
		{1, 2}, {10, 2}, {2 * chunkSize, 2}, {2*chunkSize + 1, 3}, {200_000, 4}, {DefaultLogBytes, (DefaultLogBytes + chunkSize - 1) / chunkSize},
	} {
		l := newChangeLog(0, tc.bytes, func() uint64 { return 0 })
		if got := len(l.ring); got != tc.chunks || got*chunkSize < tc.bytes {
			t.Errorf("--log-bytes %d: %d chunks (%d bytes), want %d", tc.bytes, got, got*chunkSize, tc.chunks)
		}
	}
}
