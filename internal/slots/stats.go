package slots

import (
	"cmp"
	"context"
	"math"
	"slices"
	"time"

	"timeslots/models"
)

// Stats is the admin's picture of the slot store.
type Stats struct {
	TotalSlots       int64
	AvailableSlots   int64
	BookedSlots      int64
	AvailablePercent float64 // of TotalSlots, 0–100, two decimals
	BookedPercent    float64
	Providers        int64
	// DaysGenerated counts distinct local dates, from each provider's
	// today on, that have at least one slot.
	DaysGenerated int64
	FirstSlotAt   *time.Time
	LastSlotAt    *time.Time
	Utilization   []ProviderUtilization // every provider, in id order
	// Days is each provider's utilization per local date, from the
	// provider's today on, for the dates that have a slot: the heat map of
	// the admin console. In provider id, then date order.
	Days []DayUtilization
}

// DayUtilization is one provider's slots on one local date.
type DayUtilization struct {
	ProviderID int64
	Date       models.Date
	Slots      int64
	Seats      int64
	Booked     int64 // taken seats: booked, or kept by a live hold
	// Utilization is Booked over Seats, in percent (two decimals).
	Utilization float64
}

// ProviderUtilization is one provider's share of the store.
type ProviderUtilization struct {
	Provider    models.Provider
	TotalSlots  int64
	BookedSlots int64
	// Utilization is taken seats (booked, or kept by a live hold) over
	// all seats, in percent (two decimals): with capacity above one it
	// counts partly filled slots too.
	Utilization float64
	// Horizon is the last local date with a slot, nil when there is none.
	Horizon *models.Date
	// HorizonDays is how many local days, today included, generation
	// covers for the provider now (HorizonDays between the floor and the
	// ceiling of WithHorizon); 0 for an inactive provider, which
	// generation skips. HorizonEnd is its last local date, nil with 0.
	HorizonDays int
	HorizonEnd  *models.Date
}

func percent(part, whole int64) float64 {
	if whole == 0 {
		return 0
	}
	return math.Round(float64(part)*10000/float64(whole)) / 100
}

// Stats computes the statistics with a handful of aggregate queries.
func (m *Manager) Stats(ctx context.Context) (*Stats, error) {
	// Each provider's today is its own; the earliest possible today anywhere
	// is UTC's date minus one, so one query finds every candidate day.
	now := m.Now()
	rows, err := m.store.statsRows(ctx, models.DateOf(now.UTC()).AddDays(-1), now)
	if err != nil {
		return nil, dbError("stats", err)
	}
	out := &Stats{Providers: int64(len(rows.providers)), Utilization: make([]ProviderUtilization, 0, len(rows.providers))}
	byID := make(map[int64]slotTotals, len(rows.totals))
	for _, a := range rows.totals {
		byID[a.providerID] = a
		out.TotalSlots += a.slots
		out.BookedSlots += a.full
	}
	out.AvailableSlots = out.TotalSlots - out.BookedSlots
	out.AvailablePercent = percent(out.AvailableSlots, out.TotalSlots)
	out.BookedPercent = percent(out.BookedSlots, out.TotalSlots)
	if rows.first != nil && rows.last != nil {
		f, l := rows.first.UTC(), rows.last.UTC()
		out.FirstSlotAt, out.LastSlotAt = &f, &l
	}
	today := make(map[int64]models.Date, len(rows.providers))
	scheds, _ := schedules(rows.providers)
	for i, p := range rows.providers {
		d := models.DateOf(now.UTC())
		if scheds[i] != nil {
			d = scheds[i].Today(now)
		}
		today[p.ID] = d
		a := byID[p.ID]
		u := ProviderUtilization{Provider: p, TotalSlots: a.slots, BookedSlots: a.full, Utilization: percent(a.taken, a.seats)}
		if a.slots > 0 {
			h := a.horizon
			u.Horizon = &h
		}
		out.Utilization = append(out.Utilization, u)
	}
	if err := m.statsHorizons(ctx, out.Utilization, scheds, now); err != nil {
		return nil, err
	}
	distinct := map[models.Date]bool{}
	for _, d := range rows.days {
		if t, ok := today[d.providerID]; ok && d.date >= t {
			distinct[d.date] = true
			out.Days = append(out.Days, DayUtilization{ProviderID: d.providerID, Date: d.date,
				Slots: d.slots, Seats: d.seats, Booked: d.taken, Utilization: percent(d.taken, d.seats)})
		}
	}
	slices.SortFunc(out.Days, func(a, b DayUtilization) int {
		return cmp.Or(cmp.Compare(a.ProviderID, b.ProviderID), cmp.Compare(a.Date, b.Date))
	})
	out.DaysGenerated = int64(len(distinct))
	return out, nil
}

// statsHorizons fills in the horizon of each active provider of us, whose
// schedules are scheds (schedules).
func (m *Manager) statsHorizons(ctx context.Context, us []ProviderUtilization, scheds []*models.Schedule, now time.Time) error {
	var active []models.Provider
	var activeScheds []*models.Schedule
	var at []int
	for i := range us {
		if us[i].Provider.Active {
			active = append(active, us[i].Provider)
			activeScheds = append(activeScheds, scheds[i])
			at = append(at, i)
		}
	}
	if len(active) == 0 {
		return nil
	}
	ds, err := m.demands(ctx, active, activeScheds, now)
	if err != nil {
		return err
	}
	for k, d := range ds {
		u := &us[at[k]]
		u.HorizonDays = HorizonDays(m.horizon.floor, m.horizon.ceiling, d)
		if u.HorizonDays > 0 {
			end := d.Today.AddDays(u.HorizonDays - 1)
			u.HorizonEnd = &end
		}
	}
	return nil
}
