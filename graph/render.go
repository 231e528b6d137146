package graph

import (
	"context"

	"timeslots/graph/model"
	"timeslots/internal/apperr"
	"timeslots/internal/slots"
)

// pageRequest completes a connection's page request with the contract's
// page sizes.
func pageRequest(req slots.PageRequest) slots.PageRequest {
	req.Default, req.Max = DefaultPageSize, MaxPageSize
	return req
}

// listSlots answers one page of slots as a connection that remembers its
// filter, for totalCount.
func (r *Resolver) listSlots(ctx context.Context, f slots.SlotFilter, req slots.PageRequest) (*model.TimeSlotConnection, error) {
	page, err := r.Slots.ListSlots(ctx, f, pageRequest(req))
	if err != nil {
		return nil, err
	}
	return &model.TimeSlotConnection{Page: page, Filter: f}, nil
}

// nullIfNotFound renders a missing object of a nullable lookup field
// (timeSlot, provider, booking) as null, as the schema promises.
func nullIfNotFound[T any](v *T, err error) (*T, error) {
	if apperr.ErrorCode(err) == apperr.NotFound {
		return nil, nil
	}
	return v, err
}
