package graph_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/models"
)

// hoursOf answers n one-minute intervals spread over the week, none
// overlapping (n ≤ 10,080): the shape of the 10,045 intervals an admin once
// stored.
func hoursOf(n int) []map[string]string {
	out := make([]map[string]string, n)
	for i := range out {
		day, minute := models.AllWeekdays[i%7], i/7
		out[i] = map[string]string{
			"weekday": string(day),
			"start":   fmt.Sprintf("%02d:%02d", minute/60, minute%60),
			"end":     fmt.Sprintf("%02d:%02d", (minute+1)/60, (minute+1)%60),
		}
	}
	return out
}

func TestAProvidersWorkingHoursAreBounded(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		a := newAPI(t, db, nil) // loopback clients are admins
		const create = `mutation($hours: [WorkingHoursInput!]!) {
		  createProvider(input: {name: "Busy", timeZone: "UTC", slotMinutes: 5, workingHours: $hours}) { id workingHours { weekday } } }`
		const update = `mutation($id: ID!, $hours: [WorkingHoursInput!]!) {
		  updateProvider(id: $id, input: {name: "Busy", timeZone: "UTC", slotMinutes: 5, workingHours: $hours}) { id workingHours { weekday } } }`
		var made struct {
			CreateProvider struct {
				ID           string
				WorkingHours []struct{ Weekday string }
			}
		}
		a.gql(t, create, map[string]any{"hours": hoursOf(models.MaxWorkingHours)}).Decode(t, &made)
		if n := len(made.CreateProvider.WorkingHours); n != models.MaxWorkingHours {
			t.Fatalf("a provider created with %d intervals has %d", models.MaxWorkingHours, n)
		}
		id := made.CreateProvider.ID
		providers := count(t, db, "SELECT COUNT(*) FROM providers")

		for _, tc := range []struct {
			name, op string
			vars     map[string]any
		}{
			{"createProvider", create, map[string]any{"hours": hoursOf(models.MaxWorkingHours + 1)}},
			{"createProvider, as the attack did", create, map[string]any{"hours": hoursOf(10_045)}},
			{"updateProvider", update, map[string]any{"id": id, "hours": hoursOf(models.MaxWorkingHours + 1)}},
		} {
			t.Run(tc.name+" refuses one interval too many, naming workingHours", func(t *testing.T) {
				res := a.gql(t, tc.op, tc.vars)
				if res.Code() != "BAD_USER_INPUT" || res.Errors[0].Extensions["argument"] != "workingHours" {
					t.Fatalf("%.300s", res.Body)
				}
				if n := count(t, db, "SELECT COUNT(*) FROM providers"); n != providers {
					t.Fatalf("providers went from %d to %d", providers, n)
				}
				var stored string
				db.Raw("SELECT working_hours FROM providers WHERE id = ?", id).Scan(&stored)
				var hours []models.WorkingHours
				if err := json.Unmarshal([]byte(stored), &hours); err != nil || len(hours) != models.MaxWorkingHours {
					t.Fatalf("the provider's stored hours changed: %d, %v", len(hours), err)
				}
			})
		}
	})
}

// Provider.workingHours costs what the most intervals a provider may have
// would: a page of 100 slots with their providers' hours is refused before
// it runs, a page of 50 is answered.
func TestWorkingHoursArePricedAtTheirBound(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		a := newAPI(t, db, nil)
		allDayProviders(t, a.slots, 1)
		page := func(first int) string {
			return `{ timeSlots(first: ` + strconv.Itoa(first) + `) { nodes { id provider { workingHours { weekday start end } } } } }`
		}
		a.sql.Reset()
		if res := a.gql(t, page(100), nil); res.Code() != "QUERY_TOO_COMPLEX" {
			t.Fatalf("100 slots with their providers' hours: %.300s", res.Body)
		}
		if stmts := a.sql.Reset(); len(stmts) != 0 {
			t.Fatalf("a refused operation ran %d statements: %v", len(stmts), stmts)
		}
		var out struct {
			TimeSlots struct {
				Nodes []struct {
					Provider struct{ WorkingHours []models.WorkingHours }
				}
			}
		}
		a.gql(t, page(50), nil).Decode(t, &out)
		if len(out.TimeSlots.Nodes) == 0 || len(out.TimeSlots.Nodes[0].Provider.WorkingHours) != 7 {
			t.Fatalf("50 slots with their providers' hours: %+v", out)
		}
	})
}

// A provider stored with more intervals than the bound (by a version that
// had none) is still read whole, generates its slots, and takes new hours
// within the bound.
func TestAProviderStoredOverTheBoundIsStillRead(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		a := newAPI(t, db, nil)
		id := allDayProviders(t, a.slots, 1)[0]
		var hours []models.WorkingHours
		for _, h := range hoursOf(200) {
			hours = append(hours, models.WorkingHours{Weekday: models.Weekday(h["weekday"]), Start: h["start"], End: h["end"]})
		}
		stored, _ := json.Marshal(hours)
		if err := db.Exec("UPDATE providers SET working_hours = ? WHERE id = ?", string(stored), id).Error; err != nil {
			t.Fatal(err)
		}
		var out struct {
			Provider struct{ WorkingHours []models.WorkingHours }
		}
		a.gql(t, `query($id: ID!) { provider(id: $id) { workingHours { weekday start end } } }`, map[string]any{"id": id}).Decode(t, &out)
		if len(out.Provider.WorkingHours) != 200 {
			t.Fatalf("the stored provider answered %d intervals, want its 200", len(out.Provider.WorkingHours))
		}
		var gen struct {
			GenerateSlots struct{ Created int }
		}
		a.gql(t, `mutation($id: ID!) { generateSlots(input: {daysAhead: 3, providerIds: [$id]}) { created } }`, map[string]any{"id": id}).Decode(t, &gen)
		var updated struct {
			UpdateProvider struct{ WorkingHours []models.WorkingHours }
		}
		a.gql(t, `mutation($id: ID!, $hours: [WorkingHoursInput!]!) {
		  updateProvider(id: $id, input: {name: "Tamed", timeZone: "UTC", slotMinutes: 60, workingHours: $hours}) { workingHours { weekday start end } } }`,
			map[string]any{"id": id, "hours": hoursOf(7)}).Decode(t, &updated)
		if len(updated.UpdateProvider.WorkingHours) != 7 {
			t.Fatalf("updated hours: %+v", updated)
		}
	})
}
