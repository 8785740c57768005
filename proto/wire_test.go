package proto

import (
	"errors"
	"net/netip"
	"testing"

	"rtm/store/entry"
)

func sampleRecords() []entry.Change {
	ip := netip.MustParseAddr
	return []entry.Change{
		entry.RouteChange(entry.Create, entry.Route{Prefix: netip.MustParsePrefix("10.1.1.0/24"), Gateway: ip("192.168.1.1"), Dev: "eth0"}),
		entry.RouteChange(entry.Update, entry.Route{Prefix: netip.MustParsePrefix("2001:db8::/32"), Gateway: ip("fe80::1"), Dev: "enp0s31f6.1234"}),
		entry.RouteChange(entry.Delete, entry.Route{Prefix: netip.MustParsePrefix("0.0.0.0/0")}),
		entry.RouteChange(entry.Replace, entry.Route{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Gateway: ip("192.0.2.1"), Dev: "eth1"}),
		entry.MACChange(entry.Create, entry.MAC{0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e}, netip.Addr{}),
		entry.MACChange(entry.Update, entry.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, netip.Addr{}),
		entry.MACChange(entry.Delete, entry.MAC{}, netip.Addr{}),
		entry.MACChange(entry.Create, entry.MAC{2}, ip("10.1.1.7")),
		entry.MACChange(entry.Replace, entry.MAC{3}, ip("2001:db8::7")),
		entry.FlushOf(entry.Both),
		entry.FlushOf(entry.MACs),
		entry.RouteChange(entry.Create, entry.Route{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Dev: "veth0"}),
		entry.RouteChange(entry.Update, entry.Route{Prefix: netip.MustParsePrefix("2001:db8:1::/64"), Dev: "veth1"}),
	}
}

// encode encodes changes as the decoder gives them back: a MAC change with
// an address carries it.
func encode(cs []entry.Change) []byte {
	var b []byte
	for _, c := range cs {
		b = AppendChange(b, c, c.IP.IsValid())
	}
	return b
}

