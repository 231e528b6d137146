package rest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/httpx"
	"timeslots/internal/rest"
	"timeslots/internal/rest/openapitest"
	"timeslots/internal/slots"
)

// serve mounts the REST handler as the server does (request ids, body
// limit, admin gate in open loopback mode) in front of db.
func serve(t *testing.T, db *database.DB, wrap func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	gate := httpx.NewAdminGate("")
	api, err := rest.New(rest.Options{Slots: slots.New(db), Admin: gate})
	if err != nil {
		t.Fatal(err)
	}
	if wrap != nil {
		api = wrap(api)
	}
	h := httpx.RequestLog(slog.New(slog.NewTextHandler(io.Discard, nil)))(httpx.LimitBody(1 << 16)(gate.Middleware(api)))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, path string) openapitest.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return openapitest.New(t, srv.URL).Do(t, srv.Client(), req)
}

// A database failure answers 500 with only the code and the request id:
// the cause stays in the log.
func TestInternalErrorShowsOnlyCodeAndRequestID(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		srv := serve(t, db, nil)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/api/time-slots", "/api/admin/time-slots"} {
			resp := get(t, srv, path)
			if resp.Status != http.StatusInternalServerError {
				t.Fatalf("%s on a closed database: %s", path, resp)
			}
			var body struct {
				Error struct{ Code, Message, RequestID string } `json:"error"`
			}
			if err := json.Unmarshal(resp.Body, &body); err != nil {
				t.Fatal(err)
			}
			id := resp.Header.Get(httpx.RequestIDHeader)
			if body.Error.Code != string(apperr.Internal) || id == "" || body.Error.RequestID != id ||
				body.Error.Message != "internal server error (request id "+id+")" {
				t.Fatalf("%s: %s (X-Request-Id %q)", path, resp.Body, id)
			}
		}
	})
}

// The rate limiter in front of the REST endpoints answers through the same
// writer; its 429 must be what the document promises.
func TestRateLimitedAnswerMatchesDocument(t *testing.T) {
	db := dbtest.Open(t, database.SQLite)
	limited := func(http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Retry-After", "1")
			httpx.WriteError(w, r, apperr.E(apperr.RateLimited, "too many requests; retry in 1s"))
		})
	}
	srv := serve(t, db, limited)
	resp := get(t, srv, "/api/time-slots?limit=5")
	if resp.Status != http.StatusTooManyRequests || !strings.Contains(string(resp.Body), `"code":"RATE_LIMITED"`) {
		t.Fatalf("rate limited: %s", resp)
	}
}

func TestNewRefusesMissingDependencies(t *testing.T) {
	db := dbtest.Open(t, database.SQLite)
	for name, c := range map[string]rest.Options{
		"no manager": {Admin: httpx.NewAdminGate("")},
		"no gate":    {Slots: slots.New(db)},
	} {
		if _, err := rest.New(c); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// jobRuns is the shape a scheduler reports: the last run of each job.
type jobRuns map[string]struct {
	Outcome string `json:"outcome"`
}

func (j jobRuns) MaintenanceReport(context.Context) (any, error) { return j, nil }

type brokenMetrics struct{}

func (brokenMetrics) PerformanceReport(context.Context) (any, error) {
	return nil, errors.New("metrics store: connection refused")
}

// What the composition root wires in is what the stats answer shows; a
// failing reporter is an internal error like any other.
func TestStatsCarryInjectedReports(t *testing.T) {
	db := dbtest.Open(t, database.SQLite)
	gate := httpx.NewAdminGate("")
	for _, tc := range []struct {
		name   string
		config rest.Options
		status int
		want   string
	}{
		{"unwired reporters give empty objects", rest.Options{}, 200, `"maintenance":{},"performance":{}`},
		{"a wired reporter's object is shown", rest.Options{Maintenance: jobRuns{"generate": {Outcome: "ok"}}},
			200, `"maintenance":{"generate":{"outcome":"ok"}},"performance":{}`},
		{"a failing reporter is a 500", rest.Options{Performance: brokenMetrics{}}, 500, `"code":"INTERNAL_SERVER_ERROR"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.config
			c.Slots, c.Admin = slots.New(db), gate
			api, err := rest.New(c)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(httpx.RequestLog(slog.New(slog.NewTextHandler(io.Discard, nil)))(gate.Middleware(api)))
			defer srv.Close()
			resp := get(t, srv, "/api/admin/time-slots")
			if resp.Status != tc.status || !strings.Contains(string(resp.Body), tc.want) {
				t.Fatalf("got %s, want %d with %s", resp, tc.status, tc.want)
			}
		})
	}
}
