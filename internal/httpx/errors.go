// Package httpx holds the HTTP plumbing every edge shares: request ids,
// request logging, admin access, and the one table that maps error codes to
// HTTP statuses.
package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"unicode/utf8"

	"timeslots/internal/apperr"
)

// statusOf is the one table from error code to HTTP status.
var statusOf = map[apperr.Code]int{
	apperr.BadUserInput:        http.StatusBadRequest,
	apperr.NotFound:            http.StatusNotFound,
	apperr.SlotUnavailable:     http.StatusConflict,
	apperr.SlotInPast:          http.StatusConflict,
	apperr.SlotTooSoon:         http.StatusConflict,
	apperr.IdempotencyConflict: http.StatusConflict,
	apperr.HoldExpired:         http.StatusGone,
	apperr.Unauthenticated:     http.StatusUnauthorized,
	apperr.Forbidden:           http.StatusForbidden,
	apperr.RateLimited:         http.StatusTooManyRequests,
	apperr.QueryTooComplex:     http.StatusBadRequest,
	apperr.Unavailable:         http.StatusServiceUnavailable,
	apperr.DeadlineExceeded:    http.StatusGatewayTimeout,
	// Only ever sent over a websocket; a subscription that may be
	// made again later, as 503 says.
	apperr.SubscriptionOverflow: http.StatusServiceUnavailable,
	apperr.Internal:             http.StatusInternalServerError,
}

// Status answers the HTTP status of an error code.
func Status(code apperr.Code) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorBody is the JSON error answer of the REST endpoints.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code      apperr.Code `json:"code"`
	Message   string      `json:"message"`
	RequestID string      `json:"requestId,omitempty"`
}

// WriteError answers err as JSON with the status of its code. Internal
// errors are logged with the request id and shown only as the code and id;
// an uncoded error after the request's deadline is DEADLINE_EXCEEDED (see
// OutOfTime).
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	err = OutOfTime(r.Context(), err)
	code := apperr.ErrorCode(err)
	WriteErrorStatus(w, r, Status(code), err)
}

// UnavailableRetryAfter is the Retry-After, in seconds, of an UNAVAILABLE
// answer: long enough for a pool slot or a restarted database, short
// enough that a client does not give up.
const UnavailableRetryAfter = "1"

// WriteErrorStatus is WriteError with an explicit status, for protocol
// errors (404, 405, 408, 413, 415) that have no domain code of their own.
// UNAVAILABLE answers carry Retry-After. The error's details
// (apperr.Error.Details) go in the error object beside its code and
// message.
func WriteErrorStatus(w http.ResponseWriter, r *http.Request, status int, err error) {
	code := apperr.ErrorCode(err)
	body := ErrorBody{Error: ErrorDetail{Code: code, Message: apperr.ErrorMessage(err)}}
	e, coded := apperr.As(err)
	if coded && code == apperr.Unavailable {
		w.Header().Set("Retry-After", UnavailableRetryAfter)
		if e.Err != nil {
			Logger(r.Context()).Warn("database unavailable", slog.String("error", e.Err.Error()))
		}
	}
	if code == apperr.Internal {
		id := RequestID(r.Context())
		body.Error.RequestID = id
		body.Error.Message = "internal server error (request id " + id + ")"
		Logger(r.Context()).Error("internal error", slog.String("error", err.Error()))
	}
	if coded && len(e.Details) > 0 {
		detail := make(map[string]any, len(e.Details)+2)
		maps.Copy(detail, e.Details)
		detail["code"], detail["message"] = body.Error.Code, body.Error.Message
		WriteJSON(w, status, map[string]any{"error": detail})
		return
	}
	WriteJSON(w, status, body)
}

// OutOfTime answers err as DEADLINE_EXCEEDED when it carries no code and
// the deadline of ctx has passed: a statement the deadline stopped fails
// with its driver's error (pgx's timeout, SQLite's "interrupted"), which
// would otherwise be an internal error. The cause is logged at warning
// level, without a stack. Coded errors, and any error before the
// deadline, are answered as they are.
func OutOfTime(ctx context.Context, err error) error {
	if err == nil || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return err
	}
	if _, ok := apperr.As(err); ok {
		return err
	}
	Logger(ctx).Warn("request deadline exceeded", slog.String("error", err.Error()))
	return ErrOutOfTime
}

// ErrOutOfTime is the error of a request whose deadline (REQUEST_TIMEOUT)
// passed before it was answered.
var ErrOutOfTime = apperr.E(apperr.DeadlineExceeded,
	"the request did not finish within the server's request timeout (REQUEST_TIMEOUT)")

// WriteJSON answers v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", jsonContentType)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

const jsonContentType = "application/json; charset=utf-8"

// EncodeJSON answers the body WriteJSON writes for v, for an answer that
// is kept and written again (WriteEncodedJSON).
func EncodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// WriteEncodedJSON writes a body EncodeJSON made, as WriteJSON writes it.
func WriteEncodedJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", jsonContentType)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Shorten cuts what a client sent to at most max bytes, on a character
// boundary, marked with "…", for an error message that echoes it.
func Shorten(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
