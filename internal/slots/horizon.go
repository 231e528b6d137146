package slots

import (
	"time"

	"timeslots/models"
)

// The horizon policy's constants: generation reads the booked share of the
// last DemandWindowDays local dates of a provider's horizon; at
// DemandSharePercent or more, the horizon grows by HorizonStepDays past
// the provider's last slot.
const (
	DemandWindowDays   = 7
	DemandSharePercent = 20
	HorizonStepDays    = 7
)

// Demand is what the horizon policy reads of one provider: its local
// today, the local date of its last slot (nil: it has none), and the seats
// and booked seats of its slots dated in the DemandWindowDays local dates
// that end on that date.
type Demand struct {
	Today  models.Date
	Last   *models.Date
	Seats  int64
	Booked int64
}

// Generated answers how many local days, today included, the provider's
// slots reach: from today through the date of its last slot (0 when it
// has none from today on). It is in the unit of HorizonDays and of
// GenerateInput.DaysAhead.
func (d Demand) Generated() int {
	if d.Last == nil {
		return 0
	}
	return max(0, daysBetween(d.Today, *d.Last)+1)
}

// HorizonDays is the horizon policy: how many local days, today included,
// generation covers for a provider with demand d, between floor and
// ceiling. When at least DemandSharePercent of the seats in the last
// DemandWindowDays dates of its horizon are booked (customers book as far
// ahead as there are slots), the horizon reaches HorizonStepDays past its
// last slot's date; otherwise, and for a provider without slots or seats
// there, it is the floor. It never answers less than the floor nor more
// than the ceiling (a ceiling below the floor counts as the floor). A
// target below what already exists only stops generation from going
// further: generation never deletes slots.
func HorizonDays(floor, ceiling int, d Demand) int {
	ceiling = max(ceiling, floor)
	if d.Last == nil || d.Seats <= 0 || d.Booked*100 < d.Seats*DemandSharePercent {
		return floor
	}
	return min(max(d.Generated()+HorizonStepDays, floor), ceiling)
}

// daysBetween answers the calendar days from a to b (negative when b is
// earlier).
func daysBetween(a, b models.Date) int {
	return int(b.Time().Sub(a.Time()).Round(time.Hour) / (24 * time.Hour))
}
