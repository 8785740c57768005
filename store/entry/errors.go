package entry

import (
	"errors"
	"strconv"
)

// Errors of a change to a table. Callers test them with errors.Is; the
// errors a table returns wrap them in a *KeyError naming the key.
var (
	ErrExists   = errors.New("already exists")
	ErrNotFound = errors.New("not found")
	ErrReadOnly = errors.New("read-only")
)

// KeyError is the failure of an operation on one key of a table. Err says
// why without repeating the key: ErrExists, ErrNotFound, a full table, or
// a validation error; callers test it with errors.Is and phrase it with
// errors.As.
type KeyError struct {
	Table string // "route" or "MAC"
	Key   string // the prefix or the MAC, canonical
	Err   error
}

func (e *KeyError) Error() string { return e.Table + " " + e.Key + ": " + e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }

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

// Reason says why err refused a change, without the key that a *KeyError
// repeats: "already exists", "not found", or the check's own words. A
// refusal for want of permission (ErrReadOnly) says who refused and what
// would allow it, so it is kept whole.
func Reason(err error) string {
	var ke *KeyError
	switch {
	case errors.Is(err, ErrExists):
		return "already exists"
	case errors.Is(err, ErrNotFound):
		return "not found"
	case errors.Is(err, ErrReadOnly):
		return err.Error()
	case errors.As(err, &ke):
		return ke.Err.Error()
	}
	return err.Error()
}
