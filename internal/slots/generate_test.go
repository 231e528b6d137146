package slots_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
	"timeslots/models"
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// The wall times below were worked out by hand from the rule: slots are laid
// out on the local wall clock from 00:00 in steps of slotMinutes, a wall
// time that does not exist gives no slot, a repeated wall time gives one slot
// at its first occurrence, each slot lasts exactly slotMinutes in real time,
// and a slot that would overlap the previous one or end after 06:00 is left
// out.
var dstCases = []struct {
	zone, day string
	minutes   int
	walls     []string // local start times on day, "15:04 MST"
}{
	// Berlin, spring forward: 02:00 CET jumps to 03:00 CEST.
	{"Europe/Berlin", "2025-03-30", 30, []string{"00:00 CET", "00:30 CET", "01:00 CET", "01:30 CET", "03:00 CEST", "03:30 CEST", "04:00 CEST", "04:30 CEST", "05:00 CEST", "05:30 CEST"}},
	{"Europe/Berlin", "2025-03-30", 60, []string{"00:00 CET", "01:00 CET", "03:00 CEST", "04:00 CEST", "05:00 CEST"}},
	{"Europe/Berlin", "2025-03-30", 90, []string{"00:00 CET", "01:30 CET", "04:30 CEST"}},
	{"Europe/Berlin", "2025-03-30", 120, []string{"00:00 CET", "04:00 CEST"}},
	// Berlin, fall back: 03:00 CEST falls back to 02:00 CET; 02:00–03:00 repeats.
	{"Europe/Berlin", "2025-10-26", 30, []string{"00:00 CEST", "00:30 CEST", "01:00 CEST", "01:30 CEST", "02:00 CEST", "02:30 CEST", "03:00 CET", "03:30 CET", "04:00 CET", "04:30 CET", "05:00 CET", "05:30 CET"}},
	{"Europe/Berlin", "2025-10-26", 60, []string{"00:00 CEST", "01:00 CEST", "02:00 CEST", "03:00 CET", "04:00 CET", "05:00 CET"}},
	{"Europe/Berlin", "2025-10-26", 90, []string{"00:00 CEST", "01:30 CEST", "03:00 CET", "04:30 CET"}},
	{"Europe/Berlin", "2025-10-26", 120, []string{"00:00 CEST", "02:00 CEST", "04:00 CET"}},
	// New York, spring forward: 02:00 EST jumps to 03:00 EDT.
	{"America/New_York", "2025-03-09", 30, []string{"00:00 EST", "00:30 EST", "01:00 EST", "01:30 EST", "03:00 EDT", "03:30 EDT", "04:00 EDT", "04:30 EDT", "05:00 EDT", "05:30 EDT"}},
	{"America/New_York", "2025-03-09", 60, []string{"00:00 EST", "01:00 EST", "03:00 EDT", "04:00 EDT", "05:00 EDT"}},
	{"America/New_York", "2025-03-09", 90, []string{"00:00 EST", "01:30 EST", "04:30 EDT"}},
	{"America/New_York", "2025-03-09", 120, []string{"00:00 EST", "04:00 EDT"}},
	// New York, fall back: 02:00 EDT falls back to 01:00 EST; 01:00–02:00 repeats.
	{"America/New_York", "2025-11-02", 30, []string{"00:00 EDT", "00:30 EDT", "01:00 EDT", "01:30 EDT", "02:00 EST", "02:30 EST", "03:00 EST", "03:30 EST", "04:00 EST", "04:30 EST", "05:00 EST", "05:30 EST"}},
	{"America/New_York", "2025-11-02", 60, []string{"00:00 EDT", "01:00 EDT", "02:00 EST", "03:00 EST", "04:00 EST", "05:00 EST"}},
	{"America/New_York", "2025-11-02", 90, []string{"00:00 EDT", "01:30 EDT", "03:00 EST", "04:30 EST"}},
	{"America/New_York", "2025-11-02", 120, []string{"00:00 EDT", "02:00 EST", "04:00 EST"}},
}

