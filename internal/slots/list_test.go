package slots_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
	"timeslots/models"
)

// listing is a data set for the listing tests: providers whose local dates
// run up to a day apart from UTC, two with identical start times (so the id
// breaks ties), and a mix of free, partly taken and full slots.
type listing struct {
	db  *database.DB
	m   *slots.Manager
	now time.Time
	clk *clock
	// provider ids by name
	kiritimati, pagoPago, berlinA, berlinB, newYork int64
}

func newListing(t *testing.T, db *database.DB) *listing {
	t.Helper()
	now := time.Date(2030, 1, 7, 0, 0, 0, 0, time.UTC) // a Monday
	m, clk := newManager(db, now)
	l := &listing{db: db, m: m, now: now, clk: clk}
	aroundMidnight := func(name, zone string, minutes, capacity int) int64 {
		hours := append(everyDay("00:00", "02:00"), everyDay("21:00", "24:00")...)
		return mustProvider(t, m, models.ProviderInput{Name: name, TimeZone: zone, SlotMinutes: minutes,
			Capacity: ptr(capacity), WorkingHours: hours}).ID
	}
	l.kiritimati = aroundMidnight("Line Islands", "Pacific/Kiritimati", 60, 1) // UTC+14
	l.pagoPago = aroundMidnight("Samoa", "Pacific/Pago_Pago", 60, 1)           // UTC-11
	l.berlinA = aroundMidnight("Berlin A", "Europe/Berlin", 60, 1)
	l.berlinB = aroundMidnight("Berlin B", "Europe/Berlin", 60, 1)
	l.newYork = aroundMidnight("New York", "America/New_York", 30, 2)
	res := mustGenerate(t, m, slots.GenerateInput{DaysAhead: 3})
	if res.Created < 60 {
		t.Fatalf("listing data set has only %d slots", res.Created)
	}
	// Fill every third slot; take one of two seats of every fourth.
	var all []models.TimeSlot
	if err := db.Order("start_time, id").Find(&all).Error; err != nil {
		t.Fatal(err)
	}
	for i, s := range all {
		seats := 0
		switch {
		case i%3 == 0:
			seats = s.Capacity
		case i%4 == 0:
			seats = 1
		}
		for c := range seats {
			if _, _, err := m.Book(ctx, slots.BookInput{SlotID: s.ID, Customer: fmt.Sprintf("customer-%d", c)}); err != nil {
				t.Fatalf("book slot %d: %v", s.ID, err)
			}
		}
	}
	return l
}

// expect answers the ids the filter must list, by a direct SQL query written
// from the contract's words, in (start_time, id) order.
func (l *listing) expect(t *testing.T, f slots.SlotFilter) []int64 {
	t.Helper()
	where := []string{"1 = 1"}
	var args []any
	add := func(cond string, a ...any) { where = append(where, cond); args = append(args, a...) }
	if f.ProviderID != nil {
		add("provider_id = ?", *f.ProviderID)
	}
	if f.ProviderIDs != nil {
		add("provider_id IN ?", f.ProviderIDs)
	}
	// AVAILABLE: a seat is free and the slot has not started; BOOKED: full.
	statuses := []models.SlotStatus{models.SlotAvailable}
	if f.Statuses != nil {
		statuses = f.Statuses
	}
	var either []string
	for _, s := range statuses {
		if s == models.SlotAvailable {
			either = append(either, "(status = 'available' AND start_time > ?)")
			args = append(args, l.clk.Now())
		} else {
			either = append(either, "status = 'booked'")
		}
	}
	where = append(where, "("+strings.Join(either, " OR ")+")")
	if f.Date != nil {
		add("date = ?", string(*f.Date))
	}
	if f.StartDate != nil {
		add("date >= ?", string(*f.StartDate))
	}
	if f.EndDate != nil {
		add("date <= ?", string(*f.EndDate))
	}
	if f.From != nil {
		add("start_time >= ?", f.From.UTC())
	}
	if f.To != nil {
		add("start_time < ?", f.To.UTC())
	}
	var ids []int64
	if err := l.db.Raw("SELECT id FROM time_slots WHERE "+strings.Join(where, " AND ")+" ORDER BY start_time, id", args...).
		Scan(&ids).Error; err != nil {
		t.Fatal(err)
	}
	return ids
}

func date(s string) *models.Date { d := models.Date(s); return &d }

