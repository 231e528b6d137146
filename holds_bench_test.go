//go:build unix

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
)

// BenchmarkReadPageWithHolds measures BenchmarkReadPage's GraphQL page of
// provider 1 with seat holds on its slots, beside the same page without:
// "none"; "live", every other slot of the window held (the demo's one-seat
// slots leave the AVAILABLE listing, so the page reads past them); and
// "stale", the same holds with their summaries' first expiry moved into
// the past, as when a hold of each slot expired since it was written, so
// that each of them is counted from slot_holds. bench/README.md compares
// the server's CPU per page (cpu-µs/op) and shows the query plans.
func BenchmarkReadPageWithHolds(b *testing.B) {
	for _, d := range dbtest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			client, mgr, db := benchApp(b, d)
			ctx := context.Background()
			from := time.Now().UTC().AddDate(0, 0, 1)
			to := from.AddDate(0, 0, 5)
			gql := `{"query":"query Slots($p: ID!, $s: Date!, $e: Date!) { timeSlots(first: 20, filter: {providerId: $p, startDate: $s, endDate: $e}) { edges { cursor node { id providerId startTime endTime date status capacity bookedCount remaining } } pageInfo { hasNextPage endCursor } } }","variables":{"p":"1","s":"` +
				from.Format("2006-01-02") + `","e":"` + to.Format("2006-01-02") + `"}}`
			page := func() {
				a, err := getAnswer(client, http.MethodPost, inProcessURL+"/graphql", http.Header{"Content-Type": {"application/json"}}, strings.NewReader(gql))
				if err != nil || a.Status != http.StatusOK || bytes.Contains(a.Body, []byte(`"errors"`)) || !bytes.Contains(a.Body, []byte("startTime")) {
					b.Fatalf("%v %s", err, a)
				}
			}
			b.Run("none", func(b *testing.B) { reportCPUPerOp(b, page) })
			provider := int64(1)
			fromT := from.Truncate(24 * time.Hour)
			list, err := mgr.ListSlots(ctx, slots.SlotFilter{ProviderID: &provider, From: &fromT}, slots.PageRequest{First: ptr(100)})
			if err != nil {
				b.Fatal(err)
			}
			for i, s := range list.Slots {
				if i%2 == 0 {
					if _, _, err := mgr.Hold(ctx, slots.HoldInput{SlotID: s.ID, TTLMinutes: ptr(60)}); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.Run("live", func(b *testing.B) { reportCPUPerOp(b, page) })
			if err := db.Exec("UPDATE time_slots SET held_first = ? WHERE held_count > 0", time.Now().UTC().Add(-time.Minute)).Error; err != nil {
				b.Fatal(err)
			}
			b.Run("stale", func(b *testing.B) { reportCPUPerOp(b, page) })
		})
	}
}

// BenchmarkHoldThenBook measures a checkout: holdSlot, then bookSlot of
// the hold, over GraphQL, each iteration on another free slot of the
// demo providers (-benchtime=2000x keeps it short). ns/op is the time of
// the pair, one client after another.
func BenchmarkHoldThenBook(b *testing.B) {
	for _, d := range dbtest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			client, mgr, _ := benchApp(b, d)
			ctx := context.Background()
			if _, err := mgr.Generate(ctx, slots.GenerateInput{DaysAhead: slots.MaxDaysAhead}); err != nil {
				b.Fatal(err)
			}
			from := time.Now().UTC().AddDate(0, 0, 2)
			var free []int64
			for after := (*string)(nil); len(free) < b.N+1; {
				p, err := mgr.ListSlots(ctx, slots.SlotFilter{From: &from}, slots.PageRequest{First: ptr(100), After: after})
				if err != nil {
					b.Fatal(err)
				}
				for _, s := range p.Slots {
					free = append(free, s.ID)
				}
				if !p.HasNextPage {
					break
				}
				c := p.Cursor(len(p.Slots) - 1)
				after = &c
			}
			if len(free) < b.N+1 {
				b.Skipf("%d free slots for %d checkouts", len(free), b.N+1)
			}
			post := func(body string) []byte {
				a, err := getAnswer(client, http.MethodPost, inProcessURL+"/graphql", http.Header{"Content-Type": {"application/json"}}, strings.NewReader(body))
				if err != nil || a.Status != http.StatusOK || bytes.Contains(a.Body, []byte(`"errors"`)) {
					b.Fatalf("%v %s", err, a)
				}
				return a.Body
			}
			next := 0
			reportCPUPerOp(b, func() {
				id := strconv.FormatInt(free[next], 10)
				next++
				var held struct {
					Data struct{ HoldSlot struct{ Reference string } }
				}
				if err := json.Unmarshal(post(`{"query":"mutation Hold($s: ID!) { holdSlot(input: {slotId: $s}) { reference expiresAt } }","variables":{"s":"`+id+`"}}`), &held); err != nil {
					b.Fatal(err)
				}
				body := post(`{"query":"mutation Book($h: String!, $c: String!) { bookSlot(input: {holdReference: $h, customer: $c}) { booking { id status } slot { id remaining } } }","variables":{"h":"` +
					held.Data.HoldSlot.Reference + `","c":"customer-` + id + `"}}`)
				if !bytes.Contains(body, []byte(`"CONFIRMED"`)) {
					b.Fatalf("%s", body)
				}
			})
		})
	}
}

func ptr[T any](v T) *T { return &v }
