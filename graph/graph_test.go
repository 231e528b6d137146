package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"timeslots/graph"
	"timeslots/internal/auth"
	"timeslots/internal/config"
	"timeslots/internal/database"
	"timeslots/internal/httpx"
	"timeslots/internal/slots"
	"timeslots/models"
)

// api is the GraphQL handler over a real database, wrapped in the same
// middleware the server puts in front of it (request log, body limit, admin
// gate), and the SQL statements it has run.
type api struct {
	handler http.Handler
	slots   *slots.Manager
	db      *database.DB
	sql     *sqlLog
	logs    *bytes.Buffer
}

// newAPI builds the handler with the configuration env describes.
func newAPI(t *testing.T, db *database.DB, env map[string]string) *api {
	t.Helper()
	m := slots.New(db)
	a := wrap(t, env, m)
	a.db, a.sql = db, watchSQL(t, db)
	return a
}

// newBrokenAPI builds the handler with no manager wired, so every resolver
// that reaches the database panics.
func newBrokenAPI(t *testing.T) *api {
	t.Helper()
	return wrap(t, nil, nil)
}

func wrap(t *testing.T, env map[string]string, m *slots.Manager) *api {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	logs := &bytes.Buffer{}
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(lockedWriter{&mu, logs}, nil))
	h := graph.NewHandler(graph.OptionsOf(cfg), m)
	h = testCustomers(h)
	h = httpx.NewAdminGate(cfg.AdminToken).Middleware(h)
	h = httpx.LimitBody(cfg.MaxBodyBytes)(h)
	h = httpx.Refusals(graph.WriteRefusal, httpx.Paths{"/graphql"})(h)
	h = httpx.RequestLog(logger)(h)
	return &api{handler: h, slots: m, logs: logs}
}

// Test headers standing in for the HTTP edge's token verification: a
// request with customerHeader acts for the customer it names, one with
// requiredHeader as if AUTH_REQUIRED were set.
const (
	customerHeader = "X-Test-Customer"
	requiredHeader = "X-Test-Auth-Required"
)

// testCustomers puts the customer of customerHeader in the request context
// as the server's edge puts a verified token's, and marks requests with
// requiredHeader as AUTH_REQUIRED does.
func testCustomers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if sub := r.Header.Get(customerHeader); sub != "" {
			ctx = auth.WithCustomer(ctx, auth.Customer{ID: sub})
		}
		if r.Header.Get(requiredHeader) != "" {
			ctx = auth.WithRequired(ctx)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// sqlLog records every statement the database is sent.
type sqlLog struct {
	mu    sync.Mutex
	stmts []string
}

func watchSQL(t *testing.T, db *database.DB) *sqlLog {
	t.Helper()
	l := &sqlLog{}
	t.Cleanup(db.WatchStatements(func(q string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.stmts = append(l.stmts, q)
	}))
	return l
}

// Reset forgets the statements so far and answers them.
func (l *sqlLog) Reset() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stmts
	l.stmts = nil
	return s
}

// Matching answers the recorded statements that contain sub, in any case.
func (l *sqlLog) Matching(sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, s := range l.stmts {
		if strings.Contains(strings.ToLower(s), strings.ToLower(sub)) {
			out = append(out, s)
		}
	}
	return out
}

type result struct {
	Status int
	Header http.Header
	Body   string
	Data   json.RawMessage
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	}
}

func (r result) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

func (r result) Decode(t *testing.T, v any) {
	t.Helper()
	if len(r.Errors) > 0 || r.Status != http.StatusOK {
		t.Fatalf("HTTP %d: %s", r.Status, r.Body)
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		t.Fatalf("decode: %v: %s", err, r.Body)
	}
}

// request is one HTTP request to the API; from is the client address.
type request struct {
	method, contentType, body, auth, from string
	query                                 string // URL query for GET
	header                                map[string]string
	ctx                                   context.Context // the request's context, when not the default
}

func (a *api) do(t *testing.T, r request) result {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.contentType == "" && r.method == http.MethodPost {
		r.contentType = "application/json"
	}
	req := httptest.NewRequest(r.method, "/graphql"+r.query, strings.NewReader(r.body))
	if r.ctx != nil {
		req = req.WithContext(r.ctx)
	}
	req.RemoteAddr = "127.0.0.1:40000"
	if r.from != "" {
		req.RemoteAddr = r.from
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.auth != "" {
		req.Header.Set("Authorization", r.auth)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	out := result{Status: rec.Code, Header: rec.Header(), Body: rec.Body.String()}
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return out
}

// doChunked posts body without a Content-Length, as a chunked upload.
func (a *api) doChunked(t *testing.T, body string) result {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/graphql", io.MultiReader(strings.NewReader(body)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, req)
	return result{Status: rec.Code, Body: rec.Body.String()}
}

// gql posts one operation as JSON.
func (a *api) gql(t *testing.T, query string, vars map[string]any) result {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return a.do(t, request{body: string(body)})
}

// allDayProviders creates n providers that work around the clock in UTC
// and generates two days of hourly slots for them, so that every hour has
// a slot of each provider.
func allDayProviders(t *testing.T, m *slots.Manager, n int) []int64 {
	t.Helper()
	var hours []models.WorkingHours
	for _, d := range models.AllWeekdays {
		hours = append(hours, models.WorkingHours{Weekday: d, Start: "00:00", End: "24:00"})
	}
	ids := make([]int64, n)
	for i := range ids {
		p, err := m.CreateProvider(t.Context(), models.ProviderInput{
			Name: fmt.Sprintf("Provider %d", i+1), TimeZone: "UTC", SlotMinutes: 60, WorkingHours: hours})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = p.ID
	}
	if _, err := m.Generate(t.Context(), slots.GenerateInput{DaysAhead: 2, ProviderIDs: ids}); err != nil {
		t.Fatal(err)
	}
	return ids
}
