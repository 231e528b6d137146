package slots_test

import (
	"fmt"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
	"timeslots/models"
)

func TestStatsAreExactOnAKnownDataSet(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, clk := newManager(db, time.Date(2025, 6, 9, 8, 0, 0, 0, time.UTC))

		empty, err := m.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%+v", *empty) != fmt.Sprintf("%+v", slots.Stats{Utilization: []slots.ProviderUtilization{}}) {
			t.Fatalf("stats of an empty store: %+v", *empty)
		}

		a := mustProvider(t, m, models.ProviderInput{Name: "A", TimeZone: "UTC", SlotMinutes: 60,
			WorkingHours: everyDay("09:00", "12:00")})
		b := mustProvider(t, m, models.ProviderInput{Name: "B", TimeZone: "Asia/Tokyo", SlotMinutes: 60, Capacity: ptr(2),
			WorkingHours: everyDay("10:00", "12:00")})
		c := mustProvider(t, m, models.ProviderInput{Name: "C", TimeZone: "Europe/Berlin", SlotMinutes: 30})

		// June 9: A's 09:00, 10:00, 11:00 UTC — in the past by the time stats run.
		mustGenerate(t, m, slots.GenerateInput{DaysAhead: 1, ProviderIDs: []int64{a.ID}})
		// June 10, 08:00 UTC is 17:00 in Tokyo: B's June 10 has passed, so
		// B gets June 11 and 12 (01:00 and 02:00 UTC each), A gets June 10 and 11.
		clk.Set(time.Date(2025, 6, 10, 8, 0, 0, 0, time.UTC))
		mustGenerate(t, m, slots.GenerateInput{DaysAhead: 2, ProviderIDs: []int64{a.ID}})
		mustGenerate(t, m, slots.GenerateInput{DaysAhead: 3, ProviderIDs: []int64{b.ID}})

		at := func(p *models.Provider, start time.Time) int64 {
			var id int64
			if err := db.Raw("SELECT id FROM time_slots WHERE provider_id = ? AND start_time = ?", p.ID, start).Scan(&id).Error; err != nil || id == 0 {
				t.Fatalf("no slot of %s at %s: %v", p.Name, start, err)
			}
			return id
		}
		book := func(id int64, customers ...string) {
			for _, cu := range customers {
				if _, _, err := m.Book(ctx, slots.BookInput{SlotID: id, Customer: cu}); err != nil {
					t.Fatal(err)
				}
			}
		}
		book(at(a, time.Date(2025, 6, 10, 9, 0, 0, 0, time.UTC)), "a1")
		book(at(a, time.Date(2025, 6, 11, 11, 0, 0, 0, time.UTC)), "a2")
		book(at(b, time.Date(2025, 6, 11, 1, 0, 0, 0, time.UTC)), "b1", "b2")
		book(at(b, time.Date(2025, 6, 12, 1, 0, 0, 0, time.UTC)), "b3")

		st, err := m.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		first, last := time.Date(2025, 6, 9, 9, 0, 0, 0, time.UTC), time.Date(2025, 6, 12, 2, 0, 0, 0, time.UTC)
		horizonA, horizonB := models.Date("2025-06-11"), models.Date("2025-06-12")
		want := slots.Stats{
			TotalSlots: 13, AvailableSlots: 10, BookedSlots: 3,
			AvailablePercent: 76.92, BookedPercent: 23.08,
			Providers: 3, DaysGenerated: 3, // June 10, 11, 12
			FirstSlotAt: &first, LastSlotAt: &last,
		}
		got := *st
		got.Utilization, got.Days = nil, nil
		if st.FirstSlotAt == nil || st.LastSlotAt == nil || !st.FirstSlotAt.Equal(first) || !st.LastSlotAt.Equal(last) {
			t.Fatalf("first/last slot at %v / %v, want %s / %s", st.FirstSlotAt, st.LastSlotAt, first, last)
		}
		got.FirstSlotAt, got.LastSlotAt = want.FirstSlotAt, want.LastSlotAt
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
			t.Fatalf("stats\n  %+v\nwant\n  %+v", got, want)
		}

		type util struct {
			id            int64
			total, booked int64
			utilization   float64
			horizon       string
		}
		wantUtil := []util{
			{a.ID, 9, 2, 22.22, string(horizonA)}, // 2 of 9 seats
			{b.ID, 4, 1, 37.5, string(horizonB)},  // 3 of 8 seats, one slot full
			{c.ID, 0, 0, 0, "none"},
		}
		if len(st.Utilization) != len(wantUtil) {
			t.Fatalf("utilization of %d providers, want %d", len(st.Utilization), len(wantUtil))
		}
		for i, u := range st.Utilization {
			h := "none"
			if u.Horizon != nil {
				h = string(*u.Horizon)
			}
			g := util{u.Provider.ID, u.TotalSlots, u.BookedSlots, u.Utilization, h}
			if g != wantUtil[i] {
				t.Fatalf("utilization %d: %+v, want %+v", i, g, wantUtil[i])
			}
		}

		// Per date, from each provider's today (A's June 9 has passed).
		wantDays := []slots.DayUtilization{
			{ProviderID: a.ID, Date: "2025-06-10", Slots: 3, Seats: 3, Booked: 1, Utilization: 33.33},
			{ProviderID: a.ID, Date: "2025-06-11", Slots: 3, Seats: 3, Booked: 1, Utilization: 33.33},
			{ProviderID: b.ID, Date: "2025-06-11", Slots: 2, Seats: 4, Booked: 2, Utilization: 50},
			{ProviderID: b.ID, Date: "2025-06-12", Slots: 2, Seats: 4, Booked: 1, Utilization: 25},
		}
		if fmt.Sprint(st.Days) != fmt.Sprint(wantDays) {
			t.Fatalf("days\n  %+v\nwant\n  %+v", st.Days, wantDays)
		}
	})
}
