package proto

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"rtm/repl/rtmtest"
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
	if !ok || primary == strconv.Itoa(os.Getegid()) {
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

// TestAccessWarningsOddPasswd: an entry of /etc/passwd whose group field
// is not a number is a uid rtm knows, but whose primary group it cannot
// tell: it said such a uid was not in /etc/passwd. A member listed in
// /etc/group is one whatever its entry says; a group of 0N is gid N.
func TestAccessWarningsOddPasswd(t *testing.T) {
	g := strconv.Itoa(os.Getegid())
	dir := rtmtest.WriteFiles(t, map[string]string{
		"passwd": "odd:x:4000001:staff:::\nlisted:x:4000002:wheel:::\nprimary:x:4000003:" + g + ":::\nother:x:4000004:4000099:::\nzeros:x:4000006:0" + g + ":::\n",
		"group":  "srv:x:" + g + ":listed\n",
	})
	oldP, oldG := passwdFile, groupFile
	t.Cleanup(func() { passwdFile, groupFile = oldP, oldG })
	passwdFile, groupFile = filepath.Join(dir, "passwd"), filepath.Join(dir, "group")
	got := strings.Join(AccessWarnings(true, []uint32{4000001, 4000002, 4000003, 4000004, 4000005, 4000006}, nil), "\n")
	for _, want := range []string{
		`--allow-uid 4000001: uid 4000001's entry in /etc/passwd gives its group as "staff", not a number, so rtm cannot tell whether it is in the server's group srv (gid ` + g + ")",
		"--allow-uid 4000004: uid 4000004 is not in the server's group srv",
		"--allow-uid 4000005: uid 4000005 is not in /etc/passwd, so rtm cannot tell",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in:\n%s", want, got)
		}
	}
	for _, member := range []string{"4000002", "4000003", "4000006"} {
		if strings.Contains(got, "uid "+member) {
			t.Errorf("uid %s, a member, is warned of:\n%s", member, got)
		}
	}
}
