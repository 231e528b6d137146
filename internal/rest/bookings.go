package rest

import (
	"net/http"

	"timeslots/internal/httpx"
	"timeslots/models"
)

// bookingJSON is a booking as an admin's tools read it; IDs are JSON
// numbers and instants are UTC with Z.
type bookingJSON struct {
	ID          int64                `json:"id"`
	Reference   string               `json:"reference"`
	SlotID      *int64               `json:"slotId"`
	ProviderID  int64                `json:"providerId"`
	StartTime   string               `json:"startTime"`
	EndTime     string               `json:"endTime"`
	Customer    string               `json:"customer"`
	CustomerID  *string              `json:"customerId"`
	Status      models.BookingStatus `json:"status"`
	CreatedAt   string               `json:"createdAt"`
	CancelledAt *string              `json:"cancelledAt"`
}

type bookingListJSON struct {
	Data       []bookingJSON  `json:"data"`
	Pagination paginationJSON `json:"pagination"`
}

// listBookings serves GET /api/admin/bookings: one page of bookings in
// (startTime, id) order, GraphQL's bookings from the same manager method.
func (h *handler) listBookings(w http.ResponseWriter, r *http.Request) {
	q, err := parseBookingQuery(r.URL.RawQuery)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	page, err := h.slots.ListBookings(r.Context(), q.filter, q.page)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	out := bookingListJSON{
		Data:       make([]bookingJSON, len(page.Bookings)),
		Pagination: paginationJSON{Limit: q.limit, HasMore: page.HasNextPage},
	}
	for i, b := range page.Bookings {
		out.Data[i] = bookingJSON{
			ID: b.ID, Reference: b.Reference, SlotID: b.SlotID, ProviderID: b.ProviderID,
			StartTime: instant(b.StartTime), EndTime: instant(b.EndTime),
			Customer: b.Customer, CustomerID: b.CustomerID, Status: b.Status, CreatedAt: instant(b.CreatedAt),
		}
		if b.CancelledAt != nil {
			at := instant(*b.CancelledAt)
			out.Data[i].CancelledAt = &at
		}
	}
	if page.HasNextPage && len(page.Bookings) > 0 {
		c := page.Cursor(len(page.Bookings) - 1)
		out.Pagination.NextCursor = &c
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}
