package proto

import (
	"errors"
	"fmt"
	"iter"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Whom rtm trusts, the way tmux and OpenSSH treat their runtime files:
//
//   - The directory of a socket, and every directory above it, can be
//     changed only by the user or root, or is sticky (as /tmp is) and
//     theirs: nobody else can move the socket away and put one of their
//     own in its place. The runtime directory (SocketDir) must be the
//     user's own and writable by nobody else, whether rtm made it or
//     found it.
//   - A client believes no byte from a server before it has checked, with
//     SO_PEERCRED on its own end, that the server runs as the client's
//     uid, as root, or as a uid the client named (--server-uid).
//   - A store is mapped only if the server's uid owns it and nobody else
//     can write it (package store checks that on the descriptor).
//
// Every check is made on a descriptor rtm holds (fstat), never on a path
// that may name something else by the time it is used. Once every
// directory on the way is one that only the user or root can change, the
// path cannot be redirected after the check, so the socket can then be
// bound or connected by its path.

// trustError says why rtm will not use a directory or a server, and what
// to do about it.
type trustError struct {
	what string // "socket directory /tmp/rtm-1000"
	why  string // "is owned by uid 65534, not by you (uid 1000)"
	fix  string
}

func (e *trustError) Error() string { return e.what + " " + e.why + ": " + e.fix }

// untrusted marks an error that ends a client's session as a refusal
// does (errors.Is(err, ErrRefused)): trying again would find the same
// directory, server or store, and a client must not take its tables from
// them.
type untrusted struct{ error }

func (u untrusted) Unwrap() error      { return u.error }
func (untrusted) Is(target error) bool { return target == ErrRefused }

// prepareSocketDir makes the directory of a server's socket if it is
// missing (mode 0700) and checks it and every directory above it. For a
// server of group (--group) it opens the runtime directory to the
// server's group (checkRuntimeDir).
func prepareSocketDir(socket string, group bool) error {
	dir := filepath.Dir(socket)
	if dir == SocketDir() {
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return fmt.Errorf("socket directory: %w", err)
		}
		return checkRuntimeDir(dir, true, group)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("socket directory: %w", err)
	}
	fd, _, err := openParent(socket, nil)
	if err != nil {
		return err
	}
	closeFD(fd)
	return nil
}

// checkSocketDir checks the directory of a socket a client is about to
// connect to; directories of the server uids it trusts are trusted too.
// Only a directory another user could control is an error: one that
// cannot be reached is left to connect to report.
func checkSocketDir(socket string, trusted []uint32) error {
	var err error
	if dir := filepath.Dir(socket); dir == SocketDir() {
		err = checkRuntimeDir(dir, false, false)
	} else {
		err = checkSocketPath(socket, trusted)
	}
	var te *trustError
	if errors.As(err, &te) {
		return untrusted{err}
	}
	return nil
}

// checkSocketPath checks the directories on the way to socket, and the
// socket's own name where it is a symbolic link, as openParent checks a
// link on the way: another user's link there would lead the client to a
// socket of that user's choosing (a server of the client's own uid that
// serves another instance).
func checkSocketPath(socket string, trusted []uint32) error {
	socket, err := filepath.Abs(socket)
	for links := 0; err == nil; links++ {
		var fd int
		var last, target string
		if fd, last, err = openParent(socket, trusted); err != nil {
			return err
		}
		target, err = trustedLink(fd, filepath.Dir(socket), last, trusted)
		closeFD(fd)
		switch {
		case errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ENOENT):
			return nil // no link: connect finds what is there
		case err == nil && links >= maxLinks:
			err = fmt.Errorf("%s: %w", socket, unix.ELOOP)
		case err == nil && !filepath.IsAbs(target):
			socket = filepath.Join(filepath.Dir(socket), target)
		case err == nil:
			socket = target
		}
	}
	return err
}

