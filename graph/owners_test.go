package graph_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/slots"
)

const ownersToken = "the-owners-admin-token"

// caller is who sends an operation: with the admin token, as a signed-in
// customer, or as neither (anonymous); required marks AUTH_REQUIRED.
type caller struct {
	admin    bool
	customer string
	required bool
}

var (
	anonymous = caller{}
	asAdmin   = caller{admin: true}
)

func asCustomer(sub string) caller { return caller{customer: sub} }

// as posts one operation as c.
func (a *api) as(t *testing.T, c caller, query string, vars map[string]any) result {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	r := request{body: string(body), header: map[string]string{}}
	if c.admin {
		r.auth = "Bearer " + ownersToken
	}
	if c.customer != "" {
		r.header[customerHeader] = c.customer
	}
	if c.required {
		r.header[requiredHeader] = "1"
	}
	return a.do(t, r)
}

// ownersAPI is the API with an admin token, so that loopback requests are
// not admins, over one provider's free future slots (one seat each).
func ownersAPI(t *testing.T, db *database.DB) (*api, []string) {
	t.Helper()
	a := newAPI(t, db, map[string]string{"ADMIN_TOKEN": ownersToken})
	allDayProviders(t, a.slots, 1)
	page, err := a.slots.ListSlots(t.Context(), slots.SlotFilter{}, slots.PageRequest{First: ptr(20)})
	if err != nil || len(page.Slots) < 10 {
		t.Fatalf("free slots: %v, %+v", err, page)
	}
	ids := make([]string, len(page.Slots))
	for i, s := range page.Slots {
		ids[i] = strconv.FormatInt(s.ID, 10)
	}
	return a, ids
}

func ptr[T any](v T) *T { return &v }

// gqlBooking is a booking as the operations below select it.
type gqlBooking struct {
	ID, Status, Customer string
	Reference            *string
	CustomerID           *string
	Slot                 *struct{ ID string }
	RescheduledFrom      []struct {
		Slot               *struct{ ID string }
		StartTime, MovedAt string
	}
}

const bookingFields = `id status customer reference customerId slot { id } rescheduledFrom { slot { id } startTime movedAt }`

const bookOp = `mutation($input: BookSlotInput!) { bookSlot(input: $input) { booking { ` + bookingFields + ` } } }`

// book books slot for name as c and answers the booking.
func (a *api) book(t *testing.T, c caller, slot, name, key string) gqlBooking {
	t.Helper()
	in := map[string]any{"slotId": slot, "customer": name}
	if key != "" {
		in["idempotencyKey"] = key
	}
	var out struct{ BookSlot struct{ Booking gqlBooking } }
	a.as(t, c, bookOp, map[string]any{"input": in}).Decode(t, &out)
	return out.BookSlot.Booking
}

var referenceShape = regexp.MustCompile(`^bk_[A-Za-z0-9_-]{24}$`)

func TestBookSlotAnswersTheBookingsReference(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		a, free := ownersAPI(t, db)
		anon := a.book(t, anonymous, free[0], "Ann", "ann-uuid-1")
		if anon.Reference == nil || !referenceShape.MatchString(*anon.Reference) || anon.CustomerID != nil {
			t.Fatalf("anonymous booking %+v: want a bk_ reference and no owner", anon)
		}
		if again := a.book(t, anonymous, free[0], "Ann", "ann-uuid-1"); again.ID != anon.ID || *again.Reference != *anon.Reference {
			t.Fatalf("the replay answered %+v, want %+v", again, anon)
		}
		owned := a.book(t, asCustomer("sub-bea"), free[1], "Bea", "")
		if owned.Reference == nil || *owned.Reference == *anon.Reference || owned.CustomerID == nil || *owned.CustomerID != "sub-bea" {
			t.Fatalf("a customer's booking %+v: want its own reference and owner sub-bea", owned)
		}
		t.Run("with AUTH_REQUIRED an anonymous booking is refused and nothing is booked", func(t *testing.T) {
			before := count(t, db, "SELECT COUNT(*) FROM bookings")
			res := a.as(t, caller{required: true}, bookOp, map[string]any{"input": map[string]any{"slotId": free[2], "customer": "Cy"}})
			if res.Code() != "UNAUTHENTICATED" {
				t.Fatalf("anonymous bookSlot under AUTH_REQUIRED: %s", res.Body)
			}
			if after := count(t, db, "SELECT COUNT(*) FROM bookings"); after != before {
				t.Fatalf("bookings went from %d to %d", before, after)
			}
			if b := a.book(t, caller{customer: "sub-cy", required: true}, free[2], "Cy", ""); b.CustomerID == nil || *b.CustomerID != "sub-cy" {
				t.Fatalf("a customer's booking under AUTH_REQUIRED: %+v", b)
			}
		})
		t.Run("one key of two customers makes two bookings; an anonymous key still conflicts", func(t *testing.T) {
			x := a.book(t, asCustomer("sub-x"), free[3], "X", "shared-key")
			y := a.book(t, asCustomer("sub-y"), free[4], "Y", "shared-key")
			if x.ID == y.ID {
				t.Fatalf("two customers' bookings with one key answered booking %s twice", x.ID)
			}
			res := a.as(t, anonymous, bookOp, map[string]any{"input": map[string]any{"slotId": free[5], "customer": "Mallory", "idempotencyKey": "ann-uuid-1"}})
			if res.Code() != "IDEMPOTENCY_CONFLICT" {
				t.Fatalf("an anonymous key used by another anonymous booking: %s", res.Body)
			}
		})
	})
}

