package proto

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"rtm/store"
)

// An instance is a server's name: it picks the socket (in the user's
// runtime directory) and the store (in StoreDir) unless flags say
// otherwise. These functions name, list and remove instances by their
// default files.

// SocketDir is where instances' sockets are: the XDG runtime directory
// when there is one (private to the user, cleared at logout), else a
// private directory in /tmp. A relative XDG_RUNTIME_DIR is none: the
// XDG specification says to ignore it, and it would name another
// directory in each working directory.
func SocketDir() string {
	if dir := os.Getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(dir) {
		return filepath.Join(dir, "rtm")
	}
	return filepath.Join(os.TempDir(), "rtm-"+strconv.Itoa(os.Getuid()))
}

// StoreDirEnv names the environment variable that moves instances'
// stores out of DefaultStoreDir: tests keep theirs private with it.
const StoreDirEnv = "RTM_STORE_DIR"

// StoreDir is where instances' stores are: $RTM_STORE_DIR, else POSIX
// shared memory (/dev/shm). It is made absolute, because the server hands the
// path of its store to clients that may run in other directories.
func StoreDir() string {
	dir := os.Getenv(StoreDirEnv)
	if dir == "" {
		return "/dev/shm"
	}
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// DefaultSocket is the socket of instance name.
func DefaultSocket(name string) string { return filepath.Join(SocketDir(), name+".sock") }

// DefaultSocketOf names the instance whose default socket path is, if
// it is one: NAME.sock in SocketDir, NAME a valid instance name.
func DefaultSocketOf(path string) (name string, ok bool) {
	dir, base := filepath.Split(filepath.Clean(path))
	name, ok = strings.CutSuffix(base, ".sock")
	if !ok || CheckInstanceName(name) != nil || !sameDir(dir, SocketDir()) {
		return "", false
	}
	return name, true
}

// sameDir says whether a and b name one directory, by their paths, or
// through symbolic links where both exist.
func sameDir(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

// DefaultStore is the store of instance name.
func DefaultStore(name string) string { return filepath.Join(StoreDir(), "rtm."+name) }

// storeLink is where a server that listens on its name's default socket
// with its store elsewhere (--store) says where that store is: a link
// beside the socket, in the user's private runtime directory. After a
// crash, rtm ls finds the store there, and rtm rm removes it.
func storeLink(name string) string { return filepath.Join(SocketDir(), name+".store") }

// linkStore makes or removes name's store link as the server that
// listens on socket with its store at path needs it: made for a store
// elsewhere, removed for the default one. A server on another socket
// (--socket) is no instance rtm ls lists by its name, and leaves the link
// alone. What it replaces may be the only record of a crashed store: it
// returns that store's path, for the server to say ("" if none).
func linkStore(name, socket, path string) (forgot string, err error) {
	if name == "" || socket != DefaultSocket(name) {
		return "", nil
	}
	if old := linkedStore(name); old != nil && old.Path != path && !old.Clean && !old.Live {
		forgot = old.Path
	}
	link := storeLink(name)
	if path == DefaultStore(name) {
		if err := os.Remove(link); err != nil && !errors.Is(err, os.ErrNotExist) {
			return forgot, err
		}
		return forgot, nil
	}
	// Made aside and renamed over: a reader sees the old link or the new.
	tmp := fmt.Sprintf("%s.tmp-%d", link, os.Getpid())
	os.Remove(tmp)
	if err := os.Symlink(path, tmp); err != nil {
		return forgot, err
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return forgot, err
	}
	return forgot, nil
}

// unlinkStore removes name's store link once its server has closed the
// store at path: only its own, as a server started since may have made
// another.
func unlinkStore(name, path string) {
	if link := storeLink(name); name != "" {
		if to, err := os.Readlink(link); err == nil && to == path {
			if st, err := store.Inspect(path); err == nil && st.Live {
				return // a server that started since holds it, and linked it
			}
			os.Remove(link)
		}
	}
}

// linkedStore is what name's store link names, if it is a store of this
// user's that was not closed cleanly since (live, or crashed): a link to
// a store closed cleanly (repaired by a server of another name or
// socket), to a file that is no store or to nothing is stale, and names
// no store of the instance. nil if there is none.
func linkedStore(name string) *store.Inspection {
	path, err := os.Readlink(storeLink(name))
	if err != nil || !filepath.IsAbs(path) || !ownedBy(path, os.Getuid()) {
		return nil
	}
	st, err := store.Inspect(path)
	if err != nil || st.Clean {
		return nil
	}
	return &st
}

// CheckInstanceName admits plain file names: the name becomes part of
// the socket's and the store's file names.
func CheckInstanceName(name string) error {
	ok := name != "" && len(name) <= 64 && name[0] != '.' && name[0] != '-'
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_'
	}
	if !ok {
		return fmt.Errorf("instance name %q: want 1 to 64 letters, digits, '.', '-' or '_', not starting with '.' or '-'", name)
	}
	if strings.Contains(name, ".tmp-") {
		// rtm.NAME.tmp-PID-N is where a store is made: the start of the
		// instance NAME would take this one's store for a stale one.
		return fmt.Errorf("instance name %q: .tmp- is kept for the files a store is made in", name)
	}
	return nil
}

// Instance is what rtm ls says of one instance.
type Instance struct {
	Name   string            `json:"name"`
	State  string            `json:"state"` // live, stopped, crashed, stale socket, unusable
	PID    int               `json:"pid,omitempty"`
	Socket string            `json:"socket,omitempty"` // "" if there is none
	Store  *store.Inspection `json:"store,omitempty"`  // nil if there is none
	Issue  string            `json:"issue,omitempty"`  // what is odd about it

	notSocket string // a file that is no socket where its socket would be
	elsewhere bool   // its store is not in StoreDir: its link named it
	// crashedAway: its link names a crashed store other than the one
	// listed (an earlier start with --store), said in Issue.
	crashedAway string
}

// Instance states.
const (
	StateLive    = "live"         // a server serves it
	StateStopped = "stopped"      // its store is kept for the next server
	StateCrashed = "crashed"      // its store is kept; the next server repairs it
	StateStale   = "stale socket" // a socket file with no server behind it
	StateBad     = "unusable"     // a file where its store would be that is no store rtm can read (Issue says why)
)

// Instances lists the instances of this user: the sockets in SocketDir
// and the stores in StoreDir, sorted by name.
func Instances() ([]Instance, error) {
	if err := checkRuntimeDir(SocketDir(), false, false); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	byName := map[string]*Instance{}
	get := func(name string) *Instance {
		if byName[name] == nil {
			byName[name] = &Instance{Name: name}
		}
		return byName[name]
	}
	socks, err := filepath.Glob(filepath.Join(SocketDir(), "*.sock"))
	if err != nil {
		return nil, err
	}
	for _, s := range socks {
		in := get(strings.TrimSuffix(filepath.Base(s), ".sock"))
		if !isSocket(s) {
			in.notSocket = s // no server listens there, nor can: not stale
			continue
		}
		in.Socket = s
	}
	stores, err := filepath.Glob(filepath.Join(StoreDir(), "rtm.*"))
	if err != nil {
		return nil, err
	}
	uid := os.Getuid()
	for _, p := range stores {
		name := strings.TrimPrefix(filepath.Base(p), "rtm.")
		if strings.Contains(name, ".tmp-") || CheckInstanceName(name) != nil || !ownedBy(p, uid) {
			continue // a store being created, or not one of ours
		}
		in := get(name)
		if st, err := store.Inspect(p); err != nil {
			in.Issue = err.Error()
		} else {
			in.Store = &st
		}
	}
	// A store elsewhere (--store) of a server that listened on its
	// name's socket: its own link says where, and whose it is.
	links, err := filepath.Glob(filepath.Join(SocketDir(), "*.store"))
	if err != nil {
		return nil, err
	}
	for _, l := range links {
		name := strings.TrimSuffix(filepath.Base(l), ".store")
		if CheckInstanceName(name) != nil {
			continue
		}
		st := linkedStore(name)
		switch {
		case st == nil:
		case byName[name] != nil && byName[name].Store != nil:
			// Its default store is listed; the link's is a crash of an
			// earlier start with --store, which would go unsaid.
			if !st.Live && st.Path != byName[name].Store.Path {
				byName[name].crashedAway = fmt.Sprintf("%s names a crashed store elsewhere, %s: `rtm server --name %s --store %s` repairs it", l, st.Path, name, st.Path)
			}
		default:
			get(name).Store, get(name).elsewhere = st, true
		}
	}
	out := make([]Instance, 0, len(byName))
	for _, in := range byName {
		in.State = in.state()
		if in.State == StateLive && in.Store == nil {
			in.askStore()
		}
		if in.notSocket != "" {
			in.Issue = strings.TrimPrefix(in.Issue+"; ", "; ") + notSocketIssue(in.notSocket)
		}
		if in.crashedAway != "" {
			in.Issue = strings.TrimPrefix(in.Issue+"; ", "; ") + in.crashedAway
		}
		out = append(out, *in)
	}
	slices.SortFunc(out, func(a, b Instance) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func ownedBy(path string, uid int) bool {
	owner, ok := fileOwner(path)
	return ok && owner == uid
}

// fileOwner is the uid that owns path itself (not what a link names);
// false if there is no such file.
func fileOwner(path string) (int, bool) {
	fi, err := os.Lstat(path)
	if err != nil {
		return 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// state says what the instance's files tell, and fills in its pid. A
// store its server did not close is crashed, with or without the socket
// file the crash left.
func (in *Instance) state() string {
	live := in.Socket != "" && socketLive(in.Socket)
	switch {
	case in.Store != nil && in.Store.Live:
		in.PID = in.Store.WriterPID
		at, listening := Listener(in.PID)
		switch {
		case !listening && !live:
			in.Issue = NotListeningIssue(in.PID)
		case in.Socket != "":
		case at != "":
			// rtm client --name finds no server there.
			in.Issue = "no socket in " + SocketDir() + ": it listens on " + at + " (another XDG_RUNTIME_DIR, or --socket)"
		default:
			in.Issue = "no socket in " + SocketDir() + ": its socket was removed"
		}
		return StateLive
	case live:
		return StateLive // a server whose store is elsewhere (--store)
	case in.Store != nil && !in.Store.Clean:
		if in.Socket != "" {
			in.Issue = "its server died and left its socket " + in.Socket
		}
		if in.elsewhere {
			// The next start finds it only if told where.
			in.Issue = strings.TrimPrefix(in.Issue+"; ", "; ") + fmt.Sprintf("its store is not in %s: `rtm server --name %s --store %s` repairs it", StoreDir(), in.Name, in.Store.Path)
		}
		return StateCrashed
	case in.Socket != "":
		return StateStale
	case in.Store == nil:
		return StateBad // a junk file, a directory: no server could keep it
	}
	return StateStopped
}

// askStore asks a live server whose store is not in the store directory
// (--store) where its store is and what it holds.
func (in *Instance) askStore() {
	var info ServerInfo
	if err := Ask(in.Socket, nil, QueryInfo, &info); err != nil {
		in.Issue = err.Error()
		return
	}
	in.PID = info.PID
	if info.StoreRemoved {
		in.Issue = "its store was removed while it runs: clients cannot map it, and its tables end when it quits"
	}
	in.Store = &store.Inspection{
		Path: info.Store, Bytes: int64(info.StoreBytes), MACs: info.MACs, Routes: info.Routes,
		MACCapacity: info.MACCapacity, RouteCapacity: info.RouteCapacity,
		Generation: info.Generation, GenerationHex: store.HexGeneration(info.Generation),
		WriterPID: info.PID, Live: true, Changed: info.Changed,
	}
}

// LiveServer is the pid of the server that runs this uid's store of the
// instance name, or 0 if none does: another user's store by that name,
// in a shared store directory, is not this uid's instance (Instances
// skips it too).
func LiveServer(name string) int {
	path := DefaultStore(name)
	if !ownedBy(path, os.Getuid()) {
		return 0
	}
	st, err := store.Inspect(path)
	if err != nil || !st.Live {
		return 0
	}
	return st.WriterPID
}

// Listener is the path of the Unix socket on which process pid listens,
// as its network namespace's /proc/net/unix names it ("" if none, or if
// the socket file was removed: the table keeps the name it was bound
// to), and whether it listens on one at all: a server that does not is
// starting (its store being opened or repaired) or quitting, where one
// whose socket file was removed still listens. If its descriptors
// cannot be read (another user's process), it is "" and true.
func Listener(pid int) (path string, listening bool) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return "", true
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if ino, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	// The process's own network namespace's table: a server started by
	// ip netns exec listens in another than the caller's.
	table, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/unix", pid))
	if err != nil {
		return "", true
	}
	// Num RefCount Protocol Flags Type St Inode Path: a listener has
	// __SO_ACCEPTCON (00010000) in its flags.
	for line := range strings.Lines(string(table)) {
		f := strings.Fields(line)
		if len(f) < 7 || !inodes[f[6]] || f[3] != "00010000" {
			continue
		}
		listening = true
		if len(f) == 8 && strings.HasPrefix(f[7], "/") && isSocket(f[7]) {
			return f[7], true
		}
	}
	return "", listening
}

// NotListeningIssue says that the server of pid does not listen.
func NotListeningIssue(pid int) string {
	return fmt.Sprintf("pid %d does not listen yet: it is starting (its store being opened or repaired), or quitting", pid)
}

// isSocket says whether path itself (not what a link names) is a socket.
func isSocket(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.Mode().Type() == fs.ModeSocket
}

// notSocketIssue says what is wrong with a file that is no socket where
// an instance's socket would be.
func notSocketIssue(path string) string {
	return fmt.Sprintf("%s is not a socket: no server can listen there until it is moved away", path)
}

// socketLive reports whether a server accepts on path. It connects and
// closes without a hello, which a server takes for such a probe.
func socketLive(path string) bool {
	c, err := net.DialTimeout("unixpacket", path, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// RemoveInstance removes a stopped instance's store and stale socket. A
// live one is refused with ErrLive, and nothing is removed. (Temporary
// files a killed server left are the next server's to remove: only it
// can tell them from those of a server starting now.)
func RemoveInstance(name string, force bool) ([]string, error) {
	if err := CheckInstanceName(name); err != nil {
		return nil, err
	}
	if err := checkRuntimeDir(SocketDir(), false, false); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	sock, path, link := DefaultSocket(name), DefaultStore(name), storeLink(name)
	elsewhere := false
	away := linkedStore(name) // a store elsewhere (--store) its server named, crashed or live
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) && away != nil {
		path, elsewhere = away.Path, true
	}
	// Another user's store by the same name is not an instance of ours,
	// even to root, who could remove it.
	if owner, ok := fileOwner(path); ok && owner != os.Geteuid() {
		return nil, fmt.Errorf("instance %s: store %s belongs to uid %d, not to you: rtm rm removes only your own instances", name, path, owner)
	}
	if socketLive(sock) {
		return nil, fmt.Errorf("instance %s: %w (socket %s); quit it first", name, ErrLive, sock)
	}
	if _, err := os.Lstat(sock); err == nil && !isSocket(sock) {
		// Not rtm's to remove, whatever it holds: nothing is removed.
		return nil, fmt.Errorf("instance %s: %s; rtm rm removes only a socket there, so it removed nothing", name, notSocketIssue(sock))
	}
	switch st, err := store.Inspect(path); {
	case err == nil && st.Live:
		// A store kept elsewhere may be held by a server of another
		// name (one repairing it after a crash): that one is named.
		if l, _ := Listener(st.WriterPID); elsewhere && l != "" && l != sock {
			return nil, fmt.Errorf("instance %s: its store %s is held by pid %d, the server on %s; quit that one first", name, path, st.WriterPID, l)
		}
		return nil, fmt.Errorf("instance %s: %w (pid %d holds %s); quit it first", name, ErrLive, st.WriterPID, path)
	case err == nil && !st.Clean && !force:
		repair := "rtm server --name " + name
		if elsewhere {
			repair += " --store " + path
		}
		return nil, fmt.Errorf("instance %s: %w: store %s was not closed cleanly (its server crashed); `%s` repairs it and carries on with its tables, or `rtm rm --force %s` removes it as it is", name, ErrCrashed, path, repair, name)
	case err != nil && !errors.Is(err, os.ErrNotExist) && !force:
		// A file rtm cannot read as a store is not known to be one: rm
		// removes what it can tell is an instance of the user's.
		return nil, fmt.Errorf("instance %s: %w; `rtm rm --force %s` removes the file all the same", name, err, name)
	}
	var removed []string
	// Under the store's writer lock: a server starting meanwhile waits,
	// and one that has the lock keeps its store.
	gone, err := store.RemoveFiles(path)
	var le *store.LockedError
	switch {
	case errors.As(err, &le):
		return nil, fmt.Errorf("instance %s: %w (%v); quit it first", name, ErrLive, err)
	case err != nil:
		return nil, fmt.Errorf("instance %s: %w", name, err)
	case gone:
		removed = append(removed, path)
	}
	// The link goes too if it named the store removed, or no store of
	// the instance's (stale): one that names a crashed store elsewhere
	// beside the default store removed is its only record, and stays.
	files := []string{sock}
	if fi, err := os.Lstat(link); err == nil && fi.Mode()&os.ModeSymlink != 0 && (away == nil || elsewhere) {
		files = append(files, link)
	}
	for _, f := range files {
		if err := os.Remove(f); err == nil {
			removed = append(removed, f)
		} else if !errors.Is(err, os.ErrNotExist) {
			return removed, fmt.Errorf("instance %s: %w", name, err)
		}
	}
	if len(removed) == 0 {
		return nil, fmt.Errorf("instance %s: no such instance (no %s, no %s)", name, path, sock)
	}
	return removed, nil
}
