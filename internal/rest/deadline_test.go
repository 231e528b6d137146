package rest_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/rest/openapitest"
	"timeslots/internal/slots"
	"timeslots/models"
)

// Cleanup and generation stopped by the request's deadline answer 504
// DEADLINE_EXCEEDED with what they committed, as the document says; a
// request past its deadline before anything ran is 504 as well.
func TestAdminWorkStoppedByTheDeadlineSaysWhatWasDone(t *testing.T) {
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

		// The deadline passes when the statement expire picks is sent.
		var deadline atomic.Pointer[dbtest.Deadline]
		var expire atomic.Pointer[func(q string) bool]
		t.Cleanup(db.WatchStatements(func(q string) {
			if f := expire.Load(); f != nil && (*f)(strings.ReplaceAll(q, "`", "")) {
				deadline.Load().Expire()
			}
		}))
		srv := serve(t, db, func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				d := dbtest.NewDeadline(r.Context())
				deadline.Store(d)
				if r.URL.Query().Get("limit") == "1" {
					d.Expire() // a listing past its deadline before it runs
				}
				next.ServeHTTP(w, r.WithContext(d))
			})
		})
		send := func(method, path, body string, when func(q string) bool) (int, map[string]any) {
			t.Helper()
			expire.Store(&when)
			req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
			if body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp := openapitest.New(t, srv.URL).Do(t, srv.Client(), req)
			var out struct {
				Error map[string]any `json:"error"`
			}
			_ = json.Unmarshal(resp.Body, &out)
			return resp.Status, out.Error
		}

		var deletes atomic.Int32
		status, e := send(http.MethodDelete, "/api/admin/time-slots?daysOld=0", "", func(q string) bool {
			return strings.HasPrefix(strings.TrimSpace(q), "DELETE FROM time_slots") && deletes.Add(1) == 2
		})
		if status != http.StatusGatewayTimeout || e["code"] != "DEADLINE_EXCEEDED" || e["deleted"] != 2000.0 || e["batches"] != 2.0 {
			t.Fatalf("cleanup: HTTP %d %v; want 504 with 2000 deleted in 2 batches", status, e)
		}
		var left int64
		if err := db.Model(&models.TimeSlot{}).Count(&left).Error; err != nil || left != 2880-2000 {
			t.Fatalf("%d slots left (%v), want %d", left, err, 2880-2000)
		}

		if _, err := db.SQL().Exec("DELETE FROM time_slots"); err != nil {
			t.Fatal(err)
		}
		var inserts atomic.Int32
		status, e = send(http.MethodPost, "/api/admin/time-slots", `{"daysAhead": 60}`, func(q string) bool {
			return (strings.HasPrefix(q, "INSERT") || strings.HasPrefix(q, "COPY")) && strings.Contains(q, "time_slots") && inserts.Add(1) == 1
		})
		var stored int64
		if err := db.Model(&models.TimeSlot{}).Count(&stored).Error; err != nil {
			t.Fatal(err)
		}
		if status != http.StatusGatewayTimeout || e["code"] != "DEADLINE_EXCEEDED" || stored == 0 || e["created"] != float64(stored) {
			t.Fatalf("generation: HTTP %d %v with %d slots stored", status, e, stored)
		}

		// A listing past its deadline: its store's error has no code.
		status, e = send(http.MethodGet, "/api/time-slots?limit=1", "", func(string) bool { return false })
		if status != http.StatusGatewayTimeout || e["code"] != "DEADLINE_EXCEEDED" {
			t.Fatalf("listing: HTTP %d %v", status, e)
		}
	})
}
