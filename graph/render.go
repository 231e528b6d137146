package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"timeslots/graph/loaders"
	"timeslots/graph/model"
	"timeslots/internal/apperr"
	"timeslots/internal/auth"
	"timeslots/internal/httpx"
	"timeslots/internal/slots"
)

// pageRequest completes a connection's page request with the contract's
// page sizes.
func pageRequest(req slots.PageRequest) slots.PageRequest {
	req.Default, req.Max = DefaultPageSize, MaxPageSize
	return req
}

// listSlots answers one page of slots as a connection that remembers its
// filter, for totalCount. When the client selected the slots' provider,
// the page's providers are put in the request's loader at once.
func (r *Resolver) listSlots(ctx context.Context, f slots.SlotFilter, req slots.PageRequest) (*model.TimeSlotConnection, error) {
	page, err := r.Slots.ListSlots(ctx, f, pageRequest(req))
	if err != nil {
		return nil, err
	}
	notePage(ctx, page)
	if len(page.Slots) > 0 && selectsOnNodes(ctx, "provider") {
		ids := make([]int64, len(page.Slots))
		for i := range page.Slots {
			ids[i] = page.Slots[i].ProviderID
		}
		loaders.For(ctx).PrimeProviders(ctx, ids)
	}
	return &model.TimeSlotConnection{Page: page, Filter: f}, nil
}

// selectsOnNodes reports whether the connection field being resolved
// selects nodes { <field> } or edges { node { <field> } }.
func selectsOnNodes(ctx context.Context, field string) bool {
	op := graphql.GetOperationContext(ctx)
	has := func(fields []graphql.CollectedField, name string) []graphql.CollectedField {
		var out []graphql.CollectedField
		for _, f := range fields {
			if f.Name == name {
				out = append(out, graphql.CollectFields(op, f.Selections, nil)...)
			}
		}
		return out
	}
	conn := graphql.CollectFieldsCtx(ctx, nil)
	return len(has(has(conn, "nodes"), field)) > 0 ||
		len(has(has(has(conn, "edges"), "node"), field)) > 0
}

// listBookings answers one page of an admin's booking listing.
func (r *Resolver) listBookings(ctx context.Context, f slots.BookingFilter, req slots.PageRequest) (*model.BookingConnection, error) {
	page, err := r.Slots.ListBookings(ctx, f, pageRequest(req))
	if err != nil {
		return nil, err
	}
	return bookingConnection(ctx, page), nil
}

// bookingConnection answers a page of bookings as a connection. When the
// client selected the bookings' rescheduledFrom, the page's moves are put
// in the request's loader at once.
func bookingConnection(ctx context.Context, page *slots.BookingPage) *model.BookingConnection {
	if len(page.Bookings) > 0 && selectsOnNodes(ctx, "rescheduledFrom") {
		ids := make([]int64, len(page.Bookings))
		for i := range page.Bookings {
			ids[i] = page.Bookings[i].ID
		}
		loaders.For(ctx).PrimeMoves(ctx, ids)
	}
	return &model.BookingConnection{Page: page}
}

// actorOf answers who the request in ctx acts as on bookings: an admin if
// it passed the admin check (else the check's refusal, for operations that
// need one), and the verified customer, if any.
func actorOf(ctx context.Context) slots.Actor {
	notAdmin := httpx.Admin(ctx)
	a := slots.Actor{Admin: notAdmin == nil, NotAdmin: notAdmin}
	if c, ok := auth.CustomerFrom(ctx); ok {
		a.CustomerID = c.ID
	}
	return a
}

// referenceFields are the root fields whose caller made the booking they
// answer or named it by its reference (booking, by reference; by id it
// needs an admin or the owner, who may read the reference anyway).
var referenceFields = map[string]bool{"bookSlot": true, "cancelBooking": true, "rescheduleBooking": true, "booking": true}

// holdsReference reports whether the booking being resolved is answered by
// one of referenceFields, whose caller knows its reference already.
func holdsReference(ctx context.Context) bool {
	root := ""
	for fc := graphql.GetFieldContext(ctx); fc != nil; fc = fc.Parent {
		if fc.Field.Field != nil { // the operation's own context has no field
			root = fc.Field.Name
		}
	}
	return referenceFields[root]
}

// nullIfNotFound renders a missing object of a nullable lookup field
// (timeSlot, provider, booking, Booking.slot) as null, as the schema
// promises.
func nullIfNotFound[T any](v *T, err error) (*T, error) {
	if apperr.ErrorCode(err) == apperr.NotFound {
		return nil, nil
	}
	return v, err
}
