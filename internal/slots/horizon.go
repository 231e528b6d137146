package slots

import (
	"context"
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

// WithHorizon sets the floor and ceiling of the generation horizon that
// Stats and Horizons report: those the scheduled generation uses.
func WithHorizon(floor, ceiling int) Option {
	return func(m *Manager) { m.horizon.floor, m.horizon.ceiling = floor, ceiling }
}

// schedules answers the schedule of each of ps, in the order of ps, and
// in errs why one has none (nil where it has one). A schedule loads its
// time zone from the system's database, so each page of providers builds
// its schedules once, for demands and for what the caller does with them.
func schedules(ps []models.Provider) (scheds []*models.Schedule, errs []error) {
	scheds, errs = make([]*models.Schedule, len(ps)), make([]error, len(ps))
	for i := range ps {
		scheds[i], errs[i] = models.NewSchedule(&ps[i])
	}
	return scheds, errs
}

// demands answers the Demand of each of ps at now, in the order of ps;
// scheds are their schedules (schedules), nil for one that has none, whose
// today is then the UTC date of now.
func (m *Manager) demands(ctx context.Context, ps []models.Provider, scheds []*models.Schedule, now time.Time) ([]Demand, error) {
	ids := make([]int64, len(ps))
	for i := range ps {
		ids[i] = ps[i].ID
	}
	rows, err := m.store.demand(ctx, ids)
	if err != nil {
		return nil, dbError("read demand", err)
	}
	byID := make(map[int64]slotDemand, len(rows))
	for _, r := range rows {
		byID[r.providerID] = r
	}
	out := make([]Demand, len(ps))
	for i := range ps {
		out[i].Today = models.DateOf(now)
		if scheds[i] != nil {
			out[i].Today = scheds[i].Today(now)
		}
		if r, ok := byID[ps[i].ID]; ok {
			last := r.last
			out[i].Last, out[i].Seats, out[i].Booked = &last, r.seats, r.booked
		}
	}
	return out, nil
}

// ProviderHorizon is how far an active provider's slots reach and how far
// the horizon policy wants them to reach, in local days from its today,
// today included.
type ProviderHorizon struct {
	ProviderID int64
	// Days reaches the date of the provider's last slot (0: no slot from
	// today on).
	Days int
	// TargetDays reaches the last date of the policy's horizon on which
	// the provider's weekly hours give a slot (0: none does), so Days
	// equals it once generation has covered the horizon, whatever days
	// the provider does not work.
	TargetDays int
}

// Short reports whether the provider's slots fall short of its target.
func (h ProviderHorizon) Short() bool { return h.Days < h.TargetDays }

// Horizons answers the horizon of every active provider, in id order,
// with the floor and ceiling of WithHorizon. It reads the providers a page
// at a time and each page's demand with a few index probes per provider.
func (m *Manager) Horizons(ctx context.Context) ([]ProviderHorizon, error) {
	now := m.Now()
	var out []ProviderHorizon
	var specs []models.SlotSpec
	var after int64
	for {
		page, err := m.store.activeProviders(ctx, nil, after, providerPage)
		if err != nil {
			return nil, dbError("load providers", err)
		}
		scheds, _ := schedules(page)
		ds, err := m.demands(ctx, page, scheds, now)
		if err != nil {
			return nil, err
		}
		for i := range page {
			d := ds[i]
			h := ProviderHorizon{ProviderID: page[i].ID, Days: d.Generated()}
			if sched := scheds[i]; sched != nil {
				target := HorizonDays(m.horizon.floor, m.horizon.ceiling, d)
				// A weekly schedule that gives no slot in seven days
				// gives none at all.
				for back := 0; back < 7 && back < target; back++ {
					specs = sched.Day(specs[:0], d.Today.AddDays(target-1-back), now)
					if len(specs) > 0 {
						h.TargetDays = target - back
						break
					}
				}
			}
			out = append(out, h)
		}
		if len(page) < providerPage {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}
