// Package adminjson holds the JSON answers of the admin operations: the
// REST admin endpoints write them and the CLI prints them, so both show
// the same field names (those of GraphQL's payloads) without the CLI
// depending on the REST edge.
package adminjson

import (
	"time"

	"timeslots/internal/slots"
	"timeslots/models"
)

// provider is a provider with the fields of GraphQL's Provider type (its
// id a JSON number, as everywhere in REST).
type provider struct {
	ID               int64                 `json:"id"`
	Name             string                `json:"name"`
	TimeZone         string                `json:"timeZone"`
	SlotMinutes      int                   `json:"slotMinutes"`
	BufferMinutes    int                   `json:"bufferMinutes"`
	Capacity         int                   `json:"capacity"`
	MinNoticeMinutes int                   `json:"minNoticeMinutes"`
	Active           bool                  `json:"active"`
	WorkingHours     []models.WorkingHours `json:"workingHours"`
}

type utilization struct {
	Provider    provider     `json:"provider"`
	TotalSlots  int64        `json:"totalSlots"`
	BookedSlots int64        `json:"bookedSlots"`
	Utilization float64      `json:"utilization"`
	Horizon     *models.Date `json:"horizon"`
	HorizonDays int          `json:"horizonDays"`
	HorizonEnd  *models.Date `json:"horizonEnd"`
}

// Stats carries the fields of GraphQL's SlotStats, plus what the scheduler
// and the request metrics report.
type Stats struct {
	TotalSlots            int64         `json:"totalSlots"`
	AvailableSlots        int64         `json:"availableSlots"`
	BookedSlots           int64         `json:"bookedSlots"`
	AvailablePercent      float64       `json:"availablePercent"`
	BookedPercent         float64       `json:"bookedPercent"`
	Providers             int64         `json:"providers"`
	DaysGenerated         int64         `json:"daysGenerated"`
	FirstSlotAt           *string       `json:"firstSlotAt"`
	LastSlotAt            *string       `json:"lastSlotAt"`
	UtilizationByProvider []utilization `json:"utilizationByProvider"`
	Maintenance           any           `json:"maintenance"`
	Performance           any           `json:"performance,omitempty"` // absent only outside a server (CLI)
}

// NewStats renders statistics with the field names of GraphQL's SlotStats.
func NewStats(st *slots.Stats) Stats {
	out := Stats{
		TotalSlots: st.TotalSlots, AvailableSlots: st.AvailableSlots, BookedSlots: st.BookedSlots,
		AvailablePercent: st.AvailablePercent, BookedPercent: st.BookedPercent,
		Providers: st.Providers, DaysGenerated: st.DaysGenerated,
		UtilizationByProvider: make([]utilization, len(st.Utilization)),
	}
	if st.FirstSlotAt != nil {
		s := instant(*st.FirstSlotAt)
		out.FirstSlotAt = &s
	}
	if st.LastSlotAt != nil {
		s := instant(*st.LastSlotAt)
		out.LastSlotAt = &s
	}
	for i, u := range st.Utilization {
		p := u.Provider
		hours := []models.WorkingHours(p.WorkingHours)
		if hours == nil {
			hours = []models.WorkingHours{}
		}
		out.UtilizationByProvider[i] = utilization{
			Provider: provider{
				ID: p.ID, Name: p.Name, TimeZone: p.TimeZone, SlotMinutes: p.SlotMinutes,
				BufferMinutes: p.BufferMinutes, Capacity: p.Capacity, MinNoticeMinutes: p.MinNoticeMinutes,
				Active: p.Active, WorkingHours: hours,
			},
			TotalSlots: u.TotalSlots, BookedSlots: u.BookedSlots, Utilization: u.Utilization, Horizon: u.Horizon,
			HorizonDays: u.HorizonDays, HorizonEnd: u.HorizonEnd,
		}
	}
	return out
}

// Generate carries the fields of GraphQL's GenerateSlotsPayload.
type Generate struct {
	Created    int   `json:"created"`
	Skipped    int   `json:"skipped"`
	Providers  int   `json:"providers"`
	Days       int   `json:"days"`
	Batches    int   `json:"batches"`
	DurationMs int64 `json:"durationMs"`

	// Only a generation whose horizon follows demand (the CLI's): the
	// most days any provider got, and how many got more than days.
	MaxDays  *int `json:"maxDays,omitempty"`
	Extended *int `json:"extended,omitempty"`
}

// NewGenerate renders a generation's result.
func NewGenerate(res slots.GenerateResult) Generate {
	out := Generate{
		Created: res.Created, Skipped: res.Skipped, Providers: res.Providers, Days: res.Days,
		Batches: res.Batches, DurationMs: res.Duration.Milliseconds(),
	}
	if res.MaxDays != 0 {
		out.MaxDays, out.Extended = &res.MaxDays, &res.Extended
	}
	return out
}

// Cleanup carries the fields of GraphQL's CleanupSlotsPayload.
type Cleanup struct {
	Deleted    int   `json:"deleted"`
	DurationMs int64 `json:"durationMs"`
}

// NewCleanup renders a cleanup's result.
func NewCleanup(res slots.CleanupResult) Cleanup {
	return Cleanup{Deleted: res.Deleted, DurationMs: res.Duration.Milliseconds()}
}

// instant renders t as RFC 3339 in UTC ("2025-09-09T07:00:00Z"), as the
// REST answers write every instant.
func instant(t time.Time) string { return t.UTC().Format(time.RFC3339) }
