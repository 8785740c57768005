package store

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"rtm/repl/rtmtest"
	"rtm/store/entry"
)

const benchEntries = 1_000_000

// benchFixture is one store of benchEntries MACs shared by the lookup
// benchmarks, built once per process in its private store directory,
// which rtmtest.Main removes after the last benchmark.
var benchFixture struct {
	once  sync.Once
	path  string
	store *Store
	keys  []entry.MAC // shuffled
	err   error
}

func lookupFixture(b *testing.B) (*Store, []entry.MAC) {
	f := &benchFixture
	f.once.Do(func() {
		f.path = filepath.Join(rtmtest.StoreDir(), "rtm.bench")
		f.store, f.err = Open(Options{Path: f.path, Capacity: 1 << 20, RouteCapacity: 1})
		if f.err != nil {
			return
		}
		f.keys = benchKeys(benchEntries)
		for i, m := range f.keys {
			if f.err = f.store.CreateMAC(m, v4(i)); f.err != nil {
				return
			}
		}
	})
	if f.err != nil {
		b.Fatal(f.err)
	}
	return f.store, f.keys
}

// benchKeys returns n distinct random MACs in random order.
func benchKeys(n int) []entry.MAC {
	rng := rand.New(rand.NewPCG(7, 7))
	seen := make(map[entry.MAC]bool, n)
	keys := make([]entry.MAC, 0, n)
	for len(keys) < n {
		m := entry.MACFromUint64(rng.Uint64())
		if !seen[m] {
			seen[m] = true
			keys = append(keys, m)
		}
	}
	return keys
}

func BenchmarkCreateMAC(b *testing.B) { benchCreateMAC(b, 1<<20, benchEntries) }

// BenchmarkCreateMACSmall is BenchmarkCreateMAC on a table of 10 k.
func BenchmarkCreateMACSmall(b *testing.B) { benchCreateMAC(b, 10_000, 10_000) }

// benchCreateMAC creates n MACs in a table of capacity, flushing it
// (untimed) whenever all n are in.
func benchCreateMAC(b *testing.B, capacity, n int) {
	s := mustOpen(b, Options{Path: testPath(b), Capacity: capacity, RouteCapacity: 1})
	keys := benchKeys(n)
	ip := v4(1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i == len(keys) {
			b.StopTimer()
			s.FlushMACs()
			i = 0
			b.StartTimer()
		}
		if err := s.CreateMAC(keys[i], ip); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDeleteMAC(b *testing.B) {
	s := mustOpen(b, Options{Path: testPath(b), Capacity: 1 << 20, RouteCapacity: 1})
	keys := benchKeys(benchEntries)
	fill := func() {
		for i, m := range keys {
			if err := s.CreateMAC(m, v4(i)); err != nil {
				b.Fatal(err)
			}
		}
	}
	fill()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i == len(keys) {
			b.StopTimer()
			fill()
			i = 0
			b.StartTimer()
		}
		if err := s.DeleteMAC(keys[i]); err != nil {
			b.Fatal(err)
		}
	}
}

func benchReader(b *testing.B) (*Reader, []entry.MAC) {
	s, keys := lookupFixture(b)
	rd, err := OpenReader(s.Path(), os.Getuid())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rd.Close() })
	return rd, keys
}

