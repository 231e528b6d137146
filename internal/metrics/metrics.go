// Package metrics exposes the server's Prometheus metrics (/metrics) and
// keeps the per-operation latency figures of the admin stats. Each server
// has its own registry, so several servers can run in one process (tests).
package metrics

import (
	"context"
	"database/sql"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vektah/gqlparser/v2/ast"

	"timeslots/internal/apperr"
	"timeslots/internal/httpx"
	"timeslots/internal/jobs"
	"timeslots/internal/slots"
	"timeslots/models"
)

const namespace = "timeslots"

// Metrics holds the collectors of one server.
type Metrics struct {
	reg *prometheus.Registry

	requests   *prometheus.HistogramVec
	operations *prometheus.HistogramVec
	rootFields *prometheus.HistogramVec
	internal   prometheus.Counter
	bookings   *prometheus.CounterVec
	generated  *prometheus.CounterVec
	deleted    prometheus.Counter
	holds      *prometheus.CounterVec
	jobRuns    *prometheus.CounterVec
	jobSeconds *prometheus.HistogramVec
	readiness  *readiness
	webhooks   *prometheus.CounterVec
	live       liveMetrics

	// opMu serialises the operation table and the observations made
	// under its names, so a name is never observed after it lost its
	// entry (which would bring its series back for good).
	opMu    sync.Mutex
	opNames *operationNames
	perf    *Performance
}

// latencyBuckets of the histograms, in seconds: 1 ms to 30 s.
var latencyBucketsSeconds = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// New builds the metrics of a server whose pool is db (nil: no pool stats).
func New(db *sql.DB) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by route pattern, method and status.",
			Buckets: latencyBucketsSeconds,
		}, []string{"route", "method", "status"}),
		operations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "graphql_operation_duration_seconds",
			Help:    "Time to execute GraphQL operations, by operation and whether the answer carried errors.",
			Buckets: latencyBucketsSeconds,
		}, []string{"operation", "outcome"}),
		rootFields: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "graphql_root_field_duration_seconds",
			Help:    "Time to execute GraphQL operations, by each root field of the schema the operation selects.",
			Buckets: latencyBucketsSeconds,
		}, []string{"field"}),
		internal: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "graphql_internal_errors_total",
			Help: "GraphQL operations whose answer carried an INTERNAL_SERVER_ERROR (once per operation).",
		}),
		bookings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "bookings_total",
			Help: "Booking attempts by outcome: ok, or the refusal's error code.",
		}, []string{"outcome"}),
		generated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "slots_generated_total",
			Help: "Slots considered by generation: created, or skipped because they existed.",
		}, []string{"result"}),
		deleted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "slots_deleted_total",
			Help: "Slots deleted by cleanup.",
		}),
		holds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "holds_total",
			Help: "Seat holds by what happened to them: created, converted (booked), released, expired (counted when the cleanup deletes them).",
		}, []string{"event"}),
		jobRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "job_runs_total",
			Help: "Scheduled job ticks seen by this replica, by job and outcome (succeeded, failed, interrupted, or skipped when another replica ran the tick).",
		}, []string{"job", "outcome"}),
		jobSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "job_run_duration_seconds",
			Help:    "Duration of the scheduled job runs this replica executed.",
			Buckets: []float64{.01, .1, .5, 1, 5, 10, 30, 60, 300, 900},
		}, []string{"job"}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "webhook_deliveries_total",
			Help: "Webhook delivery attempts this replica made, by outcome: delivered (2xx), retrying (failed, another attempt scheduled) or failed (failed at the last attempt).",
		}, []string{"outcome"}),
		readiness: newReadiness(),
		live:      newLiveMetrics(),
		perf:      NewPerformance(),
	}
	m.opNames = newOperationNames(maxOperations, func(name string) {
		m.operations.DeletePartialMatch(prometheus.Labels{"operation": name})
		m.perf.forget(graphQLPrefix + name)
	})
	m.reg.MustRegister(m.requests, m.operations, m.rootFields, m.internal, m.bookings, m.generated, m.deleted,
		m.holds, m.jobRuns, m.jobSeconds, m.readiness.ready, m.readiness.changes, m.webhooks,
		m.live.connections, m.live.subscriptions, m.live.events,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, e := range []string{slots.HoldCreated, slots.HoldBooked, slots.HoldReleased, slots.HoldExpired} {
		m.holds.WithLabelValues(e)
	}
	// Every job's outcomes start at 0, so the first failure is an
	// increase Prometheus can see (a series born at 1 shows none).
	for _, job := range []string{jobs.GenerateJob, jobs.CleanupJob} {
		for _, outcome := range []models.JobOutcome{models.JobSucceeded, models.JobFailed, models.JobInterrupted, jobs.Skipped} {
			m.jobRuns.WithLabelValues(job, string(outcome))
		}
	}
	for _, outcome := range []models.WebhookDeliveryStatus{models.WebhookDelivered, models.WebhookRetrying, models.WebhookFailed} {
		m.webhooks.WithLabelValues(string(outcome))
	}
	if db != nil {
		m.reg.MustRegister(collectors.NewDBStatsCollector(db, namespace))
	}
	return m
}

