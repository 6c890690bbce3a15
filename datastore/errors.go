package datastore

import (
	"errors"
	"fmt"

	"github.com/opencalico/calicoctl/resources"
)

// Sentinel errors; check them with errors.Is.
var (
	ErrNotFound     = errors.New("resource does not exist")
	ErrExists       = errors.New("resource already exists")
	ErrConflict     = errors.New("update conflict")
	ErrNotSupported = errors.New("operation not supported")
	ErrUnavailable  = errors.New("datastore unavailable")
	// ErrUnknownOutcome: a write was sent but no answer came back (a
	// timeout, a dropped connection) and the object could not be re-read to
	// learn whether it landed. Running the command again converges.
	ErrUnknownOutcome = errors.New("outcome unknown")
)

// KeyError ties a sentinel error to the key it happened on and renders the
// message the way upstream's library does, e.g.
// "resource does not exist: IPPool(pool-x) with error: <nil>".
type KeyError struct {
	Err    error // one of the sentinels
	Key    resources.Key
	Op     string // for ErrNotSupported: the operation
	Reason string // optional detail
	Cause  error  // optional underlying error
}

func (e *KeyError) Error() string {
	switch e.Err {
	case ErrNotFound, ErrExists:
		return fmt.Sprintf("%s: %s with error: %v", e.Err, e.Key, e.Cause)
	case ErrConflict:
		if e.Reason != "" {
			return fmt.Sprintf("update conflict: %s: %s", e.Key, e.Reason)
		}
		return fmt.Sprintf("update conflict: %s", e.Key)
	case ErrNotSupported:
		msg := fmt.Sprintf("operation %s is not supported on %s", e.Op, e.Key)
		if e.Reason != "" {
			msg += ": " + e.Reason
		}
		return msg
	case ErrUnavailable, ErrUnknownOutcome:
		return fmt.Sprintf("%s: %v", e.Err, e.Cause)
	}
	if e.Cause != nil {
		return fmt.Sprintf("%v: %s: %v", e.Err, e.Key, e.Cause)
	}
	return fmt.Sprintf("%v: %s", e.Err, e.Key)
}

// Unwrap exposes both the sentinel and the cause to errors.Is/As.
func (e *KeyError) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

// NotFound returns an ErrNotFound error for key.
func NotFound(key resources.Key) error { return &KeyError{Err: ErrNotFound, Key: key} }

// Exists returns an ErrExists error for key.
func Exists(key resources.Key) error { return &KeyError{Err: ErrExists, Key: key} }

// Conflict returns an ErrConflict error for key.
func Conflict(key resources.Key, reason string) error {
	return &KeyError{Err: ErrConflict, Key: key, Reason: reason}
}

// NotSupported returns an ErrNotSupported error for op on key.
func NotSupported(op string, key resources.Key, reason string) error {
	return &KeyError{Err: ErrNotSupported, Key: key, Op: op, Reason: reason}
}
