package httpx_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/httpx"
)

// edgeRefusal is the refusal writer of an edge whose errors are not the
// REST body: plain text the tests recognise.
func edgeRefusal(w http.ResponseWriter, r *http.Request, status int, err error) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "edge refusal %s: %s", apperr.ErrorCode(err), apperr.ErrorMessage(err))
}

func TestPathsMatchLikeServeMuxPaths(t *testing.T) {
	t.Parallel()
	p := httpx.Paths{"/graphql", "/api/admin/"}
	for path, want := range map[string]bool{
		"/graphql":              true,
		"/graphql/":             false,
		"/graphqlx":             false,
		"/api/admin/":           true,
		"/api/admin/time-slots": true,
		"/api/admin":            false,
		"/api/time-slots":       false,
		"/":                     false,
	} {
		if got := p.Match(path); got != want {
			t.Errorf("Match(%q) = %v, want %v", path, got, want)
		}
	}
	if (httpx.Paths{}).Match("/") {
		t.Error("no paths match /")
	}
}

// A refusal is written by the refusal writer of its path, and as the REST
// body everywhere else.
func TestRefusalsTakeTheShapeOfTheirPath(t *testing.T) {
	t.Parallel()
	refuse := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteTooManyRequests(w, r, 1500*time.Millisecond, "slow down")
	})
	h := httpx.Refusals(edgeRefusal, httpx.Paths{"/edge", "/edge/"})(refuse)
	for _, tc := range []struct {
		path, body string
	}{
		{"/edge", "edge refusal RATE_LIMITED: slow down: retry in 2 s"},
		{"/edge/below", "edge refusal RATE_LIMITED: slow down: retry in 2 s"},
		{"/api/time-slots", `{"error":{"code":"RATE_LIMITED","message":"slow down: retry in 2 s"}}` + "\n"},
		{"/edgeways", `{"error":{"code":"RATE_LIMITED","message":"slow down: retry in 2 s"}}` + "\n"},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, tc.path, nil))
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "2" || w.Body.String() != tc.body {
			t.Errorf("%s: %d Retry-After %q %q, want 429 after 2 s with %q", tc.path, w.Code, w.Header().Get("Retry-After"), w.Body.String(), tc.body)
		}
		if strings.HasPrefix(tc.body, "{") && w.Header().Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("%s: Content-Type %q, want JSON", tc.path, w.Header().Get("Content-Type"))
		}
	}
}
