package models

import "time"

// HoldStatus says what became of a hold. Expired is never stored: a held
// hold whose ExpiresAt has passed is expired by time alone.
type HoldStatus string

// The hold statuses.
const (
	HoldHeld     HoldStatus = "held"
	HoldReleased HoldStatus = "released"
	HoldBooked   HoldStatus = "booked"
	HoldExpired  HoldStatus = "expired"
)

// Hold keeps one seat of a slot for a customer until ExpiresAt, so that a
// checkout that takes minutes does not lose the seat at its last step.
// Whoever has its Reference may book it (turning it into a booking without
// competing for the seat again) or release it.
type Hold struct {
	ID             int64  `gorm:"primaryKey"`
	Reference      string // "hd_" and 24 URL-safe random characters
	SlotID         int64
	Customer       *string
	CustomerID     *string // the verified end user who holds it; nil: anonymous
	IdempotencyKey *string
	Status         HoldStatus
	ExpiresAt      time.Time
	CreatedAt      time.Time
	EndedAt        *time.Time // released or booked
	// BookingReference names the booking the hold became.
	BookingReference *string
}

// TableName is the hold's table.
func (Hold) TableName() string { return "slot_holds" }

// StatusAt answers the hold's status at now: a held hold past its
// ExpiresAt is expired.
func (h *Hold) StatusAt(now time.Time) HoldStatus {
	if h.Status == HoldHeld && !h.ExpiresAt.After(now) {
		return HoldExpired
	}
	return h.Status
}
