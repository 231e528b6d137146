package metrics

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"timeslots/internal/httpx"
)

// readiness follows the answers of the readiness check: the latest one
// (timeslots_ready) and how often it turned (timeslots_readiness_changes_total),
// so a replica that keeps dropping out of its balancer shows.
type readiness struct {
	ready   prometheus.Gauge
	changes prometheus.Counter

	mu      sync.Mutex
	checked bool // a check has answered
	last    bool // its answer
}

func newReadiness() *readiness {
	return &readiness{
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "ready",
			Help: "1 when the latest readiness check (/readyz) answered ready, else 0 (0 before the first check).",
		}),
		changes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "readiness_changes_total",
			Help: "Readiness checks (/readyz) whose answer differed from the previous check's.",
		}),
	}
}

// record notes one check's answer.
func (r *readiness) record(ready bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.checked && ready != r.last {
		r.changes.Inc()
	}
	r.checked, r.last = true, ready
	if ready {
		r.ready.Set(1)
	} else {
		r.ready.Set(0)
	}
}

// Readiness wraps the readiness check: an answer of 200 is ready, any
// other is not.
func (m *Metrics) Readiness(check http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &httpx.StatusRecorder{ResponseWriter: w}
		check.ServeHTTP(rec, r)
		m.readiness.record(rec.Status() == http.StatusOK)
	})
}
