package slots_test

import (
	"fmt"
	"testing"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
	"timeslots/models"
)

// lastDate answers the date of a provider's last slot, read from the table.
func lastDate(t *testing.T, db *database.DB, providerID int64) models.Date {
	t.Helper()
	rows := providerSlots(t, db, providerID)
	if len(rows) == 0 {
		t.Fatalf("provider %d has no slot", providerID)
	}
	return rows[len(rows)-1].Date
}

// bookOn books n distinct slots of provider p dated from..to (inclusive),
// the earliest first, and answers their ids.
func bookOn(t *testing.T, m *slots.Manager, db *database.DB, p int64, from, to models.Date, n int) []int64 {
	t.Helper()
	var ids []int64
	for _, s := range providerSlots(t, db, p) {
		if len(ids) == n {
			break
		}
		if s.Date >= from && s.Date <= to && s.BookedCount == 0 {
			if _, _, err := m.Book(ctx, slots.BookInput{SlotID: s.ID, Customer: fmt.Sprintf("c%d", s.ID)}); err != nil {
				t.Fatalf("book slot %d: %v", s.ID, err)
			}
			ids = append(ids, s.ID)
		}
	}
	if len(ids) != n {
		t.Fatalf("booked %d slots of provider %d between %s and %s, want %d", len(ids), p, from, to, n)
	}
	return ids
}

func horizonOf(t *testing.T, m *slots.Manager, id int64) slots.ProviderHorizon {
	t.Helper()
	hs, err := m.Horizons(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.ProviderID == id {
			return h
		}
	}
	t.Fatalf("provider %d has no horizon in %+v", id, hs)
	return slots.ProviderHorizon{}
}

