// Package apperr defines the error codes of the public contract and the one
// error type that carries them from the domain to the edges.
package apperr

import (
	"errors"
	"fmt"
)

// Code is a machine-readable error class, shown to clients as extensions.code
// in GraphQL and as error.code in REST.
type Code string

// The codes of the contract.
const (
	BadUserInput        Code = "BAD_USER_INPUT"
	NotFound            Code = "NOT_FOUND"
	SlotUnavailable     Code = "SLOT_UNAVAILABLE"
	SlotInPast          Code = "SLOT_IN_PAST"
	SlotTooSoon         Code = "SLOT_TOO_SOON"
	IdempotencyConflict Code = "IDEMPOTENCY_CONFLICT"
	// HoldExpired: the hold expired or was released, so it keeps no seat
	// any more; hold the slot again (or book it).
	HoldExpired     Code = "HOLD_EXPIRED"
	Unauthenticated Code = "UNAUTHENTICATED"
	Forbidden       Code = "FORBIDDEN"
	RateLimited     Code = "RATE_LIMITED"
	QueryTooComplex Code = "QUERY_TOO_COMPLEX"
	// Unavailable: the database cannot serve the request now (it refuses
	// connections, is shutting down or starting, or a conflict outlasted
	// the retries); the same request may succeed later.
	Unavailable Code = "UNAVAILABLE"
	// DeadlineExceeded: the request did not finish, or its body did not
	// arrive, within the server's request timeout.
	DeadlineExceeded Code = "DEADLINE_EXCEEDED"
	// SubscriptionOverflow: a subscription fell behind the changes (its
	// buffer filled up) and was ended; subscribe again and reload.
	SubscriptionOverflow Code = "SUBSCRIPTION_OVERFLOW"
	Internal             Code = "INTERNAL_SERVER_ERROR"
)

// Error is a failure the client may see: a code and a message written for
// the caller. Field names the argument at fault, when there is one. Err is
// the cause behind a failure that is not the client's (UNAVAILABLE), for
// the log only: it is never shown. Details are figures the caller acts
// on, such as the rows that work stopped part way had committed: GraphQL
// answers them in extensions, REST in the error object, each under its own
// name beside the code.
type Error struct {
	Code    Code
	Message string
	Field   string
	Err     error
	Details map[string]any
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Unwrap answers the cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Wrap builds a coded error over a cause that the edges log and never show.
func Wrap(code Code, cause error, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
}

// E builds a coded error with a formatted message.
func E(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid reports a bad argument; the message must name the argument.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: BadUserInput, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode answers the code carried by err, or INTERNAL_SERVER_ERROR for
// anything that is not an *Error: foreign errors are never shown to clients.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ErrorMessage answers the client-facing message of err; for internal errors
// it is a fixed text, so no SQL or driver detail can leak.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal server error"
}

// As returns the *Error inside err, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