func TestGenerationOnDSTDaysLaysSlotsOnTheLocalWallClock(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		for _, tc := range dstCases {
			t.Run(fmt.Sprintf("%s on %s with %d-minute slots", tc.zone, tc.day, tc.minutes), func(t *testing.T) {
				loc := mustLoad(t, tc.zone)
				day, _ := time.ParseInLocation("2006-01-02", tc.day, loc)
				// Noon of the day before: the DST day lies wholly ahead.
				now := day.AddDate(0, 0, -1).Add(12 * time.Hour)
				m, _ := newManager(db, now)
				p := mustProvider(t, m, models.ProviderInput{
					Name: tc.zone + " night shift", TimeZone: tc.zone, SlotMinutes: tc.minutes,
					WorkingHours: everyDay("00:00", "06:00"),
				})
				res := mustGenerate(t, m, slots.GenerateInput{DaysAhead: 3, ProviderIDs: []int64{p.ID}})
				rows := providerSlots(t, db, p.ID)
				if res.Created != len(rows) || res.Skipped != 0 || res.Providers != 1 || res.Days != 3 {
					t.Fatalf("result %+v, but the table holds %d slots", res, len(rows))
				}
				checkSlotShape(t, rows, loc, tc.minutes, 0, 0, 6*60, now)

				var walls []string
				for _, s := range rows {
					if string(s.Date) == tc.day {
						walls = append(walls, s.StartTime.In(loc).Format("15:04 MST"))
					}
				}
				if !slices.Equal(walls, tc.walls) {
					t.Fatalf("slots on %s start at\n  %v\nwant\n  %v", tc.day, walls, tc.walls)
				}
				// The day before has begun (its hours are over); the day after
				// is ordinary: 360 minutes of grid.
				if n := len(rows) - len(walls); n != 360/tc.minutes {
					t.Fatalf("%d slots on the other days, want %d on the day after", n, 360/tc.minutes)
				}

				again := mustGenerate(t, m, slots.GenerateInput{DaysAhead: 3, ProviderIDs: []int64{p.ID}})
				if again.Created != 0 || again.Skipped != res.Created {
					t.Fatalf("regeneration: created %d, skipped %d; want 0 and %d", again.Created, again.Skipped, res.Created)
				}
				if got := providerSlots(t, db, p.ID); len(got) != len(rows) {
					t.Fatalf("regeneration changed the slot count from %d to %d", len(rows), len(got))
				}
			})
		}
		if n := overlaps(t, db); n != 0 {
			t.Fatalf("%d overlapping slot pairs in the table", n)
		}
	})
}

// checkSlotShape checks what must hold for every generated slot of a
// provider whose every day has the hours [from, to) in minutes.
func checkSlotShape(t *testing.T, rows []models.TimeSlot, loc *time.Location, minutes, buffer, from, to int, now time.Time) {
	t.Helper()
	seen := map[string]bool{}
	for i, s := range rows {
		if d := s.EndTime.Sub(s.StartTime); d != time.Duration(minutes)*time.Minute {
			t.Errorf("slot %d (%s) lasts %v, want %d minutes", s.ID, s.StartTime, d, minutes)
		}
		if !s.StartTime.After(now) {
			t.Errorf("slot %d starts at %s, not after the clock's %s", s.ID, s.StartTime, now)
		}
		local := s.StartTime.In(loc)
		if got := models.DateOf(local); got != s.Date {
			t.Errorf("slot %d starts on local date %s but is dated %s", s.ID, got, s.Date)
		}
		wall := local.Hour()*60 + local.Minute()
		if (wall-from)%(minutes+buffer) != 0 || wall < from || wall+minutes > to {
			t.Errorf("slot %d starts at local %s, off the %d-minute grid of the working hours", s.ID, local.Format("15:04 MST"), minutes+buffer)
		}
		key := local.Format("2006-01-02 15:04")
		if seen[key] {
			t.Errorf("two slots start at local wall time %s", key)
		}
		seen[key] = true
		if i > 0 && s.StartTime.Before(rows[i-1].EndTime.Add(time.Duration(buffer)*time.Minute)) {
			t.Errorf("slot %d starts at %s, before the previous slot's end %s plus the %d-minute buffer",
				s.ID, s.StartTime, rows[i-1].EndTime, buffer)
		}
	}
}