func TestBookingsAreReadByReferenceOrByAnAdminOrTheirOwner(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		a, free := ownersAPI(t, db)
		owned := a.book(t, asCustomer("sub-ann"), free[0], "Ann", "")
		const byRef = `query($r: String) { booking(reference: $r) { ` + bookingFields + ` } }`
		const byID = `query($id: ID) { booking(id: $id) { ` + bookingFields + ` } }`
		read := func(t *testing.T, c caller, op string, vars map[string]any) *gqlBooking {
			t.Helper()
			var out struct{ Booking *gqlBooking }
			a.as(t, c, op, vars).Decode(t, &out)
			return out.Booking
		}

		t.Run("anyone with the reference reads the booking, not its owner", func(t *testing.T) {
			b := read(t, anonymous, byRef, map[string]any{"r": *owned.Reference})
			if b == nil || b.ID != owned.ID || b.Customer != "Ann" || b.Reference == nil || *b.Reference != *owned.Reference || b.CustomerID != nil {
				t.Fatalf("booking by reference: %+v", b)
			}
		})
		t.Run("a reference that names no booking answers null", func(t *testing.T) {
			// The reference with its last character changed: "-", or "_"
			// where it ends in "-" already.
			last := "-"
			if strings.HasSuffix(*owned.Reference, last) {
				last = "_"
			}
			near := (*owned.Reference)[:len(*owned.Reference)-1] + last
			for _, ref := range []string{"bk_AAAAAAAAAAAAAAAAAAAAAAAA", near, "nonsense", owned.ID} {
				if b := read(t, anonymous, byRef, map[string]any{"r": ref}); b != nil {
					t.Fatalf("reference %q answered %+v", ref, b)
				}
			}
		})
		for _, tc := range []struct {
			name, query string
			vars        map[string]any
			argument    string
		}{
			{"an empty reference", byRef, map[string]any{"r": ""}, "reference"},
			{"an overlong reference", byRef, map[string]any{"r": "bk_" + strings.Repeat("x", 98)}, "reference"},
			{"both a reference and an id", `{ booking(id: "1", reference: "bk_x") { id } }`, nil, "id"},
			{"neither a reference nor an id", `{ booking { id } }`, nil, "reference"},
		} {
			t.Run(tc.name+" is bad input naming its argument", func(t *testing.T) {
				res := a.as(t, asAdmin, tc.query, tc.vars)
				if res.Code() != "BAD_USER_INPUT" || res.Errors[0].Extensions["argument"] != tc.argument {
					t.Fatalf("%s", res.Body)
				}
			})
		}
		t.Run("by id an anonymous caller gets the admin refusal", func(t *testing.T) {
			for _, id := range []string{owned.ID, "987654321"} {
				if res := a.as(t, anonymous, byID, map[string]any{"id": id}); res.Code() != "UNAUTHENTICATED" {
					t.Fatalf("booking(id: %s) anonymously: %s", id, res.Body)
				}
			}
			res := a.do(t, request{body: fmt.Sprintf(`{"query": "{ booking(id: \"%s\") { id customer } }"}`, owned.ID), auth: "Bearer the-wrong-token-0123"})
			if res.Code() != "FORBIDDEN" || strings.Contains(res.Body, "Ann") {
				t.Fatalf("booking by id with a wrong admin token: %s", res.Body)
			}
		})
		t.Run("by id another customer gets null, as for a missing booking", func(t *testing.T) {
			if b := read(t, asCustomer("sub-mallory"), byID, map[string]any{"id": owned.ID}); b != nil {
				t.Fatalf("another customer read %+v", b)
			}
		})
		t.Run("by id the owner and an admin read it with its reference and owner", func(t *testing.T) {
			for _, c := range []caller{asCustomer("sub-ann"), asAdmin} {
				b := read(t, c, byID, map[string]any{"id": owned.ID})
				if b == nil || b.Reference == nil || *b.Reference != *owned.Reference || b.CustomerID == nil || *b.CustomerID != "sub-ann" {
					t.Fatalf("%+v read %+v", c, b)
				}
			}
		})
	})
}

