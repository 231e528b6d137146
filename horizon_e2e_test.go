package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
	"timeslots/models"
)

// horizonFixture makes, through a second client of the server's database,
// two UTC providers with three slots a day for the next 10 days, and books
// 5 of the 21 slots in the last week of the first ("busy"), so the
// horizon policy gives it 17 days and the other ("quiet") 10. It answers
// their ids and the dates today could be while the test runs (the day may
// change under it).
func horizonFixture(t *testing.T, srv *testServer) (busy, quiet int64, todays []models.Date) {
	t.Helper()
	m := slots.New(openDatabase(t, srv.DatabaseURL))
	var hours []models.WorkingHours
	for _, d := range models.AllWeekdays {
		hours = append(hours, models.WorkingHours{Weekday: d, Start: "09:00", End: "12:00"})
	}
	var ids []int64
	for _, name := range []string{"Busy", "Quiet"} {
		p, err := m.CreateProvider(t.Context(), models.ProviderInput{Name: name, TimeZone: "UTC", SlotMinutes: 60, WorkingHours: hours})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	today := models.DateOf(time.Now().UTC())
	if _, err := m.Generate(t.Context(), slots.GenerateInput{DaysAhead: 10}); err != nil {
		t.Fatal(err)
	}
	page, err := m.ListSlots(t.Context(), slots.SlotFilter{ProviderID: &ids[0], StartDate: ptrTo(today.AddDays(5))}, slots.PageRequest{First: ptrTo(5), Default: 20, Max: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Slots) != 5 {
		t.Fatalf("%d slots to book, want 5", len(page.Slots))
	}
	for i, s := range page.Slots {
		if _, _, err := m.Book(t.Context(), slots.BookInput{SlotID: s.ID, Customer: fmt.Sprintf("c%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	return ids[0], ids[1], []models.Date{today, models.DateOf(time.Now().UTC())}
}

// wantHorizon checks one provider's horizon against the dates today may be.
func wantHorizon(t *testing.T, who string, days int, end *string, wantDays int, todays []models.Date) {
	t.Helper()
	ok := false
	for _, today := range todays {
		ok = ok || (end != nil && *end == string(today.AddDays(wantDays-1)))
	}
	if days != wantDays || !ok {
		t.Errorf("%s's horizon: %d days to %v, want %d days to %s+%d", who, days, end, wantDays, todays[0], wantDays-1)
	}
}

// GraphQL's slotStats and REST's stats show each provider's horizon as the
// scheduled generation covers it with the configured floor and ceiling.
func TestStatsShowHorizons(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, testEnv(t, d, map[string]string{
				"SEED_DEMO": "false", "GENERATE_DAYS_AHEAD": "10", "GENERATE_MAX_DAYS_AHEAD": "20"}))
			busy, quiet, todays := horizonFixture(t, srv)

			var data struct {
				SlotStats struct {
					UtilizationByProvider []struct {
						Provider    struct{ ID string }
						HorizonDays int
						HorizonEnd  *string
					}
				}
			}
			postGraphQL(t, srv.URL, `{ slotStats { utilizationByProvider { provider { id } horizonDays horizonEnd } } }`, nil, nil).Decode(t, &data)
			got := data.SlotStats.UtilizationByProvider
			if len(got) != 2 || got[0].Provider.ID != strconv.FormatInt(busy, 10) || got[1].Provider.ID != strconv.FormatInt(quiet, 10) {
				t.Fatalf("slotStats utilization %+v, want providers %d and %d", got, busy, quiet)
			}
			wantHorizon(t, "GraphQL busy", got[0].HorizonDays, got[0].HorizonEnd, 17, todays)
			wantHorizon(t, "GraphQL quiet", got[1].HorizonDays, got[1].HorizonEnd, 10, todays)

			c := newRESTClient(t, srv) // every answer is checked against openapi.json
			resp := c.do(http.MethodGet, "/api/admin/time-slots", "", nil)
			var st struct {
				UtilizationByProvider []map[string]json.RawMessage `json:"utilizationByProvider"`
			}
			if err := json.Unmarshal(resp.Body, &st); resp.Status != http.StatusOK || err != nil || len(st.UtilizationByProvider) != 2 {
				t.Fatalf("REST stats: %s (%v)", resp, err)
			}
			for i, want := range []int{17, 10} {
				u := st.UtilizationByProvider[i]
				keys := slices.Sorted(func(yield func(string) bool) {
					for k := range u {
						if !yield(k) {
							return
						}
					}
				})
				if !slices.Contains(keys, "horizonDays") || !slices.Contains(keys, "horizonEnd") {
					t.Fatalf("REST utilization keys %v lack horizonDays or horizonEnd", keys)
				}
				var days int
				var end *string
				_ = json.Unmarshal(u["horizonDays"], &days)
				_ = json.Unmarshal(u["horizonEnd"], &end)
				wantHorizon(t, fmt.Sprintf("REST provider %d", i), days, end, want, todays)
			}
		})
	}
}