// BenchmarkLookupReader looks up random present keys among 1 M entries
// through the read-only mapping, as a client does.
func BenchmarkLookupReader(b *testing.B) {
	rd, keys := benchReader(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i == len(keys) {
			i = 0
		}
		if _, err := rd.Lookup(keys[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLookupKey is BenchmarkLookupReader through Keys made once with
// Reader.Key, as a program that looks the same MACs up again and again
// keeps them: the form of the raw loop's precomputed key words.
func BenchmarkLookupKey(b *testing.B) {
	rd, macs := benchReader(b)
	keys := make([]Key, len(macs))
	for i, m := range macs {
		keys[i] = rd.Key(m)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i == len(keys) {
			i = 0
		}
		if _, err := rd.LookupKey(keys[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLookupMany is BenchmarkLookupReader through LookupMany, in
// batches of 64 keys; ns/op is per key.
func BenchmarkLookupMany(b *testing.B) {
	rd, keys := benchReader(b)
	const batch = 64
	var ips [batch]netip.Addr
	var errs [batch]error
	b.ReportAllocs()
	b.ResetTimer()
	off := 0
	for b.Loop() {
		if off+batch > len(keys) {
			off = 0
		}
		rd.LookupMany(keys[off:off+batch], ips[:], errs[:])
		off += batch
	}
	b.StopTimer()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/key")
}

func BenchmarkLookupParallel(b *testing.B) {
	rd, keys := benchReader(b)
	var worker atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(worker.Add(1)) * 250_007
		for pb.Next() {
			if _, err := rd.Lookup(keys[i%len(keys)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

// BenchmarkLookupMiss looks up absent keys: the probe runs to an empty slot.
func BenchmarkLookupMiss(b *testing.B) {
	rd, _ := benchReader(b)
	absent := benchKeys(benchEntries + 100_000)[benchEntries:]
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := rd.Lookup(absent[i%len(absent)]); !errors.Is(err, entry.ErrNotFound) {
			b.Fatal(err)
		}
	}
}

// BenchmarkLookupFloor is the memory limit the lookups run against: one
// load of each key's home slot in the same mapping, no probing, no
// seqlock, no decoding. Compare it with BenchmarkLookupReader in the
// same run.
func BenchmarkLookupFloor(b *testing.B) {
	rd, keys := benchReader(b)
	var sum uint64
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		want := macKey(keys[i%len(keys)])
		sum += rd.macs[macHome(want, len(rd.macs))].key.Load()
	}
	if sum == 0 {
		b.Fatal("no key loaded")
	}
}

// BenchmarkLookupRawLoop is the loop rtm bench's L4 limit runs, over the
// same mapping: key words computed in advance, the probe and the seqlock
// check written out in the loop, no call, nothing returned but a sum.
// Reader.Lookup's ns/op over this one's, in the same run, is how far the
// API's shape (a MAC in, an address and an error out, a call) costs.
func BenchmarkLookupRawLoop(b *testing.B) {
	rd, keys := benchReader(b)
	words := make([]uint64, len(keys))
	for i, m := range keys {
		words[i] = macKey(m)
	}
	table := rd.macs
	var sum uint64
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i == len(words) {
			i = 0
		}
		want := words[i]
		for h := macHome(want, len(table)); ; {
			s := &table[h]
			seq := s.seq.Load()
			k := s.key.Load()
			if k&keyMatch == want {
				hi, lo := s.hi.Load(), s.lo.Load()
				if seq&1 == 0 && s.seq.Load() == seq {
					sum += hi ^ lo
					break
				}
				continue
			}
			if k == 0 {
				b.Fatal("raw loop missed a key")
			}
			if h++; h == len(table) {
				h = 0
			}
		}
	}
	if sum == 0 {
		b.Fatal("no value loaded")
	}
}

// benchRoutes returns n distinct /24 routes in random order.
func benchRoutes(n int) []entry.Route {
	rs := make([]entry.Route, n)
	for i := range rs {
		rs[i] = entry.Route{
			Prefix:  netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(1 + i>>16), byte(i >> 8), byte(i), 0}), 24),
			Gateway: netip.AddrFrom4([4]byte{192, 168, byte(i % 250), 1}),
			Dev:     "eth0",
		}
	}
	rng := rand.New(rand.NewPCG(9, 9))
	rng.Shuffle(n, func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
	return rs
}

// BenchmarkCreateRoute: the server's route path, as BenchmarkCreateMAC is
// its MAC path: 100 k routes created, flushed, created again.
func BenchmarkCreateRoute(b *testing.B) { benchCreateRoute(b, 100_000) }

// BenchmarkCreateRouteSmall is BenchmarkCreateRoute over 10 k routes, B9's
// table, which stays in the cache.
func BenchmarkCreateRouteSmall(b *testing.B) { benchCreateRoute(b, 10_000) }

func benchCreateRoute(b *testing.B, n int) {
	s := mustOpen(b, Options{Path: testPath(b), Capacity: 1, RouteCapacity: n})
	routes := benchRoutes(n)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i == len(routes) {
			b.StopTimer()
			s.FlushRoutes()
			i = 0
			b.StartTimer()
		}
		if err := s.CreateRoute(routes[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdateRoute updates routes of a table of 100 k.
func BenchmarkUpdateRoute(b *testing.B) {
	const n = 100_000
	s := mustOpen(b, Options{Path: testPath(b), Capacity: 1, RouteCapacity: n})
	routes := benchRoutes(n)
	for _, r := range routes {
		if err := s.CreateRoute(r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := routes[i%n]
		r.Gateway = netip.AddrFrom4([4]byte{192, 168, byte(i), 9})
		if err := s.UpdateRoute(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdateMACPrefetched updates random MACs of the million-entry
// store with the slots of each group of 16 keys prefetched first, as a
// replay does: against BenchmarkUpdateMACSmall, what is left of the cache
// and TLB misses.
func BenchmarkUpdateMACPrefetched(b *testing.B) {
	s, keys := lookupFixture(b)
	benchUpdateMACs(b, s, keys)
}

// BenchmarkUpdateMACSmall is BenchmarkUpdateMACPrefetched on a store of
// 10,000 MACs, which stays in the cache: the cost of an update itself.
func BenchmarkUpdateMACSmall(b *testing.B) {
	path := filepath.Join(rtmtest.StoreDir(), "rtm.bench-small")
	os.Remove(path) // left by an earlier -count
	s, err := Open(Options{Path: path, Capacity: 1 << 14, RouteCapacity: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { s.Close(); os.Remove(path) }()
	keys := benchKeys(10_000)
	for i, m := range keys {
		if err := s.CreateMAC(m, v4(i)); err != nil {
			b.Fatal(err)
		}
	}
	benchUpdateMACs(b, s, keys)
}

// benchUpdateMACs updates the MACs of keys in s in random order, a group
// of 16 prefetched at a time, alternating an IPv4 and an IPv6 address.
func benchUpdateMACs(b *testing.B, s *Store, keys []entry.MAC) {
	rng := rand.New(rand.NewPCG(5, 5))
	order := make([]entry.MAC, len(keys))
	for i := range order {
		order[i] = keys[rng.IntN(len(keys))]
	}
	const group = 16
	ips := [2]netip.Addr{v4(7), v6(7)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		j := i % len(order)
		if j%group == 0 {
			s.PrefetchMACs(order[j:min(j+group, len(order))])
		}
		if err := s.UpdateMAC(order[j], ips[i&1]); err != nil {
			b.Fatal(err)
		}
	}
}
