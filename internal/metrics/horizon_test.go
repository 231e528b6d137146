package metrics

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
	"timeslots/models"
)

// gauges answers the value of every series of family, by its provider_id
// label ("" for a series without it), as a scrape shows them.
func gauges(t *testing.T, m *Metrics, family string) map[string]float64 {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		if f.GetName() != family {
			continue
		}
		for _, s := range f.GetMetric() {
			id := ""
			for _, l := range s.GetLabel() {
				if l.GetName() == "provider_id" {
					id = l.GetValue()
				}
			}
			out[id] = s.GetGauge().GetValue()
		}
	}
	return out
}

// testClock is a settable clock shared by the manager and the collector.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// The horizon metrics show each provider's reach and target while there
// are at most 50 active providers, and the count of short horizons always;
// scrapes within 30 s share one reading of the database.
func TestHorizonMetrics(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		ctx := context.Background()
		clk := &testClock{t: time.Date(2025, 6, 9, 8, 0, 0, 0, time.UTC)}
		mgr := slots.New(db, slots.WithClock(clk.Now), slots.WithHorizon(10, 20))
		var reads atomic.Int64
		m := New(nil)
		c := newHorizonCollector(func(ctx context.Context) ([]slots.ProviderHorizon, error) {
			reads.Add(1)
			return mgr.Horizons(ctx)
		})
		c.now = clk.Now
		m.reg.MustRegister(c)

		var hours []models.WorkingHours
		for _, d := range models.AllWeekdays {
			hours = append(hours, models.WorkingHours{Weekday: d, Start: "09:00", End: "12:00"})
		}
		provider := func(name string) int64 {
			p, err := mgr.CreateProvider(ctx, models.ProviderInput{Name: name, TimeZone: "UTC", SlotMinutes: 60, WorkingHours: hours})
			if err != nil {
				t.Fatal(err)
			}
			return p.ID
		}
		busy, quiet := provider("Busy"), provider("Quiet")
		if _, err := mgr.Generate(ctx, slots.GenerateInput{DaysAhead: 10}); err != nil {
			t.Fatal(err)
		}
		// 5 of the 21 slots of busy's last week (June 12–18) booked: 17 days.
		page, err := mgr.ListSlots(ctx, slots.SlotFilter{ProviderID: &busy, StartDate: ptr(models.Date("2025-06-14"))},
			slots.PageRequest{First: ptr(5), Default: 20, Max: 100})
		if err != nil || len(page.Slots) != 5 {
			t.Fatalf("slots to book: %v, %v", page, err)
		}
		for i, s := range page.Slots {
			if _, _, err := mgr.Book(ctx, slots.BookInput{SlotID: s.ID, Customer: fmt.Sprintf("c%d", i)}); err != nil {
				t.Fatal(err)
			}
		}

		b, q := strconv.FormatInt(busy, 10), strconv.FormatInt(quiet, 10)
		want := func(days, target, short map[string]float64) {
			t.Helper()
			for family, w := range map[string]map[string]float64{
				"timeslots_provider_horizon_days":        days,
				"timeslots_provider_horizon_target_days": target,
				"timeslots_providers_horizon_short":      short,
			} {
				if got := gauges(t, m, family); fmt.Sprint(got) != fmt.Sprint(w) {
					t.Errorf("%s = %v, want %v", family, got, w)
				}
			}
		}
		want(map[string]float64{b: 10, q: 10}, map[string]float64{b: 17, q: 10}, map[string]float64{"": 1})

		// Generation covers the target; within 30 s scrapes still show the
		// reading they share, after it they show the new horizons.
		if _, err := mgr.Generate(ctx, slots.GenerateInput{DaysAhead: 10, MaxDaysAhead: 20}); err != nil {
			t.Fatal(err)
		}
		clk.Add(29 * time.Second)
		want(map[string]float64{b: 10, q: 10}, map[string]float64{b: 17, q: 10}, map[string]float64{"": 1})
		if n := reads.Load(); n != 1 {
			t.Fatalf("%d readings for scrapes within 30 s, want 1", n)
		}
		clk.Add(2 * time.Second)
		// Busy's new last week is empty: its target is the floor again.
		want(map[string]float64{b: 17, q: 10}, map[string]float64{b: 10, q: 10}, map[string]float64{"": 0})

		// 51 active providers: no per-provider series, the count stays. The
		// 49 new ones have no slot yet, so they are short.
		for i := range 49 {
			provider(fmt.Sprintf("P%d", i))
		}
		clk.Add(31 * time.Second)
		want(map[string]float64{}, map[string]float64{}, map[string]float64{"": 49})

		// Back to 50 active providers: the per-provider series return.
		last := provider("Last")
		if _, err := mgr.UpdateProvider(ctx, last, models.ProviderInput{Name: "Last", TimeZone: "UTC", SlotMinutes: 60,
			WorkingHours: hours, Active: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		if _, err := mgr.UpdateProvider(ctx, quiet, models.ProviderInput{Name: "Quiet", TimeZone: "UTC", SlotMinutes: 60,
			WorkingHours: hours, Active: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		clk.Add(31 * time.Second)
		days := gauges(t, m, "timeslots_provider_horizon_days")
		if _, ok := days[q]; len(days) != 50 || days[b] != 17 || ok {
			t.Errorf("horizon days of 50 active providers, the quiet one inactive: %v", days)
		}
		if got := gauges(t, m, "timeslots_providers_horizon_short"); got[""] != 49 {
			t.Errorf("short horizons among 50 active providers: %v, want 49", got)
		}
	})
}

func ptr[T any](v T) *T { return &v }
