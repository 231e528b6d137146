package graph_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"timeslots/graph"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
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

// aliases writes an operation of n root fields, the i-th made by field(i).
func aliases(n int, field func(i int) string) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		fmt.Fprintf(&b, " a%d: %s", i, field(i))
	}
	return b.String() + " }"
}

// Root fields by id cost graph.ByIDCost each besides their selection, so
// the complexity limit bounds how many one operation has (161 of
// timeSlot(id) { id } at the default 5000), and the ones it admits read
// their rows together: 140 aliased timeSlot fields with their providers
// take two statements, where each used to read on its own.
func TestRootFieldsByIDArePricedAndReadTogether(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		a, free := ownersAPI(t, db)
		// Two days ahead hold fewer than 40 hours late in a UTC day; four
		// always hold more, whatever the hour the test runs at.
		if _, err := a.slots.Generate(t.Context(), slots.GenerateInput{DaysAhead: 4}); err != nil {
			t.Fatal(err)
		}
		var slotIDs []int64
		if err := db.Raw("SELECT id FROM time_slots ORDER BY id").Scan(&slotIDs).Error; err != nil || len(slotIDs) < 40 {
			t.Fatalf("slots: %v, %v", slotIDs, err)
		}
		slotID := func(i int) int64 { return slotIDs[i%len(slotIDs)] }
		max := 5000 / (graph.ByIDCost + 1)

		t.Run("the limit admits a bounded number of aliases", func(t *testing.T) {
			slot := func(i int) string { return fmt.Sprintf(`timeSlot(id: "%d") { id }`, slotID(i)) }
			if res := a.as(t, anonymous, aliases(max, slot), nil); res.Code() != "" {
				t.Fatalf("%d aliases: %.300s", max, res.Body)
			}
			for _, n := range []int{max + 1, 700} {
				a.sql.Reset()
				if res := a.as(t, anonymous, aliases(n, slot), nil); res.Code() != "QUERY_TOO_COMPLEX" {
					t.Fatalf("%d aliases: %.300s", n, res.Body)
				}
				if stmts := a.sql.Reset(); len(stmts) != 0 {
					t.Fatalf("%d aliases refused after %d statements", n, len(stmts))
				}
			}
			if res := a.as(t, anonymous, aliases(max+1, func(i int) string { return fmt.Sprintf(`provider(id: "%d") { id }`, i+1) }), nil); res.Code() != "QUERY_TOO_COMPLEX" {
				t.Fatalf("%d provider aliases: %.300s", max+1, res.Body)
			}
			if res := a.as(t, asAdmin, aliases(max+1, func(i int) string { return fmt.Sprintf(`booking(id: "%d") { id }`, i+1) }), nil); res.Code() != "QUERY_TOO_COMPLEX" {
				t.Fatalf("%d booking aliases: %.300s", max+1, res.Body)
			}
		})

		t.Run("140 timeSlot aliases with their providers take two statements", func(t *testing.T) {
			a.sql.Reset()
			query := aliases(140, func(i int) string {
				if i == 139 {
					return `timeSlot(id: "987654321") { id provider { name } }`
				}
				return fmt.Sprintf(`timeSlot(id: "%d") { id provider { name } }`, slotID(i))
			})
			var out map[string]*struct {
				ID       string
				Provider struct{ Name string }
			}
			a.as(t, anonymous, query, nil).Decode(t, &out)
			stmts := a.sql.Reset()
			if len(stmts) != 2 {
				t.Fatalf("%d statements, want 2: %v", len(stmts), stmts)
			}
			for i := range 139 {
				if s := out[fmt.Sprintf("a%d", i)]; s == nil || s.ID != strconv.FormatInt(slotID(i), 10) || s.Provider.Name == "" {
					t.Fatalf("alias a%d answered %+v, want slot %d", i, s, slotID(i))
				}
			}
			if out["a139"] != nil {
				t.Fatalf("a missing slot answered %+v", out["a139"])
			}
		})

		t.Run("140 provider aliases take one statement", func(t *testing.T) {
			var pid int64
			db.Raw("SELECT provider_id FROM time_slots WHERE id = ?", free[0]).Scan(&pid)
			a.sql.Reset()
			var out map[string]*struct{ ID string }
			a.as(t, anonymous, aliases(140, func(i int) string { return fmt.Sprintf(`provider(id: "%d") { id }`, pid+int64(i%2)) }), nil).Decode(t, &out)
			if stmts := a.sql.Reset(); len(stmts) != 1 {
				t.Fatalf("%d statements, want 1: %v", len(stmts), stmts)
			}
			if out["a0"] == nil || out["a0"].ID != strconv.FormatInt(pid, 10) || out["a1"] != nil {
				t.Fatalf("providers answered %v", out)
			}
		})

		t.Run("140 booking aliases take a statement by id and one by reference, under the same rules", func(t *testing.T) {
			var made []gqlBooking
			for i := range 6 {
				made = append(made, a.book(t, asCustomer(fmt.Sprintf("sub-%d", i%2)), free[i], fmt.Sprintf("Customer %d", i), ""))
			}
			query := aliases(140, func(i int) string {
				b := made[i%len(made)]
				if i%4 != 3 {
					return fmt.Sprintf(`booking(id: "%s") { id customer }`, b.ID)
				}
				return fmt.Sprintf(`booking(reference: "%s") { id customer }`, *b.Reference)
			})
			type answers map[string]*struct{ ID, Customer string }
			for _, tc := range []struct {
				name string
				c    caller
				// sees reports whether c reads booking i by id.
				sees func(i int) bool
			}{
				{"an admin", asAdmin, func(int) bool { return true }},
				{"a customer", asCustomer("sub-0"), func(i int) bool { return i%2 == 0 }},
			} {
				t.Run(tc.name, func(t *testing.T) {
					a.sql.Reset()
					var out answers
					a.as(t, tc.c, query, nil).Decode(t, &out)
					if stmts := a.sql.Reset(); len(stmts) != 2 {
						t.Fatalf("%d statements, want 2: %v", len(stmts), stmts)
					}
					for i := range 140 {
						b, want := out[fmt.Sprintf("a%d", i)], made[i%len(made)]
						byRef, seen := i%4 == 3, tc.sees(i%len(made))
						if byRef || seen {
							if b == nil || b.ID != want.ID || b.Customer != want.Customer {
								t.Fatalf("alias a%d answered %+v, want booking %s", i, b, want.ID)
							}
						} else if b != nil {
							t.Fatalf("alias a%d answered another customer's booking %+v", i, b)
						}
					}
				})
			}
			t.Run("anonymous callers by id are refused, and nothing is read by id", func(t *testing.T) {
				a.sql.Reset()
				res := a.as(t, anonymous, query, nil)
				if res.Code() != "UNAUTHENTICATED" || len(res.Errors) != 105 {
					t.Fatalf("%d errors: %.300s", len(res.Errors), res.Body)
				}
				if stmts := a.sql.Reset(); len(stmts) != 1 {
					t.Fatalf("%d statements, want the one by reference: %v", len(stmts), stmts)
				}
			})
		})
	})
}