func (l *listing) filters() []struct {
	name string
	f    slots.SlotFilter
} {
	both := []models.SlotStatus{models.SlotAvailable, models.SlotBooked}
	from := time.Date(2030, 1, 7, 20, 0, 0, 0, time.UTC)
	to := time.Date(2030, 1, 8, 23, 0, 0, 0, time.UTC)
	fromBerlin := from.In(time.FixedZone("CET", 3600))
	return []struct {
		name string
		f    slots.SlotFilter
	}{
		{"no filter lists the available slots", slots.SlotFilter{}},
		{"both statuses list every slot", slots.SlotFilter{Statuses: both}},
		{"the booked status lists the full slots", slots.SlotFilter{Statuses: []models.SlotStatus{models.SlotBooked}}},
		{"one provider", slots.SlotFilter{ProviderID: &l.berlinA, Statuses: both}},
		{"a provider list", slots.SlotFilter{ProviderIDs: []int64{l.kiritimati, l.pagoPago, l.berlinB}}},
		{"a provider and a provider list intersect", slots.SlotFilter{ProviderID: &l.berlinB, ProviderIDs: []int64{l.berlinA, l.berlinB}, Statuses: both}},
		{"a local date across zones", slots.SlotFilter{Date: date("2030-01-08"), Statuses: both}},
		{"a local date only Kiritimati and Berlin have reached", slots.SlotFilter{Date: date("2030-01-09")}},
		{"a local date before the clock's day in Samoa", slots.SlotFilter{Date: date("2030-01-06"), Statuses: both}},
		{"a date range", slots.SlotFilter{StartDate: date("2030-01-07"), EndDate: date("2030-01-08")}},
		{"a start date only", slots.SlotFilter{StartDate: date("2030-01-09"), Statuses: both}},
		{"an end date only", slots.SlotFilter{EndDate: date("2030-01-07"), Statuses: both}},
		{"a one-day range equals the date", slots.SlotFilter{StartDate: date("2030-01-08"), EndDate: date("2030-01-08"), ProviderIDs: []int64{l.newYork, l.pagoPago}}},
		{"an instant window", slots.SlotFilter{From: &from, To: &to, Statuses: both}},
		{"an instant window given in another zone", slots.SlotFilter{From: &fromBerlin, ProviderID: &l.newYork}},
		{"everything at once", slots.SlotFilter{ProviderIDs: []int64{l.berlinA, l.berlinB, l.newYork}, StartDate: date("2030-01-07"),
			EndDate: date("2030-01-09"), From: &from, Statuses: both}},
		{"the widest date range the API accepts", slots.SlotFilter{StartDate: date("0001-01-01"), EndDate: date("9999-12-31"), Statuses: both}},
		{"the last date of the calendar", slots.SlotFilter{Date: date("9999-12-31"), Statuses: both, ProviderID: &l.berlinA}},
		{"a date with no slots", slots.SlotFilter{Date: date("2031-01-01"), Statuses: both}},
	}
}

func TestListingWalksEveryPageForwardAndBackwardInKeysetOrder(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		l := newListing(t, db)
		for _, fc := range l.filters() {
			t.Run(fc.name, func(t *testing.T) {
				want := l.expect(t, fc.f)
				if len(want) == 0 && !strings.Contains(fc.name, "no slots") && !strings.Contains(fc.name, "last date") {
					t.Fatal("no slot matches: the data set does not exercise this filter")
				}
				n, err := l.m.CountSlots(ctx, fc.f)
				if err != nil || n != int64(len(want)) {
					t.Fatalf("CountSlots = %d, %v; SQL counts %d", n, err, len(want))
				}
				for _, size := range []int{1, 7, 100} {
					if got := walkForward(t, l.m, fc.f, size); !slices.Equal(got, want) {
						t.Fatalf("forward by %d: %d ids\n  %v\nSQL: %d ids\n  %v", size, len(got), got, len(want), want)
					}
					if got := walkBackward(t, l.m, fc.f, size); !slices.Equal(got, want) {
						t.Fatalf("backward by %d: %d ids\n  %v\nSQL: %d ids\n  %v", size, len(got), got, len(want), want)
					}
				}
			})
		}
		t.Run("the data set has ties on start time and slots of every status", func(t *testing.T) {
			ties := count(t, db, `SELECT COUNT(*) FROM time_slots a JOIN time_slots b
				ON a.start_time = b.start_time AND a.id < b.id`)
			full := count(t, db, "SELECT COUNT(*) FROM time_slots WHERE status = 'booked'")
			partly := count(t, db, "SELECT COUNT(*) FROM time_slots WHERE status = 'available' AND booked_count > 0")
			if ties == 0 || full == 0 || partly == 0 {
				t.Fatalf("ties %d, full %d, partly taken %d: the data set does not exercise the listing", ties, full, partly)
			}
		})
	})
}

