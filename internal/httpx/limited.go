package httpx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"time"

	"timeslots/internal/apperr"
)

// RetryAfterSeconds rounds a wait up to whole seconds, at least one, as
// Retry-After needs.
func RetryAfterSeconds(wait time.Duration) int {
	s := int(math.Ceil(wait.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}

// WriteTooManyRequests answers 429 with Retry-After and a RATE_LIMITED
// error, in the shape WriteProtocolError gives it.
func WriteTooManyRequests(w http.ResponseWriter, r *http.Request, wait time.Duration, why string) {
	secs := RetryAfterSeconds(wait)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	msg := fmt.Sprintf("%s: retry in %d s", why, secs)
	WriteProtocolError(w, r, http.StatusTooManyRequests, apperr.E(apperr.RateLimited, "%s", msg))
}

// LimitBody is the one place a request body's size is checked: it reads
// every body whole, at most max bytes, before the handler runs. A body
// declared or found larger is answered 413 here, in the error shape of the
// endpoint, and the connection is closed after the answer; the handler gets
// the body from memory, so no edge ever reads one over the limit.
func LimitBody(max int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body == nil || r.Body == http.NoBody {
				next.ServeHTTP(w, r)
				return
			}
			if r.ContentLength > max {
				writeTooLarge(w, r, max)
				return
			}
			body, err := readBody(w, r, max)
			if err != nil {
				if errors.As(err, new(*http.MaxBytesError)) {
					writeTooLarge(w, r, max)
					return
				}
				WriteProtocolError(w, r, http.StatusBadRequest,
					apperr.E(apperr.BadUserInput, "the request body could not be read"))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			next.ServeHTTP(w, r)
		})
	}
}

// readBody reads r's body, at most max bytes: in one piece when its length
// is declared, else through http.MaxBytesReader, which fails past max and
// has the server close the connection after the answer.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	if r.ContentLength >= 0 {
		body := make([]byte, r.ContentLength)
		_, err := io.ReadFull(r.Body, body)
		return body, err
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, max))
}

func writeTooLarge(w http.ResponseWriter, r *http.Request, max int64) {
	w.Header().Set("Connection", "close")
	WriteProtocolError(w, r, http.StatusRequestEntityTooLarge,
		apperr.E(apperr.BadUserInput, "the request body is larger than the limit of %d bytes", max))
}

// WriteProtocolError answers an error found by middleware before any edge
// ran (rate limits, body size): with the request's RefusalWriter (see
// Refusals), else the REST body, so each client reads it the way it reads
// every other error of its endpoint.
func WriteProtocolError(w http.ResponseWriter, r *http.Request, status int, err error) {
	if write, ok := refusalOf(r); ok {
		write(w, r, status, err)
		return
	}
	WriteErrorStatus(w, r, status, err)
}
