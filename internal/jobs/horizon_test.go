package jobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/jobs"
	"timeslots/internal/slots"
	"timeslots/models"
)

// The generate job gives each provider the horizon its demand asks for,
// between the plan's GenerateDays and GenerateMaxDays, and records it.
func TestGenerateJobFollowsDemand(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		now := time.Date(2026, 1, 5, 8, 0, 0, 0, time.UTC)
		mgr := slots.New(db, slots.WithClock(func() time.Time { return now }))
		var hours []models.WorkingHours
		for _, d := range models.AllWeekdays {
			hours = append(hours, models.WorkingHours{Weekday: d, Start: "09:00", End: "12:00"})
		}
		p, err := mgr.CreateProvider(ctx, models.ProviderInput{Name: "Busy", TimeZone: "UTC", SlotMinutes: 60, WorkingHours: hours})
		if err != nil {
			t.Fatal(err)
		}
		s := newScheduler(t, mgr, jobs.Options{Plan: jobs.Plan{GenerateDays: 7, GenerateMaxDays: 10, CleanupDaysOld: 30}, Instance: "test"})
		tick := time.Date(2026, 1, 5, 2, 0, 0, 0, time.UTC)
		lastDate := func() models.Date {
			t.Helper()
			var d []models.Date
			if err := db.Raw("SELECT date FROM time_slots WHERE provider_id = ? ORDER BY start_time DESC LIMIT 1", p.ID).Scan(&d).Error; err != nil || len(d) != 1 {
				t.Fatalf("last slot: %v %v", d, err)
			}
			return d[0]
		}

		if ran, err := s.RunTick(ctx, jobs.GenerateJob, tick); !ran || err != nil {
			t.Fatalf("first tick: ran=%v err=%v", ran, err)
		}
		if got := lastDate(); got != "2026-01-11" {
			t.Fatalf("last slot on %s after a tick without demand, want the floor's 2026-01-11", got)
		}
		// 5 of the 21 slots of the last week booked: 7 + 7 days, cut to 10.
		page, err := mgr.ListSlots(ctx, slots.SlotFilter{ProviderID: &p.ID}, slots.PageRequest{First: ptr(5), Default: 20, Max: 100})
		if err != nil || len(page.Slots) != 5 {
			t.Fatalf("slots to book: %v %v", page, err)
		}
		for i, sl := range page.Slots {
			if _, _, err := mgr.Book(ctx, slots.BookInput{SlotID: sl.ID, Customer: fmt.Sprintf("c%d", i)}); err != nil {
				t.Fatal(err)
			}
		}
		if ran, err := s.RunTick(ctx, jobs.GenerateJob, tick.Add(time.Minute)); !ran || err != nil {
			t.Fatalf("second tick: ran=%v err=%v", ran, err)
		}
		if got := lastDate(); got != "2026-01-14" {
			t.Fatalf("last slot on %s after a tick with demand, want the ceiling's 2026-01-14", got)
		}
		last, err := mgr.LastJobRuns(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var figures struct{ DaysAhead, MaxDaysAhead, MaxDays, Extended, Created int }
		for _, r := range last {
			if r.Job == jobs.GenerateJob {
				_ = json.Unmarshal([]byte(r.Details), &figures)
			}
		}
		if figures != (struct{ DaysAhead, MaxDaysAhead, MaxDays, Extended, Created int }{7, 10, 10, 1, 9}) {
			t.Errorf("second run's figures %+v, want 7 to 10 days, one provider extended by 9 slots", figures)
		}
	})
}

func ptr[T any](v T) *T { return &v }