func TestListingAvailableOmitsSlotsThatHaveStarted(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		l := newListing(t, db)
		l.clk.Set(l.now.Add(30 * time.Hour)) // the first day and a bit have started
		started := count(t, db, "SELECT COUNT(*) FROM time_slots WHERE status = 'available' AND start_time <= ?", l.clk.Now())
		if started == 0 {
			t.Fatal("no started slot with a free seat: the test exercises nothing")
		}
		both := []models.SlotStatus{models.SlotAvailable, models.SlotBooked}
		for _, f := range []slots.SlotFilter{{}, {Statuses: both}, {Statuses: []models.SlotStatus{models.SlotBooked}}} {
			want := l.expect(t, f)
			if got := walkForward(t, l.m, f, 50); !slices.Equal(got, want) {
				t.Fatalf("statuses %v: listed %d ids, want %d", f.Statuses, len(got), len(want))
			}
			n, err := l.m.CountSlots(ctx, f)
			if err != nil || n != int64(len(want)) {
				t.Fatalf("statuses %v: CountSlots = %d, %v; want %d", f.Statuses, n, err, len(want))
			}
		}
		for _, id := range walkForward(t, l.m, slots.SlotFilter{}, 100) {
			s, err := l.m.Slot(ctx, id)
			if err != nil || !s.StartTime.After(l.clk.Now()) || s.Remaining() == 0 {
				t.Fatalf("AVAILABLE listed slot %d (%v): started or full", id, err)
			}
		}
	})
}

func walkForward(t *testing.T, m *slots.Manager, f slots.SlotFilter, size int) []int64 {
	t.Helper()
	var ids []int64
	var after *string
	for page := 0; ; page++ {
		p, err := m.ListSlots(ctx, f, slots.PageRequest{First: &size, After: after})
		if err != nil {
			t.Fatalf("forward page %d: %v", page, err)
		}
		if p.HasPreviousPage != (page > 0) {
			t.Fatalf("forward page %d: hasPreviousPage %v", page, p.HasPreviousPage)
		}
		if len(p.Slots) > size || (p.HasNextPage && len(p.Slots) != size) {
			t.Fatalf("forward page %d holds %d slots of %d (hasNextPage %v)", page, len(p.Slots), size, p.HasNextPage)
		}
		for _, s := range p.Slots {
			ids = append(ids, s.ID)
		}
		if !p.HasNextPage {
			return ids
		}
		c := p.Cursor(len(p.Slots) - 1)
		after = &c
		if page > 1000 {
			t.Fatal("forward walk does not end")
		}
	}
}

func walkBackward(t *testing.T, m *slots.Manager, f slots.SlotFilter, size int) []int64 {
	t.Helper()
	var ids []int64
	var before *string
	for page := 0; ; page++ {
		p, err := m.ListSlots(ctx, f, slots.PageRequest{Last: &size, Before: before})
		if err != nil {
			t.Fatalf("backward page %d: %v", page, err)
		}
		if p.HasNextPage != (page > 0) {
			t.Fatalf("backward page %d: hasNextPage %v", page, p.HasNextPage)
		}
		if len(p.Slots) > size || (p.HasPreviousPage && len(p.Slots) != size) {
			t.Fatalf("backward page %d holds %d slots of %d (hasPreviousPage %v)", page, len(p.Slots), size, p.HasPreviousPage)
		}
		pageIDs := make([]int64, 0, len(p.Slots))
		for _, s := range p.Slots {
			pageIDs = append(pageIDs, s.ID)
		}
		ids = append(pageIDs, ids...)
		if !p.HasPreviousPage {
			return ids
		}
		c := p.Cursor(0)
		before = &c
		if page > 1000 {
			t.Fatal("backward walk does not end")
		}
	}
}

