package rest

import (
	"context"
	"net/http"

	"timeslots/internal/httpx"
	"timeslots/internal/slots"
	"timeslots/models"
)

// providerJSON is a provider with the fields of GraphQL's Provider type
// (its id a JSON number, as everywhere in REST).
type providerJSON struct {
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

type utilizationJSON struct {
	Provider    providerJSON `json:"provider"`
	TotalSlots  int64        `json:"totalSlots"`
	BookedSlots int64        `json:"bookedSlots"`
	Utilization float64      `json:"utilization"`
	Horizon     *models.Date `json:"horizon"`
}

// StatsJSON carries the fields of GraphQL's SlotStats, plus what the
// scheduler and the request metrics report.
type StatsJSON struct {
	TotalSlots            int64             `json:"totalSlots"`
	AvailableSlots        int64             `json:"availableSlots"`
	BookedSlots           int64             `json:"bookedSlots"`
	AvailablePercent      float64           `json:"availablePercent"`
	BookedPercent         float64           `json:"bookedPercent"`
	Providers             int64             `json:"providers"`
	DaysGenerated         int64             `json:"daysGenerated"`
	FirstSlotAt           *string           `json:"firstSlotAt"`
	LastSlotAt            *string           `json:"lastSlotAt"`
	UtilizationByProvider []utilizationJSON `json:"utilizationByProvider"`
	Maintenance           any               `json:"maintenance"`
	Performance           any               `json:"performance,omitempty"` // absent only outside a server (CLI)
}

// NewStatsJSON renders statistics with the admin API's field names (those of
// GraphQL's SlotStats); the CLI prints the same shape.
func NewStatsJSON(st *slots.Stats) StatsJSON {
	out := StatsJSON{
		TotalSlots: st.TotalSlots, AvailableSlots: st.AvailableSlots, BookedSlots: st.BookedSlots,
		AvailablePercent: st.AvailablePercent, BookedPercent: st.BookedPercent,
		Providers: st.Providers, DaysGenerated: st.DaysGenerated,
		UtilizationByProvider: make([]utilizationJSON, len(st.Utilization)),
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
		out.UtilizationByProvider[i] = utilizationJSON{
			Provider: providerJSON{
				ID: p.ID, Name: p.Name, TimeZone: p.TimeZone, SlotMinutes: p.SlotMinutes,
				BufferMinutes: p.BufferMinutes, Capacity: p.Capacity, MinNoticeMinutes: p.MinNoticeMinutes,
				Active: p.Active, WorkingHours: hours,
			},
			TotalSlots: u.TotalSlots, BookedSlots: u.BookedSlots, Utilization: u.Utilization, Horizon: u.Horizon,
		}
	}
	return out
}

// stats serves GET /api/admin/time-slots.
func (h *handler) stats(w http.ResponseWriter, r *http.Request) {
	if _, err := parseQuery(r.URL.RawQuery); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	st, err := h.slots.Stats(r.Context())
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	out := NewStatsJSON(st)
	var maintenance, performance reporter
	if h.maintenance != nil {
		maintenance = h.maintenance.MaintenanceReport
	}
	if h.performance != nil {
		performance = h.performance.PerformanceReport
	}
	if out.Maintenance, err = report(r.Context(), maintenance); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if out.Performance, err = report(r.Context(), performance); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// reporter is the method of a MaintenanceReporter or PerformanceReporter.
type reporter func(ctx context.Context) (any, error)

// report asks a reporter for its object; an unwired one gives {}.
func report(ctx context.Context, fn reporter) (any, error) {
	if fn == nil {
		return struct{}{}, nil
	}
	v, err := fn(ctx)
	if err != nil || v == nil {
		return struct{}{}, err
	}
	return v, nil
}

// generateBody is the body of POST /api/admin/time-slots.
type generateBody struct {
	DaysAhead   *int    `json:"daysAhead"`
	ProviderIDs []int64 `json:"providerIds"`
}

var generateTypes = map[string]string{
	"daysAhead":   "an integer",
	"providerIds": "a list of provider ids (integers)",
}

// GenerateJSON carries the fields of GraphQL's GenerateSlotsPayload.
type GenerateJSON struct {
	Created    int   `json:"created"`
	Skipped    int   `json:"skipped"`
	Providers  int   `json:"providers"`
	Days       int   `json:"days"`
	Batches    int   `json:"batches"`
	DurationMs int64 `json:"durationMs"`
}

// generate serves POST /api/admin/time-slots with GraphQL's generateSlots.
func (h *handler) generate(w http.ResponseWriter, r *http.Request) {
	if _, err := parseQuery(r.URL.RawQuery); err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	var body generateBody
	if berr := decodeJSON(r, &body, generateTypes); berr != nil {
		berr.write(w, r)
		return
	}
	if body.DaysAhead == nil {
		required("daysAhead").write(w, r)
		return
	}
	res, err := h.slots.Generate(r.Context(), slots.GenerateInput{DaysAhead: *body.DaysAhead, ProviderIDs: body.ProviderIDs})
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, NewGenerateJSON(res))
}

// NewGenerateJSON renders a generation's result as the admin API answers it.
func NewGenerateJSON(res slots.GenerateResult) GenerateJSON {
	return GenerateJSON{
		Created: res.Created, Skipped: res.Skipped, Providers: res.Providers, Days: res.Days,
		Batches: res.Batches, DurationMs: res.Duration.Milliseconds(),
	}
}

// CleanupJSON carries the fields of GraphQL's CleanupSlotsPayload.
type CleanupJSON struct {
	Deleted    int   `json:"deleted"`
	DurationMs int64 `json:"durationMs"`
}

// cleanup serves DELETE /api/admin/time-slots?daysOld=N with GraphQL's
// cleanupSlots. daysOld has no default: deleting must be asked for.
func (h *handler) cleanup(w http.ResponseWriter, r *http.Request) {
	q, err := parseQuery(r.URL.RawQuery, "daysOld")
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	daysOld, err := q.integer("daysOld")
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	if daysOld == nil {
		required("daysOld").write(w, r)
		return
	}
	res, err := h.slots.Cleanup(r.Context(), *daysOld, nil)
	if err != nil {
		httpx.WriteError(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, NewCleanupJSON(res))
}

// NewCleanupJSON renders a cleanup's result as the admin API answers it.
func NewCleanupJSON(res slots.CleanupResult) CleanupJSON {
	return CleanupJSON{Deleted: res.Deleted, DurationMs: res.Duration.Milliseconds()}
}
