package graph

import (
	"net/http"
	"sync/atomic"

	"timeslots/internal/config"
	"timeslots/internal/slots"
)

// WriteJSON exposes writeJSON to the external tests.
var WriteJSON = writeJSON

// NewHandlerCountingSlotPages is NewHandler, with the count of operations
// the slot-page fast path answered (without it when count is nil: every
// operation runs on the executor).
func NewHandlerCountingSlotPages(cfg *config.Config, m *slots.Manager, count *atomic.Int64) http.Handler {
	if count == nil {
		return newHandler(cfg, m, nil)
	}
	return newHandler(cfg, m, &slotPages{answered: count})
}
