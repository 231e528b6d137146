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
		return newHandler(OptionsOf(cfg), m, nil)
	}
	return newHandler(OptionsOf(cfg), m, &slotPages{answered: count})
}

// OptionsOf maps a configuration onto Options as the server does, so the
// tests configure the edge with the variables an operator sets.
func OptionsOf(cfg *config.Config) Options {
	return Options{
		Production: cfg.Production(), Introspection: cfg.Introspection,
		MaxComplexity: cfg.MaxComplexity, MaxDepth: cfg.MaxDepth, MaxMutations: cfg.MaxMutations,
		MaxBodyBytes: cfg.MaxBodyBytes,
	}
}