func TestRecordsRoundTrip(t *testing.T) {
	want := sampleRecords()
	body := encode(want)
	var d Decoder
	d.Reset(body, uint32(len(want)))
	var got []entry.Change
	var c entry.Change
	for d.Next(&c) {
		got = append(got, c)
	}
	if err := d.Err(); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("decoded %d records, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestRecordsWithoutValues: the fan-out leaves a MAC's address out; a
// request must carry it.
func TestRecordsWithoutValues(t *testing.T) {
	c := entry.MACChange(entry.Create, entry.MAC{1}, netip.MustParseAddr("10.1.1.7"))
	fanout := AppendChange(nil, c, false)
	if len(fanout) != 7 {
		t.Fatalf("fan-out MAC record of %d bytes, want 7: only the key travels", len(fanout))
	}
	var d Decoder
	d.Reset(fanout, 1)
	var got entry.Change
	if !d.Next(&got) || got.IP.IsValid() || got.MAC != c.MAC {
		t.Fatalf("fan-out record decoded to %+v (%v)", got, d.Err())
	}
	d = Decoder{Values: true}
	d.Reset(fanout, 1)
	if d.Next(&got) || !errors.Is(d.Err(), ErrMalformed) {
		t.Fatalf("a request's MAC create without its address: %v, want ErrMalformed", d.Err())
	}
	d.Reset(AppendChange(nil, c, true), 1)
	if !d.Next(&got) || got != c {
		t.Fatalf("request record decoded to %+v (%v), want %+v", got, d.Err(), c)
	}
}

func TestRecordSizeBound(t *testing.T) {
	r := entry.Route{Prefix: netip.MustParsePrefix("2001:db8::/32"), Gateway: netip.MustParseAddr("2001:db8::1"), Dev: "abcdefghijklmno"}
	if n := len(AppendChange(nil, entry.RouteChange(entry.Create, r), true)); n != MaxRecord {
		t.Fatalf("largest record is %d bytes, MaxRecord says %d", n, MaxRecord)
	}
	m := entry.MACChange(entry.Replace, entry.MAC{1}, netip.MustParseAddr("2001:db8::1"))
	if n := len(AppendChange(nil, m, true)); n > MaxRecord {
		t.Fatalf("a MAC record with an IPv6 address is %d bytes, over MaxRecord %d", n, MaxRecord)
	}
}

func TestDecodeRejects(t *testing.T) {
	ip := netip.MustParseAddr
	good := AppendChange(nil, entry.MACChange(entry.Create, entry.MAC{1, 2, 3, 4, 5, 6}, netip.Addr{}), false)
	route := entry.RouteChange(entry.Create, entry.Route{Prefix: netip.MustParsePrefix("10.1.1.0/24"), Gateway: ip("10.0.0.1"), Dev: "eth0"})
	hostBits := AppendChange(nil, route, false)
	hostBits[6] = 7 // 10.1.1.7/24: host bits set
	longDev := AppendChange(nil, route, false)
	longDev = append(longDev[:len(longDev)-5], 20)
	longDev = append(longDev, "abcdefghijklmnopqrst"...)
	routeDelete := byte(entry.Delete) | byte(entry.Routes)<<recordTableBits
	macDelete := byte(entry.Delete) | byte(entry.MACs)<<recordTableBits
	mapped := AppendChange(nil, entry.MACChange(entry.Create, entry.MAC{1}, ip("::ffff:10.1.1.7")), true)
	cases := []struct {
		name  string
		body  []byte
		count uint32
	}{
		{"count beyond body", good, 2},
		{"bytes after last record", append(good, 0), 1},
		{"unknown op", []byte{0x19, 1, 2, 3}, 1},
		{"no table", []byte{byte(entry.Delete), 1, 2, 3}, 1},
		{"unknown bit", []byte{macDelete | 0x40, 1, 2, 3, 4, 5, 6}, 1},
		{"value on a delete", []byte{macDelete | recordValue, 1, 2, 3, 4, 5, 6, 4, 1, 2, 3, 4}, 1},
		{"value on a route", []byte{routeDelete | recordValue, 4, 8, 10, 0, 0, 0}, 1},
		{"short MAC", good[:4], 1},
		{"bad family", []byte{routeDelete, 5, 8, 10}, 1},
		{"connected delete", []byte{routeDelete, 4 | famConnected, 8, 10, 0, 0, 0}, 1},
		{"prefix length out of range", []byte{routeDelete, 4, 33, 10, 0, 0, 0}, 1},
		{"route change of both tables", []byte{byte(entry.Delete) | byte(entry.Both)<<recordTableBits, 4, 8, 10, 0, 0, 0}, 1},
		{"host bits set", hostBits, 1},
		{"interface name too long", longDev, 1},
		{"IPv4-mapped address", mapped, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var d Decoder
			d.Reset(tc.body, tc.count)
			var c entry.Change
			for d.Next(&c) {
			}
			if !errors.Is(d.Err(), ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", d.Err())
			}
		})
	}
}

// TestDecodeStoredNames: a server's records may name a device with ','
// (a store an earlier rtm left: the server reopens it, and its clients
// must take its tables too), which a request may not; neither may name
// one the kernel refuses.
func TestDecodeStoredNames(t *testing.T) {
	route := func(dev string) []byte {
		return AppendChange(nil, entry.RouteChange(entry.Create, entry.Route{Prefix: netip.MustParsePrefix("198.51.100.8/29"), Dev: dev}), false)
	}
	decode := func(body []byte, request bool) (entry.Change, error) {
		d := Decoder{Values: request, StoredNames: !request}
		d.Reset(body, 1)
		var c entry.Change
		for d.Next(&c) {
		}
		return c, d.Err()
	}
	for _, dev := range []string{"a,b", "v\u00e0"} {
		if c, err := decode(route(dev), false); err != nil || c.Route.Dev != dev {
			t.Errorf("a server's route through %q: %v, %+v", dev, err, c.Route)
		}
	}
	if _, err := decode(route("a,b"), true); !errors.Is(err, ErrMalformed) || !errors.Is(err, entry.ErrBadIfName) {
		t.Errorf("a request's route through a,b: %v, want ErrMalformed and ErrBadIfName", err)
	}
	var d Decoder // the zero Decoder holds names to every rule
	d.Reset(route("a,b"), 1)
	for d.Next(new(entry.Change)) {
	}
	if !errors.Is(d.Err(), entry.ErrBadIfName) {
		t.Errorf("a zero Decoder took a route through a,b: %v", d.Err())
	}
	for _, dev := range []string{"a/b", "a b", "a\x01"} {
		if _, err := decode(route(dev), false); !errors.Is(err, ErrMalformed) {
			t.Errorf("a server's route through %q: %v, want ErrMalformed", dev, err)
		}
	}
}

func TestParseHeader(t *testing.T) {
	var p [HeaderSize]byte
	PutHeader(p[:], Header{Kind: KindBatch, Flags: FlagSnapshot, Count: 7, Seq: 1 << 40})
	h, err := ParseHeader(p[:])
	if err != nil || h != (Header{Kind: KindBatch, Flags: FlagSnapshot, Count: 7, Seq: 1 << 40}) {
		t.Fatalf("got %+v, %v", h, err)
	}
	bad := p
	bad[0] = 'X'
	if _, err := ParseHeader(bad[:]); !errors.Is(err, ErrMagic) {
		t.Errorf("bad magic: %v", err)
	}
	bad = p
	bad[1] = 9
	if _, err := ParseHeader(bad[:]); !errors.Is(err, ErrVersion) {
		t.Errorf("bad version: %v", err)
	}
	if _, err := ParseHeader(p[:5]); !errors.Is(err, ErrShort) {
		t.Errorf("short: %v", err)
	}
	if _, err := ParseHeader(make([]byte, MaxPacket+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized: %v", err)
	}
}

// FuzzDecode feeds arbitrary packets to the header parser and the record
// decoder: nothing panics, and whatever decodes re-encodes to the same
// bytes (so the decoder accepts exactly the encoder's language).
func FuzzDecode(f *testing.F) {
	var hdr [HeaderSize]byte
	recs := sampleRecords()
	PutHeader(hdr[:], Header{Kind: KindBatch, Count: uint32(len(recs)), Seq: 1})
	f.Add(append(hdr[:], encode(recs)...))
	PutHeader(hdr[:], Header{Kind: KindAck, Seq: 5})
	f.Add(hdr[:])
	f.Add([]byte{})
	f.Add([]byte("R\x01\x04\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x04\x01\x02"))
	f.Fuzz(func(t *testing.T, p []byte) {
		h, err := ParseHeader(p)
		if err != nil {
			return
		}
		var d Decoder
		d.Reset(p[HeaderSize:], h.Count)
		var c entry.Change
		var got []entry.Change
		for d.Next(&c) {
			// A client's MAC record carries no address (the store has it).
			// A route an earlier rtm stored may have a gateway a change
			// is refused for now (CheckStored); the store refuses that
			// change when the server applies it.
			if err := c.CheckStored(); err != nil && (c.Table != entry.MACs || c.IP.IsValid()) {
				t.Fatalf("decoded %+v, which fails its check: %v", c, err)
			}
			got = append(got, c)
		}
		if d.Err() != nil {
			return
		}
		if again := encode(got); string(again) != string(p[HeaderSize:]) {
			t.Fatalf("decoded %+v re-encodes to %x, packet body was %x", got, again, p[HeaderSize:])
		}
	})
}
