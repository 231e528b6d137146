package rest

import (
	"context"
	"net/http"

	"timeslots/internal/adminjson"
	"timeslots/internal/httpx"
	"timeslots/internal/slots"
)

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
	out := adminjson.NewStats(st)
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
	httpx.WriteJSON(w, http.StatusOK, adminjson.NewGenerate(res))
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
	httpx.WriteJSON(w, http.StatusOK, adminjson.NewCleanup(res))
}
