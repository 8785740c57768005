package store_test

import (
	"fmt"
	"log"
	"net/netip"
	"os"
	"path/filepath"

	"rtm/store"
	"rtm/store/entry"
)

// A program that looks the same MACs up again and again, as a forwarding
// path does for the hosts it serves, makes their Keys once and looks up by
// Key: each lookup then skips the MAC's conversion and hash, and is little
// more than the probe of the slot and its seqlock check.
func ExampleReader_LookupKey() {
	dir, err := os.MkdirTemp("", "rtm-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "rtm.example")

	// The server's side: the only writer.
	st, err := store.Open(store.Options{Path: path, Capacity: 1024})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	hosts := []entry.MAC{
		{0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e},
		{0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5f},
	}
	if err := st.CreateMAC(hosts[0], netip.MustParseAddr("10.1.1.7")); err != nil {
		log.Fatal(err)
	}

	// A client's side: a read-only mapping, checked to be the server's
	// (here, this process's uid).
	rd, err := store.OpenReader(path, os.Getuid())
	if err != nil {
		log.Fatal(err)
	}
	defer rd.Close()
	keys := make([]store.Key, len(hosts))
	for i, m := range hosts {
		keys[i] = rd.Key(m)
	}

	lookup := func() {
		for i, k := range keys {
			ip, err := rd.LookupKey(k)
			fmt.Println(hosts[i], ip, err)
		}
	}
	lookup()
	// Keys stay good while the table changes under them.
	if err := st.CreateMAC(hosts[1], netip.MustParseAddr("10.1.1.8")); err != nil {
		log.Fatal(err)
	}
	if err := st.DeleteMAC(hosts[0]); err != nil {
		log.Fatal(err)
	}
	lookup()
	// Output:
	// 00:1a:2b:3c:4d:5e 10.1.1.7 <nil>
	// 00:1a:2b:3c:4d:5f invalid IP not found
	// 00:1a:2b:3c:4d:5e invalid IP not found
	// 00:1a:2b:3c:4d:5f 10.1.1.8 <nil>
}
