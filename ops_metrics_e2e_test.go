package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/jobs"
	"timeslots/internal/slots"
	"timeslots/models"
)

// scrape answers the server's /metrics text.
func scrape(t *testing.T, base string) string {
	t.Helper()
	a, err := getAnswer(nil, http.MethodGet, base+"/metrics", nil, nil)
	if err != nil || a.Status != http.StatusOK {
		t.Fatalf("/metrics: %v %s", err, a)
	}
	return string(a.Body)
}

// eventually polls cond until it holds, failing the test after limit: a
// bound on waiting for the server, never an assertion about its speed.
func eventually(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
	}
}

// The metrics the alerts read follow the server: readiness and its turns
// as /readyz answers them, GraphQL internal errors, the root fields of the operations that ran (through fragments,
// each once) and not those of a refused one, the jobs' outcomes from 0,
// and each job's standing from the run records, left out while the
// database does not answer.
func TestMetricsBehindTheAlertsFollowTheServer(t *testing.T) {
	t.Parallel()
	realURL := dbtest.URL(t, database.Postgres)
	u, err := url.Parse(realURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := startProxy(t, u.Host)
	u.Host = proxy.Addr()
	srv := startServer(t, testEnv(t, database.Postgres, map[string]string{"DATABASE_URL": u.String(), "SEED_DEMO": "true"}))
	value := func(text, series string) float64 { t.Helper(); return metricValue(t, text, series) }
	readyz := func() int {
		a, err := getAnswer(nil, http.MethodGet, srv.URL+"/readyz", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return a.Status
	}

	text := scrape(t, srv.URL)
	for series, want := range map[string]float64{
		"timeslots_ready":                                           0,
		"timeslots_readiness_changes_total":                         0,
		"timeslots_graphql_internal_errors_total":                   0,
		`timeslots_job_runs_total{job="generate",outcome="failed"}`: 0,
		`timeslots_job_runs_total{job="cleanup",outcome="failed"}`:  0,
	} {
		if got := value(text, series); got != want {
			t.Errorf("before any check: %s = %v, want %v", series, got, want)
		}
	}
	if strings.Contains(text, "timeslots_job_due_timestamp_seconds{") {
		t.Error("a job that never succeeded has a due tick")
	}

	if s := readyz(); s != http.StatusOK {
		t.Fatalf("/readyz = %d, want 200", s)
	}
	from := pastDemoNotice() // bookable demo slots, whatever the hour
	page := postGraphQL(t, srv.URL, `query Page { ...Slots } fragment Slots on Query { timeSlots(first: 1, filter: {startDate: "`+from+`"}) { nodes { id } } }`, nil, nil)
	var slotPage struct {
		TimeSlots struct{ Nodes []struct{ ID string } }
	}
	page.Decode(t, &slotPage)
	if len(slotPage.TimeSlots.Nodes) != 1 {
		t.Fatalf("slot page: %s", page.Body)
	}
	if r := postGraphQL(t, srv.URL, `{ a: timeSlots(first: 1) { totalCount } b: timeSlots(first: 2) { totalCount } }`, nil, nil); len(r.Errors) > 0 {
		t.Fatalf("aliased slot pages: %s", r)
	}
	book := fmt.Sprintf(`mutation Book { bookSlot(input: {slotId: "%s", customer: "ann"}) { booking { id } } }`, slotPage.TimeSlots.Nodes[0].ID)
	if r := postGraphQL(t, srv.URL, book, nil, nil); len(r.Errors) > 0 {
		t.Fatalf("book: %s", r)
	}
	if r := postGraphQL(t, srv.URL, `{ noSuchField }`, nil, nil); r.Code() != "BAD_USER_INPUT" {
		t.Fatalf("invalid operation: %s", r)
	}

	// A generation tick succeeds, recorded as another replica would.
	db := openDatabase(t, realURL)
	mgr := slots.New(db)
	tick := time.Date(2026, 1, 5, 2, 0, 0, 0, time.UTC)
	run, err := mgr.ClaimJobRun(context.Background(), jobs.GenerateJob, tick, "another-replica", time.Minute)
	if err != nil || run == nil {
		t.Fatalf("claim: %v %v", run, err)
	}
	if err := mgr.FinishJobRun(context.Background(), run.ID, models.JobSucceeded, "{}", nil); err != nil {
		t.Fatal(err)
	}

	text = scrape(t, srv.URL)
	for series, want := range map[string]float64{
		"timeslots_ready":                   1,
		"timeslots_readiness_changes_total": 0,
		`timeslots_graphql_root_field_duration_seconds_count{field="timeSlots"}`:                  2,
		`timeslots_graphql_root_field_duration_seconds_count{field="bookSlot"}`:                   1,
		`timeslots_job_last_success_tick_timestamp_seconds{job="generate"}`:                       float64(tick.Unix()),
		`timeslots_job_due_timestamp_seconds{job="generate"}`:                                     float64(tick.Add(24 * time.Hour).Unix()),
		`timeslots_graphql_operation_duration_seconds_count{operation="refused",outcome="error"}`: 1,
	} {
		if got := value(text, series); got != want {
			t.Errorf("after a check and three operations: %s = %v, want %v", series, got, want)
		}
	}
	if fields := seriesLabels(text, "timeslots_graphql_root_field_duration_seconds_count", "field"); len(fields) != 2 {
		t.Errorf("root field series %v, want timeSlots and bookSlot only", fields)
	}

	// A table gone astray is an internal error (an unreachable database
	// is UNAVAILABLE instead, a 503).
	if err := db.Exec("ALTER TABLE time_slots RENAME TO time_slots_astray").Error; err != nil {
		t.Fatal(err)
	}
	internal := 0
	for range 3 {
		r := postGraphQL(t, srv.URL, `query Page { timeSlots(first: 1) { nodes { id } } }`, nil, nil)
		if r.Code() == "INTERNAL_SERVER_ERROR" {
			internal++
		}
	}
	if err := db.Exec("ALTER TABLE time_slots_astray RENAME TO time_slots").Error; err != nil {
		t.Fatal(err)
	}
	if internal != 3 {
		t.Fatalf("%d of 3 slot pages without their table answered INTERNAL_SERVER_ERROR", internal)
	}
	if got := value(scrape(t, srv.URL), "timeslots_graphql_internal_errors_total"); got != float64(internal) {
		t.Errorf("timeslots_graphql_internal_errors_total = %v after %d internal errors", got, internal)
	}

	proxy.cut()
	eventually(t, "/readyz 503 while the database is away", 10*time.Second, func() bool { return readyz() == http.StatusServiceUnavailable })
	text = scrape(t, srv.URL)
	for series, want := range map[string]float64{
		"timeslots_ready":                   0,
		"timeslots_readiness_changes_total": 1,
	} {
		if got := value(text, series); got != want {
			t.Errorf("while the database is away: %s = %v, want %v", series, got, want)
		}
	}
	if strings.Contains(text, "timeslots_job_due_timestamp_seconds{") {
		t.Error("the jobs' standings are reported while the database is away")
	}

	proxy.restore()
	eventually(t, "/readyz 200 after the database returns", 20*time.Second, func() bool { return readyz() == http.StatusOK })
	text = scrape(t, srv.URL)
	if got := value(text, "timeslots_ready"); got != 1 {
		t.Errorf("timeslots_ready = %v once ready again, want 1", got)
	}
	if got := value(text, "timeslots_readiness_changes_total"); got != 2 {
		t.Errorf("timeslots_readiness_changes_total = %v after one drop and its recovery, want 2", got)
	}
}
