package proto

import (
	"os"
	"strings"
	"testing"
)

// TestAccessWarnings: with --group, a uid /etc/passwd knows outside the
// server's group is told it cannot get in; of one it does not know, rtm
// says it cannot tell (a directory service may make it a member), where
// it said nothing.
func TestAccessWarnings(t *testing.T) {
	const unknown = 3999999999 // in no /etc/passwd
	if _, _, ok := passwdEntry(unknown); ok {
		t.Skipf("uid %d is in /etc/passwd here", unknown)
	}
	nobody, primary, ok := passwdEntry(65534)
	if !ok || primary == os.Getegid() {
		t.Skipf("uid 65534 (%q) is not in /etc/passwd, or in this process's group", nobody)
	}
	if _, members, _ := groupEntry(os.Getegid()); strings.Contains(strings.Join(members, ","), nobody) {
		t.Skipf("uid 65534 is a member of group %d here", os.Getegid())
	}
	got := strings.Join(AccessWarnings(true, []uint32{65534, unknown}, nil), "\n")
	for _, want := range []string{
		"--allow-uid 65534: uid 65534 is not in the server's group",
		"--allow-uid 3999999999: uid 3999999999 is not in /etc/passwd, so rtm cannot tell whether it is in the server's group",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in:\n%s", want, got)
		}
	}
}
