package graph_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"timeslots/graph"
	"timeslots/internal/config"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
)

// TestSlotPagesAnswerTheExecutorsBytes sends each query to the handler with
// the slot-page fast path and to one where the executor runs everything:
// status and body must be identical, byte for byte, and the fast path
// must have answered exactly the operations it is meant to take.
func TestSlotPagesAnswerTheExecutorsBytes(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		cfg, err := config.Load(func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		m := slots.New(db)
		ids := allDayProviders(t, m, 3)
		// Some seats taken, one slot full: bookedCount, remaining and status vary.
		var first []struct{ ID string }
		a := wrap(t, nil, m)
		res := a.gql(t, `{ timeSlots(first: 6) { nodes { id } } }`, nil)
		var page struct {
			TimeSlots struct{ Nodes []struct{ ID string } }
		}
		res.Decode(t, &page)
		first = page.TimeSlots.Nodes
		for i, s := range first[:4] {
			r := a.gql(t, `mutation($s: ID!, $c: String!) { bookSlot(input: {slotId: $s, customer: $c}) { booking { id } } }`,
				map[string]any{"s": s.ID, "c": "customer " + string(rune('A'+i))})
			if len(r.Errors) > 0 {
				t.Fatalf("book %s: %s", s.ID, r.Body)
			}
		}

		var answered atomic.Int64
		fast := graph.NewHandlerCountingSlotPages(cfg, m, &answered)
		slow := graph.NewHandlerCountingSlotPages(cfg, m, nil)
		send := func(h http.Handler, body string) (int, string) {
			req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec.Code, rec.Body.String()
		}
		post := func(query string, vars map[string]any) string {
			req := map[string]any{"query": query, "variables": vars}
			if name, ok := vars["operationName"]; ok {
				req["operationName"] = name
				delete(vars, "operationName")
			}
			b, _ := json.Marshal(req)
			return string(b)
		}
		_, cursorBody := send(slow, post(`{ timeSlots(first: 5) { edges { cursor } } }`, nil))
		var cur struct {
			Data struct {
				TimeSlots struct{ Edges []struct{ Cursor string } }
			}
		}
		if err := json.Unmarshal([]byte(cursorBody), &cur); err != nil || len(cur.Data.TimeSlots.Edges) != 5 {
			t.Fatalf("cursors: %v %s", err, cursorBody)
		}
		c2, c4 := cur.Data.TimeSlots.Edges[2].Cursor, cur.Data.TimeSlots.Edges[4].Cursor
		pid := ids[1]
		tomorrow := m.Now().AddDate(0, 0, 1).Format("2006-01-02")

		var tooComplex strings.Builder
		tooComplex.WriteString("{")
		for i := range 200 {
			fmt.Fprintf(&tooComplex, " a%d: timeSlots(first: 100) { nodes { id } }", i)
		}
		tooComplex.WriteString(" }")
		const allSlotFields = `__typename id providerId startTime endTime date durationMinutes capacity bookedCount remaining status`
		for _, tc := range []struct {
			name  string
			query string
			vars  map[string]any
			fast  bool
		}{
			{"the bench's page", `query Slots($p: ID!, $s: Date!, $e: Date!) { timeSlots(first: 20, filter: {providerId: $p, startDate: $s, endDate: $e}) { edges { cursor node { id providerId startTime endTime date status capacity bookedCount } } pageInfo { hasNextPage endCursor } } }`,
				map[string]any{"p": pid, "s": tomorrow, "e": tomorrow}, true},
			{"every field of every type", `{ __typename timeSlots(first: 7, filter: {status: [AVAILABLE, BOOKED]}) { __typename edges { __typename cursor node { ` + allSlotFields + ` } } nodes { ` + allSlotFields + ` } pageInfo { __typename hasNextPage hasPreviousPage startCursor endCursor } } }`, nil, true},
			{"the full slots only", `{ timeSlots(filter: {status: [BOOKED]}) { nodes { id bookedCount remaining status } pageInfo { startCursor endCursor hasNextPage } } }`, nil, true},
			{"aliases, repeated fields and two pages", `query($c: String) { a: timeSlots(first: 2) { edges { c1: cursor c2: cursor node { x: id id } } edges { node { date } } } b: timeSlots(first: 3, after: $c) { p: pageInfo { hasPreviousPage } nodes { id } } }`,
				map[string]any{"c": c2}, true},
			{"fragments, @skip and @include", `query($yes: Boolean!, $no: Boolean!) { timeSlots(first: 3) { ...Conn edges { ... on TimeSlotEdge { cursor @include(if: $yes) } node { ...Slot id @skip(if: $no) capacity @skip(if: $yes) } } } } fragment Conn on TimeSlotConnection { pageInfo { endCursor } edges { node { startTime } } } fragment Slot on TimeSlot { endTime remaining }`,
				map[string]any{"yes": true, "no": false}, true},
			{"a page backward", `query($b: String!) { timeSlots(last: 2, before: $b) { edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`,
				map[string]any{"b": c4}, true},
			{"an empty page", `{ timeSlots(first: 5, filter: {date: "2001-01-01"}) { edges { cursor } nodes { id } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`, nil, true},
			{"first: 0 after a cursor", `query($c: String) { timeSlots(first: 0, after: $c) { nodes { id } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`,
				map[string]any{"c": c2}, true},
			{"a named operation among others", `query Other { providers(first: 1) { nodes { id } } } query Mine { timeSlots(first: 1) { nodes { id } } }`,
				map[string]any{"operationName": "Mine"}, true},

			{"totalCount goes to the executor", `{ timeSlots(first: 2) { totalCount nodes { id } } }`, nil, false},
			{"provider goes to the executor", `{ timeSlots(first: 2) { nodes { id provider { name } } } }`, nil, false},
			{"another root field goes to the executor", `{ timeSlots(first: 1) { nodes { id } } providers(first: 1) { nodes { name } } }`, nil, false},
			{"a bad cursor is the executor's error", `{ timeSlots(after: "nope") { nodes { id } } }`, nil, false},
			{"a page too large is the executor's error", `{ timeSlots(first: 101) { nodes { id } } }`, nil, false},
			{"a bad date variable is the executor's error", `query($d: Date) { timeSlots(filter: {date: $d}) { nodes { id } } }`, map[string]any{"d": "2025-02-30"}, false},
			{"a bad provider id is the executor's error", `{ timeSlots(filter: {providerId: "x1"}) { nodes { id } } }`, nil, false},
			{"a missing variable is refused before either", `query($c: String!) { timeSlots(after: $c) { nodes { id } } }`, nil, false},
			{"an operation over the complexity limit is refused before either", tooComplex.String(), nil, false},
			{"an operation nested too deep is refused before either", `{ timeSlots { edges { node { provider { timeSlots { edges { node { provider { timeSlots { nodes { id } } } } } } } } } } }`, nil, false},
			{"an unknown field is refused before either", `{ timeSlots { nodes { id colour } } }`, nil, false},
			{"a mutation goes to the executor", `mutation { cancelBooking(input: {bookingId: "999999"}) { booking { id } } }`, nil, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				body := post(tc.query, tc.vars)
				before := answered.Load()
				fs, fb := send(fast, body)
				took := answered.Load() - before
				ss, sb := send(slow, body)
				if fs != ss || fb != sb {
					t.Fatalf("fast path: HTTP %d\n%s\nexecutor: HTTP %d\n%s", fs, fb, ss, sb)
				}
				if want := map[bool]int64{true: 1, false: 0}[tc.fast]; took != want {
					t.Fatalf("the fast path answered %d operations, want %d: %s", took, want, fb)
				}
				if tc.fast && (fs != http.StatusOK || strings.Contains(fb, `"errors"`) || !strings.HasPrefix(fb, `{"data":{"`)) {
					t.Fatalf("HTTP %d: %s", fs, fb)
				}
			})
		}
	})
}
