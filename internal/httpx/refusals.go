package httpx

import (
	"context"
	"net/http"
	"strings"
)

// Paths are request paths given by the caller, written as the paths of
// http.ServeMux patterns: "/metrics" is that path alone, "/api/admin/"
// (ending in a slash) that path and every path below it.
type Paths []string

// Match reports whether path is one of p.
func (p Paths) Match(path string) bool {
	for _, q := range p {
		if path == q || (strings.HasSuffix(q, "/") && strings.HasPrefix(path, q)) {
			return true
		}
	}
	return false
}

// RefusalWriter answers a refusal of middleware (a status and a coded
// error) in the error shape of one edge.
type RefusalWriter func(w http.ResponseWriter, r *http.Request, status int, err error)

// Refusals makes write answer the refusals that the middleware inside it
// writes with WriteProtocolError (rate limits, admin token slowing, body
// size) for requests to paths. The edge mounted there supplies write, so
// its clients read these errors as they read its others (the GraphQL edge:
// a GraphQL response with extensions.code); elsewhere they are REST
// errors.
func Refusals(write RefusalWriter, paths Paths) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if paths.Match(r.URL.Path) {
				r = r.WithContext(context.WithValue(r.Context(), refusalKey, write))
			}
			next.ServeHTTP(w, r)
		})
	}
}

// refusalOf answers the RefusalWriter that Refusals gave r, if any.
func refusalOf(r *http.Request) (RefusalWriter, bool) {
	write, ok := r.Context().Value(refusalKey).(RefusalWriter)
	return write, ok
}
