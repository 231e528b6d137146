// Package rest serves the REST shims that legacy clients call. Each
// handler only parses its query or body, calls one method of the slot
// manager and writes JSON: every rule lives in the manager, and the
// mapping from error code to HTTP status lives in httpx.
package rest

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"timeslots/internal/apperr"
	"timeslots/internal/httpx"
	"timeslots/internal/readcache"
	"timeslots/internal/slots"
)

// Prefix is the path under which every REST endpoint lives; the server
// mounts the handler of New there, and anything below it that is not an
// endpoint answers 404 in the REST error shape.
const Prefix = "/api/"

// AdminPrefix is the path under which the admin endpoints live.
const AdminPrefix = Prefix + "admin/"

// MaintenanceReporter supplies the "maintenance" object of the admin stats
// answer: the last run of each scheduled job. The scheduler implements it;
// the value it returns must marshal to a JSON object.
type MaintenanceReporter interface {
	MaintenanceReport(ctx context.Context) (any, error)
}

// PerformanceReporter supplies the "performance" object of the admin stats
// answer: request counts and latency percentiles per operation since start.
// The value it returns must marshal to a JSON object.
type PerformanceReporter interface {
	PerformanceReport(ctx context.Context) (any, error)
}

// Options are what the REST edge needs from the composition root.
type Options struct {
	// Slots is the one domain entry point every handler calls.
	Slots *slots.Manager
	// Admin guards /api/admin/* with the same rule as GraphQL's admin fields.
	Admin *httpx.AdminGate
	// Maintenance and Performance fill the stats answer; nil reporters give
	// empty objects, so the fields are present before the jobs are wired.
	Maintenance MaintenanceReporter
	Performance PerformanceReporter
	// Answers keeps the bodies of GET /api/time-slots pages, shared with
	// GraphQL and emptied by the change feed; nil: none are kept.
	Answers *readcache.Cache
	// AnswerAliasBytes bounds the query strings remembered with the keys
	// of their kept pages, so that a page asked again is found before its
	// query is parsed; 0 remembers none.
	AnswerAliasBytes int64
}

// handler holds the dependencies of the endpoints.
type handler struct {
	slots       *slots.Manager
	maintenance MaintenanceReporter
	performance PerformanceReporter
	answers     *readcache.Cache
	aliases     *readcache.Aliases[string] // query string → key of its page in answers
}

// endpoint is one path and the handlers of the methods it allows, in the
// order the Allow header lists them.
type endpoint struct {
	path    string
	admin   bool
	methods []method
}

type method struct {
	name string
	fn   http.HandlerFunc
}

// New builds the handler of every REST endpoint, to be mounted at Prefix.
func New(c Options) (http.Handler, error) {
	if c.Slots == nil || c.Admin == nil {
		return nil, errors.New("rest: Slots and Admin are required")
	}
	h := &handler{slots: c.Slots, maintenance: c.Maintenance, performance: c.Performance, answers: c.Answers}
	if c.Answers != nil {
		h.aliases = readcache.NewAliases[string](c.AnswerAliasBytes)
	}
	endpoints := []endpoint{
		{path: "/api/time-slots", methods: []method{{http.MethodGet, h.listSlots}}},
		{path: AdminPrefix + "time-slots", admin: true, methods: []method{
			{http.MethodGet, h.stats},
			{http.MethodPost, h.generate},
			{http.MethodDelete, h.cleanup},
		}},
		{path: AdminPrefix + "bookings", admin: true, methods: []method{{http.MethodGet, h.listBookings}}},
		{path: "/api/openapi.json", methods: []method{{http.MethodGet, serveOpenAPI}}},
	}
	mux := http.NewServeMux()
	for _, e := range endpoints {
		mux.Handle(e.path, e.handler(c.Admin))
	}
	mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteErrorStatus(w, r, http.StatusNotFound,
			apperr.E(apperr.NotFound, "no REST endpoint at %s; see /api/openapi.json", r.URL.Path))
	})
	return mux, nil
}

// handler dispatches on the method: a method the path does not allow
// answers 405 with Allow, before any admin check, so the answer does not
// depend on credentials.
func (e endpoint) handler(gate *httpx.AdminGate) http.Handler {
	names := make([]string, len(e.methods))
	byName := make(map[string]http.Handler, len(e.methods))
	for i, m := range e.methods {
		names[i] = m.name
		var fn http.Handler = m.fn
		if e.admin {
			fn = gate.RequireAdmin(fn)
		}
		byName[m.name] = fn
	}
	allow := strings.Join(names, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fn, ok := byName[r.Method]
		if !ok {
			w.Header().Set("Allow", allow)
			httpx.WriteErrorStatus(w, r, http.StatusMethodNotAllowed,
				apperr.E(apperr.BadUserInput, "method %s is not allowed on %s; allowed: %s", r.Method, e.path, allow))
			return
		}
		fn.ServeHTTP(w, r)
	})
}
