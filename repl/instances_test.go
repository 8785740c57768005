package repl

import "testing"

// TestStoreSize: rtm ls shows a store under a MiB in KiB, where it said
// "0.0 MiB" of a store of 4,416 bytes.
func TestStoreSize(t *testing.T) {
	for n, want := range map[int64]string{4416: "4.3 KiB", 1<<20 - 1: "1024.0 KiB", 1 << 20: "1.0 MiB", 7025664: "6.7 MiB"} {
		if got := storeSize(n); got != want {
			t.Errorf("storeSize(%d) = %q, want %q", n, got, want)
		}
	}
}
