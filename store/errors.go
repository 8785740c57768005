package store

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// Errors of the table operations. Callers test them with errors.Is; the
// returned errors wrap them with the key concerned.
var (
	ErrExists   = errors.New("already exists")
	ErrNotFound = errors.New("not found")
	ErrFull     = errors.New("table full")
	ErrReadOnly = errors.New("read-only")
	ErrClosed   = errors.New("store closed")
)

// Errors of opening a segment.
var (
	ErrNotStore  = errors.New("not an rtm store")
	ErrVersion   = errors.New("unsupported store layout version")
	ErrCorrupt   = errors.New("store corrupt")
	ErrTruncated = errors.New("store file truncated")
	// ErrBusy is returned by a reader that gave up after a bounded number
	// of retries on a slot that stayed mid-write (a writer killed there).
	ErrBusy = errors.New("entry is being rewritten; writer not progressing")
)

// KeyError is the failure of an operation on one key of a table. Err says
// why without repeating the key: ErrExists, ErrNotFound, ErrFull, or a
// validation error; callers test it with errors.Is and phrase it with
// errors.As.
type KeyError struct {
	Table string // "route" or "MAC"
	Key   string // the prefix or the MAC, canonical
	Err   error
}

func (e *KeyError) Error() string { return e.Table + " " + e.Key + ": " + e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }

func macError(m MAC, err error) error { return &KeyError{Table: "MAC", Key: m.String(), Err: err} }

func routeError(p netip.Prefix, err error) error {
	return &KeyError{Table: "route", Key: p.String(), Err: err}
}

// LockedError says another live process owns the store's write lock.
type LockedError struct {
	Path string
	PID  int // owner's pid as recorded in the header; 0 if unknown
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("store %s is in use by another rtm server (pid %d)", e.Path, e.PID)
	}
	return fmt.Sprintf("store %s is in use by another rtm server", e.Path)
}

// quoteMax is how much of a bad input an error message quotes: enough to
// recognise it, not a 100,000-byte field echoed back.
const quoteMax = 64

// QuoteInput quotes a piece of user input for an error message, as %q
// does, cutting a long one short and saying how long it was.
func QuoteInput[T ~string | ~[]byte](s T) string {
	if len(s) <= quoteMax {
		return strconv.Quote(string(s))
	}
	return strconv.Quote(string(s[:quoteMax-16])) + "... (" + strconv.Itoa(len(s)) + " bytes)"
}
