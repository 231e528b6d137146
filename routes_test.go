package main

import (
	"net/http"
	"strings"
	"testing"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
)

// send answers the status, headers and body of one request with token
// ("" for none) and body (a JSON body, "" for none).
func send(t *testing.T, method, url, token, body string) (int, http.Header, string) {
	t.Helper()
	a, err := getAnswer(nil, method, url, bearer(token, body != ""), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return a.Status, a.Header, string(a.Body)
}

// Refusals written in front of the edges (body size, rate limit, admin
// token slowing) take the error shape of the endpoint: a GraphQL response
// with extensions.code on /graphql, the REST body elsewhere.
func TestRefusalsTakeTheShapeOfTheirEndpoint(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			const token = "routes-test-admin-token-0123"
			p := startServer(t, testEnv(t, d, map[string]string{
				"SCHEDULER_ENABLED": "false", "SEED_DEMO": "false",
				"MAX_BODY_BYTES": "2048", "RATE_LIMIT_RPS": "0", "ADMIN_TOKEN": token,
			}))
			big := `{"query":"` + strings.Repeat(" ", 4096) + `{ providers { totalCount } }"}`
			const tooLarge = "the request body is larger than the limit of 2048 bytes"
			for _, tc := range []struct {
				path, want string
			}{
				{"/graphql", `{"errors":[{"message":"` + tooLarge + `","extensions":{"code":"BAD_USER_INPUT"}}]}` + "\n"},
				{"/graphql/batch", `{"errors":[{"message":"` + tooLarge + `","extensions":{"code":"BAD_USER_INPUT"}}]}` + "\n"},
				{"/api/admin/time-slots", `{"error":{"code":"BAD_USER_INPUT","message":"` + tooLarge + `"}}` + "\n"},
			} {
				status, h, body := send(t, http.MethodPost, p.URL+tc.path, token, big)
				if status != http.StatusRequestEntityTooLarge || body != tc.want || h.Get("Content-Type") != "application/json; charset=utf-8" {
					t.Errorf("POST %s with 4 KiB: %d %q %s, want 413 %s", tc.path, status, h.Get("Content-Type"), body, tc.want)
				}
			}

			// Ten wrong tokens slow the client down, on every endpoint.
			for i := range 10 {
				if status, _, body := send(t, http.MethodGet, p.URL+"/api/admin/time-slots", "wrong-token", ""); status != http.StatusForbidden {
					t.Fatalf("wrong token %d: %d %s, want 403", i, status, body)
				}
			}
			status, h, body := send(t, http.MethodPost, p.URL+"/graphql", token, `{"query":"{ __typename }"}`)
			if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" ||
				!strings.HasPrefix(body, `{"errors":[{"message":"too many wrong admin tokens from this client: retry in `) ||
				!strings.HasSuffix(body, ` s","extensions":{"code":"RATE_LIMITED"}}]}`+"\n") {
				t.Errorf("/graphql after ten wrong tokens: %d %s, want 429 with a GraphQL RATE_LIMITED error", status, body)
			}
			status, _, body = send(t, http.MethodGet, p.URL+"/api/admin/time-slots", token, "")
			if status != http.StatusTooManyRequests || !strings.HasPrefix(body, `{"error":{"code":"RATE_LIMITED","message":"too many wrong admin tokens`) {
				t.Errorf("/api/admin/time-slots after ten wrong tokens: %d %s, want 429 with a REST RATE_LIMITED error", status, body)
			}
		})
	}
}

// The per-client rate limit answers 429 in the shape of each endpoint.
func TestRateLimitRefusalsTakeTheShapeOfTheirEndpoint(t *testing.T) {
	t.Parallel()
	p := startServer(t, testEnv(t, database.SQLite, map[string]string{
		"SCHEDULER_ENABLED": "false", "SEED_DEMO": "false",
		"RATE_LIMIT_RPS": "0.01", "RATE_LIMIT_BURST": "1",
	}))
	if status, _, body := send(t, http.MethodGet, p.URL+"/api/time-slots?limit=1", "", ""); status != http.StatusOK {
		t.Fatalf("first request: %d %s, want 200", status, body)
	}
	status, h, body := send(t, http.MethodPost, p.URL+"/graphql", "", `{"query":"{ __typename }"}`)
	if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" ||
		!strings.HasPrefix(body, `{"errors":[{"message":"rate limit exceeded: retry in `) ||
		!strings.HasSuffix(body, ` s","extensions":{"code":"RATE_LIMITED"}}]}`+"\n") {
		t.Errorf("/graphql over the limit: %d %s, want 429 with a GraphQL RATE_LIMITED error", status, body)
	}
	status, _, body = send(t, http.MethodGet, p.URL+"/api/time-slots?limit=1", "", "")
	if status != http.StatusTooManyRequests || !strings.HasPrefix(body, `{"error":{"code":"RATE_LIMITED","message":"rate limit exceeded: retry in `) {
		t.Errorf("/api/time-slots over the limit: %d %s, want 429 with a REST RATE_LIMITED error", status, body)
	}
}

// Answers that may hold admin data or credentials' results carry
// Cache-Control: no-store; public reads do not.
func TestNoStoreWhereAnswersMayHoldAdminData(t *testing.T) {
	t.Parallel()
	p := startServer(t, testEnv(t, database.SQLite, map[string]string{
		"SCHEDULER_ENABLED": "false", "SEED_DEMO": "false", "RATE_LIMIT_RPS": "0",
	}))
	for _, tc := range []struct {
		method, path, auth string
		noStore            bool
	}{
		{http.MethodGet, "/graphql?query=%7B__typename%7D", "", true},
		{http.MethodGet, "/api/admin/time-slots", "", true},
		{http.MethodGet, "/metrics", "", true},
		{http.MethodGet, "/api/time-slots", "some-token", true},
		{http.MethodGet, "/api/time-slots", "", false},
		{http.MethodGet, "/api/openapi.json", "", false},
		{http.MethodGet, "/healthz", "", false},
	} {
		_, h, _ := send(t, tc.method, p.URL+tc.path, tc.auth, "")
		if got := h.Get("Cache-Control") == "no-store"; got != tc.noStore {
			t.Errorf("%s %s (token %q): no-store = %v, want %v", tc.method, tc.path, tc.auth, got, tc.noStore)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: no nosniff", tc.method, tc.path)
		}
	}
}
