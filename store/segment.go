package store

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"sync/atomic"
)

// Segment layout (layout version 2; version 1 is the same without
// connected routes, and a writer that opens one marks it version 2). All words are native-endian uint64
// at 8-byte aligned offsets, read only with sync/atomic and written only
// with sync/atomic or ordered.Store (doc.go, "Atomic words").
//
//	offset                      size                 contents
//	0                           4 KiB                header
//	  0   magic "RTMSTORE"      \
//	  8   layout version         |
//	  16  header size            |
//	  24  MAC capacity           |  static: written once before the
//	  32  MAC slot count         |  segment is published, covered by
//	  40  route capacity         |  the checksum, validated by every
//	  48  MAC section offset     |  opener before it maps the rest
//	  56  route section offset   |
//	  64  total size             |
//	  72  generation            /
//	  80  checksum (FNV-1a of the ten words above)
//	  128 writer pid            \
//	  136 clean flag             |  dynamic: the writer's bookkeeping
//	  144 MAC count              |
//	  152 route count            |
//	  160 last change (Unix ns) /   marked by the writer now and then
//	  192 shift epoch               odd while a delete moves entries
//	  256 journal: state, index, 7 old words (undo or redo record)
//	4096                        slots × 32 B         MAC slots
//	  seq | key | ip-hi | ip-lo
//	  key: 0 = empty, else bit 63 set, bit 62 = IPv6 value, MAC in bits 0-47
//	4096 + slots×32             routes × 64 B        route slots
//	  seq | flags | prefix-hi | prefix-lo | gw-hi | gw-lo | dev[0:8] | dev[8:16]
//	  seq: 0 (route slots are written under the journal only: no reader)
//	  flags: bit 63 = in use, bit 9 = connected (no gateway), bit 8 = IPv6,
//	         bits 0-7 = prefix length
//
// MAC slots: slots = ceil(capacity × 4/3), open addressing with linear
// probing from a fastrange home slot, backward-shift deletion (no
// tombstones). Every MAC slot is a seqlock: its seq is odd while the
// writer is storing its words. An empty MAC slot and a free route slot
// are all zeros (their seq aside).
const (
	layoutVersion = 2
	headerSize    = 4096
	journalOffset = 256
	macSlotSize   = 32
	routeSlotSize = 64

	maxCapacity      = 1 << 28
	maxRouteCapacity = 1 << 24
)

// MaxCapacity and MaxRouteCapacity bound a store's capacities (Options),
// so that a command line can refuse more before it opens anything.
const (
	MaxCapacity      = maxCapacity
	MaxRouteCapacity = maxRouteCapacity
)

// LayoutVersion is the segment layout this build reads and writes.
const LayoutVersion = layoutVersion

// Default table sizes for Options with zero capacities.
const (
	DefaultCapacity      = 65536
	DefaultRouteCapacity = 65536
)

var magic = binary.NativeEndian.Uint64([]byte("RTMSTORE"))

type header struct {
	magic      atomic.Uint64
	version    atomic.Uint64
	headerSize atomic.Uint64
	macCap     atomic.Uint64
	macSlots   atomic.Uint64
	routeCap   atomic.Uint64
	macOff     atomic.Uint64
	routeOff   atomic.Uint64
	totalSize  atomic.Uint64
	generation atomic.Uint64
	checksum   atomic.Uint64
	_          [5]uint64

	pid        atomic.Uint64
	clean      atomic.Uint64
	macCount   atomic.Uint64
	routeCount atomic.Uint64
	changed    atomic.Uint64 // when the tables last changed, Unix ns; 0 if unknown
	_          [3]uint64
	epoch      atomic.Uint64 // alone in its cache line: every reader polls it
	_          [7]uint64

	journal journal
	_       [headerSize - journalOffset - 9*8]byte
}

// journal is the one-entry crash journal. state is written last when
// arming and cleared when the operation is complete, so a non-zero state
// found by a new writer describes exactly one interrupted operation.
type journal struct {
	state atomic.Uint64
	index atomic.Uint64    // slot being rewritten (undo) or the current hole (shift)
	old   [7]atomic.Uint64 // the slot's words before the write (undo)
}

