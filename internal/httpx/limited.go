package httpx

import (
	"fmt"
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
