package proto

import (
	"errors"
	"net/netip"
	"rtm/store/entry"
	"testing"
)

func sampleRecords() []Record {
	return []Record{
		{Op: OpRouteCreate, Route: entry.Route{Prefix: netip.MustParsePrefix("10.1.1.0/24"), Gateway: netip.MustParseAddr("192.168.1.1"), Dev: "eth0"}},
		{Op: OpRouteUpdate, Route: entry.Route{Prefix: netip.MustParsePrefix("2001:db8::/32"), Gateway: netip.MustParseAddr("fe80::1"), Dev: "enp0s31f6.1234"}},
		{Op: OpRouteDelete, Route: entry.Route{Prefix: netip.MustParsePrefix("0.0.0.0/0")}},
		{Op: OpMACCreate, MAC: entry.MAC{0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e}},
		{Op: OpMACUpdate, MAC: entry.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{Op: OpMACDelete, MAC: entry.MAC{}},
		{Op: OpFlush, Flush: FlushRoutes | FlushMACs},
		{Op: OpRouteCreate, Route: entry.Route{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Dev: "veth0"}},
		{Op: OpRouteUpdate, Route: entry.Route{Prefix: netip.MustParsePrefix("2001:db8:1::/64"), Dev: "veth1"}},
	}
}

func encode(recs []Record) []byte {
	var b []byte
	for _, r := range recs {
		switch r.Op {
		case OpRouteCreate, OpRouteUpdate:
			b = AppendRoute(b, r.Op, r.Route)
		case OpRouteDelete:
			b = AppendRouteDelete(b, r.Route.Prefix)
		case OpMACCreate, OpMACUpdate, OpMACDelete:
			b = AppendMAC(b, r.Op, r.MAC)
		case OpFlush:
			b = AppendFlush(b, r.Flush)
		}
	}
	return b
}

func TestRecordsRoundTrip(t *testing.T) {
	want := sampleRecords()
	body := encode(want)
	var d Decoder
	d.Reset(body, uint32(len(want)))
	var got []Record
	var r Record
	for d.Next(&r) {
		got = append(got, r)
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

func TestRecordSizeBound(t *testing.T) {
	r := entry.Route{Prefix: netip.MustParsePrefix("2001:db8::/32"), Gateway: netip.MustParseAddr("2001:db8::1"), Dev: "abcdefghijklmno"}
	if n := len(AppendRoute(nil, OpRouteCreate, r)); n != MaxRecord {
		t.Fatalf("largest record is %d bytes, MaxRecord says %d", n, MaxRecord)
	}
}

func TestDecodeRejects(t *testing.T) {
	good := AppendMAC(nil, OpMACCreate, entry.MAC{1, 2, 3, 4, 5, 6})
	hostBits := AppendRoute(nil, OpRouteCreate, entry.Route{Prefix: netip.MustParsePrefix("10.1.1.0/24"), Gateway: netip.MustParseAddr("10.0.0.1"), Dev: "eth0"})
	hostBits[6] = 7 // 10.1.1.7/24: host bits set
	longDev := AppendRoute(nil, OpRouteCreate, entry.Route{Prefix: netip.MustParsePrefix("10.1.1.0/24"), Gateway: netip.MustParseAddr("10.0.0.1"), Dev: "eth0"})
	longDev = append(longDev[:len(longDev)-5], 20)
	longDev = append(longDev, "abcdefghijklmnopqrst"...)
	cases := []struct {
		name  string
		body  []byte
		count uint32
	}{
		{"count beyond body", good, 2},
		{"bytes after last record", append(good, 0), 1},
		{"unknown op", []byte{99, 1, 2, 3}, 1},
		{"short MAC", good[:4], 1},
		{"bad family", []byte{byte(OpRouteDelete), 5, 8, 10}, 1},
		{"connected delete", []byte{byte(OpRouteDelete), 4 | famConnected, 8, 10, 0, 0, 0}, 1},
		{"prefix length out of range", []byte{byte(OpRouteDelete), 4, 33, 10, 0, 0, 0}, 1},
		{"host bits set", hostBits, 1},
		{"interface name too long", longDev, 1},
		{"flush of nothing", []byte{byte(OpFlush), 0}, 1},
		{"flush of unknown table", []byte{byte(OpFlush), 4}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var d Decoder
			d.Reset(tc.body, tc.count)
			var r Record
			for d.Next(&r) {
			}
			if !errors.Is(d.Err(), ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", d.Err())
			}
		})
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
		var r Record
		var got []Record
		for d.Next(&r) {
			got = append(got, r)
		}
		if d.Err() != nil {
			return
		}
		if again := encode(got); string(again) != string(p[HeaderSize:]) {
			t.Fatalf("decoded %+v re-encodes to %x, packet body was %x", got, again, p[HeaderSize:])
		}
	})
}
