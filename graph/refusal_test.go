package graph_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"timeslots/graph"
	"timeslots/internal/apperr"
)

// A refusal in front of /graphql is a GraphQL response: one error with
// its message and extensions.code, as JSON without HTML escaping.
func TestWriteRefusalIsAGraphQLError(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	graph.WriteRefusal(w, httptest.NewRequest(http.MethodPost, "/graphql", nil), http.StatusTooManyRequests,
		apperr.E(apperr.RateLimited, "rate limit exceeded: retry in 3 s (<burst>)"))
	want := `{"errors":[{"message":"rate limit exceeded: retry in 3 s (<burst>)","extensions":{"code":"RATE_LIMITED"}}]}` + "\n"
	if w.Code != http.StatusTooManyRequests || w.Body.String() != want {
		t.Errorf("%d %s, want 429 %s", w.Code, w.Body.String(), want)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q, want application/json; charset=utf-8", ct)
	}
}
