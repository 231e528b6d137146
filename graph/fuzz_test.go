package graph_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"timeslots/graph"
	"timeslots/internal/apperr"
	"timeslots/internal/config"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/httpx"
	"timeslots/internal/slots"
	"timeslots/models"
)

// fuzzOperations are representative operations whose variables the fuzzer
// fills: the slot listing (both its fast path and the executor), a
// provider, a booking and its reading and cancelling, and the provider
// listing. Their arguments go through every scalar and input object of
// the variables path (ID, Int, String, Date, Time, enums, lists, cursors).
var fuzzOperations = []string{
	`query($first: Int, $after: String, $last: Int, $before: String, $filter: TimeSlotFilter) {
	  timeSlots(first: $first, after: $after, last: $last, before: $before, filter: $filter) {
	    pageInfo { hasNextPage endCursor } edges { cursor node { id startTime status remaining } } } }`,
	`query($first: Int, $filter: TimeSlotFilter) { timeSlots(first: $first, filter: $filter) { totalCount nodes { id provider { name } } } }`,
	`query($id: ID!, $first: Int) { provider(id: $id) { id name timeSlots(first: $first) { nodes { id } } } }`,
	`mutation($input: BookSlotInput!) { bookSlot(input: $input) { booking { id reference status } slot { remaining } } }`,
	`query($reference: String, $id: ID) { booking(reference: $reference, id: $id) { id status startTime } }`,
	`mutation($input: CancelBookingInput!) { cancelBooking(input: $input) { booking { id status } } }`,
	`query($first: Int, $after: String) { providers(first: $first, after: $after) { nodes { id name } pageInfo { endCursor } } }`,
}

// contractCodes are the codes a GraphQL answer may carry; an internal
// error is a finding.
var contractCodes = map[string]bool{}

func init() {
	for _, c := range []apperr.Code{apperr.BadUserInput, apperr.NotFound, apperr.SlotUnavailable, apperr.SlotInPast,
		apperr.SlotTooSoon, apperr.IdempotencyConflict, apperr.Unauthenticated, apperr.Forbidden, apperr.RateLimited,
		apperr.QueryTooComplex, apperr.Unavailable, apperr.DeadlineExceeded} {
		contractCodes[string(c)] = true
	}
}

// FuzzGraphQLVariables: whatever variables a client sends with these
// operations, the handler answers a JSON GraphQL response below 500,
// whose every error carries a contract code (never INTERNAL_SERVER_ERROR),
// with errors whenever the status is not 200; nothing panics. The
// handler runs in-process over a SQLite database, as the server mounts it
// (body limit, admin gate, request log).
//
// Variables that pass validation cost a SQLite round trip (most of an
// execution's CPU; about 4,000 executions a second per worker), so
// minimizing a new input within go test's default -fuzzminimizetime of
// 60 s holds the execution count still for tens of seconds at a time:
// run it with a short one,
//
//	go test -run '^$' -fuzz FuzzGraphQLVariables -fuzztime 60s -fuzzminimizetime 2s ./graph/
func FuzzGraphQLVariables(f *testing.F) {
	db := dbtest.Open(f, database.SQLite)
	m := slots.New(db)
	var hours []models.WorkingHours
	for _, d := range models.AllWeekdays {
		hours = append(hours, models.WorkingHours{Weekday: d, Start: "00:00", End: "24:00"})
	}
	p, err := m.CreateProvider(f.Context(), models.ProviderInput{Name: "Fuzz", TimeZone: "UTC", SlotMinutes: 60, WorkingHours: hours})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := m.Generate(f.Context(), slots.GenerateInput{DaysAhead: 2}); err != nil {
		f.Fatal(err)
	}
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		f.Fatal(err)
	}
	var h http.Handler = graph.NewHandler(graph.OptionsOf(cfg), m)
	h = httpx.NewAdminGate("").Middleware(h)
	h = httpx.LimitBody(cfg.MaxBodyBytes)(h)
	h = httpx.Refusals(graph.WriteRefusal, httpx.Paths{"/graphql"})(h)
	h = httpx.RequestLog(slog.New(slog.NewTextHandler(io.Discard, nil)))(h)

	id := strconv.FormatInt(p.ID, 10)
	for _, seed := range []struct {
		op   uint8
		vars string
	}{
		{0, `{"first": 3}`}, {0, `{"first": 1.5}`}, {0, `{"first": -1}`}, {0, `{"first": 1e400}`}, {0, `{"last": 2, "before": "czE6MTo"}`},
		{0, `{"after": "not a cursor"}`}, {0, `{"filter": {"providerId": "` + id + `", "status": ["AVAILABLE", "BOOKED"]}}`},
		{0, `{"filter": {"date": "0000-01-01"}}`}, {0, `{"filter": {"from": "0000-01-01T00:00:00Z", "to": "9999-12-31T23:00:00-02:00"}}`},
		{0, `{"filter": {"providerIds": []}}`}, {0, `{"filter": {"providerIds": ["1", true, null]}}`}, {0, `{"filter": {"status": ["BOGUS"]}}`},
		{1, `{"first": 100, "filter": {"startDate": "2025-02-30"}}`}, {1, `{"filter": {"x": 1}}`}, {1, `{"filter": []}`},
		{2, `{"id": "` + id + `", "first": 2}`}, {2, `{"id": "99999999999999999999"}`}, {2, `{"id": 1.0}`}, {2, `{}`}, {2, `{"id": null}`},
		{3, `{"input": {"slotId": "1", "customer": "Ann", "idempotencyKey": "k1"}}`}, {3, `{"input": {"slotId": "1", "customer": ""}}`},
		{3, `{"input": {"slotId": "1", "customer": "\u0000"}}`}, {3, `{"input": {"slotId": 1, "customer": "A"}}`}, {3, `{"input": "x"}`},
		{4, `{"reference": "bk_nothing"}`}, {4, `{"id": "1"}`}, {4, `{"reference": "bk_x", "id": "1"}`}, {4, `{}`},
		{5, `{"input": {"reference": ""}}`}, {5, `{"input": {"bookingId": "1"}}`}, {5, `{"input": {}}`},
		{6, `{"first": 0}`}, {6, `{"after": ""}`}, {6, `{"first": 101}`},
		{0, ``}, {0, `null`}, {0, `[]`}, {0, `"x"`}, {0, `{`}, {0, `{"first": {"$gt": 1}}`},
	} {
		f.Add(seed.op, []byte(seed.vars))
	}
	f.Fuzz(func(t *testing.T, op uint8, vars []byte) {
		q, _ := json.Marshal(fuzzOperations[int(op)%len(fuzzOperations)])
		body := `{"query":` + string(q) + `,"variables":` + string(vars) + `}`
		req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = "127.0.0.1:40000"
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var resp struct {
			Data   json.RawMessage `json:"data"`
			Errors []struct {
				Message    string         `json:"message"`
				Extensions map[string]any `json:"extensions"`
			} `json:"errors"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
			t.Fatalf("variables %q: HTTP %d, not a JSON GraphQL response (%v): %.300s", vars, rec.Code, err, rec.Body)
		}
		if rec.Code >= 500 || rec.Code != http.StatusOK && len(resp.Errors) == 0 {
			t.Fatalf("variables %q: HTTP %d %.300s", vars, rec.Code, rec.Body)
		}
		for _, e := range resp.Errors {
			if code, _ := e.Extensions["code"].(string); !contractCodes[code] || e.Message == "" {
				t.Fatalf("variables %q: HTTP %d, an error without a contract code: %.300s", vars, rec.Code, rec.Body)
			}
		}
	})
}
