package entry

import (
	"fmt"
	"testing"
	"unsafe"
)

// TestIfNames: a name met again is the same string, checked once; a bad
// name is refused every time and never kept; random names stop being
// kept at the bound but are still answered.
func TestIfNames(t *testing.T) {
	var n IfNames
	for _, name := range []string{"eth0", "eth1", "bond0.100", "eth#1"} {
		a, err := n.Intern([]byte(name))
		if err != nil || a != name {
			t.Fatalf("Intern(%q) = %q, %v", name, a, err)
		}
		b, _ := n.Intern([]byte(name))
		if unsafe.StringData(a) != unsafe.StringData(b) {
			t.Errorf("%q met twice gave two strings", name)
		}
	}
	for _, bad := range []string{"", "eth 0", "a/b", "eth0:1", "a,b", "c\x01x", "sixteen-bytes-xx", ".", "v\u00e0", "\u0420x"} {
		for range 2 {
			if s, err := n.Intern([]byte(bad)); err == nil {
				t.Errorf("Intern(%q) = %q, want an error", bad, s)
			}
		}
	}
	for i := range 2 * ifNamesMax {
		name := fmt.Sprintf("v%d", i)
		if s, err := n.Intern([]byte(name)); err != nil || s != name {
			t.Fatalf("Intern(%q) = %q, %v", name, s, err)
		}
	}
	if len(n.few) != ifNamesScan || len(n.many) != ifNamesMax {
		t.Errorf("kept %d + %d names, want %d + %d", len(n.few), len(n.many), ifNamesScan, ifNamesMax)
	}
}
