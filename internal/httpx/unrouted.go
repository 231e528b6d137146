package httpx

import (
	"net/http"

	"timeslots/internal/apperr"
)

// Unrouted answers the requests mux has no route for in the error shape
// of their path, as every other refusal is (see WriteProtocolError): an
// unknown path is 404 NOT_FOUND, a method the path does not take 405 with
// Allow. http.ServeMux would answer both in plain text. Everything else,
// its redirects to a cleaned path included, is mux's to answer.
func Unrouted(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// No pattern: the mux would refuse (404 or 405) or redirect. Its
		// refusals only set headers and write a line, so ask it which.
		probe := &headerProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		switch probe.status {
		case http.StatusNotFound:
			WriteProtocolError(w, r, http.StatusNotFound,
				apperr.E(apperr.NotFound, "no endpoint at %s", Shorten(r.URL.Path, maxEchoedPath)))
		case http.StatusMethodNotAllowed:
			allow := probe.header.Get("Allow")
			w.Header().Set("Allow", allow)
			WriteProtocolError(w, r, http.StatusMethodNotAllowed,
				apperr.E(apperr.BadUserInput, "method %s is not allowed on %s; allowed: %s", Shorten(r.Method, maxEchoedPath), Shorten(r.URL.Path, maxEchoedPath), allow))
		default:
			mux.ServeHTTP(w, r)
		}
	})
}

// maxEchoedPath bounds the path or method an error message echoes.
const maxEchoedPath = 200

// headerProbe is a ResponseWriter that keeps only the status and headers.
type headerProbe struct {
	header http.Header
	status int
}

func (p *headerProbe) Header() http.Header { return p.header }

func (p *headerProbe) WriteHeader(status int) {
	if p.status == 0 {
		p.status = status
	}
}

func (p *headerProbe) Write(b []byte) (int, error) {
	p.WriteHeader(http.StatusOK)
	return len(b), nil
}
