package model

import (
	"time"

	"timeslots/internal/feed"
	"timeslots/models"
)

// SlotChange is one change a slotsChanged subscription receives, built
// from a feed event without reading the database (see graph's
// subscription.go): Slot for slot events, the provider, range and count for
// bulk ones, the kind alone for REFETCH.
type SlotChange struct {
	Kind       feed.Kind
	Slot       *models.TimeSlot
	ProviderID *int64
	From, To   *time.Time
	Remaining  *int
	Version    *int64
	Count      *int
}

// SlotChangeFilter is the filter argument of slotsChanged, as sent; the
// subscription resolver checks it.
type SlotChangeFilter struct {
	ProviderID  *int64
	ProviderIDs []int64
	From, To    *time.Time
}