func TestCancelBookingTakesAReferenceOrTheOwnersID(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		a, free := ownersAPI(t, db)
		const cancelByRef = `mutation($r: String) { cancelBooking(input: {reference: $r}) { booking { id status reference } slot { remaining } } }`
		const cancelByID = `mutation($id: ID) { cancelBooking(input: {bookingId: $id}) { booking { id status reference } slot { remaining } } }`
		anon := a.book(t, anonymous, free[0], "Ann", "")
		owned := a.book(t, asCustomer("sub-bea"), free[1], "Bea", "")
		other := a.book(t, anonymous, free[2], "Cy", "")
		confirmed := func() int64 { return count(t, db, "SELECT COUNT(*) FROM bookings WHERE status = 'confirmed'") }

		for _, tc := range []struct {
			name  string
			c     caller
			op    string
			vars  map[string]any
			code  string
			field string
		}{
			{"an anonymous cancel by id", anonymous, cancelByID, map[string]any{"id": anon.ID}, "UNAUTHENTICATED", ""},
			{"another customer's cancel by id", asCustomer("sub-mallory"), cancelByID, map[string]any{"id": owned.ID}, "NOT_FOUND", ""},
			{"a customer's cancel of an anonymous booking by id", asCustomer("sub-bea"), cancelByID, map[string]any{"id": anon.ID}, "NOT_FOUND", ""},
			{"an unknown reference", anonymous, cancelByRef, map[string]any{"r": "bk_AAAAAAAAAAAAAAAAAAAAAAAA"}, "NOT_FOUND", ""},
			{"an empty reference", anonymous, cancelByRef, map[string]any{"r": ""}, "BAD_USER_INPUT", "reference"},
			{"no booking named", anonymous, `mutation { cancelBooking(input: {}) { booking { id } } }`, nil, "BAD_USER_INPUT", "reference"},
		} {
			t.Run(tc.name+" is refused and changes nothing", func(t *testing.T) {
				before := confirmed()
				res := a.as(t, tc.c, tc.op, tc.vars)
				if res.Code() != tc.code || (tc.field != "" && res.Errors[0].Extensions["argument"] != tc.field) {
					t.Fatalf("%s", res.Body)
				}
				if after := confirmed(); after != before {
					t.Fatalf("confirmed bookings went from %d to %d", before, after)
				}
			})
		}
		type cancelled struct {
			CancelBooking struct {
				Booking struct {
					ID, Status string
					Reference  *string
				}
				Slot *struct{ Remaining int }
			}
		}
		for _, tc := range []struct {
			name string
			c    caller
			op   string
			vars map[string]any
			id   string
		}{
			{"anyone cancels by reference", anonymous, cancelByRef, map[string]any{"r": *anon.Reference}, anon.ID},
			{"the owner cancels by id", asCustomer("sub-bea"), cancelByID, map[string]any{"id": owned.ID}, owned.ID},
			{"an admin cancels by id", asAdmin, cancelByID, map[string]any{"id": other.ID}, other.ID},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var out cancelled
				a.as(t, tc.c, tc.op, tc.vars).Decode(t, &out)
				b := out.CancelBooking
				if b.Booking.ID != tc.id || b.Booking.Status != "CANCELLED" || b.Booking.Reference == nil || b.Slot == nil || b.Slot.Remaining != 1 {
					t.Fatalf("cancelled %+v", b)
				}
			})
		}
	})
}

