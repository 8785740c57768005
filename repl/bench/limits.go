package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"rtm/proto/framed"
)

// This machine's limits, measured in the same run as the workloads they
// bound, with the same sizes and the same number of receivers, by
// programs with no rtm code in their loops:
//
//   - L2, raw fan-out: this process writes the same packets to K
//     SOCK_SEQPACKET sockets, one after the other, with write(2); K
//     receiver processes read(2) them and do nothing else. After the
//     last packet each socket gets a 1-byte end marker, which its
//     receiver acknowledges with the counts it read; the time runs from
//     the first write until the last acknowledgement, as B2's runs until
//     every client acknowledged the last change. Records are 32 bytes,
//     as in the targets, so a packet of S bytes carries S/32 of them.
//   - L4, raw lookup: one reader process maps B4's store read-only and
//     looks up random keys in its MAC slots (32-byte seqlock slots
//     seq|key|hi|lo, linear probing from a mixed home slot) with its own
//     loop of sync/atomic loads and a seqlock check: the same table, the
//     same pages, no rtm code. It runs the same loop over a copy of the
//     slots, written anew in a file beside the store, as well, so that
//     what the two files' pages do to a lookup that misses the TLB each
//     time shows beside the limit instead of inside it.
//   - L5, raw latency: this process writes one byte to each of K sockets
//     and reads one acknowledgement from each; each receiver is blocked
//     in read(2) and answers at once. The time runs until the slowest
//     acknowledgement has been read, so the ack path is counted, as it
//     is in B5, whose time runs until the slowest client's ack.
//
// Both ends of every socket get 256 KiB buffers, as rtm's do
// (proto/socket.go), so that the limit and the workload queue alike.
const (
	rawRecord = 32
	rawBuffer = 256 << 10
	rawAck    = 16 // packets and bytes read since the last marker
)

// rawReceivers are K receiver processes, each at the far end of one
// socket pair whose near end this process writes.
type rawReceivers struct {
	fds   []int
	procs []*child
}

func (b *bench) startRawReceivers(k int) (*rawReceivers, error) {
	r := &rawReceivers{}
	for range k {
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			b.stopRawReceivers(r)
			return nil, fmt.Errorf("socketpair: %w", err)
		}
		for _, fd := range pair {
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, rawBuffer)
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rawBuffer)
		}
		far := os.NewFile(uintptr(pair[1]), "raw receiver socket")
		c, err := b.spawn("raw-receiver", nil, far)
		far.Close()
		if err != nil {
			unix.Close(pair[0])
			b.stopRawReceivers(r)
			return nil, err
		}
		r.fds, r.procs = append(r.fds, pair[0]), append(r.procs, c)
	}
	// A first round trip: every receiver is up and blocked in read.
	if _, err := r.ping(); err != nil {
		b.stopRawReceivers(r)
		return nil, err
	}
	return r, nil
}

func (b *bench) stopRawReceivers(r *rawReceivers) {
	if r == nil {
		return
	}
	for _, fd := range r.fds {
		unix.Close(fd)
	}
	b.stop(r.procs...)
	r.fds, r.procs = nil, nil
}

// fanout sends records 32-byte records in packets of size bytes to every
// receiver and returns the records per second each receiver got.
func (r *rawReceivers) fanout(records, size int) (float64, error) {
	per := size / rawRecord
	if per < 1 {
		return 0, fmt.Errorf("packets of %d bytes hold no %d-byte record", size, rawRecord)
	}
	packets := (records + per - 1) / per
	buf := make([]byte, per*rawRecord)
	for i := range buf {
		buf[i] = byte(i)
	}
	t0 := time.Now()
	for range packets {
		for _, fd := range r.fds {
			if err := rawWrite(fd, buf); err != nil {
				return 0, err
			}
		}
	}
	acks, err := r.ping()
	d := time.Since(t0)
	if err != nil {
		return 0, err
	}
	for i, a := range acks {
		if a != [2]uint64{uint64(packets), uint64(packets * len(buf))} {
			return 0, fmt.Errorf("raw receiver %d read %d packets, %d bytes; sent %d, %d", i, a[0], a[1], packets, packets*len(buf))
		}
	}
	return float64(packets*per) / d.Seconds(), nil
}

// latency sends samples one-byte pings at idle, 2 ms apart as B5's
// changes, and returns each one's time until the slowest ack.
func (r *rawReceivers) latency(samples int) ([]float64, error) {
	ds := make([]float64, 0, samples)
	for range samples {
		t0 := time.Now()
		if _, err := r.ping(); err != nil {
			return nil, err
		}
		ds = append(ds, time.Since(t0).Seconds())
		time.Sleep(2 * time.Millisecond)
	}
	return ds, nil
}