// checkRuntimeDir checks the runtime directory, making it first if
// create is set. A missing one (not created) is an error for which
// errors.Is(err, os.ErrNotExist) holds. With group (a server started
// with --group) it lets the members of the server's group through it,
// or the 0660 socket in it could not be reached: mode 0710. They may
// open a socket whose name they know and list nothing; each socket keeps
// its own mode. Only a directory of the server's group (as one it made
// has) is opened: giving it another group would shut out the members of
// a server started before with that one. ReachWarnings names a directory
// left closed.
func checkRuntimeDir(dir string, create, group bool) error {
	parent, name, err := openParent(dir, nil)
	if err != nil {
		return err
	}
	defer closeFD(parent)
	if create {
		if err := mkdirAt(parent, name); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("socket directory %s: %w", dir, err)
		}
	}
	fd, err := openDirAt(parent, name)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return &trustError{what: "socket directory " + dir, why: "is not a directory (a symbolic link, or a file)",
			fix: "another user may have put it there; have it removed, and rtm makes the directory"}
	}
	if err != nil {
		return fmt.Errorf("socket directory %s: %w", dir, err)
	}
	defer closeFD(fd)
	st, err := statFD(fd)
	if err != nil {
		return fmt.Errorf("socket directory %s: %w", dir, err)
	}
	if err := ownDir(dir, &st); err != nil || !group || int(st.Gid) != os.Getegid() || st.Mode&0o010 != 0 {
		return err
	}
	// fd is O_PATH, which fchmod refuses; name in parent is the directory
	// just checked, and only the user or root can change parent.
	if err := unix.Fchmodat(parent, name, st.Mode&0o7777|0o010, 0); err != nil {
		return fmt.Errorf("socket directory %s: let the server's group through for --group: %w", dir, err)
	}
	return nil
}

// ownDir refuses a runtime directory that is not the user's alone.
func ownDir(dir string, st *unix.Stat_t) error {
	me := os.Geteuid()
	switch {
	case int(st.Uid) != me:
		// Another user's runtime directory (XDG_RUNTIME_DIR kept
		// through sudo or setpriv) holds that user's sockets, not this
		// one's instances: its server is reached by its socket.
		risk := fmt.Sprintf("uid %d could put a server of its own in place of yours", st.Uid)
		if st.Uid == 0 {
			risk = "it holds root's instances, not yours"
		}
		return &trustError{what: "socket directory " + dir, why: fmt.Sprintf("is owned by uid %d, not by you (uid %d)", st.Uid, me),
			fix: fmt.Sprintf("%s; set XDG_RUNTIME_DIR to a directory of your own, or have it removed (by uid %d or root) and rtm makes it again; another user's server is reached by its socket (--socket PATH)", risk, st.Uid)}
	case st.Mode&0o022 != 0:
		return &trustError{what: "socket directory " + dir, why: fmt.Sprintf("is writable by group or others (mode %04o)", st.Mode&0o7777),
			fix: "another user could put a server of their own in place of yours; chmod 700 " + dir}
	}
	return nil
}

// maxLinks bounds the symbolic links followed on the way, as the kernel
// does (ELOOP).
const maxLinks = 40

// openParent walks from / to the directory that holds the last name of
// path, one name at a time, without following a symbolic link unchecked,
// and checks every directory on the way with onTheWay, for which the
// trusted uids are as good as the user's. It returns the held descriptor
// of that directory (O_PATH) and the last name.
func openParent(path string, trusted []uint32) (int, string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return -1, "", err
	}
	dir, last := filepath.Split(abs)
	fd, err := openDirAt(unix.AT_FDCWD, "/")
	if err != nil {
		return -1, "", err
	}
	at := "/"
	if err = checkDirFD(fd, at, trusted); err != nil {
		closeFD(fd)
		return -1, "", err
	}
	names := strings.Split(dir, "/")
	for links := 0; len(names) > 0; {
		name := names[0]
		names = names[1:]
		if name == "" || name == "." {
			continue
		}
		next, err := openDirAt(fd, name)
		if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			var target string
			if target, err = trustedLink(fd, at, name, trusted); err == nil && links >= maxLinks {
				err = fmt.Errorf("%s: %w", path, unix.ELOOP)
			}
			if err != nil {
				closeFD(fd)
				return -1, "", err
			}
			links++
			if filepath.IsAbs(target) {
				closeFD(fd)
				if fd, err = openDirAt(unix.AT_FDCWD, "/"); err != nil {
					return -1, "", err
				}
				at = "/"
			}
			names = append(strings.Split(target, "/"), names...)
			continue
		}
		closeFD(fd)
		if err != nil {
			return -1, "", fmt.Errorf("%s: %w", filepath.Join(at, name), err)
		}
		fd, at = next, filepath.Join(at, name)
		if err := checkDirFD(fd, at, trusted); err != nil {
			closeFD(fd)
			return -1, "", err
		}
	}
	return fd, last, nil
}