func TestRescheduleBookingMovesItAndShowsWhereItWas(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		a, free := ownersAPI(t, db)
		const reschedule = `mutation($input: RescheduleBookingInput!) { rescheduleBooking(input: $input) {
		  booking { ` + bookingFields + ` } slot { id bookedCount } previousSlot { id bookedCount } } }`
		b := a.book(t, anonymous, free[0], "Ann", "")
		taken := a.book(t, anonymous, free[2], "Bea", "")
		var out struct {
			RescheduleBooking struct {
				Booking            gqlBooking
				Slot, PreviousSlot struct {
					ID          string
					BookedCount int
				}
			}
		}
		a.as(t, anonymous, reschedule, map[string]any{"input": map[string]any{"reference": *b.Reference, "slotId": free[1]}}).Decode(t, &out)
		r := out.RescheduleBooking
		if r.Booking.ID != b.ID || r.Booking.Reference == nil || *r.Booking.Reference != *b.Reference || r.Booking.Slot.ID != free[1] ||
			r.Slot.ID != free[1] || r.Slot.BookedCount != 1 || r.PreviousSlot.ID != free[0] || r.PreviousSlot.BookedCount != 0 {
			t.Fatalf("rescheduled: %+v", r)
		}
		if len(r.Booking.RescheduledFrom) != 1 || r.Booking.RescheduledFrom[0].Slot == nil || r.Booking.RescheduledFrom[0].Slot.ID != free[0] ||
			r.Booking.RescheduledFrom[0].StartTime == "" || r.Booking.RescheduledFrom[0].MovedAt == "" {
			t.Fatalf("rescheduledFrom: %+v", r.Booking.RescheduledFrom)
		}
		for _, tc := range []struct {
			name     string
			c        caller
			input    map[string]any
			code     string
			argument string
		}{
			{"into a full slot", anonymous, map[string]any{"reference": *b.Reference, "slotId": taken.Slot.ID}, "SLOT_UNAVAILABLE", ""},
			{"into the slot it is in", anonymous, map[string]any{"reference": *b.Reference, "slotId": free[1]}, "BAD_USER_INPUT", "slotId"},
			{"by id, anonymously", anonymous, map[string]any{"bookingId": b.ID, "slotId": free[3]}, "UNAUTHENTICATED", ""},
			{"by an unknown reference", anonymous, map[string]any{"reference": "bk_nope", "slotId": free[3]}, "NOT_FOUND", ""},
			{"with both a reference and an id", asAdmin, map[string]any{"reference": *b.Reference, "bookingId": b.ID, "slotId": free[3]}, "BAD_USER_INPUT", "bookingId"},
		} {
			t.Run(tc.name+" is refused", func(t *testing.T) {
				res := a.as(t, tc.c, reschedule, map[string]any{"input": tc.input})
				if res.Code() != tc.code || (tc.argument != "" && res.Errors[0].Extensions["argument"] != tc.argument) {
					t.Fatalf("%s", res.Body)
				}
				if n := count(t, db, "SELECT COUNT(*) FROM booking_moves"); n != 1 {
					t.Fatalf("%d moves recorded, want 1", n)
				}
			})
		}
		t.Run("an admin moves it by id", func(t *testing.T) {
			a.as(t, asAdmin, reschedule, map[string]any{"input": map[string]any{"bookingId": b.ID, "slotId": free[3]}}).Decode(t, &out)
			if moves := out.RescheduleBooking.Booking.RescheduledFrom; len(moves) != 2 || moves[1].Slot.ID != free[1] {
				t.Fatalf("rescheduledFrom after the second move: %+v", moves)
			}
		})
	})
}