func TestWorkingHoursEndingInsideTheSpringForwardGapEndWhereTheGapEnds(t *testing.T) {
	t.Parallel()
	// 02:30 does not exist on these days: the working day ends at the
	// transition (03:00 summer time), so no slot may run past it.
	cases := []struct {
		zone, day, from, to string
		minutes             int
		walls               []string
	}{
		{"Europe/Berlin", "2025-03-30", "00:30", "02:30", 60, []string{"00:30 CET"}},
		{"Europe/Berlin", "2025-03-30", "00:00", "02:30", 30, []string{"00:00 CET", "00:30 CET", "01:00 CET", "01:30 CET"}},
		{"Europe/Berlin", "2025-03-30", "01:00", "02:45", 45, []string{"01:00 CET"}},
		{"America/New_York", "2025-03-09", "00:30", "02:30", 60, []string{"00:30 EST"}},
		{"America/New_York", "2025-03-09", "00:15", "02:15", 45, []string{"00:15 EST", "01:00 EST"}},
	}
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		for _, tc := range cases {
			t.Run(fmt.Sprintf("%s %s–%s with %d-minute slots", tc.zone, tc.from, tc.to, tc.minutes), func(t *testing.T) {
				loc := mustLoad(t, tc.zone)
				day, _ := time.ParseInLocation("2006-01-02", tc.day, loc)
				m, _ := newManager(db, day.Add(-time.Hour))
				p := mustProvider(t, m, models.ProviderInput{Name: "Gap", TimeZone: tc.zone, SlotMinutes: tc.minutes,
					WorkingHours: everyDay(tc.from, tc.to)})
				// The clock is 23:00 the evening before: today and the DST day.
				mustGenerate(t, m, slots.GenerateInput{DaysAhead: 2, ProviderIDs: []int64{p.ID}})
				closing := day.Add(3 * time.Hour).Add(-time.Hour) // 03:00 summer time, where the gap ends
				if closing.In(loc).Format("15:04") != "03:00" {
					t.Fatalf("gap end computed as %s", closing.In(loc))
				}
				var walls []string
				for _, s := range providerSlots(t, db, p.ID) {
					if string(s.Date) != tc.day {
						continue
					}
					walls = append(walls, s.StartTime.In(loc).Format("15:04 MST"))
					if s.EndTime.After(closing) {
						t.Errorf("slot %s runs until %s, past the end of the working day at %s",
							s.StartTime.In(loc).Format("15:04 MST"), s.EndTime.In(loc).Format("15:04 MST"), closing.In(loc).Format("15:04 MST"))
					}
				}
				if !slices.Equal(walls, tc.walls) {
					t.Fatalf("slots start at %v, want %v", walls, tc.walls)
				}
			})
		}
	})
}

func TestGenerationCreatesOnlySlotsThatStartAfterNow(t *testing.T) {
	t.Parallel()
	berlin := mustLoad(t, "Europe/Berlin")
	cases := []struct {
		name  string
		now   time.Time
		walls []string
	}{
		{"the clock inside the working hours leaves out the slots already begun",
			time.Date(2025, 3, 30, 3, 15, 0, 0, berlin), []string{"04:00 CEST", "05:00 CEST"}},
		{"a slot starting exactly now is not created",
			time.Date(2025, 3, 30, 4, 0, 0, 0, berlin), []string{"05:00 CEST"}},
		{"a slot starting exactly at midnight now is not created",
			time.Date(2025, 3, 30, 0, 0, 0, 0, berlin), []string{"01:00 CET", "03:00 CEST", "04:00 CEST", "05:00 CEST"}},
		{"the clock after the working hours creates nothing for today",
			time.Date(2025, 3, 30, 6, 30, 0, 0, berlin), nil},
	}
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				m, _ := newManager(db, tc.now)
				p := mustProvider(t, m, models.ProviderInput{
					Name: "Early bird", TimeZone: "Europe/Berlin", SlotMinutes: 60, WorkingHours: everyDay("00:00", "06:00"),
				})
				// One day ahead is today only: the local date of the clock.
				mustGenerate(t, m, slots.GenerateInput{DaysAhead: 1, ProviderIDs: []int64{p.ID}})
				var walls []string
				for _, s := range providerSlots(t, db, p.ID) {
					walls = append(walls, s.StartTime.In(berlin).Format("15:04 MST"))
				}
				if !slices.Equal(walls, tc.walls) {
					t.Fatalf("slots start at %v, want %v", walls, tc.walls)
				}
			})
		}
	})
}