// trustedLink reads the symbolic link name in the directory dirfd (at),
// which must be the user's, root's or a trusted uid's: only they could
// have put it there, the directory having passed onTheWay. A name that is
// no link is not a directory (ENOTDIR).
func trustedLink(dirfd int, at, name string, trusted []uint32) (string, error) {
	path := filepath.Join(at, name)
	st, err := lstatAt(dirfd, name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		return "", fmt.Errorf("%s: %w", path, unix.ENOTDIR)
	}
	if !trustedUID(st.Uid, trusted) {
		return "", &trustError{what: "symbolic link " + path, why: fmt.Sprintf("is owned by uid %d", st.Uid),
			fix: "that user chooses where it leads; use a path without it"}
	}
	return readlinkAt(dirfd, name)
}

// checkDirFD checks the directory open on fd (at) with onTheWay.
func checkDirFD(fd int, at string, trusted []uint32) error {
	st, err := statFD(fd)
	if err != nil {
		return fmt.Errorf("%s: %w", at, err)
	}
	return onTheWay(at, &st, trusted)
}

// trustedUID says whether uid is the user, root, or one of trusted.
func trustedUID(uid uint32, trusted []uint32) bool {
	return int(uid) == os.Geteuid() || uid == 0 || slices.Contains(trusted, uid)
}

// onTheWay refuses a directory above a socket that another user could
// change: owned by another uid (its owner can do as they please in it),
// or writable by group or others without being sticky (anyone who may
// write in it may rename what it holds).
func onTheWay(dir string, st *unix.Stat_t, trusted []uint32) error {
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("%s: %w", dir, unix.ENOTDIR)
	case !trustedUID(st.Uid, trusted):
		return &trustError{what: "directory " + dir, why: fmt.Sprintf("is owned by uid %d", st.Uid),
			fix: fmt.Sprintf("that user could put a server of their own in place of yours; keep the socket in a directory of your own (XDG_RUNTIME_DIR, or --socket), or, for a client of a server of uid %d, trust it with rtm client --server-uid %d", st.Uid, st.Uid)}
	case st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0:
		return &trustError{what: "directory " + dir, why: fmt.Sprintf("is writable by group or others and not sticky (mode %04o)", st.Mode&0o7777),
			fix: fmt.Sprintf("another user could put a server of their own in place of yours; chmod go-w %s (or chmod +t %s, as /tmp is), or keep the socket elsewhere (XDG_RUNTIME_DIR, or --socket)", dir, dir)}
	}
	return nil
}

// checkServer reads the server's credentials on the client's own end of
// the connection (SO_PEERCRED: the kernel recorded them when the server
// listened; no server can forge them) and refuses a server whose uid the
// client does not trust: its own, root, and those it named. It returns
// the server's uid, which must own the store.
func checkServer(uc *net.UnixConn, socket string, trusted []uint32) (uint32, error) {
	cred, err := peerCred(uc)
	if err != nil {
		return 0, fmt.Errorf("credentials of the server at %s (SO_PEERCRED): %w", socket, err)
	}
	if trustedUID(cred.Uid, trusted) {
		return cred.Uid, nil
	}
	you := fmt.Sprintf("you (uid %d) or root", os.Geteuid())
	if os.Geteuid() == 0 {
		you = "you (root)"
	}
	return 0, untrusted{&trustError{what: "the server at " + socket,
		why: fmt.Sprintf("runs as uid %d (pid %d), not as %s", cred.Uid, cred.Pid, you),
		fix: fmt.Sprintf("it may be another user's server in place of yours; if you trust uid %d, say so with --server-uid %d", cred.Uid, cred.Uid)}}
}

