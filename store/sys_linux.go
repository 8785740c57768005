package store

import (
	"bytes"
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// The system calls the segment needs, one small function each.

// openFD never follows a symbolic link at path (ELOOP): what rtm checks
// and maps is the file the path itself names. Nor does it wait: a FIFO
// put in a store's place would hold an open for reading until someone
// wrote to it (O_NONBLOCK, which changes nothing for a regular file); it
// is then refused as no regular file.
func openFD(path string, flag int, perm uint32) (int, error) {
	return unix.Open(path, flag|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, perm)
}

func closeFD(fd int) error { return unix.Close(fd) }

// lockFD takes the segment's own write lock without waiting: a lock of
// the open file description (F_OFD_SETLK), and a flock. What admits one
// server is the writer lock beside the store (LockPath), which no reader
// can open; these keep an rtm from before it out, which locks the store
// alone, and are taken where they can be. A read lock on the store
// (anyone who may read it can take one) is not a server: with one held,
// the store is opened without its own lock, unless strict (no lock file:
// this lock is the one that admits). A held lock gives unix.EAGAIN. The
// locks live as long as the descriptor.
//
// Where a flock is held, the writer the header names, if it has not
// closed the segment and is alive and of this uid, is such an older rtm
// serving it (unix.EAGAIN); anyone else's flock keeps nobody out.
func lockFD(fd int, strict bool) error {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0} // the whole file
	held := true
	if err := retry(func() error { return unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk) }); err != nil {
		if strict || !isLocked(err) || !readLocked(fd) {
			return err
		}
		held = false
	}
	err := retry(func() error { return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) })
	if isLocked(err) && !olderWriter(fd) {
		err = nil
	}
	if err != nil && held {
		lk.Type = unix.F_UNLCK
		unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLK, &lk)
	}
	return err
}

// readLocked says whether what keeps a write lock off the file on fd is
// a read lock, which no server takes, rather than another's write lock.
func readLocked(fd int) bool {
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	if retry(func() error { return unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, &lk) }) != nil {
		return false
	}
	// F_UNLCK: the holder let go meanwhile; a lock of its kind is no
	// server's either way only if it was a read lock, so say no.
	return lk.Type == unix.F_RDLCK
}

// olderWriter says whether the writer the header of the segment on fd
// names has not closed it and is alive and of this uid: an rtm that
// locks with flock alone, serving it.
func olderWriter(fd int) bool {
	pid, clean := headerPID(fd)
	return !clean && processOf(pid, uint32(geteuid()))
}

// processOf says whether process pid is alive and runs as uid: a store's
// writer runs as the store's owner, and a pid that another uid's process
// has taken since is not it.
func processOf(pid int, uid uint32) bool {
	var st unix.Stat_t
	return ProcessAlive(pid) && unix.Stat("/proc/"+strconv.Itoa(pid), &st) == nil && st.Uid == uid
}

// retry makes call again while a signal interrupts it.
func retry(call func() error) error {
	for {
		if err := call(); err != unix.EINTR {
			return err
		}
	}
}

// allocateFD reserves every block of the file now, so that a full file
// system fails here with ENOSPC instead of a SIGBUS on a later store.
func allocateFD(fd int, size int64) error {
	return retry(func() error { return unix.Fallocate(fd, 0, 0, size) })
}

func mapFD(fd int, size int, writable bool) ([]byte, error) {
	prot, flags := unix.PROT_READ, unix.MAP_SHARED
	if writable {
		prot |= unix.PROT_WRITE
	} else {
		flags |= unix.MAP_POPULATE // fault the table in now, not on the first lookups
	}
	return unix.Mmap(fd, 0, size, prot, flags)
}

func unmap(b []byte) error { return unix.Munmap(b) }

func syncMem(b []byte) error { return unix.Msync(b, unix.MS_SYNC) }

// renameNoReplace publishes a finished segment; unix.EEXIST means another
// process published one first.
func renameNoReplace(from, to string) error {
	return unix.Renameat2(unix.AT_FDCWD, from, unix.AT_FDCWD, to, unix.RENAME_NOREPLACE)
}

// sameFile reports whether path still names the file open on fd: a
// successor may have removed and recreated the store while we waited.
func sameFile(fd int, path string) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Fstat(fd, &a); err != nil {
		return false, err
	}
	if err := unix.Lstat(path, &b); err != nil {
		if err == unix.ENOENT {
			return false, nil
		}
		return false, err
	}
	return a.Dev == b.Dev && a.Ino == b.Ino, nil
}

func fileSize(fd int) (int64, error) {
	st, err := statFD(fd)
	return st.Size, err
}

// statFD describes the file open on fd: owner and mode are checked on
// the file rtm holds, never on a path that may name another by now.
func statFD(fd int) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstat(fd, &st)
	return st, err
}

func geteuid() int { return unix.Geteuid() }

// readAt fills as much of b as the file holds from offset 0.
func readAt(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Pread(fd, b[n:], int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return n, nil
}

func setMode(fd int, perm uint32) error { return unix.Fchmod(fd, perm) }

func unlink(path string) error { return unix.Unlink(path) }

func getpid() int { return unix.Getpid() }

// ProcessAlive reports whether process pid exists (EPERM says it does,
// as another user's) and has not ended: a zombie, killed and not yet
// reaped by its parent, answers kill(pid, 0) but holds nothing (its
// files and locks went with it). Files named after a pid (a store's
// temporary segments, a test run's sockets) are stale once it is false.
func ProcessAlive(pid int) bool {
	return pid > 0 && unix.Kill(pid, 0) != unix.ESRCH && !ended(pid)
}

// ended says whether /proc shows process pid as a zombie or dead; false
// if /proc cannot tell. Its state follows the last ')' of stat: the
// command's name before it may hold anything, parentheses too.
func ended(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	i := bytes.LastIndexByte(b, ')')
	if err != nil || i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] == 'Z' || b[i+2] == 'X'
}

// The errors of these calls that callers act on.

func isNotExist(err error) bool { return errors.Is(err, unix.ENOENT) }
func isExist(err error) bool    { return errors.Is(err, unix.EEXIST) }
func isLocked(err error) bool {
	return errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) // EWOULDBLOCK is EAGAIN
}
func isSymlink(err error) bool { return errors.Is(err, unix.ELOOP) }
