package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
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
// their ids and today's date.
func horizonFixture(t *testing.T, srv *testServer) (busy, quiet int64, today models.Date) {
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
	today = models.DateOf(time.Now().UTC())
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
	return ids[0], ids[1], today
}

// sameDay skips the rest of the test when UTC's date is no longer today:
// every horizon is counted from today.
func sameDay(t *testing.T, today models.Date) {
	t.Helper()
	if models.DateOf(time.Now().UTC()) != today {
		t.Skipf("the day changed during the test, after %s", today)
	}
}

// wantHorizon checks one provider's horizon, counted from today.
func wantHorizon(t *testing.T, who string, days int, end *string, wantDays int, today models.Date) {
	t.Helper()
	if days != wantDays || end == nil || *end != string(today.AddDays(wantDays-1)) {
		t.Errorf("%s's horizon: %d days to %v, want %d days to %s", who, days, end, wantDays, today.AddDays(wantDays-1))
	}
}

// GraphQL's slotStats, REST's stats and /metrics show each provider's
// horizon as the scheduled generation covers it with the configured floor
// and ceiling.
func TestStatsAndMetricsShowHorizons(t *testing.T) {
	t.Parallel()
	for _, d := range dbtest.Dialects() {
		t.Run(string(d), func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, testEnv(t, d, map[string]string{
				"SEED_DEMO": "false", "GENERATE_DAYS_AHEAD": "10", "GENERATE_MAX_DAYS_AHEAD": "20"}))
			busy, quiet, today := horizonFixture(t, srv)

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
			sameDay(t, today)
			got := data.SlotStats.UtilizationByProvider
			if len(got) != 2 || got[0].Provider.ID != strconv.FormatInt(busy, 10) || got[1].Provider.ID != strconv.FormatInt(quiet, 10) {
				t.Fatalf("slotStats utilization %+v, want providers %d and %d", got, busy, quiet)
			}
			wantHorizon(t, "GraphQL busy", got[0].HorizonDays, got[0].HorizonEnd, 17, today)
			wantHorizon(t, "GraphQL quiet", got[1].HorizonDays, got[1].HorizonEnd, 10, today)

			c := newRESTClient(t, srv) // every answer is checked against openapi.json
			resp := c.do(http.MethodGet, "/api/admin/time-slots", "", nil)
			var st struct {
				UtilizationByProvider []map[string]json.RawMessage `json:"utilizationByProvider"`
			}
			if err := json.Unmarshal(resp.Body, &st); resp.Status != http.StatusOK || err != nil || len(st.UtilizationByProvider) != 2 {
				t.Fatalf("REST stats: %s (%v)", resp, err)
			}
			sameDay(t, today)
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
				wantHorizon(t, fmt.Sprintf("REST provider %d", i), days, end, want, today)
			}

			// Busy's slots reach 10 days of the 17 its demand asks for.
			text := scrape(t, srv.URL)
			sameDay(t, today)
			lines := strings.Split(text, "\n")
			for _, want := range []string{
				fmt.Sprintf(`timeslots_provider_horizon_days{provider_id="%d"} 10`, busy),
				fmt.Sprintf(`timeslots_provider_horizon_target_days{provider_id="%d"} 17`, busy),
				fmt.Sprintf(`timeslots_provider_horizon_days{provider_id="%d"} 10`, quiet),
				fmt.Sprintf(`timeslots_provider_horizon_target_days{provider_id="%d"} 10`, quiet),
				"timeslots_providers_horizon_short 1",
			} {
				if !slices.Contains(lines, want) {
					t.Errorf("/metrics lacks %s", want)
				}
			}
		})
	}
}