// ObserveWebhook counts one webhook delivery attempt by its outcome.
func (m *Metrics) ObserveWebhook(outcome models.WebhookDeliveryStatus) {
	m.webhooks.WithLabelValues(string(outcome)).Inc()
}

// WatchWebhookEndpoints reports the enabled webhook endpoints in this
// replica's view (endpoints answers it at each scrape), so one can see
// when a replica has heard of a new endpoint.
func (m *Metrics) WatchWebhookEndpoints(endpoints func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: namespace, Name: "webhook_endpoints",
		Help: "Enabled webhook endpoints in this replica's view, which decides which booking events are enqueued.",
	}, func() float64 { return float64(endpoints()) }))
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Performance answers the per-operation latency record.
func (m *Metrics) Performance() *Performance { return m.perf }

// PerformanceReport is the "performance" object of the admin stats.
func (m *Metrics) PerformanceReport(context.Context) (any, error) { return m.perf.Snapshot(), nil }

// SlotHooks feed booking outcomes and generated/deleted rows from the
// manager.
func (m *Metrics) SlotHooks() slots.Hooks {
	return slots.Hooks{
		BookingOutcome: func(code apperr.Code) {
			outcome := "ok"
			if code != "" {
				outcome = string(code)
			}
			m.bookings.WithLabelValues(outcome).Inc()
		},
		Generated: func(created, skipped int) {
			m.generated.WithLabelValues("created").Add(float64(created))
			m.generated.WithLabelValues("skipped").Add(float64(skipped))
		},
		Deleted: func(deleted int) { m.deleted.Add(float64(deleted)) },
		Hold:    func(event string) { m.holds.WithLabelValues(event).Inc() },
	}
}

// ObserveJob counts a scheduled tick's outcome (jobs.Options.Observe).
func (m *Metrics) ObserveJob(job string, _ time.Time, outcome models.JobOutcome, d time.Duration) {
	m.jobRuns.WithLabelValues(job, string(outcome)).Inc()
	if outcome == models.JobSucceeded || outcome == models.JobFailed || outcome == models.JobInterrupted {
		m.jobSeconds.WithLabelValues(job).Observe(d.Seconds())
	}
}

// unobserved routes are not part of the performance record (probes and
// scrapes would drown the operations people care about); Prometheus still
// sees them.
var unobserved = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// Routes measures every request by the pattern of the ServeMux that
// served it. It must wrap the ServeMux directly: the mux writes the
// matched pattern into the request it was given (nested muxes, such as
// the REST one, overwrite it with their finer pattern), which is read
// back here after serving. Clients cannot create label values: a route
// is one of the mux's registered patterns (unmatched paths share one
// label), a method one of HTTP's standard methods or OTHER.
func (m *Metrics) Routes(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &httpx.StatusRecorder{ResponseWriter: w}
		mux.ServeHTTP(rec, r)
		took := time.Since(start)
		route, method := routeOf(r.Pattern), methodLabel(r.Method)
		httpx.NoteRoute(r.Context(), route)
		if rec.Status() == http.StatusSwitchingProtocols {
			// A websocket lasts as long as its client keeps it: its
			// figures are the live metrics', not a request's latency.
			return
		}
		m.requests.WithLabelValues(route, method, strconv.Itoa(rec.Status())).Observe(took.Seconds())
		if !unobserved[route] && route != "unmatched" && route != "/graphql" {
			m.perf.Observe(method+" "+route, took)
		}
	})
}

// routeOf strips the method from a pattern ("GET /healthz" → "/healthz").
func routeOf(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	if _, path, ok := strings.Cut(pattern, " "); ok {
		return path
	}
	return pattern
}

// GraphQL is a gqlgen extension that times every operation: from the start
// of its handling (reading, parsing, validation) to its complete answer.
// Operations are named "query Name" (or, unnamed, by their root fields,
// "query timeSlots"); at most maxOperations names have their own entry
// (see operationNames), and operations refused before they ran are all
// RefusedOperation.
func (m *Metrics) GraphQL() graphql.HandlerExtension { return graphQLTimer{m} }

