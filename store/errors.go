package store

import (
	"errors"
	"fmt"
	"net/netip"

	"rtm/store/entry"
)

// Errors of the table operations besides those of package entry
// (ErrExists, ErrNotFound), wrapped likewise in an *entry.KeyError.
var (
	ErrFull   = errors.New("table full")
	ErrClosed = errors.New("store closed")
)

// Errors of opening a segment.
var (
	ErrNotStore  = errors.New("not an rtm store")
	ErrVersion   = errors.New("unsupported store layout version")
	ErrCorrupt   = errors.New("store corrupt")
	ErrTruncated = errors.New("store file truncated")
	// ErrBusy is returned by a reader that gave up after a bounded wait
	// (spins, yields, then sleeps until about 2 ms have passed) on a slot
	// that stayed mid-write (a writer killed there), or on a miss while a
	// shift of the table did not end.
	ErrBusy = errors.New("entry is being rewritten; writer not progressing")
)

func macError(m entry.MAC, err error) error {
	return &entry.KeyError{Table: "MAC", Key: m.String(), Err: err}
}

func routeError(p netip.Prefix, err error) error {
	return &entry.KeyError{Table: "route", Key: p.String(), Err: err}
}

// LockedError says another live process owns the store's write lock.
type LockedError struct {
	Path string
	PID  int // the owner's pid as it wrote it in the lock file (or in the header, where there is none); 0 if unknown
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("store %s is in use by another rtm server (pid %d)", e.Path, e.PID)
	}
	return fmt.Sprintf("store %s is in use by another rtm server", e.Path)
}

// UnsafeError refuses a store that someone besides its writer's uid could
// change: reached through a symbolic link, not a regular file, owned by
// another uid, writable by group or others, or with more than one name (a
// hard link another uid could make to it). Whoever can write the file
// can forge the addresses every client reads, and truncate it under every
// mapping of it (SIGBUS), so rtm maps no such file.
type UnsafeError struct {
	Path string
	What string // "lock file" for the file beside the store (LockPath); "" for a store
	Why  string // what is wrong with it: "is owned by uid 65534, not uid 0"
	Fix  string // what to do about it
}

func (e *UnsafeError) Error() string {
	what := e.What
	if what == "" {
		what = "store"
	}
	return what + " " + e.Path + " " + e.Why + ": " + e.Fix
}