// Journal states.
const (
	jIdle        = iota
	jMACSlot     // undo: restore MAC slot index to old[0:3]
	jRouteSlot   // undo: restore route slot index to old[0:7]
	jMACShift    // redo: finish the backward shift from hole index
	jMACFlush    // redo: clear every MAC slot
	jRouteFlush  // redo: clear every route slot
	jMACCreate   // undo: clear MAC slot index (it was empty: all zeros)
	jRouteCreate // undo: clear route slot index (it was free: all zeros)
)

type macSlot struct {
	seq, key, hi, lo atomic.Uint64
}

type routeSlot struct {
	seq atomic.Uint64
	w   [7]atomic.Uint64
}

// layout is the static geometry of a segment.
type layout struct {
	macCap, macSlots, routeCap int
	macOff, routeOff, total    int
}

func newLayout(capacity, routeCapacity int) layout {
	l := layout{macCap: capacity, routeCap: routeCapacity}
	// 4/3 keeps a full table at load factor 0.75, short probes, and
	// guarantees an empty slot so every probe ends.
	l.macSlots = (capacity*4 + 2) / 3
	l.macOff = headerSize
	l.routeOff = l.macOff + l.macSlots*macSlotSize
	l.total = l.routeOff + routeCapacity*routeSlotSize
	return l
}

// staticSum is the checksum over the static header words: FNV-1a of
// their little-endian bytes.
func staticSum(h *header) uint64 {
	words := [...]uint64{
		h.magic.Load(), h.version.Load(), h.headerSize.Load(), h.macCap.Load(),
		h.macSlots.Load(), h.routeCap.Load(), h.macOff.Load(), h.routeOff.Load(),
		h.totalSize.Load(), h.generation.Load(),
	}
	b := make([]byte, 0, 8*len(words))
	for _, w := range words {
		b = binary.LittleEndian.AppendUint64(b, w)
	}
	sum := fnv.New64a()
	sum.Write(b)
	return sum.Sum64()
}

// writeStatic fills the static header of a new segment.
func (h *header) writeStatic(l layout, generation uint64) {
	h.version.Store(layoutVersion)
	h.headerSize.Store(headerSize)
	h.macCap.Store(uint64(l.macCap))
	h.macSlots.Store(uint64(l.macSlots))
	h.routeCap.Store(uint64(l.routeCap))
	h.macOff.Store(uint64(l.macOff))
	h.routeOff.Store(uint64(l.routeOff))
	h.totalSize.Store(uint64(l.total))
	h.generation.Store(generation)
	h.magic.Store(magic)
	h.checksum.Store(staticSum(h))
}

// validate checks a header read from a file of the given size (n bytes of
// it read into the header) and returns the geometry it describes. It is
// the gate in front of every mmap: nothing past the header is mapped
// unless the file is at least as long as the header says.
func (h *header) validate(n int, size int64) (layout, error) {
	if n < 8 || h.magic.Load() != magic {
		return layout{}, ErrNotStore
	}
	if n < headerSize {
		return layout{}, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", ErrTruncated, size, headerSize)
	}
	if v := h.version.Load(); v != layoutVersion && v != 1 {
		return layout{}, fmt.Errorf("%w %d (this rtm reads versions 1 and %d)", ErrVersion, v, layoutVersion)
	}
	if h.checksum.Load() != staticSum(h) {
		return layout{}, fmt.Errorf("%w: header checksum mismatch", ErrCorrupt)
	}
	mc, rc := h.macCap.Load(), h.routeCap.Load()
	if mc == 0 || mc > maxCapacity || rc > maxRouteCapacity {
		return layout{}, fmt.Errorf("%w: capacities %d MACs, %d routes out of range", ErrCorrupt, mc, rc)
	}
	l := newLayout(int(mc), int(rc))
	if h.headerSize.Load() != headerSize || h.macSlots.Load() != uint64(l.macSlots) ||
		h.macOff.Load() != uint64(l.macOff) || h.routeOff.Load() != uint64(l.routeOff) ||
		h.totalSize.Load() != uint64(l.total) {
		return layout{}, fmt.Errorf("%w: header geometry inconsistent with capacities %d and %d", ErrCorrupt, mc, rc)
	}
	if h.generation.Load() == 0 {
		return layout{}, fmt.Errorf("%w: zero generation", ErrCorrupt)
	}
	if size < int64(l.total) {
		return layout{}, fmt.Errorf("%w: %d bytes, header says %d", ErrTruncated, size, l.total)
	}
	return l, nil
}
