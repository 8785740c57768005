package proto

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"rtm/store"
	"rtm/store/entry"
)

// benchBatch encodes one full batch body of MAC creates starting at key
// first, the way the server's log packs them, and returns it with its
// record count.
func benchBatch(first int) ([]byte, uint32) {
	buf := make([]byte, 0, chunkSize)
	var n uint32
	for i := first; len(buf)+MaxRecord <= chunkSize; i++ {
		buf = AppendChange(buf, entry.MACChange(entry.Create, benchKey(i), netip.Addr{}), false)
		n++
	}
	return buf, n
}

func benchKey(i int) entry.MAC {
	return entry.MAC{0x02, byte(i >> 32), byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

func benchRoute(i int) entry.Route {
	return entry.Route{
		Prefix:  netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(1 + i>>16), byte(i >> 8), byte(i), 0}), 24),
		Gateway: netip.AddrFrom4([4]byte{192, 168, byte(i % 250), 1}),
		Dev:     benchDevs[i%len(benchDevs)], // as B9's workload: four devices in turn
	}
}

var benchDevs = [...]string{"eth0", "eth1", "eth2", "eth3"}

func BenchmarkEncodeBatch(b *testing.B) {
	b.Run("mac", func(b *testing.B) {
		buf := make([]byte, 0, chunkSize)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if len(buf)+MaxRecord > chunkSize {
				buf = buf[:0]
			}
			buf = AppendChange(buf, entry.MACChange(entry.Create, benchKey(i), netip.Addr{}), false)
		}
	})
	b.Run("route", func(b *testing.B) {
		buf := make([]byte, 0, chunkSize)
		routes := make([]entry.Route, 1024)
		for i := range routes {
			routes[i] = benchRoute(i)
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if len(buf)+MaxRecord > chunkSize {
				buf = buf[:0]
			}
			buf = AppendChange(buf, entry.RouteChange(entry.Create, routes[i%len(routes)]), false)
		}
	})
}

// BenchmarkDecodeBatch reports ns per record (one op is one record).
func BenchmarkDecodeBatch(b *testing.B) {
	b.Run("mac", func(b *testing.B) {
		body, n := benchBatch(0)
		benchDecode(b, body, n)
	})
	b.Run("route", func(b *testing.B) {
		var body []byte
		var n uint32
		for i := 0; len(body)+MaxRecord <= chunkSize; i++ {
			body = AppendChange(body, entry.RouteChange(entry.Create, benchRoute(i)), false)
			n++
		}
		benchDecode(b, body, n)
	})
}

func benchDecode(b *testing.B, body []byte, n uint32) {
	var d Decoder
	var r entry.Change
	b.ReportAllocs()
	left := 0
	for b.Loop() {
		if left == 0 {
			d.Reset(body, n)
			left = int(n)
		}
		if !d.Next(&r) {
			b.Fatal(d.Err())
		}
		left--
	}
}

// BenchmarkMACSetAdd is the key set's share of BenchmarkClientApply:
// the same million keys, already decoded, touched and added a group
// (applyGroup) at a time as applyAll does. ns/op is per key.
func BenchmarkMACSetAdd(b *testing.B) {
	const keys = 1 << 20
	s := newMACSet(keys)
	recs := make([]entry.Change, keys)
	for i := range recs {
		recs[i] = entry.MACChange(entry.Create, benchKey(i), netip.Addr{})
	}
	b.ResetTimer()
	for done, next := 0, 0; done < b.N; next, done = next+applyGroup, done+applyGroup {
		if next+applyGroup > keys {
			s.Clear()
			next = 0
		}
		g := recs[next : next+applyGroup]
		s.touch(g)
		for i := range g {
			s.Add(g[i].MAC)
		}
	}
}

// BenchmarkClientApply applies live MAC creates to a client's tables the
// way a fan-out does, a batch at a time: 1 M keys, cleared by a flush
// after each million. ns/op is per change.
func BenchmarkClientApply(b *testing.B) {
	const keys = 1 << 20
	var bodies [][]byte
	var counts []uint32
	for i := 0; i < keys; {
		body, n := benchBatch(i)
		bodies, counts = append(bodies, body), append(counts, n)
		i += int(n)
	}
	// Steady state: the set has held a million keys before (a flush
	// keeps its room).
	c := &Client{routes: new(store.RouteTable), macs: newMACSet(keys)}
	var d Decoder
	b.ReportAllocs()
	b.ResetTimer()
	for done, next := 0, 0; done < b.N; next++ {
		if next == len(bodies) {
			c.macs.Clear()
			next = 0
		}
		d.Reset(bodies[next], counts[next])
		if err := c.applyBatch(&d, 1, true); err != nil {
			b.Fatal(err)
		}
		done += int(counts[next])
	}
}

// BenchmarkClientApplyRoutes is BenchmarkClientApply for route creates:
// 100 k routes, flushed after each pass. ns/op is per change.
func BenchmarkClientApplyRoutes(b *testing.B) {
	const n = 100_000
	var bodies [][]byte
	var counts []uint32
	buf := make([]byte, 0, chunkSize)
	var cnt uint32
	for i := range n {
		buf = AppendChange(buf, entry.RouteChange(entry.Create, benchRoute(i)), false)
		cnt++
		if len(buf)+MaxRecord > chunkSize || i == n-1 {
			bodies, counts = append(bodies, buf), append(counts, cnt)
			buf, cnt = make([]byte, 0, chunkSize), 0
		}
	}
	c := &Client{routes: new(store.RouteTable), macs: newMACSet(0)}
	var d Decoder
	b.ReportAllocs()
	b.ResetTimer()
	for done, next := 0, 0; done < b.N; next++ {
		if next == len(bodies) {
			c.routes.Clear()
			next = 0
		}
		d.Reset(bodies[next], counts[next])
		if err := c.applyBatch(&d, 1, true); err != nil {
			b.Fatal(err)
		}
		done += int(counts[next])
	}
}

// BenchmarkClientApplyUpdates applies live updates of random keys of a
// set of 1 M, as B8's clients do. ns/op is per change.
func BenchmarkClientApplyUpdates(b *testing.B) {
	const keys = 1 << 20
	c := &Client{routes: new(store.RouteTable), macs: newMACSet(keys)}
	for i := range keys {
		c.macs.Add(benchKey(i))
	}
	rng := rand.New(rand.NewPCG(3, 3))
	var bodies [][]byte
	var counts []uint32
	for range 64 {
		buf := make([]byte, 0, chunkSize)
		var n uint32
		for len(buf)+MaxRecord <= chunkSize {
			buf = AppendChange(buf, entry.MACChange(entry.Update, benchKey(rng.IntN(keys)), netip.Addr{}), false)
			n++
		}
		bodies, counts = append(bodies, buf), append(counts, n)
	}
	var d Decoder
	b.ReportAllocs()
	b.ResetTimer()
	for done, next := 0, 0; done < b.N; next++ {
		if next == len(bodies) {
			next = 0
		}
		d.Reset(bodies[next], counts[next])
		if err := c.applyBatch(&d, 1, true); err != nil {
			b.Fatal(err)
		}
		done += int(counts[next])
	}
}