func TestListingRefusesBadCursorsAsBadUserInput(t *testing.T) {
	t.Parallel()
	valid := slots.EncodeSlotCursor(slots.SlotKey{Start: time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC), ID: 42})
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	cursors := []struct{ name, cursor string }{
		{"a tampered first character", flip(valid, 0)},
		{"a tampered middle character", flip(valid, len(valid)/2)},
		{"a tampered last character", flip(valid, len(valid)-1)},
		{"a truncated cursor", valid[:len(valid)-3]},
		{"a cursor with a character appended", valid + "A"},
		{"a provider cursor on slots", slots.EncodeProviderCursor(42)},
		{"an empty cursor", ""},
		{"text that is not base64", "not a cursor!"},
		{"base64 of arbitrary text", "aGVsbG8gd29ybGQ"},
		{"a very long cursor", strings.Repeat("A", 10000)},
		{"a well-sealed cursor ten thousand years out", sealed("s1", "315537897600000000", "1")},
		{"a well-sealed cursor before year one", sealed("s1", "-62135596800000001", "1")},
		{"a well-sealed cursor with id zero", sealed("s1", "1893920400000000", "0")},
		{"a well-sealed cursor with a non-canonical number", sealed("s1", "+1893920400000000", "1")},
		{"a well-sealed cursor with an extra field", sealed("s1", "1893920400000000", "1", "2")},
	}
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, _ := newManager(db, time.Date(2030, 1, 7, 0, 0, 0, 0, time.UTC))
		p := mustProvider(t, m, models.ProviderInput{Name: "Cursor", TimeZone: "UTC", SlotMinutes: 60, WorkingHours: everyDay("09:00", "12:00")})
		mustGenerate(t, m, slots.GenerateInput{DaysAhead: 1})
		for _, tc := range cursors {
			t.Run(tc.name, func(t *testing.T) {
				c := tc.cursor
				_, err := m.ListSlots(ctx, slots.SlotFilter{}, slots.PageRequest{After: &c})
				wantCode(t, err, apperr.BadUserInput, "after")
				_, err = m.ListSlots(ctx, slots.SlotFilter{}, slots.PageRequest{Before: &c})
				wantCode(t, err, apperr.BadUserInput, "before")
				_, err = m.ListSlots(ctx, slots.SlotFilter{}, slots.PageRequest{After: &c, FirstName: "limit", AfterName: "cursor"})
				wantCode(t, err, apperr.BadUserInput, "cursor")
			})
		}
		t.Run("a slot cursor on providers", func(t *testing.T) {
			c := valid
			_, err := m.ListProviders(ctx, slots.PageRequest{After: &c})
			wantCode(t, err, apperr.BadUserInput, "after")
		})
		t.Run("the valid cursor is accepted", func(t *testing.T) {
			c := valid
			if _, err := m.ListSlots(ctx, slots.SlotFilter{ProviderID: &p.ID}, slots.PageRequest{After: &c}); err != nil {
				t.Fatal(err)
			}
		})
	})
}

func TestListingRefusesBadFiltersAndPageRequests(t *testing.T) {
	t.Parallel()
	from := time.Date(2030, 1, 7, 9, 0, 0, 0, time.UTC)
	c := slots.EncodeSlotCursor(slots.SlotKey{Start: from, ID: 1})
	cases := []struct {
		name  string
		f     slots.SlotFilter
		req   slots.PageRequest
		field string
	}{
		{"an end date before the start date", slots.SlotFilter{StartDate: date("2030-01-08"), EndDate: date("2030-01-07")}, slots.PageRequest{}, "endDate"},
		{"a date that is not in the calendar", slots.SlotFilter{Date: date("2025-02-30")}, slots.PageRequest{}, "date"},
		{"a start date in year zero", slots.SlotFilter{StartDate: date("0000-01-01")}, slots.PageRequest{}, "startDate"},
		{"an end date that is no date", slots.SlotFilter{EndDate: date("tomorrow")}, slots.PageRequest{}, "endDate"},
		{"an empty provider list", slots.SlotFilter{ProviderIDs: []int64{}}, slots.PageRequest{}, "providerIds"},
		{"an empty status list", slots.SlotFilter{Statuses: []models.SlotStatus{}}, slots.PageRequest{}, "status"},
		{"an unknown status", slots.SlotFilter{Statuses: []models.SlotStatus{"cancelled"}}, slots.PageRequest{}, "status"},
		{"to equal to from", slots.SlotFilter{From: &from, To: &from}, slots.PageRequest{}, "to"},
		{"to before from", slots.SlotFilter{From: &from, To: ptr(from.Add(-time.Hour))}, slots.PageRequest{}, "to"},
		{"first above the maximum", slots.SlotFilter{}, slots.PageRequest{First: ptr(101)}, "first"},
		{"a negative first", slots.SlotFilter{}, slots.PageRequest{First: ptr(-1)}, "first"},
		{"last above the maximum", slots.SlotFilter{}, slots.PageRequest{Last: ptr(101)}, "last"},
		{"first and last together", slots.SlotFilter{}, slots.PageRequest{First: ptr(1), Last: ptr(1)}, "last"},
		{"after and before together", slots.SlotFilter{}, slots.PageRequest{After: &c, Before: &c}, "before"},
		{"a limit above its maximum, named as the edge names it", slots.SlotFilter{},
			slots.PageRequest{First: ptr(201), Max: 200, FirstName: "limit", AfterName: "cursor"}, "limit"},
	}
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, _ := newManager(db, from)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, err := m.ListSlots(ctx, tc.f, tc.req)
				wantCode(t, err, apperr.BadUserInput, tc.field)
				if tc.req == (slots.PageRequest{}) {
					_, err := m.CountSlots(ctx, tc.f)
					wantCode(t, err, apperr.BadUserInput, tc.field)
				}
			})
		}
	})
}