func TestGenerationKeepsTheBufferBetweenSlots(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		now := time.Date(2030, 1, 7, 6, 0, 0, 0, time.UTC)
		m, _ := newManager(db, now)
		p := mustProvider(t, m, models.ProviderInput{
			Name: "Buffered", TimeZone: "UTC", SlotMinutes: 30, BufferMinutes: ptr(15),
			WorkingHours: everyDay("09:00", "12:00"),
		})
		mustGenerate(t, m, slots.GenerateInput{DaysAhead: 2, ProviderIDs: []int64{p.ID}})
		rows := providerSlots(t, db, p.ID)
		var walls []string
		for _, s := range rows {
			walls = append(walls, s.StartTime.UTC().Format("01-02 15:04"))
		}
		want := []string{"01-07 09:00", "01-07 09:45", "01-07 10:30", "01-07 11:15", "01-08 09:00", "01-08 09:45", "01-08 10:30", "01-08 11:15"}
		if !slices.Equal(walls, want) {
			t.Fatalf("slots start at %v, want %v", walls, want)
		}
		checkSlotShape(t, rows[:4], time.UTC, 30, 15, 9*60, 12*60, now)
	})
}

// rawSlot reads every column of a slot as the database's own text, so a
// comparison is byte for byte, version and timestamps included.
func rawSlot(t testing.TB, db *database.DB, id int64) string {
	t.Helper()
	cols := []string{"id", "provider_id", "start_time", "end_time", "date", "capacity", "booked_count", "status", "version", "created_at", "updated_at"}
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = "CAST(" + c + " AS TEXT)"
	}
	rows, err := db.Raw("SELECT "+strings.Join(sel, ", ")+" FROM time_slots WHERE id = ?", id).Rows()
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	if !rows.Next() {
		t.Fatalf("slot %d is gone", id)
	}
	vals := make([]string, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	return strings.Join(vals, "|")
}

func TestChangingTheSlotLengthAndRegeneratingNeverOverlapsOrTouchesExistingSlots(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		// Monday 07:00 in Berlin (CET).
		now := time.Date(2030, 1, 7, 6, 0, 0, 0, time.UTC)
		m, clk := newManager(db, now)
		in := models.ProviderInput{Name: "Resizing Practice", TimeZone: "Europe/Berlin", SlotMinutes: 30,
			WorkingHours: everyDay("09:00", "12:00")}
		p := mustProvider(t, m, in)
		first := mustGenerate(t, m, slots.GenerateInput{DaysAhead: 3, ProviderIDs: []int64{p.ID}})
		if first.Created != 18 || first.Skipped != 0 {
			t.Fatalf("first generation: %+v, want 18 created", first)
		}
		old := providerSlots(t, db, p.ID)
		booked, untouched := old[3], old[10]
		clk.Set(now.Add(time.Minute)) // later writes carry another updated_at
		if _, _, err := m.Book(ctx, slots.BookInput{SlotID: booked.ID, Customer: "ada"}); err != nil {
			t.Fatalf("book: %v", err)
		}
		bookedRow, untouchedRow := rawSlot(t, db, booked.ID), rawSlot(t, db, untouched.ID)

		// 45-minute slots over 08:00–13:00 and three seats: only 08:00–08:45
		// fits beside the old 30-minute grid on the first three days.
		in.SlotMinutes, in.Capacity = 45, ptr(3)
		in.WorkingHours = everyDay("08:00", "13:00")
		if _, err := m.UpdateProvider(ctx, p.ID, in); err != nil {
			t.Fatalf("update provider: %v", err)
		}
		clk.Set(now.Add(2 * time.Minute))
		second := mustGenerate(t, m, slots.GenerateInput{DaysAhead: 5, ProviderIDs: []int64{p.ID}})
		// Per old day 1 created (08:00) and 5 skipped; 6 per new day.
		if second.Created != 3+12 || second.Skipped != 15 {
			t.Fatalf("second generation: created %d, skipped %d; want 15 and 15", second.Created, second.Skipped)
		}
		rows := providerSlots(t, db, p.ID)
		if len(rows) != first.Created+second.Created {
			t.Fatalf("table holds %d slots, results say %d", len(rows), first.Created+second.Created)
		}
		if n := overlaps(t, db); n != 0 {
			t.Fatalf("%d overlapping slot pairs after the slot length changed", n)
		}
		lengths := map[string]int{}
		for _, s := range rows {
			lengths[fmt.Sprintf("%s %dmin cap%d", s.Date, s.DurationMinutes(), s.Capacity)]++
		}
		want := map[string]int{
			"2030-01-07 30min cap1": 6, "2030-01-08 30min cap1": 6, "2030-01-09 30min cap1": 6,
			"2030-01-07 45min cap3": 1, "2030-01-08 45min cap3": 1, "2030-01-09 45min cap3": 1,
			"2030-01-10 45min cap3": 6, "2030-01-11 45min cap3": 6,
		}
		if fmt.Sprint(lengths) != fmt.Sprint(want) {
			t.Fatalf("slots per day and kind: %v, want %v", lengths, want)
		}
		if got := rawSlot(t, db, booked.ID); got != bookedRow {
			t.Fatalf("booked slot changed by regeneration:\n  before %s\n  after  %s", bookedRow, got)
		}
		if got := rawSlot(t, db, untouched.ID); got != untouchedRow {
			t.Fatalf("existing slot changed by regeneration:\n  before %s\n  after  %s", untouchedRow, got)
		}
		third := mustGenerate(t, m, slots.GenerateInput{DaysAhead: 5, ProviderIDs: []int64{p.ID}})
		if third.Created != 0 || third.Skipped != 30 {
			t.Fatalf("third generation: %+v, want 0 created and 30 skipped", third)
		}
	})
}