type graphQLTimer struct{ m *Metrics }

var (
	_ graphql.HandlerExtension    = graphQLTimer{}
	_ graphql.ResponseInterceptor = graphQLTimer{}
)

func (graphQLTimer) ExtensionName() string                   { return "TimeslotsMetrics" }
func (graphQLTimer) Validate(graphql.ExecutableSchema) error { return nil }

func (g graphQLTimer) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	// An operation refused before it ran (parsing, validation, variables,
	// limits) reaches response interceptors with its errors already
	// gathered; one that runs starts without any.
	refused := len(graphql.GetErrors(ctx)) > 0
	resp := next(ctx)
	if !graphql.HasOperationContext(ctx) {
		return resp
	}
	oc := graphql.GetOperationContext(ctx)
	start := oc.Stats.OperationStart
	if start.IsZero() {
		return resp
	}
	if !refused && oc.Operation != nil && oc.Operation.Operation == ast.Subscription {
		// Each event of a subscription is a response of its own, timed
		// from the subscribe: the live metrics count them instead.
		return resp
	}
	took := time.Since(start)
	outcome := "ok"
	if resp == nil || len(resp.Errors) > 0 {
		outcome = "error"
	}
	if resp != nil && carriesInternalError(resp) {
		g.m.internal.Inc()
	}
	if refused {
		g.m.observeOperation(RefusedOperation, outcome, took)
		return resp
	}
	// A refused operation's fields are not believed; one that ran passed
	// validation, so its root fields are the schema's.
	g.observe(operationName(oc), rootFields(oc), outcome, took)
	return resp
}

// Recorder answers what InterceptResponse records for a successful
// operation like oc's: the GraphQL edge's raw path answers operations the
// extension never sees from the read cache, and records them with it
// (graph.OperationRecorder).
func (g graphQLTimer) Recorder(oc *graphql.OperationContext) func(took time.Duration) {
	name, fields := operationName(oc), rootFields(oc)
	return func(took time.Duration) { g.observe(name, fields, "ok", took) }
}

// observe records one operation that ran: its root fields' times and its
// own.
func (g graphQLTimer) observe(name string, fields []string, outcome string, took time.Duration) {
	for _, field := range fields {
		g.m.rootFields.WithLabelValues(field).Observe(took.Seconds())
	}
	g.m.observeOperation(name, outcome, took)
}

// carriesInternalError reports whether an answer carries an error the
// presenter coded INTERNAL_SERVER_ERROR.
func carriesInternalError(resp *graphql.Response) bool {
	for _, e := range resp.Errors {
		if code, _ := e.Extensions["code"].(string); code == string(apperr.Internal) {
			return true
		}
	}
	return false
}

// rootFields answers the root fields an operation selects, each once, in
// the order written, through fragments and honouring @skip and @include.
func rootFields(oc *graphql.OperationContext) []string {
	op := oc.Operation
	if op == nil {
		return nil
	}
	var out []string
	for _, f := range graphql.CollectFields(oc, op.SelectionSet, []string{"Query", "Mutation", "Subscription"}) {
		if !slices.Contains(out, f.Name) {
			out = append(out, f.Name)
		}
	}
	return out
}

// graphQLPrefix starts the GraphQL operations' names in the performance
// record.
const graphQLPrefix = "graphql "

// observeOperation records one operation that took took under its entry,
// or under OtherOperation when it has none.
func (m *Metrics) observeOperation(name, outcome string, took time.Duration) {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if name != RefusedOperation {
		name = m.opNames.name(name)
	}
	m.operations.WithLabelValues(name, outcome).Observe(took.Seconds())
	m.perf.Observe(graphQLPrefix+name, took)
}

// operationName names an operation by its type and name, or by its root
// fields when it has no name.
func operationName(oc *graphql.OperationContext) string {
	op := oc.Operation
	if op == nil {
		return "unknown"
	}
	kind := string(op.Operation)
	if op.Name != "" {
		return kind + " " + op.Name
	}
	// Each root field once, in the order written: aliases repeating a
	// field make no new name.
	var fields []string
	for _, sel := range op.SelectionSet {
		if f, ok := sel.(*ast.Field); ok && !slices.Contains(fields, f.Name) {
			fields = append(fields, f.Name)
		}
	}
	if len(fields) == 0 {
		return kind
	}
	return kind + " " + strings.Join(fields, ",")
}
