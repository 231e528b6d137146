package httpx

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"timeslots/internal/apperr"
)

// GraphQLPath is where the GraphQL endpoint is mounted; answers written
// here before gqlgen runs use the GraphQL error shape.
const GraphQLPath = "/graphql"

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
// error: the REST body of DESIGN.md, or a GraphQL response with
// extensions.code on /graphql, so each client reads it the way it reads
// every other error.
func WriteTooManyRequests(w http.ResponseWriter, r *http.Request, wait time.Duration, why string) {
	secs := RetryAfterSeconds(wait)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	msg := fmt.Sprintf("%s: retry in %d s", why, secs)
	WriteProtocolError(w, r, http.StatusTooManyRequests, apperr.E(apperr.RateLimited, "%s", msg))
}

// WriteProtocolError answers an error found by middleware before any edge
// ran (rate limits, body size): GraphQL-shaped on /graphql, else the REST
// body.
func WriteProtocolError(w http.ResponseWriter, r *http.Request, status int, err error) {
	if r.URL.Path == GraphQLPath || strings.HasPrefix(r.URL.Path, GraphQLPath+"/") {
		code := apperr.ErrorCode(err)
		WriteJSON(w, status, graphQLErrors{Errors: []graphQLError{{
			Message:    apperr.ErrorMessage(err),
			Extensions: map[string]string{"code": string(code)},
		}}})
		return
	}
	WriteErrorStatus(w, r, status, err)
}

type graphQLErrors struct {
	Errors []graphQLError `json:"errors"`
}

type graphQLError struct {
	Message    string            `json:"message"`
	Extensions map[string]string `json:"extensions"`
}
