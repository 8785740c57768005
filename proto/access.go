package proto

import (
	"bufio"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// AccessWarnings says which uids a server is told to let in (--allow-uid
// and --allow-write-uid: allow, allowWrite) cannot reach it as it is
// started. Without --group, socket and store are 0600: only the server's
// uid and root can open them. With --group, only members of the server's
// group can. Membership is read from /etc/passwd and /etc/group (rtm has
// no NSS without cgo): of a uid they do not know, it says it cannot tell.
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
			member, unknown := inGroup(uid, gid)
			switch known := unknown == ""; {
			case !group:
				out = append(out, fmt.Sprintf("%s %d: uid %d cannot open the socket or read the store (both 0600 without --group): start the server with --group, and uid %d in its group, %s",
					flag, uid, uid, uid, groupName(gid)))
			case known && !member:
				out = append(out, fmt.Sprintf("%s %d: uid %d is not in the server's group %s, so it cannot open the socket (0660) or read the store (0640): add it to the group, or start the server with a group it is in",
					flag, uid, uid, groupName(gid)))
			case !known:
				out = append(out, fmt.Sprintf("%s %d: %s, so rtm cannot tell whether it is in the server's group %s (a directory service may say so); if it is not, it cannot open the socket (0660) or read the store (0640)",
					flag, uid, unknown, groupName(gid)))
			}
		}
	}
	check("--allow-write-uid", allowWrite)
	check("--allow-uid", allow)
	return out
}

// ReachWarnings says, for a server started with --group, which
// directory on the way to its socket or its store the members of its
// group may not pass through: they could not connect, or not map the
// store. The runtime directory a server makes is opened to its group
// (checkRuntimeDir); one given with --socket, XDG_RUNTIME_DIR or the store's
// directory is the user's to open.
func ReachWarnings(socket, store string) []string {
	gid := os.Getegid()
	var out []string
	for _, p := range []struct{ what, path, elsewhere string }{
		{"socket", socket, "--socket"},
		{"store", store, "--store or RTM_STORE_DIR"},
	} {
		dir, st, ok := closedToGroup(filepath.Dir(p.path), gid)
		if !ok {
			continue
		}
		out = append(out, fmt.Sprintf("--group: the members of group %s cannot reach the %s %s: the directory %s (mode %04o, uid %d, group %d) does not let them through; let them (chmod g+x with that group, or o+x), or keep the %s elsewhere (%s)",
			groupName(gid), p.what, p.path, dir, st.Mode&0o7777, st.Uid, st.Gid, p.what, p.elsewhere))
	}
	return out
}

// closedToGroup finds the first directory on the way to dir (dir
// included) that a member of gid, neither its owner nor root, may not
// search.
func closedToGroup(dir string, gid int) (string, unix.Stat_t, bool) {
	for d := range dirsTo(dir) {
		var st unix.Stat_t
		if unix.Stat(d, &st) != nil {
			return "", st, false // not there yet, or not this process's to see
		}
		// A member of the directory's group gets its group bits alone,
		// others its other bits.
		search := uint32(0o001)
		if int(st.Gid) == gid {
			search = 0o010
		}
		if st.Mode&search == 0 {
			return d, st, true
		}
	}
	return "", unix.Stat_t{}, false
}

// inGroup says whether /etc/passwd and /etc/group make uid a member of
// gid, or why they cannot tell.
func inGroup(uid uint32, gid int) (member bool, unknown string) {
	user, primary, found := passwdEntry(uid)
	if !found {
		return false, fmt.Sprintf("uid %d is not in /etc/passwd", uid)
	}
	g, err := strconv.ParseUint(primary, 10, 32)
	if err == nil && int(g) == gid {
		return true, ""
	}
	if _, members, _ := groupEntry(gid); slices.Contains(members, user) {
		return true, ""
	}
	if err != nil {
		return false, fmt.Sprintf("uid %d's entry in /etc/passwd gives its group as %q, not a number", uid, primary)
	}
	return false, ""
}

// groupName names gid for a message: "rtm (gid 1001)", or "gid 1001".
func groupName(gid int) string {
	if name, _, ok := groupEntry(gid); ok {
		return fmt.Sprintf("%s (gid %d)", name, gid)
	}
	return fmt.Sprintf("gid %d", gid)
}

// The user and group databases (tests give their own).
var passwdFile, groupFile = "/etc/passwd", "/etc/group"

// passwdEntry finds uid in /etc/passwd: its name and primary group's
// field, as written.
func passwdEntry(uid uint32) (name, gid string, ok bool) {
	for f := range dbEntries(passwdFile, 4) {
		if f[2] == strconv.FormatUint(uint64(uid), 10) {
			return f[0], f[3], true
		}
	}
	return "", "", false
}

// groupEntry finds gid in /etc/group: its name and listed members.
func groupEntry(gid int) (name string, members []string, ok bool) {
	for f := range dbEntries(groupFile, 4) {
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
