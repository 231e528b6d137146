package httpx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
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

// MaxHeaderBytes is the most a request line and its headers may take; a
// larger request is answered 431 by LimitHeaders. The server's own
// http.Server.MaxHeaderBytes (ServerMaxHeaderBytes) is set well above it,
// because net/http answers a request over that limit itself, in plain
// text, before any handler runs.
const MaxHeaderBytes = 64 << 10

// ServerMaxHeaderBytes is http.Server.MaxHeaderBytes: Go's default of
// 1 MiB. Requests between MaxHeaderBytes and this (plus the 4 KiB net/http
// allows beyond it) get LimitHeaders' 431 in the endpoint's error shape;
// only larger ones get net/http's plain-text 431.
const ServerMaxHeaderBytes = 1 << 20

// LimitHeaders answers 431 in the error shape of the endpoint (see
// WriteProtocolError) to a request whose request line and headers take
// more than max bytes, before anything else reads them, and closes the
// connection after the answer.
func LimitHeaders(max int) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n := HeaderBytes(r); n > max {
				w.Header().Set("Connection", "close")
				WriteProtocolError(w, r, http.StatusRequestHeaderFieldsTooLarge,
					apperr.E(apperr.BadUserInput, "the request line and headers take %d bytes, more than the limit of %d bytes", n, max))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// HeaderBytes answers how many bytes r's request line and headers took on
// the wire, as HTTP/1.1 writes them ("Name: value\r\n"; net/http moves
// Host out of the header map).
func HeaderBytes(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + len("  \r\n\r\n")
	if r.Host != "" && r.Header.Get("Host") == "" {
		n += len("Host: \r\n") + len(r.Host)
	}
	for name, values := range r.Header {
		for _, v := range values {
			n += len(name) + len(v) + len(": \r\n")
		}
	}
	return n
}

// LimitBody is the one place a request body's size is checked: it reads
// every body whole, at most max bytes, before the handler runs. A body
// declared or found larger is answered 413 here, in the error shape of the
// endpoint, and the connection is closed after the answer; the handler gets
// the body from memory, so no edge ever reads one over the limit. A body
// not received within the request's deadline (Deadline, which must wrap
// LimitBody) is answered 408 DEADLINE_EXCEEDED, and the connection closed.
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
				if errors.Is(err, os.ErrDeadlineExceeded) {
					// The body came slower than the request's deadline
					// (see Deadline), the connection's read deadline: the
					// rest of it is never read.
					w.Header().Set("Connection", "close")
					WriteProtocolError(w, r, http.StatusRequestTimeout, apperr.E(apperr.DeadlineExceeded,
						"the request body was not received within the server's request timeout (REQUEST_TIMEOUT)"))
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
