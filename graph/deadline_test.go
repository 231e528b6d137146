package graph_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
	"timeslots/models"
)

// A request whose deadline has passed by the time the executor would run
// it (the executor then answers nothing) is answered 504
// DEADLINE_EXCEEDED, by POST and GET, and nothing panics or is logged as
// an internal error.
func TestRequestPastItsDeadlineIs504(t *testing.T) {
	a := newAPI(t, dbtest.Open(t, database.SQLite), nil)
	expired := dbtest.NewDeadline(t.Context())
	expired.Expire()
	for _, req := range []request{
		{body: `{"query":"{ providers(first: 1) { totalCount } }"}`, ctx: expired},
		{method: http.MethodGet, query: "?query=%7B__typename%7D", ctx: expired},
		{body: `{"query":"{ __typename }"}`, ctx: expired, header: map[string]string{"Accept": "application/graphql-response+json"}},
	} {
		res := a.do(t, req)
		if res.Status != http.StatusGatewayTimeout || res.Code() != "DEADLINE_EXCEEDED" || len(res.Errors) != 1 ||
			!strings.Contains(res.Errors[0].Message, "REQUEST_TIMEOUT") {
			t.Errorf("%s %s: HTTP %d %s", req.method, req.query, res.Status, res.Body)
		}
	}
	for _, bad := range []string{"panic", "goroutine", "internal error"} {
		if strings.Contains(a.logs.String(), bad) {
			t.Errorf("the log has %q:\n%s", bad, a.logs.String())
		}
	}
}

// cleanupSlots and generateSlots stopped by the request's deadline answer
// 504 DEADLINE_EXCEEDED with what they committed in extensions.
func TestAdminMutationsStoppedByTheDeadlineSayWhatWasDone(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		// 2,880 five-minute slots of ten days that ended weeks ago.
		past := time.Now().UTC().AddDate(0, 0, -30).Truncate(24 * time.Hour).Add(-time.Minute)
		m := slots.New(db, slots.WithClock(func() time.Time { return past }))
		var hours []models.WorkingHours
		for _, d := range models.AllWeekdays {
			hours = append(hours, models.WorkingHours{Weekday: d, Start: "00:00", End: "24:00"})
		}
		if _, err := m.CreateProvider(t.Context(), models.ProviderInput{Name: "Round the clock", TimeZone: "UTC", SlotMinutes: 5, WorkingHours: hours}); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Generate(t.Context(), slots.GenerateInput{DaysAhead: 11}); err != nil {
			t.Fatal(err)
		}
		a := newAPI(t, db, nil)

		deadline := dbtest.NewDeadline(t.Context())
		var deletes atomic.Int32
		t.Cleanup(db.WatchStatements(func(q string) {
			if strings.HasPrefix(strings.ReplaceAll(strings.TrimSpace(q), "`", ""), "DELETE FROM time_slots") && deletes.Add(1) == 2 {
				deadline.Expire()
			}
		}))
		res := a.do(t, request{body: `{"query":"mutation { cleanupSlots(input: {daysOld: 0}) { deleted } }"}`, ctx: deadline})
		if res.Status != http.StatusGatewayTimeout || res.Code() != "DEADLINE_EXCEEDED" {
			t.Fatalf("HTTP %d %s", res.Status, res.Body)
		}
		ext := res.Errors[0].Extensions
		if ext["deleted"] != 2000.0 || ext["batches"] != 2.0 || !strings.Contains(res.Errors[0].Message, "2000 slots deleted") {
			t.Fatalf("the error does not say 2000 slots were deleted in 2 batches: %s", res.Body)
		}
		var left int64
		if err := db.Model(&models.TimeSlot{}).Count(&left).Error; err != nil || left != 2880-2000 {
			t.Fatalf("%d slots left (%v), want %d", left, err, 2880-2000)
		}

		// generateSlots: the deadline passes as its first batch is sent.
		deadline = dbtest.NewDeadline(t.Context())
		var inserts atomic.Int32
		t.Cleanup(db.WatchStatements(func(q string) {
			if (strings.HasPrefix(q, "INSERT") || strings.HasPrefix(q, "COPY")) && strings.Contains(q, "time_slots") && inserts.Add(1) == 1 {
				deadline.Expire()
			}
		}))
		if _, err := db.SQL().Exec("DELETE FROM time_slots"); err != nil {
			t.Fatal(err)
		}
		res = a.do(t, request{body: `{"query":"mutation { generateSlots(input: {daysAhead: 60}) { created } }"}`, ctx: deadline})
		var stored int64
		if err := db.Model(&models.TimeSlot{}).Count(&stored).Error; err != nil {
			t.Fatal(err)
		}
		if res.Status != http.StatusGatewayTimeout || res.Code() != "DEADLINE_EXCEEDED" {
			t.Fatalf("HTTP %d %s", res.Status, res.Body)
		}
		if ext := res.Errors[0].Extensions; stored == 0 || ext["created"] != float64(stored) {
			body, _ := json.Marshal(ext)
			t.Fatalf("extensions %s, but %d slots are stored", body, stored)
		}
	})
}
