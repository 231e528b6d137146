package graph_test

import (
	"testing"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
)

// TestOneQueryReadsEveryProviderOfAPage: 100 slots of 7 providers, each
// with its provider, cost exactly one SQL statement that reads providers.
func TestOneQueryReadsEveryProviderOfAPage(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		a := newAPI(t, db, nil)
		allDayProviders(t, a.slots, 7)
		a.sql.Reset()

		var data struct {
			TimeSlots struct {
				Nodes []struct {
					ProviderID string
					Provider   struct{ ID, Name string }
				}
			}
		}
		a.gql(t, `{ timeSlots(first: 100) { nodes { id providerId provider { id name timeZone } } } }`, nil).Decode(t, &data)
		nodes := data.TimeSlots.Nodes
		if len(nodes) != 100 {
			t.Fatalf("%d slots, want 100", len(nodes))
		}
		providers := map[string]bool{}
		for _, n := range nodes {
			if n.Provider.ID != n.ProviderID || n.Provider.Name == "" {
				t.Fatalf("slot of provider %s answered provider %+v", n.ProviderID, n.Provider)
			}
			providers[n.Provider.ID] = true
		}
		if len(providers) != 7 {
			t.Fatalf("the page spans %d providers, want 7", len(providers))
		}
		if reads := a.sql.Matching("providers"); len(reads) != 1 {
			t.Fatalf("%d statements read providers, want 1:\n%v", len(reads), reads)
		}
		if counts := a.sql.Matching("SELECT COUNT(*) FROM time_slots"); len(counts) != 0 {
			t.Fatalf("totalCount was not selected, yet %v ran", counts)
		}

		// Without provider (or totalCount) in the selection, no such query runs.
		a.sql.Reset()
		a.gql(t, `{ timeSlots(first: 100) { edges { node { id providerId } } } }`, nil).Decode(t, &data)
		if reads := a.sql.Matching("providers"); len(reads) != 0 {
			t.Fatalf("provider not selected, yet %v ran", reads)
		}
		var total struct{ TimeSlots struct{ TotalCount int } }
		a.gql(t, `{ timeSlots(first: 1) { totalCount } }`, nil).Decode(t, &total)
		if counts := a.sql.Matching("SELECT COUNT(*) FROM time_slots"); len(counts) != 1 || total.TimeSlots.TotalCount < 100 {
			t.Fatalf("totalCount %d from %v", total.TimeSlots.TotalCount, counts)
		}
	})
}
