package slots

import (
	"context"
	"math"
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
}

// ProviderUtilization is one provider's share of the store.
type ProviderUtilization struct {
	Provider    models.Provider
	TotalSlots  int64
	BookedSlots int64
	// Utilization is booked seats over all seats, in percent (two
	// decimals): with capacity above one it counts partly filled slots too.
	Utilization float64
	// Horizon is the last local date with a slot, nil when there is none.
	Horizon *models.Date
}

func percent(part, whole int64) float64 {
	if whole == 0 {
		return 0
	}
	return math.Round(float64(part)*10000/float64(whole)) / 100
}

// Stats computes the statistics with a handful of aggregate queries.
func (m *Manager) Stats(ctx context.Context) (*Stats, error) {
	db := m.db.WithContext(ctx)
	var providers []models.Provider
	if err := db.Order("id").Find(&providers).Error; err != nil {
		return nil, dbError("stats: providers", err)
	}
	type agg struct {
		ProviderID int64
		Total      int64
		Booked     int64
		Seats      int64
		Taken      int64
		Horizon    models.Date
	}
	var aggs []agg
	if err := db.Table("time_slots").
		Select("provider_id, COUNT(*) AS total, " +
			"SUM(CASE WHEN booked_count >= capacity THEN 1 ELSE 0 END) AS booked, " +
			"SUM(capacity) AS seats, SUM(booked_count) AS taken, MAX(date) AS horizon").
		Group("provider_id").Scan(&aggs).Error; err != nil {
		return nil, dbError("stats: per provider", err)
	}
	// First and last slot by the (start_time, id) index; MIN/MAX would lose
	// the column's type on SQLite.
	var first, last []models.TimeSlot
	if err := db.Order("start_time, id").Limit(1).Find(&first).Error; err != nil {
		return nil, dbError("stats: first slot", err)
	}
	if err := db.Order("start_time DESC, id DESC").Limit(1).Find(&last).Error; err != nil {
		return nil, dbError("stats: last slot", err)
	}
	out := &Stats{Providers: int64(len(providers)), Utilization: make([]ProviderUtilization, 0, len(providers))}
	byID := make(map[int64]agg, len(aggs))
	for _, a := range aggs {
		byID[a.ProviderID] = a
		out.TotalSlots += a.Total
		out.BookedSlots += a.Booked
	}
	out.AvailableSlots = out.TotalSlots - out.BookedSlots
	out.AvailablePercent = percent(out.AvailableSlots, out.TotalSlots)
	out.BookedPercent = percent(out.BookedSlots, out.TotalSlots)
	if len(first) == 1 && len(last) == 1 {
		f, l := first[0].StartTime.UTC(), last[0].StartTime.UTC()
		out.FirstSlotAt, out.LastSlotAt = &f, &l
	}

	// Each provider's today is its own; the earliest possible today anywhere
	// is UTC's date minus one, so one query finds every candidate day.
	now := m.Now()
	today := make(map[int64]models.Date, len(providers))
	for _, p := range providers {
		d := models.DateOf(now.UTC())
		if sched, err := models.NewSchedule(&p); err == nil {
			d = sched.Today(now)
		}
		today[p.ID] = d
		a := byID[p.ID]
		u := ProviderUtilization{Provider: p, TotalSlots: a.Total, BookedSlots: a.Booked, Utilization: percent(a.Taken, a.Seats)}
		if a.Total > 0 {
			h := a.Horizon
			u.Horizon = &h
		}
		out.Utilization = append(out.Utilization, u)
	}
	var days []struct {
		ProviderID int64
		Date       models.Date
	}
	if err := db.Table("time_slots").Select("provider_id, date").
		Where("date >= ?", models.DateOf(now.UTC()).AddDays(-1)).
		Group("provider_id, date").Scan(&days).Error; err != nil {
		return nil, dbError("stats: days", err)
	}
	distinct := map[models.Date]bool{}
	for _, d := range days {
		if t, ok := today[d.ProviderID]; ok && d.Date >= t {
			distinct[d.Date] = true
		}
	}
	out.DaysGenerated = int64(len(distinct))
	return out, nil
}
