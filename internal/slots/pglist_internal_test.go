package slots

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/models"
)

// pgListing answers a fresh PostgreSQL database of 12 providers with 30
// days of hourly slots each (8,640 rows, analysed), provider 1's first 40
// upcoming slots held every other one with a third of those summaries
// outdated and their hold live and a third outdated and expired, and the
// clock its manager runs on.
func pgListing(t *testing.T) (*database.DB, time.Time) {
	t.Helper()
	ctx := context.Background()
	db := dbtest.Open(t, database.Postgres)
	now := time.Now().UTC().Truncate(time.Second)
	m := New(db, WithClock(func() time.Time { return now }))
	var hours []models.WorkingHours
	for _, d := range models.AllWeekdays {
		hours = append(hours, models.WorkingHours{Weekday: d, Start: "00:00", End: "24:00"})
	}
	ids := make([]int64, 12)
	for i := range ids {
		p, err := m.CreateProvider(ctx, models.ProviderInput{Name: fmt.Sprintf("P%d", i+1), TimeZone: "UTC", SlotMinutes: 60, WorkingHours: hours})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = p.ID
	}
	if ids[0] != 1 {
		t.Fatalf("the first provider is %d, want 1 (listingCases lists provider 1)", ids[0])
	}
	if _, err := m.Generate(ctx, GenerateInput{DaysAhead: 30, ProviderIDs: ids}); err != nil {
		t.Fatal(err)
	}
	holdEveryOther(t, m, db, ids[0], now)
	if err := db.Exec("ANALYZE time_slots").Error; err != nil {
		t.Fatal(err)
	}
	return db, now
}

// pgListingCases are listingCases with the start_time bounds their dates
// give (SlotFilter.conds), as the listing writes them.
func pgListingCases(t *testing.T, now time.Time) map[string]slotQuery {
	t.Helper()
	cases := listingCases(now)
	for name, q := range cases {
		c, err := SlotFilter{StartDate: q.startDate, EndDate: q.endDate}.conds(now)
		if err != nil {
			t.Fatal(err)
		}
		q.startFrom, q.startBefore = c.startFrom, c.startBefore
		cases[name] = q
	}
	return cases
}

// plainPgList is the listing's statement with the dates as the column
// itself, which time_slots_date_idx serves.
func plainPgList(t *testing.T, tuned string) string {
	t.Helper()
	plain := strings.ReplaceAll(tuned, pgDateFilter+" ", "date ")
	if plain == tuned {
		t.Fatalf("the statement has no %q: %s", pgDateFilter, tuned)
	}
	return plain
}

// The listing's dates written as "date + 0" answer the rows the plain
// statement answers, in every shape the listing writes and with every kind
// of hold summary on the page; without a provider the dates stay plain.
func TestPgListingMatchesThePlainStatement(t *testing.T) {
	t.Parallel()
	db, now := pgListing(t)
	for name, q := range pgListingCases(t, now) {
		t.Run(name, func(t *testing.T) {
			tuned, args := pgListSQL(q)
			if q.providerID == nil {
				if strings.Contains(tuned, pgDateFilter) {
					t.Fatalf("a listing of every provider hides its dates from the index: %s", tuned)
				}
				return
			}
			plain := plainPgList(t, tuned)
			got, err := pgRows(t.Context(), db.SQL(), q.limit, scanSlot, tuned, args...)
			if err != nil {
				t.Fatal(err)
			}
			want, err := pgRows(t.Context(), db.SQL(), q.limit, scanSlot, plain, args...)
			if err != nil {
				t.Fatal(err)
			}
			wantSameListing(t, q, got, want)
		})
	}
}

// A provider's page of a date range reads the provider's slots by its
// start_time index alone, without time_slots_date_idx, whose every
// provider's slots of those days grow with the table. The plain statement
// ANDs that index in: when PostgreSQL stops doing so, this fails, and
// "date + 0" can go.
func TestPgListingWalksTheProviderIndex(t *testing.T) {
	t.Parallel()
	db, now := pgListing(t)
	q := pgListingCases(t, now)["available"]
	tuned, args := pgListSQL(q)
	plan := func(text string) string {
		lines, err := pgRows(t.Context(), db.SQL(), 16, pgValue[string], "EXPLAIN (COSTS OFF) "+text, args...)
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(lines, "\n")
	}
	got, plain := plan(tuned), plan(plainPgList(t, tuned))
	if !strings.Contains(got, "on time_slots_provider_start_") || strings.Contains(got, "time_slots_date_idx") {
		t.Fatalf("the listing's plan:\n%s", got)
	}
	if !strings.Contains(plain, "time_slots_date_idx") {
		t.Fatalf("the plain statement no longer uses time_slots_date_idx; date + 0 may go:\n%s\nthe listing's plan:\n%s", plain, got)
	}
	t.Logf("the AVAILABLE page's plan:\n%s\nthe plain statement's:\n%s", got, plain)
}
