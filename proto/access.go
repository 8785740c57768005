package proto

import (
	"bufio"
	"fmt"
	"iter"
	"os"
	"slices"
	"strconv"
	"strings"
)

// AccessWarnings says which uids a server is told to let in (--allow-uid
// and --allow-write-uid: allow, allowWrite) cannot reach it as it is
// started. Without --group, socket and store are 0600: only the server's
// uid and root can open them. With --group, only members of the server's
// group can. Membership is read from /etc/passwd and /etc/group (rtm has
// no NSS without cgo): a uid they do not know is not reported.
func AccessWarnings(group bool, allow, allowWrite []uint32) []string {
	me := os.Geteuid()
	gid := os.Getegid()
	var out []string
	seen := map[uint32]bool{}
	check := func(flag string, uids []uint32) {
		for _, uid := range uids {
			if int(uid) == me || uid == 0 || seen[uid] {
				continue // these reach any server of this uid
			}
			seen[uid] = true
			switch member, known := inGroup(uid, gid); {
			case !group:
				out = append(out, fmt.Sprintf("%s %d: uid %d cannot open the socket or read the store (both 0600 without --group): start the server with --group, and uid %d in its group, %s",
					flag, uid, uid, uid, groupName(gid)))
			case known && !member:
				out = append(out, fmt.Sprintf("%s %d: uid %d is not in the server's group %s, so it cannot open the socket (0660) or read the store (0640): add it to the group, or start the server with a group it is in",
					flag, uid, uid, groupName(gid)))
			}
		}
	}
	check("--allow-write-uid", allowWrite)
	check("--allow-uid", allow)
	return out
}

// inGroup says whether /etc/passwd and /etc/group make uid a member of
// gid, and whether they know uid at all.
func inGroup(uid uint32, gid int) (member, known bool) {
	user, primary, ok := passwdEntry(uid)
	if !ok {
		return false, false
	}
	if primary == gid {
		return true, true
	}
	_, members, _ := groupEntry(gid)
	return slices.Contains(members, user), true
}

// groupName names gid for a message: "rtm (gid 1001)", or "gid 1001".
func groupName(gid int) string {
	if name, _, ok := groupEntry(gid); ok {
		return fmt.Sprintf("%s (gid %d)", name, gid)
	}
	return fmt.Sprintf("gid %d", gid)
}

// passwdEntry finds uid in /etc/passwd: its name and primary group.
func passwdEntry(uid uint32) (name string, gid int, ok bool) {
	for f := range dbEntries("/etc/passwd", 4) {
		if f[2] == strconv.FormatUint(uint64(uid), 10) {
			gid, err := strconv.Atoi(f[3])
			return f[0], gid, err == nil
		}
	}
	return "", 0, false
}

// groupEntry finds gid in /etc/group: its name and listed members.
func groupEntry(gid int) (name string, members []string, ok bool) {
	for f := range dbEntries("/etc/group", 4) {
		if f[2] == strconv.Itoa(gid) {
			return f[0], strings.Split(f[3], ","), true
		}
	}
	return "", nil, false
}

// dbEntries yields the colon-separated fields of the lines of a file in
// the format of /etc/passwd, those with at least n fields.
func dbEntries(path string, n int) iter.Seq[[]string] {
	return func(yield func([]string) bool) {
		f, err := os.Open(path)
		if err != nil {
			return
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if fields := strings.Split(sc.Text(), ":"); len(fields) >= n && !yield(fields) {
				return
			}
		}
	}
}
