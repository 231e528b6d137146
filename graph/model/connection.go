// Package model holds the GraphQL-only types: the Relay connections (hand
// written, so they can carry their page and filter) and the payloads and
// inputs gqlgen generates into models_gen.go.
package model

import (
	"timeslots/internal/slots"
	"timeslots/models"
)

// PageInfo is the Relay page information of a connection.
type PageInfo struct {
	HasNextPage     bool
	HasPreviousPage bool
	StartCursor     *string
	EndCursor       *string
}

func pageInfo(n int, cursor func(int) string, next, prev bool) *PageInfo {
	pi := &PageInfo{HasNextPage: next, HasPreviousPage: prev}
	if n > 0 {
		first, last := cursor(0), cursor(n-1)
		pi.StartCursor, pi.EndCursor = &first, &last
	}
	return pi
}

// TimeSlotConnection is one page of slots. It keeps the filter that made it,
// so that totalCount, resolved only when selected, counts the same slots.
type TimeSlotConnection struct {
	Page   *slots.SlotPage
	Filter slots.SlotFilter
}

// TimeSlotEdge is a slot with its cursor.
type TimeSlotEdge struct {
	Cursor string
	Node   *models.TimeSlot
}

// Edges answers the page's slots with their cursors.
func (c *TimeSlotConnection) Edges() []*TimeSlotEdge {
	out := make([]*TimeSlotEdge, len(c.Page.Slots))
	for i := range c.Page.Slots {
		out[i] = &TimeSlotEdge{Cursor: c.Page.Cursor(i), Node: &c.Page.Slots[i]}
	}
	return out
}

// Nodes answers the page's slots.
func (c *TimeSlotConnection) Nodes() []*models.TimeSlot {
	out := make([]*models.TimeSlot, len(c.Page.Slots))
	for i := range c.Page.Slots {
		out[i] = &c.Page.Slots[i]
	}
	return out
}

// PageInfo answers where the page lies in the listing.
func (c *TimeSlotConnection) PageInfo() *PageInfo {
	return pageInfo(len(c.Page.Slots), c.Page.Cursor, c.Page.HasNextPage, c.Page.HasPreviousPage)
}

// ProviderConnection is one page of providers.
type ProviderConnection struct {
	Page *slots.ProviderPage
}

// ProviderEdge is a provider with its cursor.
type ProviderEdge struct {
	Cursor string
	Node   *models.Provider
}

// Edges answers the page's providers with their cursors.
func (c *ProviderConnection) Edges() []*ProviderEdge {
	out := make([]*ProviderEdge, len(c.Page.Providers))
	for i := range c.Page.Providers {
		out[i] = &ProviderEdge{Cursor: c.Page.Cursor(i), Node: &c.Page.Providers[i]}
	}
	return out
}

// Nodes answers the page's providers.
func (c *ProviderConnection) Nodes() []*models.Provider {
	out := make([]*models.Provider, len(c.Page.Providers))
	for i := range c.Page.Providers {
		out[i] = &c.Page.Providers[i]
	}
	return out
}

// PageInfo answers where the page lies in the listing.
func (c *ProviderConnection) PageInfo() *PageInfo {
	return pageInfo(len(c.Page.Providers), c.Page.Cursor, c.Page.HasNextPage, c.Page.HasPreviousPage)
}

// BookingConnection is one page of bookings.
type BookingConnection struct {
	Page *slots.BookingPage
}

// BookingEdge is a booking with its cursor.
type BookingEdge struct {
	Cursor string
	Node   *models.Booking
}

// Edges answers the page's bookings with their cursors.
func (c *BookingConnection) Edges() []*BookingEdge {
	out := make([]*BookingEdge, len(c.Page.Bookings))
	for i := range c.Page.Bookings {
		out[i] = &BookingEdge{Cursor: c.Page.Cursor(i), Node: &c.Page.Bookings[i]}
	}
	return out
}

// Nodes answers the page's bookings.
func (c *BookingConnection) Nodes() []*models.Booking {
	out := make([]*models.Booking, len(c.Page.Bookings))
	for i := range c.Page.Bookings {
		out[i] = &c.Page.Bookings[i]
	}
	return out
}

// PageInfo answers where the page lies in the listing.
func (c *BookingConnection) PageInfo() *PageInfo {
	return pageInfo(len(c.Page.Bookings), c.Page.Cursor, c.Page.HasNextPage, c.Page.HasPreviousPage)
}