func TestGenerationWritesInBatchesOfTheConfiguredSize(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name           string
		batch, writers int
		wantBatches    int
	}{
		{"72 rows in batches of 7 take 11 inserts", 7, 1, 11},
		{"72 rows in batches of 7 with three writers take 11 inserts", 7, 3, 11},
		{"72 rows in batches of 8 take 9 inserts", 8, 2, 9},
		{"72 rows in one batch of 1000 take 1 insert", 1000, 2, 1},
		{"72 rows in batches of 1 take 72 inserts", 1, 4, 72},
	}
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				now := time.Date(2030, 1, 7, 6, 0, 0, 0, time.UTC)
				m, _ := newManager(db, now, slots.WithBatchSize(tc.batch), slots.WithWriters(tc.writers))
				var ids []int64
				for i := range 3 {
					p := mustProvider(t, m, models.ProviderInput{Name: fmt.Sprintf("Batch %d", i), TimeZone: "UTC",
						SlotMinutes: 30, WorkingHours: everyDay("09:00", "12:00")})
					ids = append(ids, p.ID)
				}
				var mu sync.Mutex
				calls, maxCreated := 0, 0
				in := slots.GenerateInput{DaysAhead: 4, ProviderIDs: ids, Progress: func(p slots.GenerateProgress) {
					mu.Lock()
					defer mu.Unlock()
					calls++
					maxCreated = max(maxCreated, p.Created)
					if p.ProvidersTotal != 3 || p.ProvidersDone > 3 {
						t.Errorf("progress %+v out of range", p)
					}
				}}
				res := mustGenerate(t, m, in)
				// 3 providers × 4 days × 6 slots.
				if res.Created != 72 || res.Batches != tc.wantBatches {
					t.Fatalf("result %+v, want 72 created in %d batches", res, tc.wantBatches)
				}
				if calls != res.Batches || maxCreated != 72 {
					t.Fatalf("progress reported %d times up to %d created; want %d times up to 72", calls, maxCreated, res.Batches)
				}
				// Every slot exists: nothing is left to send.
				again := mustGenerate(t, m, slots.GenerateInput{DaysAhead: 4, ProviderIDs: ids})
				if again.Created != 0 || again.Skipped != 72 || again.Batches != 0 {
					t.Fatalf("regeneration %+v, want 0 created, 72 skipped, no INSERT", again)
				}
			})
		}
	})
}