func TestAdminsListBookingsAndCustomersTheirOwn(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		a, free := ownersAPI(t, db)
		var made []gqlBooking
		for i := range 6 {
			c := anonymous
			if i%2 == 0 {
				c = asCustomer("sub-even")
			}
			made = append(made, a.book(t, c, free[i], fmt.Sprintf("Customer %d", i), ""))
		}
		a.as(t, asAdmin, `mutation($id: ID) { cancelBooking(input: {bookingId: $id}) { booking { id } } }`, map[string]any{"id": made[4].ID}).Decode(t, &struct{}{})
		// Every booking moved once, so that rescheduledFrom has rows to batch.
		for i := range made {
			a.as(t, asAdmin, `mutation($id: ID, $s: ID!) { rescheduleBooking(input: {bookingId: $id, slotId: $s}) { booking { id } } }`,
				map[string]any{"id": made[i].ID, "s": free[10+i]}).Code()
		}
		type page struct {
			Edges []struct {
				Cursor string
				Node   gqlBooking
			}
			Nodes    []gqlBooking
			PageInfo struct {
				HasNextPage bool
				EndCursor   *string
			}
		}
		list := func(t *testing.T, c caller, filter map[string]any, first int, after *string) (page, result) {
			t.Helper()
			res := a.as(t, c, `query($f: BookingFilter, $first: Int, $after: String) { bookings(first: $first, after: $after, filter: $f) {
			  edges { cursor node { `+bookingFields+` } } pageInfo { hasNextPage endCursor } } }`,
				map[string]any{"f": filter, "first": first, "after": after})
			var out struct{ Bookings page }
			if res.Code() == "" {
				res.Decode(t, &out)
			}
			return out.Bookings, res
		}
		ids := func(p page) []string {
			out := []string{}
			for _, e := range p.Edges {
				out = append(out, e.Node.ID)
			}
			return out
		}
		// The cancelled booking stayed in its early slot; the others moved
		// later, in their order.
		all := []string{made[4].ID, made[0].ID, made[1].ID, made[2].ID, made[3].ID, made[5].ID}

		t.Run("anonymous and customers are refused", func(t *testing.T) {
			for _, c := range []caller{anonymous, asCustomer("sub-even")} {
				if _, res := list(t, c, nil, 10, nil); res.Code() != "UNAUTHENTICATED" {
					t.Fatalf("%+v: %s", c, res.Body)
				}
			}
		})
		t.Run("an admin pages through every booking, moves batched", func(t *testing.T) {
			a.sql.Reset()
			p, _ := list(t, asAdmin, nil, 4, nil)
			if moves := a.sql.Matching("booking_moves"); len(moves) != 1 {
				t.Fatalf("%d statements read booking_moves for a page of 4, want 1: %v", len(moves), moves)
			}
			if !p.PageInfo.HasNextPage || len(p.Edges) != 4 || len(p.Edges[0].Node.RescheduledFrom) != 0 || len(p.Edges[1].Node.RescheduledFrom) != 1 || p.Edges[0].Node.Reference == nil {
				t.Fatalf("first page %+v", p)
			}
			rest, _ := list(t, asAdmin, nil, 4, p.PageInfo.EndCursor)
			if got := append(ids(p), ids(rest)...); fmt.Sprint(got) != fmt.Sprint(all) || rest.PageInfo.HasNextPage {
				t.Fatalf("paged %v, want %v", got, all)
			}
		})
		for _, tc := range []struct {
			name   string
			filter map[string]any
			want   []string
		}{
			{"by status", map[string]any{"status": "CANCELLED"}, []string{made[4].ID}},
			{"by owner", map[string]any{"customerId": "sub-even", "status": "CONFIRMED"}, []string{made[0].ID, made[2].ID}},
			{"by name", map[string]any{"customer": "Customer 3"}, []string{made[3].ID}},
			{"by slot", map[string]any{"slotId": free[11]}, []string{made[1].ID}},
			{"by provider", map[string]any{"providerId": "987654321"}, []string{}},
		} {
			t.Run("an admin filters "+tc.name, func(t *testing.T) {
				p, res := list(t, asAdmin, tc.filter, 20, nil)
				if got := ids(p); res.Code() != "" || fmt.Sprint(got) != fmt.Sprint(tc.want) {
					t.Fatalf("bookings %v, want %v: %s", got, tc.want, res.Body)
				}
			})
		}
		t.Run("a bad filter is bad input naming it", func(t *testing.T) {
			_, res := list(t, asAdmin, map[string]any{"customer": " "}, 20, nil)
			if res.Code() != "BAD_USER_INPUT" || res.Errors[0].Extensions["argument"] != "customer" {
				t.Fatalf("%s", res.Body)
			}
		})
		t.Run("Provider.bookings is an admin's", func(t *testing.T) {
			var pid int64
			db.Raw("SELECT provider_id FROM time_slots WHERE id = ?", free[0]).Scan(&pid)
			const op = `query($id: ID!) { provider(id: $id) { bookings(first: 100) { nodes { id } } } }`
			var out struct {
				Provider struct {
					Bookings struct{ Nodes []struct{ ID string } }
				}
			}
			a.as(t, asAdmin, op, map[string]any{"id": pid}).Decode(t, &out)
			if len(out.Provider.Bookings.Nodes) != len(made) {
				t.Fatalf("the provider's bookings: %+v", out)
			}
			if res := a.as(t, anonymous, op, map[string]any{"id": pid}); res.Code() != "UNAUTHENTICATED" {
				t.Fatalf("anonymous Provider.bookings: %s", res.Body)
			}
		})
		t.Run("a customer lists their own bookings", func(t *testing.T) {
			const op = `query($f: MyBookingsFilter) { myBookings(filter: $f) { nodes { id reference customerId } } }`
			var out struct {
				MyBookings struct{ Nodes []gqlBooking }
			}
			a.as(t, asCustomer("sub-even"), op, nil).Decode(t, &out)
			got := []string{}
			for _, n := range out.MyBookings.Nodes {
				if n.Reference == nil || n.CustomerID == nil || *n.CustomerID != "sub-even" {
					t.Fatalf("own booking %+v without its reference or owner", n)
				}
				got = append(got, n.ID)
			}
			if want := []string{made[4].ID, made[0].ID, made[2].ID}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("myBookings %v, want %v", got, want)
			}
			a.as(t, asCustomer("sub-even"), op, map[string]any{"f": map[string]any{"status": "CANCELLED"}}).Decode(t, &out)
			if len(out.MyBookings.Nodes) != 1 || out.MyBookings.Nodes[0].ID != made[4].ID {
				t.Fatalf("cancelled myBookings %+v", out.MyBookings.Nodes)
			}
			a.as(t, asCustomer("sub-nobody"), op, nil).Decode(t, &out)
			if len(out.MyBookings.Nodes) != 0 {
				t.Fatalf("a customer without bookings listed %+v", out.MyBookings.Nodes)
			}
			for _, c := range []caller{anonymous, asAdmin, {required: true}} {
				if res := a.as(t, c, op, nil); res.Code() != "UNAUTHENTICATED" {
					t.Fatalf("myBookings as %+v: %s", c, res.Body)
				}
			}
		})
	})
}