// Generation extends a provider's horizon exactly as HorizonDays says for
// its demand, leaves a provider without enough bookings at the floor,
// stops at the ceiling, and never deletes a slot when the target shrinks.
func TestGenerationFollowsDemandUpToTheCeiling(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		const floor, ceiling = 10, 20
		today := models.Date("2025-06-09")
		m, clk := newManager(db, time.Date(2025, 6, 9, 8, 0, 0, 0, time.UTC), slots.WithHorizon(floor, ceiling))
		hours := everyDay("09:00", "12:00") // three 60-minute slots a day
		busy := mustProvider(t, m, models.ProviderInput{Name: "Busy", TimeZone: "UTC", SlotMinutes: 60, WorkingHours: hours})
		quiet := mustProvider(t, m, models.ProviderInput{Name: "Quiet", TimeZone: "UTC", SlotMinutes: 60, WorkingHours: hours})
		in := slots.GenerateInput{DaysAhead: floor, MaxDaysAhead: ceiling}

		res := mustGenerate(t, m, in)
		if res.Created != 2*floor*3 || res.MaxDays != floor || res.Extended != 0 {
			t.Fatalf("first generation %+v, want %d created, every provider at the floor", res, 2*floor*3)
		}
		for _, p := range []*models.Provider{busy, quiet} {
			if got := lastDate(t, db, p.ID); got != today.AddDays(floor-1) {
				t.Fatalf("%s's last slot on %s, want %s", p.Name, got, today.AddDays(floor-1))
			}
			if h := horizonOf(t, m, p.ID); h.Days != floor || h.TargetDays != floor || h.Short() {
				t.Fatalf("%s's horizon %+v, want %d days of %d", p.Name, h, floor, floor)
			}
		}

		// The last seven dates hold 21 slots: 5 booked is 23.8%, 4 is 19%.
		window := today.AddDays(floor - slots.DemandWindowDays)
		bookOn(t, m, db, busy.ID, window, today.AddDays(floor-1), 5)
		booked := bookOn(t, m, db, quiet.ID, window, today.AddDays(floor-1), 4)
		// Bookings before the window are no demand for the horizon.
		booked = append(booked, bookOn(t, m, db, quiet.ID, today, window.AddDays(-1), 9)...)
		if h := horizonOf(t, m, busy.ID); h.Days != floor || h.TargetDays != floor+slots.HorizonStepDays || !h.Short() {
			t.Fatalf("busy horizon with demand %+v, want %d days short of %d", h, floor, floor+7)
		}
		if h := horizonOf(t, m, quiet.ID); h.TargetDays != floor || h.Short() {
			t.Fatalf("quiet horizon %+v, want a target of %d", h, floor)
		}

		res = mustGenerate(t, m, in)
		if res.Created != slots.HorizonStepDays*3 || res.MaxDays != floor+7 || res.Extended != 1 || res.Days != floor {
			t.Fatalf("generation with demand %+v, want 21 created for one provider, 17 days at most", res)
		}
		if got := lastDate(t, db, busy.ID); got != today.AddDays(floor+7-1) {
			t.Fatalf("busy's last slot on %s, want %s", got, today.AddDays(floor+7-1))
		}
		if got := lastDate(t, db, quiet.ID); got != today.AddDays(floor-1) {
			t.Fatalf("quiet's last slot on %s, want the floor's %s", got, today.AddDays(floor-1))
		}
		// The new last week is empty: the target is the floor again, and
		// the horizon is past it.
		if h := horizonOf(t, m, busy.ID); h.Days != floor+7 || h.TargetDays != floor || h.Short() {
			t.Fatalf("busy horizon after growing %+v, want 17 days, a target of %d", h, floor)
		}

		// Demand in the new last week: 17 + 7 = 24 days, cut to the ceiling.
		bookOn(t, m, db, busy.ID, today.AddDays(floor+7-slots.DemandWindowDays), today.AddDays(floor+7-1), 21)
		if h := horizonOf(t, m, busy.ID); h.TargetDays != ceiling {
			t.Fatalf("busy target %+v, want the ceiling %d", h, ceiling)
		}
		res = mustGenerate(t, m, in)
		if res.MaxDays != ceiling || res.Created != (ceiling-floor-7)*3 {
			t.Fatalf("generation up to the ceiling %+v, want %d days and 9 created", res, ceiling)
		}
		if got := lastDate(t, db, busy.ID); got != today.AddDays(ceiling-1) {
			t.Fatalf("busy's last slot on %s, want the ceiling's %s", got, today.AddDays(ceiling-1))
		}
		res = mustGenerate(t, m, in)
		if res.Created != 0 || lastDate(t, db, busy.ID) != today.AddDays(ceiling-1) {
			t.Fatalf("generation at the ceiling %+v, last slot %s: want nothing more", res, lastDate(t, db, busy.ID))
		}

		// A smaller target, and a later day, delete nothing: every slot and
		// booking stays.
		before := count(t, db, "SELECT COUNT(*) FROM time_slots")
		mustGenerate(t, m, slots.GenerateInput{DaysAhead: 3})
		mustGenerate(t, m, slots.GenerateInput{DaysAhead: floor, MaxDaysAhead: floor})
		if got := count(t, db, "SELECT COUNT(*) FROM time_slots"); got != before {
			t.Fatalf("%d slots after shorter generations, want the %d there were", got, before)
		}
		clk.Set(time.Date(2025, 6, 10, 8, 0, 0, 0, time.UTC))
		mustGenerate(t, m, in)
		// The quiet provider's floor and the busy one's ceiling (its full
		// last week still asks for more) each move a day.
		if got := count(t, db, "SELECT COUNT(*) FROM time_slots"); got != before+6 {
			t.Fatalf("%d slots a day later, want %d: one more day for each provider", got, before+6)
		}
		if got := lastDate(t, db, busy.ID); got != today.AddDays(ceiling) {
			t.Fatalf("busy's last slot a day later on %s, want %s", got, today.AddDays(ceiling))
		}
		for _, id := range booked {
			s, err := m.Slot(ctx, id)
			if err != nil || s.BookedCount != 1 {
				t.Fatalf("booked slot %d after the generations: %+v, %v", id, s, err)
			}
		}
		if n := count(t, db, "SELECT COUNT(*) FROM time_slots WHERE booked_count > 0"); n != 5+4+9+21 {
			t.Fatalf("%d booked slots, want 39", n)
		}
	})
}

