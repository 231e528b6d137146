package rest_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/httpx"
	"timeslots/internal/readcache"
	"timeslots/internal/rest"
	"timeslots/internal/slots"
	"timeslots/models"
)

// TestCachedPagesAreThePlainPagesBytes sends each GET /api/time-slots
// twice to a handler with the answer cache and once to one without:
// status, headers and body are identical each time; valid pages are
// answered from the cache the second time, refusals never.
func TestCachedPagesAreThePlainPagesBytes(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		m := slots.New(db)
		var hours []models.WorkingHours
		for _, d := range models.AllWeekdays {
			hours = append(hours, models.WorkingHours{Weekday: d, Start: "08:00", End: "18:00"})
		}
		var pid int64
		for i := range 2 {
			p, err := m.CreateProvider(t.Context(), models.ProviderInput{Name: fmt.Sprint("P", i), TimeZone: "Europe/Berlin", SlotMinutes: 30, WorkingHours: hours})
			if err != nil {
				t.Fatal(err)
			}
			pid = p.ID
		}
		if _, err := m.Generate(t.Context(), slots.GenerateInput{DaysAhead: 3}); err != nil {
			t.Fatal(err)
		}
		page, err := m.ListSlots(t.Context(), slots.SlotFilter{}, slots.PageRequest{})
		if err != nil || len(page.Slots) < 5 {
			t.Fatalf("slots: %v", err)
		}
		if _, _, err := m.Book(t.Context(), slots.BookInput{SlotID: page.Slots[1].ID, Customer: "Ann"}); err != nil {
			t.Fatal(err)
		}
		cache := readcache.New(readcache.Options{MaxBytes: 1 << 20, Now: m.Now})
		mount := func(c *readcache.Cache, aliasBytes int64) http.Handler {
			gate := httpx.NewAdminGate("")
			api, err := rest.New(rest.Options{Slots: m, Admin: gate, Answers: c, AnswerAliasBytes: aliasBytes})
			if err != nil {
				t.Fatal(err)
			}
			return gate.Middleware(api)
		}
		cached, plain := mount(cache, 0), mount(nil, 0)
		// By the query string too (aliases), with a cache of its own.
		rawCache := readcache.New(readcache.Options{MaxBytes: 1 << 20, Now: m.Now})
		raw := mount(rawCache, 1<<16)
		tomorrow := m.Now().AddDate(0, 0, 1).Format(time.DateOnly)
		cursor := page.Cursor(2)
		for _, tc := range []struct {
			query string
			kept  bool
		}{
			{"", true},
			{"?limit=3", true},
			{fmt.Sprintf("?providerId=%d&limit=5", pid), true},
			{fmt.Sprintf("?limit=5&providerId=%d", pid), true}, // the same page, another order
			{"?startDate=" + tomorrow + "&endDate=" + tomorrow + "&status=all", true},
			{"?date=" + tomorrow + "&status=booked", true},
			{"?cursor=" + cursor + "&limit=2", true},
			{"?limit=0", false},
			{"?limit=2&limit=3", false},
			{"?cursor=nope", false},
			{"?date=2025-02-30", false},
			{"?colour=red", false},
		} {
			send := func(h http.Handler) *httptest.ResponseRecorder {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/time-slots"+tc.query, nil))
				return rec
			}
			p := send(plain)
			for round := range 2 {
				hits := cache.Stats().Hits
				c := send(cached)
				if c.Code != p.Code || c.Body.String() != p.Body.String() || fmt.Sprint(c.Header()) != fmt.Sprint(p.Header()) {
					t.Fatalf("%s round %d: cached %d %v\n%s\nplain %d %v\n%s", tc.query, round, c.Code, c.Header(), c.Body, p.Code, p.Header(), p.Body)
				}
				hit := cache.Stats().Hits - hits
				if want := tc.kept && (round == 1 || tc.query == fmt.Sprintf("?limit=5&providerId=%d", pid)); (hit == 1) != want {
					t.Fatalf("%s round %d: %d hits, want a hit: %v", tc.query, round, hit, want)
				}
			}
			// Kept, then found by its query string; once the cache lost it,
			// answered afresh with one miss counted, and kept again.
			for round := range 4 {
				if round == 2 {
					rawCache.Purge()
				}
				before := rawCache.Stats()
				c := send(raw)
				if c.Code != p.Code || c.Body.String() != p.Body.String() || fmt.Sprint(c.Header()) != fmt.Sprint(p.Header()) {
					t.Fatalf("%s raw round %d: %d %v\n%s\nplain %d %v\n%s", tc.query, round, c.Code, c.Header(), c.Body, p.Code, p.Header(), p.Body)
				}
				after := rawCache.Stats()
				wantHit := tc.kept && (round == 1 || round == 3 || tc.query == fmt.Sprintf("?limit=5&providerId=%d", pid) && round == 0)
				if (after.Hits-before.Hits == 1) != wantHit || (tc.kept && !wantHit && after.Misses-before.Misses != 1) {
					t.Fatalf("%s raw round %d: %d hits, %d misses; want a hit: %v", tc.query, round, after.Hits-before.Hits, after.Misses-before.Misses, wantHit)
				}
			}
		}
	})
}