func TestGenerationRefusesBadInputAndSkipsInactiveProviders(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		now := time.Date(2030, 1, 7, 6, 0, 0, 0, time.UTC)
		m, _ := newManager(db, now)
		active := mustProvider(t, m, models.ProviderInput{Name: "Active", TimeZone: "UTC", SlotMinutes: 60,
			WorkingHours: everyDay("09:00", "11:00")})
		inactive := mustProvider(t, m, models.ProviderInput{Name: "Inactive", TimeZone: "UTC", SlotMinutes: 60,
			WorkingHours: everyDay("09:00", "11:00"), Active: ptr(false)})
		idle := mustProvider(t, m, models.ProviderInput{Name: "No hours", TimeZone: "UTC", SlotMinutes: 60})

		for _, tc := range []struct {
			name  string
			in    slots.GenerateInput
			field string
		}{
			{"zero days ahead is refused", slots.GenerateInput{DaysAhead: 0}, "daysAhead"},
			{"366 days ahead is refused", slots.GenerateInput{DaysAhead: 366}, "daysAhead"},
			{"an empty provider list is refused", slots.GenerateInput{DaysAhead: 1, ProviderIDs: []int64{}}, "providerIds"},
			{"an unknown provider is refused", slots.GenerateInput{DaysAhead: 1, ProviderIDs: []int64{active.ID, 987654}}, "providerIds"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := m.Generate(ctx, tc.in)
				wantCode(t, err, apperr.BadUserInput, tc.field)
			})
		}
		if n := count(t, db, "SELECT COUNT(*) FROM time_slots"); n != 0 {
			t.Fatalf("refused generations wrote %d slots", n)
		}

		res := mustGenerate(t, m, slots.GenerateInput{DaysAhead: 2})
		if res.Created != 4 || res.Providers != 2 || res.Days != 2 {
			t.Fatalf("generation for every active provider: %+v, want 4 created for 2 providers", res)
		}
		res = mustGenerate(t, m, slots.GenerateInput{DaysAhead: 3, ProviderIDs: []int64{inactive.ID}})
		if res.Created != 0 || res.Providers != 0 {
			t.Fatalf("generation for an inactive provider: %+v, want nothing", res)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM time_slots WHERE provider_id IN (?, ?)", inactive.ID, idle.ID); n != 0 {
			t.Fatalf("inactive or idle providers got %d slots", n)
		}
	})
}

func TestReplicasGeneratingTogetherCreateEachSlotOnce(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		now := time.Date(2030, 1, 7, 6, 0, 0, 0, time.UTC)
		setup, _ := newManager(db, now)
		var ids []int64
		for i := range 4 {
			p := mustProvider(t, setup, models.ProviderInput{Name: fmt.Sprintf("Shared %d", i), TimeZone: "Europe/Berlin",
				SlotMinutes: 15 + 15*i, WorkingHours: everyDay("08:00", "18:00")})
			ids = append(ids, p.ID)
		}
		// Each replica has its own manager, so nothing in-process serialises them.
		const replicas = 4
		results := make([]slots.GenerateResult, replicas)
		errs := make([]error, replicas)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for r := range replicas {
			m, _ := newManager(db, now, slots.WithBatchSize(25))
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[r], errs[r] = m.Generate(ctx, slots.GenerateInput{DaysAhead: 7, ProviderIDs: ids})
			}()
		}
		close(start)
		wg.Wait()
		created := 0
		for r := range replicas {
			if errs[r] != nil {
				t.Fatalf("replica %d: %v", r, errs[r])
			}
			created += results[r].Created
			if results[r].Created+results[r].Skipped != results[0].Created+results[0].Skipped {
				t.Fatalf("replicas produced different slot sets: %+v vs %+v", results[r], results[0])
			}
		}
		produced := results[0].Created + results[0].Skipped
		if n := count(t, db, "SELECT COUNT(*) FROM time_slots"); created != produced || n != int64(produced) {
			t.Fatalf("replicas created %d in all, table holds %d, one generation produces %d", created, n, produced)
		}
		if n := overlaps(t, db); n != 0 {
			t.Fatalf("%d overlapping slot pairs", n)
		}
	})
}
