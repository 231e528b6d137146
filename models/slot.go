package models

import "time"

// SlotStatus is derived by the database from the seat counts: a slot is
// booked exactly when it is full.
type SlotStatus string

// The two slot statuses as stored.
const (
	SlotAvailable SlotStatus = "available"
	SlotBooked    SlotStatus = "booked"
)

// TimeSlot is one bookable interval of one provider. StartTime and EndTime
// are UTC instants; Date is the start's calendar date in the provider's zone.
// BookedCount is the confirmed bookings; Held the live holds when the slot
// was read (a hold stops being live when it expires, by time alone), so a
// slot's seats are taken by both. Status is what the slot's reader
// computed from the three: booked exactly when no seat is free.
type TimeSlot struct {
	ID          int64     `gorm:"primaryKey" json:"id"`
	ProviderID  int64     `json:"providerId"`
	StartTime   time.Time `json:"startTime"`
	EndTime     time.Time `json:"endTime"`
	Date        Date      `json:"date"`
	Capacity    int       `json:"capacity"`
	BookedCount int       `json:"bookedCount"`
	Held        int       `gorm:"-" json:"-"`
	// HeldFirst: while Held > 0, no live hold of the slot expires before
	// it (its summary's bound, which may have passed: see slots).
	HeldFirst time.Time  `gorm:"-" json:"-"`
	Status    SlotStatus `gorm:"->" json:"status"`
	Version   int64      `json:"-"`
	CreatedAt time.Time  `json:"-"`
	UpdatedAt time.Time  `json:"-"`
}

// Remaining answers the free seats of the slot: neither booked nor held.
func (s *TimeSlot) Remaining() int { return s.Capacity - s.BookedCount - s.Held }

// SetStatus sets Status from the seats: booked when none is free.
func (s *TimeSlot) SetStatus() {
	s.Status = SlotAvailable
	if s.Remaining() <= 0 {
		s.Status = SlotBooked
	}
}

// DurationMinutes answers the slot's length in whole minutes.
func (s *TimeSlot) DurationMinutes() int { return int(s.EndTime.Sub(s.StartTime) / time.Minute) }

// BookingStatus says whether a booking still holds its seat.
type BookingStatus string

// The two booking statuses as stored.
const (
	BookingConfirmed BookingStatus = "confirmed"
	BookingCancelled BookingStatus = "cancelled"
)

// Booking is a customer's seat in a slot. It keeps a snapshot of the
// provider and times, so it stays readable after cleanup deletes the slot
// (SlotID then becomes NULL). Reference is the unguessable name customers
// use for it; CustomerID is its owner, the verified end user who booked it
// (nil for an anonymous booking).
type Booking struct {
	ID             int64         `gorm:"primaryKey" json:"id"`
	Reference      string        `json:"reference"`
	SlotID         *int64        `json:"slotId"`
	ProviderID     int64         `json:"providerId"`
	StartTime      time.Time     `json:"startTime"`
	EndTime        time.Time     `json:"endTime"`
	Customer       string        `json:"customer"`
	CustomerID     *string       `json:"customerId"`
	Status         BookingStatus `json:"status"`
	IdempotencyKey *string       `json:"-"`
	CreatedAt      time.Time     `json:"createdAt"`
	CancelledAt    *time.Time    `json:"cancelledAt"`
}

// BookingMove is where a booking was before one reschedule: its slot then
// (nil once cleaned up) and that slot's times.
type BookingMove struct {
	ID        int64     `gorm:"primaryKey" json:"-"`
	BookingID int64     `json:"-"`
	SlotID    *int64    `gorm:"column:from_slot_id" json:"slotId"`
	StartTime time.Time `gorm:"column:from_start_time" json:"startTime"`
	EndTime   time.Time `gorm:"column:from_end_time" json:"endTime"`
	MovedAt   time.Time `json:"movedAt"`
}