// ping writes the 1-byte marker to every receiver, then reads every ack:
// what each receiver read since its last marker.
func (r *rawReceivers) ping() ([][2]uint64, error) {
	for _, fd := range r.fds {
		if err := rawWrite(fd, []byte{0}); err != nil {
			return nil, err
		}
	}
	acks := make([][2]uint64, len(r.fds))
	var buf [rawAck]byte
	for i, fd := range r.fds {
		n, err := rawRead(fd, buf[:])
		if err != nil || n != rawAck {
			return nil, fmt.Errorf("raw receiver %d: ack of %d bytes: %v", i, n, err)
		}
		acks[i] = [2]uint64{binary.LittleEndian.Uint64(buf[:]), binary.LittleEndian.Uint64(buf[8:])}
	}
	return acks, nil
}

func rawWrite(fd int, p []byte) error {
	for {
		_, err := unix.Write(fd, p)
		if err != unix.EINTR {
			return err
		}
	}
}

func rawRead(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Read(fd, p)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// startRawReceiver is the raw-receiver role: a goroutine blocked in
// read(2) on the socket at fd, counting what it reads and acknowledging
// every marker with the counts since the last one. It ends when the
// benchmark closes its end. The framed commands it serves are only
// blank lines and quit.
func startRawReceiver(fd int) framed.Handler {
	go func() {
		buf := make([]byte, 64<<10+1)
		var packets, bytes uint64
		var ack [rawAck]byte
		for {
			n, err := rawRead(fd, buf)
			if err != nil || n == 0 {
				return
			}
			if n > 1 {
				packets, bytes = packets+1, bytes+uint64(n)
				continue
			}
			binary.LittleEndian.PutUint64(ack[:], packets)
			binary.LittleEndian.PutUint64(ack[8:], bytes)
			if rawWrite(fd, ack[:]) != nil {
				return
			}
			packets, bytes = 0, 0
		}
	}()
	return func(line []byte, w io.Writer) (bool, error) {
		switch cmd, _ := command(line); cmd {
		case "":
			return false, nil
		case "quit":
			return true, nil
		default:
			return false, fmt.Errorf("unknown command %q (quit)", cmd)
		}
	}
}

// rawSlot is the store's MAC slot (store/segment.go): four words, the
// first a seqlock sequence, odd while the slot is written.
type rawSlot struct {
	seq, key, hi, lo atomic.Uint64
}

const (
	rawKeyUsed  = 1 << 63
	rawKeyMatch = rawKeyUsed | (1<<48 - 1)
)

// rawSlots is the slot count of a store of this MAC capacity
// (store/segment.go: a full table stays at load 0.75).
func rawSlots(capacity int) int { return (capacity*4 + 2) / 3 }

// rawHome mixes a key onto [0, n), as the store does (a 64-bit mix,
// then fastrange), so the raw table's probes are as long as the store's.
func rawHome(key uint64, n int) int {
	k := key & (1<<48 - 1)
	k ^= k >> 33
	k *= 0xff51afd7ed558ccd
	k ^= k >> 33
	k *= 0xc4ceb9fe1a85ec53
	k ^= k >> 33
	hi, _ := bits.Mul64(k, uint64(n))
	return int(hi)
}

// rawKey is the key word of the i-th MAC of the workloads.
func rawKey(i int) uint64 { return rawKeyUsed | workloadMAC(i).Uint64() }

// createRawTable writes a raw table of slots slots holding the first
// keys MACs of the workloads, inserted in the order the store gets them.
func createRawTable(path string, keys, slots int) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	size := slots * int(unsafe.Sizeof(rawSlot{}))
	// Allocated up front: a full /dev/shm is a clean ENOSPC, not a SIGBUS.
	if err := unix.Fallocate(int(f.Fd()), 0, 0, int64(size)); err != nil {
		return fmt.Errorf("allocate %s: %w", path, err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map %s: %w", path, err)
	}
	defer unix.Munmap(mem)
	table := unsafe.Slice((*rawSlot)(unsafe.Pointer(&mem[0])), slots)
	for i := range keys {
		k := rawKey(i)
		h := rawHome(k, slots)
		for table[h].key.Load() != 0 {
			if h++; h == slots {
				h = 0
			}
		}
		ip := workloadIP(i).As4()
		table[h].lo.Store(uint64(binary.BigEndian.Uint32(ip[:])))
		table[h].key.Store(k)
		table[h].seq.Store(2)
	}
	return nil
}

// rawLookup is the raw-lookup role: the tables mapped read-only and
// their keys in random order. same is the store's own MAC slots, the
// very pages rtm's lookups read; copy is the raw table, the same words in
// a file of their own.
type rawLookup struct {
	mems       [][]byte
	same, copy []rawSlot
	keys       []uint64
}

// storeHeader is where a store's MAC slots begin (store/segment.go: a
// 4 KiB header, then the slots; TestRawTableMatchesStore checks it).
const storeHeader = 4096

// openRawLookup maps the raw table at path and, if storePath is not
// empty, the MAC slots of the store there: as many slots as the raw
// table, from storeHeader on.
func openRawLookup(path, storePath string, keys int) (*rawLookup, error) {
	r := &rawLookup{}
	var err error
	if r.copy, err = r.mapSlots(path, 0, 0); err == nil && storePath != "" {
		r.same, err = r.mapSlots(storePath, storeHeader, len(r.copy))
	}
	if err == nil && (keys < 1 || keys >= len(r.copy)) {
		err = fmt.Errorf("raw table %s: %d slots for %d keys", path, len(r.copy), keys)
	}
	if err != nil {
		r.close()
		return nil, err
	}
	r.keys = make([]uint64, keys)
	for i := range r.keys {
		r.keys[i] = rawKey(i)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(r.keys), func(i, j int) { r.keys[i], r.keys[j] = r.keys[j], r.keys[i] })
	return r, nil
}

// mapSlots maps slots slots of the file at path read-only from byte off
// on; slots 0 means as many as the file holds.
func (r *rawLookup) mapSlots(path string, off int64, slots int) ([]rawSlot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	slotSize := int64(unsafe.Sizeof(rawSlot{}))
	if slots == 0 {
		slots = int((fi.Size() - off) / slotSize)
	}
	if slots < 1 || off+int64(slots)*slotSize > fi.Size() {
		return nil, fmt.Errorf("%s: %d bytes, too small for %d slots from byte %d", path, fi.Size(), slots, off)
	}
	mem, err := unix.Mmap(int(f.Fd()), off, slots*int(slotSize), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", path, err)
	}
	r.mems = append(r.mems, mem)
	return unsafe.Slice((*rawSlot)(unsafe.Pointer(&mem[0])), slots), nil
}

func (r *rawLookup) close() {
	for _, m := range r.mems {
		unix.Munmap(m)
	}
	r.mems, r.same, r.copy = nil, nil, nil
}

func (r *rawLookup) handle(line []byte, w io.Writer) (bool, error) {
	cmd, arg := command(line)
	switch cmd {
	case "":
		return false, nil
	case "lookup":
		n, err := strconv.Atoi(arg)
		if err != nil || n < 1 {
			return false, fmt.Errorf("lookup: want a count, got %q", arg)
		}
		var rep lookupReport
		for _, tb := range []struct {
			slots []rawSlot
			rate  *float64
		}{{r.same, &rep.Rate}, {r.copy, &rep.CopyRate}} {
			if tb.slots == nil {
				continue
			}
			t := time.Now()
			sum, misses := lookups(tb.slots, r.keys, n)
			*tb.rate = float64(n) / time.Since(t).Seconds()
			if rep.Sum += sum; misses > 0 {
				return false, fmt.Errorf("%d of %d raw lookups missed", misses, n)
			}
		}
		return false, answer(w, rep)
	case "quit":
		return true, nil
	}
	return false, fmt.Errorf("unknown command %q (lookup N, quit)", cmd)
}

// lookups is the raw seqlock loop: for each key, probe from its home
// slot; on a matching key read the value and accept it if the sequence
// was even and unchanged (else read the slot again); an empty slot is a
// miss.
func lookups(table []rawSlot, keys []uint64, n int) (sum uint64, misses int) {
	for i, j := 0, 0; i < n; i, j = i+1, j+1 {
		if j == len(keys) {
			j = 0
		}
		want := keys[j]
		h := rawHome(want, len(table))
		for {
			s := &table[h]
			seq := s.seq.Load()
			k := s.key.Load()
			if k&rawKeyMatch == want {
				hi, lo := s.hi.Load(), s.lo.Load()
				if seq&1 == 0 && s.seq.Load() == seq {
					sum += hi ^ lo
					break
				}
				continue
			}
			if k == 0 {
				misses++
				break
			}
			if h++; h == len(table) {
				h = 0
			}
		}
	}
	return sum, misses
}

// startRawLookup writes the raw table for B4 (the same slot count and
// keys as the full store) and starts its reader process, which reads
// in's store as well.
func (b *bench) startRawLookup(in *instance) (*child, error) {
	info, err := in.srv.Info()
	if err != nil {
		return nil, err
	}
	path := shmPath("raw")
	os.Remove(path)
	b.shm = append(b.shm, path)
	if err := createRawTable(path, b.o.macs, rawSlots(headroom(b.o.macs))); err != nil {
		return nil, errors.Join(err, os.Remove(path))
	}
	return b.spawn("raw-lookup", []string{"--table", path, "--store", info.Store, "--keys", strconv.Itoa(b.o.macs)})
}

// removeRawTables removes the raw tables once their readers are gone.
func (b *bench) removeRawTables() {
	for _, p := range b.shm {
		os.Remove(p)
	}
	b.shm = slices.Delete(b.shm, 0, len(b.shm))
}
