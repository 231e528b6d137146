package graph_test

import (
	"strings"
	"testing"
	"time"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
)

const holdOp = `mutation($input: HoldSlotInput!) { holdSlot(input: $input) { reference expiresAt status slot { id remaining status } } }`

type gqlHold struct {
	Reference, ExpiresAt, Status string
	Slot                         *struct {
		ID, Status string
		Remaining  int
	}
}

func TestHoldSlotBookAndReleaseOverGraphQL(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		a, free := ownersAPI(t, db)
		var held struct{ HoldSlot gqlHold }
		before := time.Now()
		a.as(t, asCustomer("cus_1"), holdOp, map[string]any{"input": map[string]any{"slotId": free[0], "ttlMinutes": 3}}).Decode(t, &held)
		h := held.HoldSlot
		exp, err := time.Parse(time.RFC3339Nano, h.ExpiresAt)
		if err != nil || !strings.HasPrefix(h.Reference, "hd_") || h.Status != "HELD" || h.Slot == nil ||
			h.Slot.ID != free[0] || h.Slot.Remaining != 0 || h.Slot.Status != "BOOKED" ||
			exp.Before(before.Add(3*time.Minute-time.Second)) || exp.After(time.Now().Add(3*time.Minute+time.Second)) {
			t.Fatalf("holdSlot answered %+v (%v)", h, err)
		}

		// A direct booking finds the seat taken; the hold's holder books it.
		res := a.as(t, anonymous, bookOp, map[string]any{"input": map[string]any{"slotId": free[0], "customer": "Bob"}})
		if res.Code() != "SLOT_UNAVAILABLE" {
			t.Fatalf("booking a held slot: %s", res.Body)
		}
		var booked struct {
			BookSlot struct {
				Booking gqlBooking
				Slot    struct{ Remaining int }
			}
		}
		const bookHold = `mutation($input: BookSlotInput!) { bookSlot(input: $input) { booking { ` + bookingFields + ` } slot { remaining } } }`
		a.as(t, anonymous, bookHold, map[string]any{"input": map[string]any{"holdReference": h.Reference, "customer": "Ann"}}).Decode(t, &booked)
		b := booked.BookSlot.Booking
		if b.Status != "CONFIRMED" || b.Slot == nil || b.Slot.ID != free[0] || b.Reference == nil || booked.BookSlot.Slot.Remaining != 0 {
			t.Fatalf("booking the hold answered %+v", booked.BookSlot)
		}
		var owned struct {
			MyBookings struct{ Nodes []struct{ ID string } }
		}
		a.as(t, asCustomer("cus_1"), `{ myBookings { nodes { id } } }`, nil).Decode(t, &owned)
		if len(owned.MyBookings.Nodes) != 1 || owned.MyBookings.Nodes[0].ID != b.ID {
			t.Fatalf("the hold's owner owns %+v, want booking %s", owned.MyBookings.Nodes, b.ID)
		}
		res = a.as(t, anonymous, `mutation($r: String!) { releaseHold(reference: $r) { status } }`, map[string]any{"r": h.Reference})
		if res.Code() != "BAD_USER_INPUT" {
			t.Fatalf("releasing a booked hold: %s", res.Body)
		}

		// A released hold frees its seat and is HOLD_EXPIRED to book.
		a.as(t, anonymous, holdOp, map[string]any{"input": map[string]any{"slotId": free[1]}}).Decode(t, &held)
		var released struct{ ReleaseHold gqlHold }
		a.as(t, anonymous, `mutation($r: String!) { releaseHold(reference: $r) { reference status slot { remaining } } }`,
			map[string]any{"r": held.HoldSlot.Reference}).Decode(t, &released)
		if released.ReleaseHold.Status != "RELEASED" || released.ReleaseHold.Slot.Remaining != 1 {
			t.Fatalf("releaseHold answered %+v", released.ReleaseHold)
		}
		res = a.as(t, anonymous, bookHold, map[string]any{"input": map[string]any{"holdReference": held.HoldSlot.Reference, "customer": "Ann"}})
		if res.Code() != "HOLD_EXPIRED" || res.Status != 200 {
			t.Fatalf("booking a released hold: %d %s", res.Status, res.Body)
		}
	})
}

func TestHoldSlotRefusesBadInputNamingTheField(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		t.Parallel()
		a, free := ownersAPI(t, db)
		for _, c := range []struct {
			name, op string
			vars     map[string]any
			code     string
			field    string
		}{
			{"a hold of no minutes", holdOp, map[string]any{"input": map[string]any{"slotId": free[0], "ttlMinutes": 0}}, "BAD_USER_INPUT", "ttlMinutes"},
			{"a hold over an hour", holdOp, map[string]any{"input": map[string]any{"slotId": free[0], "ttlMinutes": 61}}, "BAD_USER_INPUT", "ttlMinutes"},
			{"a booking of neither slot nor hold", bookOp, map[string]any{"input": map[string]any{"customer": "Ann"}}, "BAD_USER_INPUT", "slotId"},
			{"a booking of both slot and hold", bookOp, map[string]any{"input": map[string]any{"slotId": free[0], "holdReference": "hd_x", "customer": "Ann"}}, "BAD_USER_INPUT", "holdReference"},
			{"a booking of an empty hold reference", bookOp, map[string]any{"input": map[string]any{"holdReference": " ", "customer": "Ann"}}, "BAD_USER_INPUT", "holdReference"},
			{"a booking of an unknown hold", bookOp, map[string]any{"input": map[string]any{"holdReference": "hd_nothing", "customer": "Ann"}}, "NOT_FOUND", ""},
			{"a release of an unknown hold", `mutation { releaseHold(reference: "hd_nothing") { status } }`, nil, "NOT_FOUND", ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				res := a.as(t, anonymous, c.op, c.vars)
				if res.Code() != c.code {
					t.Fatalf("%s: %s", c.name, res.Body)
				}
				if c.field != "" && (res.Errors[0].Extensions["argument"] != c.field || !strings.Contains(res.Errors[0].Message, c.field)) {
					t.Fatalf("%s names %v: %s", c.name, res.Errors[0].Extensions["argument"], res.Body)
				}
			})
		}
		res := a.as(t, caller{required: true}, holdOp, map[string]any{"input": map[string]any{"slotId": free[0]}})
		if res.Code() != "UNAUTHENTICATED" {
			t.Fatalf("an anonymous hold where sign-in is required: %s", res.Body)
		}
	})
}