func TestDeleteCustomerDataErasesTheirBookingsForAnAdmin(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, db *database.DB) {
		a, free := ownersAPI(t, db)
		ann := a.book(t, asCustomer("sub-ann"), free[0], "Ann", "k")
		bob := a.book(t, anonymous, free[1], "Bob", "")
		const op = `mutation($id: String, $name: String) { deleteCustomerData(customerId: $id, customer: $name) { erased } }`
		if res := a.as(t, anonymous, op, map[string]any{"id": "sub-ann"}); res.Code() != "UNAUTHENTICATED" {
			t.Fatalf("anonymous deleteCustomerData: %s", res.Body)
		}
		if res := a.as(t, asCustomer("sub-ann"), op, map[string]any{"id": "sub-ann"}); res.Code() != "UNAUTHENTICATED" {
			t.Fatalf("the customer's own deleteCustomerData: %s", res.Body)
		}
		if res := a.as(t, asAdmin, op, map[string]any{"id": "sub-ann", "name": "Ann"}); res.Code() != "BAD_USER_INPUT" || res.Errors[0].Extensions["argument"] != "customer" {
			t.Fatalf("both arguments: %s", res.Body)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM bookings WHERE customer = 'Ann'"); n != 1 {
			t.Fatalf("refused calls erased the booking (%d left)", n)
		}
		var out struct{ DeleteCustomerData struct{ Erased int } }
		a.as(t, asAdmin, op, map[string]any{"id": "sub-ann"}).Decode(t, &out)
		if out.DeleteCustomerData.Erased != 1 {
			t.Fatalf("erased %d bookings, want 1", out.DeleteCustomerData.Erased)
		}
		var read struct{ Booking gqlBooking }
		a.as(t, anonymous, `query($r: String) { booking(reference: $r) { `+bookingFields+` } }`, map[string]any{"r": *ann.Reference}).Decode(t, &read)
		if read.Booking.Customer != "erased-"+ann.ID || read.Booking.Status != "CONFIRMED" || read.Booking.Slot == nil {
			t.Fatalf("erased booking read back: %+v", read.Booking)
		}
		a.as(t, asAdmin, op, map[string]any{"name": "Bob"}).Decode(t, &out)
		if out.DeleteCustomerData.Erased != 1 || count(t, db, "SELECT COUNT(*) FROM bookings WHERE customer = ?", "erased-"+bob.ID) != 1 {
			t.Fatalf("erase by name: %+v", out)
		}
	})
}

// count runs a COUNT query on db.
func count(t *testing.T, db *database.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.Raw(q, args...).Scan(&n).Error; err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}