// dialError says why connect failed. Permission denied means a server
// runs but its socket's mode keeps this uid out, which "is the server
// running?" would misreport.
func dialError(socket string, trusted []uint32, err error) error {
	if errors.Is(err, unix.EAGAIN) {
		// A unix socket's queue of connections not yet accepted is full.
		return fmt.Errorf("connect to %s: %w: its queue of new connections is full (a flood of them, or a server too busy to accept)", socket, ErrBusy)
	}
	if !errors.Is(err, os.ErrPermission) {
		// The errno alone: net's "dial unixpacket PATH: connect:" says
		// again what the message says already.
		if errno, ok := errors.AsType[unix.Errno](err); ok {
			err = errno
		}
		return fmt.Errorf("connect to %s: %w", socket, err)
	}
	// The socket itself, through a link at its name that checkSocketPath
	// let through: the link's own mode is not what refused.
	var st unix.Stat_t
	serr := unix.Stat(socket, &st)
	if serr != nil {
		if dir, dst, ok := firstClosed(filepath.Dir(socket)); ok {
			// A server with --group opens its own directory to its group,
			// never one above it (an XDG_RUNTIME_DIR is 0700).
			fix := "its owner must let you through (chmod g+x or o+x), or the server keep its socket in a directory you can reach (--socket)"
			if dir == filepath.Dir(socket) {
				fix = "a server started with --group lets its group through its own runtime directory, so be in the server's group (and let in with --allow-uid), or the server keep its socket elsewhere (--socket)"
			}
			return fmt.Errorf("connect to %s: %w on the directory %s (mode %04o, uid %d, group %d), on the way to the socket: %s",
				socket, os.ErrPermission, dir, dst.Mode&0o7777, dst.Uid, dst.Gid, fix)
		}
		return fmt.Errorf("connect to %s: %w on a directory on the way to the socket", socket, os.ErrPermission)
	}
	if !trustedUID(st.Uid, trusted) {
		// Not a server this client would talk to anyway.
		return fmt.Errorf("connect to %s: %w on the socket (mode %04o, uid %d): it is uid %d's, not yours nor a server uid you trust (--server-uid); is --socket right?",
			socket, os.ErrPermission, st.Mode&0o777, st.Uid, st.Uid)
	}
	return fmt.Errorf("connect to %s: %w on the socket (mode %04o, uid %d, group %d): its server lets another uid in with --group, if that uid is in group %d, and --allow-uid",
		socket, os.ErrPermission, st.Mode&0o777, st.Uid, st.Gid, st.Gid)
}

// firstClosed finds the first directory on the way to dir (dir included)
// that this process may not search, and its owner and mode.
func firstClosed(dir string) (string, unix.Stat_t, bool) {
	for d := range dirsTo(dir) {
		if unix.Faccessat(unix.AT_FDCWD, d, unix.X_OK, unix.AT_EACCESS) != nil {
			var st unix.Stat_t
			return d, st, unix.Stat(d, &st) == nil
		}
	}
	return "", unix.Stat_t{}, false
}

// dirsTo yields / and each directory under it on the way to dir, dir
// last, by their absolute paths.
func dirsTo(dir string) iter.Seq[string] {
	return func(yield func(string) bool) {
		abs, err := filepath.Abs(dir)
		if err != nil || !yield("/") {
			return
		}
		d := "/"
		for _, name := range strings.Split(strings.TrimPrefix(abs, "/"), "/") {
			if name == "" {
				continue
			}
			d = filepath.Join(d, name)
			if !yield(d) {
				return
			}
		}
	}
}

// The system calls of the checks, one small function each.

// openDirAt opens the directory name in dirfd for checking and as a
// place to look up names (O_PATH needs only the search permission that
// connect needs), never through a symbolic link (ELOOP or ENOTDIR).
func openDirAt(dirfd int, name string) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func mkdirAt(dirfd int, name string) error { return unix.Mkdirat(dirfd, name, 0o700) }

func statFD(fd int) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstat(fd, &st)
	return st, err
}

func lstatAt(dirfd int, name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

func readlinkAt(dirfd int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func closeFD(fd int) { unix.Close(fd) }
