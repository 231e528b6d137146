//go:build unix

package main

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
)

// BenchmarkReadPageWithHolds measures BenchmarkReadPage's GraphQL page
// (with remaining) of provider 1 on the demo data in four states, for
// SQLite, where the database runs in the server's process (bench -only
// holds measures PostgreSQL through the real server): "none", without
// holds; "booked", every other slot of the window booked (the demo's
// one-seat slots leave the AVAILABLE listing, so the page reads past
// them); "held", the same slots held instead (the bookings cancelled); and
// "outdated", those holds with their summaries' first expiry moved into
// the past, so that each held slot's live holds are counted from
// slot_holds. bench/README.md compares the server's CPU per page
// (cpu-µs/op).
func BenchmarkReadPageWithHolds(b *testing.B) {
	for _, d := range dbtest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			client, mgr, db := benchApp(b, d, false)
			ctx := context.Background()
			from := time.Now().UTC().AddDate(0, 0, 1)
			to := from.AddDate(0, 0, 5)
			page := func(provider string) func() {
				gql := `{"query":"query Slots($p: ID!, $s: Date!, $e: Date!) { timeSlots(first: 20, filter: {providerId: $p, startDate: $s, endDate: $e}) { edges { cursor node { id providerId startTime endTime date status capacity bookedCount remaining } } pageInfo { hasNextPage endCursor } } }","variables":{"p":"` +
					provider + `","s":"` + from.Format("2006-01-02") + `","e":"` + to.Format("2006-01-02") + `"}}`
				return func() {
					a, err := getAnswer(client, http.MethodPost, inProcessURL+"/graphql", http.Header{"Content-Type": {"application/json"}}, strings.NewReader(gql))
					if err != nil || a.Status != http.StatusOK || bytes.Contains(a.Body, []byte(`"errors"`)) || strings.Count(string(a.Body), "startTime") != 20 {
						b.Fatalf("%v %s", err, a)
					}
				}
			}
			// everyOther calls take with every other free slot of the
			// provider's first 100 from the window's first day.
			everyOther := func(provider int64, take func(id int64) error) {
				fromT := from.Truncate(24 * time.Hour)
				list, err := mgr.ListSlots(ctx, slots.SlotFilter{ProviderID: &provider, From: &fromT}, slots.PageRequest{First: ptr(100)})
				if err != nil {
					b.Fatal(err)
				}
				for i, s := range list.Slots {
					if i%2 == 0 {
						if err := take(s.ID); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			b.Run("none", func(b *testing.B) { reportCPUPerOp(b, page("1")) })
			var bookings []int64
			everyOther(1, func(id int64) error {
				bk, _, err := mgr.Book(ctx, slots.BookInput{SlotID: id, Customer: "bench-" + strconv.FormatInt(id, 10)})
				if err == nil {
					bookings = append(bookings, bk.ID)
				}
				return err
			})
			b.Run("booked", func(b *testing.B) { reportCPUPerOp(b, page("1")) })
			for _, id := range bookings {
				if _, _, err := mgr.Cancel(ctx, slots.Actor{Admin: true}, slots.BookingRef{ID: &id}); err != nil {
					b.Fatal(err)
				}
			}
			b.Run("held", func(b *testing.B) { reportCPUPerOp(b, page("1")) })
			if err := db.Exec("UPDATE time_slots SET held_first = ? WHERE held_count > 0", time.Now().UTC().Add(-time.Minute)).Error; err != nil {
				b.Fatal(err)
			}
			b.Run("outdated", func(b *testing.B) { reportCPUPerOp(b, page("1")) })
		})
	}
}

func ptr[T any](v T) *T { return &v }
