package store

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Who may have written a store. A server opens only a store of its own
// uid, a client only one of the server's uid, and neither one that group
// or others may write: then nobody else can forge an entry, or shrink the
// file under a mapping. The checks are made on the descriptor that is
// then locked and mapped, so a file swapped in at the path after the
// check is never the one used.

// openOwned opens the store at path (never through a symbolic link) and
// checks the file it got with checkFile.
func openOwned(path string, flag, owner int) (int, unix.Stat_t, error) {
	fd, err := openFD(path, flag, 0)
	if isSymlink(err) {
		return -1, unix.Stat_t{}, &UnsafeError{Path: path, Why: "is a symbolic link",
			Fix: "rtm opens a store by its own path, never through a link (whoever can change the link chooses the file); give the path of the file itself"}
	}
	if err == unix.EACCES {
		// Most likely another uid's file: say whose, as checkFile would
		// once it was open. The path is only looked at for the message.
		var st unix.Stat_t
		if unix.Lstat(path, &st) == nil {
			if uerr := checkFile(path, &st, owner); uerr != nil {
				return -1, unix.Stat_t{}, uerr
			}
		}
	}
	if err != nil {
		return -1, unix.Stat_t{}, fmt.Errorf("open store %s: %w", path, err)
	}
	st, err := statFD(fd)
	if err != nil {
		err = fmt.Errorf("open store %s: %w", path, err)
	} else {
		err = checkFile(path, &st, owner)
	}
	if err != nil {
		closeFD(fd)
		return -1, unix.Stat_t{}, err
	}
	return fd, st, nil
}

// checkFile refuses a file that anyone but owner (and root) could write.
func checkFile(path string, st *unix.Stat_t, owner int) error {
	mode := st.Mode & 0o7777
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return &UnsafeError{Path: path, Why: "is not a regular file", Fix: "a store is a file that rtm server created"}
	case st.Nlink > 1:
		// Where the kernel lets anyone link to a file they cannot write
		// (fs.protected_hardlinks=0), another uid can give one of the
		// owner's stores a second name: an instance of that name would
		// read, or --fresh empty, the other's store.
		return &UnsafeError{Path: path, Why: fmt.Sprintf("has %d names (hard links)", st.Nlink),
			Fix: "rtm makes a store with one name, and another may be another instance's store: list them (find " + filepath.Dir(path) + " -xdev -samefile " + path + ") and remove the one that should not be there"}
	case int(st.Uid) != owner && st.Uid == 0:
		// Root may write anything: the point is whose store it is.
		return &UnsafeError{Path: path, Why: fmt.Sprintf("is owned by uid 0, not uid %d", owner),
			Fix: "it is root's store, which only a server run as root keeps; run this one as root, or give it a store of its own (another --name, or --store)"}
	case int(st.Uid) != owner:
		return &UnsafeError{Path: path, Why: fmt.Sprintf("is owned by uid %d, not uid %d", st.Uid, owner),
			Fix: fmt.Sprintf("uid %d could rewrite its entries or truncate it; have it removed (by uid %d or root), or use another store", st.Uid, st.Uid)}
	case mode&0o022 != 0:
		return &UnsafeError{Path: path, Why: fmt.Sprintf("is writable by group or others (mode %04o)", mode),
			Fix: fmt.Sprintf("they could rewrite its entries or truncate it; if you trust what it holds, chmod go-w %s, else remove it", path)}
	}
	return nil
}

// setPerm gives the store open on fd the permissions asked for (a server
// started with or without --group), returning the ones it had if they
// differed, else 0. Only read bits can differ: checkFile refused the rest.
func setPerm(fd int, st *unix.Stat_t, perm os.FileMode) (os.FileMode, error) {
	if st.Mode&0o7777 == uint32(perm.Perm()) {
		return 0, nil
	}
	return os.FileMode(st.Mode & 0o777), setMode(fd, uint32(perm.Perm()))
}