// A provider who does not work on weekends has reached its target once its
// last working day inside the horizon has slots.
func TestHorizonTargetEndsOnTheLastWorkingDay(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		// Monday June 9: seven days end on Sunday the 15th, Friday is the 13th.
		m, _ := newManager(db, time.Date(2025, 6, 9, 8, 0, 0, 0, time.UTC), slots.WithHorizon(7, 30))
		var weekdays []models.WorkingHours
		for _, d := range models.AllWeekdays[:5] {
			weekdays = append(weekdays, models.WorkingHours{Weekday: d, Start: "09:00", End: "10:00"})
		}
		p := mustProvider(t, m, models.ProviderInput{Name: "Office", TimeZone: "UTC", SlotMinutes: 60, WorkingHours: weekdays})
		idle := mustProvider(t, m, models.ProviderInput{Name: "Idle", TimeZone: "UTC", SlotMinutes: 60})
		if h := horizonOf(t, m, p.ID); h.Days != 0 || h.TargetDays != 5 || !h.Short() {
			t.Fatalf("horizon before generation %+v, want 0 days short of 5", h)
		}
		mustGenerate(t, m, slots.GenerateInput{DaysAhead: 7, MaxDaysAhead: 30})
		if h := horizonOf(t, m, p.ID); h.Days != 5 || h.TargetDays != 5 || h.Short() {
			t.Fatalf("horizon after generation %+v, want 5 days of 5", h)
		}
		if h := horizonOf(t, m, idle.ID); h.Days != 0 || h.TargetDays != 0 || h.Short() {
			t.Fatalf("horizon of a provider without hours %+v, want nothing to reach", h)
		}
	})
}

func TestGenerationRefusesACeilingOutsideItsBounds(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, _ := newManager(db, time.Date(2025, 6, 9, 8, 0, 0, 0, time.UTC))
		for _, in := range []slots.GenerateInput{
			{DaysAhead: 30, MaxDaysAhead: 29},
			{DaysAhead: 30, MaxDaysAhead: 366},
			{DaysAhead: 30, MaxDaysAhead: -1},
		} {
			_, err := m.Generate(ctx, in)
			wantCode(t, err, apperr.BadUserInput, "maxDaysAhead")
		}
	})
}

// Stats show each active provider's horizon as generation will cover it,
// from the provider's own today; an inactive provider has none.
func TestStatsShowEachProvidersHorizon(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		// 20:00 UTC on June 9 is already June 10 in Tokyo.
		m, _ := newManager(db, time.Date(2025, 6, 9, 20, 0, 0, 0, time.UTC), slots.WithHorizon(10, 20))
		hours := everyDay("09:00", "12:00")
		busy := mustProvider(t, m, models.ProviderInput{Name: "Busy", TimeZone: "UTC", SlotMinutes: 60, WorkingHours: hours})
		tokyo := mustProvider(t, m, models.ProviderInput{Name: "Tokyo", TimeZone: "Asia/Tokyo", SlotMinutes: 60, WorkingHours: hours})
		gone := mustProvider(t, m, models.ProviderInput{Name: "Gone", TimeZone: "UTC", SlotMinutes: 60, WorkingHours: hours})
		mustGenerate(t, m, slots.GenerateInput{DaysAhead: 10})
		if _, err := m.UpdateProvider(ctx, gone.ID, models.ProviderInput{Name: "Gone", TimeZone: "UTC", SlotMinutes: 60,
			WorkingHours: hours, Active: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		// Busy's slots start tomorrow (today's have passed): June 10–18.
		bookOn(t, m, db, busy.ID, "2025-06-12", "2025-06-18", 5)

		st, err := m.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[int64]string{busy.ID: "17 2025-06-25", tokyo.ID: "10 2025-06-19", gone.ID: "0 none"}
		for _, u := range st.Utilization {
			end := "none"
			if u.HorizonEnd != nil {
				end = string(*u.HorizonEnd)
			}
			if got := fmt.Sprintf("%d %s", u.HorizonDays, end); got != want[u.Provider.ID] {
				t.Errorf("%s's horizon %s, want %s", u.Provider.Name, got, want[u.Provider.ID])
			}
		}
	})
}