func TestListingAnswersPageSizesAtTheirLimits(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, _ := newManager(db, time.Date(2030, 1, 7, 0, 0, 0, 0, time.UTC))
		mustProvider(t, m, models.ProviderInput{Name: "Sizes", TimeZone: "UTC", SlotMinutes: 5, WorkingHours: everyDay("09:00", "20:00")})
		mustGenerate(t, m, slots.GenerateInput{DaysAhead: 1}) // 132 slots
		for _, tc := range []struct {
			name      string
			req       slots.PageRequest
			want      int
			more      bool
			backwards bool
		}{
			{"no size gives the default 20", slots.PageRequest{}, 20, true, false},
			{"the maximum 100 is allowed", slots.PageRequest{First: ptr(100)}, 100, true, false},
			{"last 100 is allowed", slots.PageRequest{Last: ptr(100)}, 100, true, true},
			{"first 0 gives an empty page", slots.PageRequest{First: ptr(0)}, 0, false, false},
			{"an edge's own default and maximum apply", slots.PageRequest{Default: 10, Max: 200, First: ptr(200)}, 132, false, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p, err := m.ListSlots(ctx, slots.SlotFilter{}, tc.req)
				if err != nil {
					t.Fatal(err)
				}
				more := p.HasNextPage
				if tc.backwards {
					more = p.HasPreviousPage
				}
				if len(p.Slots) != tc.want || more != tc.more {
					t.Fatalf("page of %d slots, more %v; want %d, %v", len(p.Slots), more, tc.want, tc.more)
				}
			})
		}
	})
}

func TestProviderListingWalksEveryPageInIDOrder(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		m, _ := newManager(db, time.Date(2030, 1, 7, 0, 0, 0, 0, time.UTC))
		var want []int64
		for i := range 7 {
			want = append(want, mustProvider(t, m, models.ProviderInput{Name: fmt.Sprintf("P%d", i), TimeZone: "UTC", SlotMinutes: 30}).ID)
		}
		if n, err := m.CountProviders(ctx); err != nil || n != 7 {
			t.Fatalf("CountProviders = %d, %v; want 7", n, err)
		}
		for _, size := range []int{1, 3, 7, 10} {
			var fwd []int64
			var after *string
			for page := 0; ; page++ {
				p, err := m.ListProviders(ctx, slots.PageRequest{First: &size, After: after})
				if err != nil || p.HasPreviousPage != (page > 0) {
					t.Fatalf("forward page %d by %d: %v, hasPreviousPage %v", page, size, err, p.HasPreviousPage)
				}
				for _, pr := range p.Providers {
					fwd = append(fwd, pr.ID)
				}
				if !p.HasNextPage {
					break
				}
				c := p.Cursor(len(p.Providers) - 1)
				after = &c
			}
			var back []int64
			var before *string
			for page := 0; ; page++ {
				p, err := m.ListProviders(ctx, slots.PageRequest{Last: &size, Before: before})
				if err != nil || p.HasNextPage != (page > 0) {
					t.Fatalf("backward page %d by %d: %v, hasNextPage %v", page, size, err, p.HasNextPage)
				}
				var ids []int64
				for _, pr := range p.Providers {
					ids = append(ids, pr.ID)
				}
				back = append(ids, back...)
				if !p.HasPreviousPage {
					break
				}
				c := p.Cursor(0)
				before = &c
			}
			if !slices.Equal(fwd, want) || !slices.Equal(back, want) {
				t.Fatalf("by %d: forward %v, backward %v, want %v", size, fwd, back, want)
			}
		}
	})
}
