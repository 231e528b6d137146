package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"timeslots/internal/jobs"
)

// standingTimeout bounds the read of the jobs' standings at a scrape.
const standingTimeout = 2 * time.Second

var (
	lastSuccessDesc = prometheus.NewDesc(namespace+"_job_last_success_tick_timestamp_seconds",
		"Scheduled tick of the job's latest successful run by any replica, from the run records (absent before its first success).",
		[]string{"job"}, nil)
	dueDesc = prometheus.NewDesc(namespace+"_job_due_timestamp_seconds",
		"First scheduled tick after the job's latest successful run: the run it owes. Long past, runs were missed or failed.",
		[]string{"job"}, nil)
)

// WatchJobs reports the jobs' standings (jobs.Maintenance.Standings) at
// every scrape. They come from the run records, so every replica reports
// the same figures, with or without a scheduler; while the database does
// not answer they are left out.
func (m *Metrics) WatchJobs(standings func(context.Context) ([]jobs.Standing, error)) {
	m.reg.MustRegister(jobStandings(standings))
}

type jobStandings func(context.Context) ([]jobs.Standing, error)

func (jobStandings) Describe(ch chan<- *prometheus.Desc) {
	ch <- lastSuccessDesc
	ch <- dueDesc
}

func (f jobStandings) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), standingTimeout)
	defer cancel()
	standings, err := f(ctx)
	if err != nil {
		return
	}
	for _, s := range standings {
		ch <- prometheus.MustNewConstMetric(lastSuccessDesc, prometheus.GaugeValue, float64(s.LastSuccess.Unix()), s.Job)
		ch <- prometheus.MustNewConstMetric(dueDesc, prometheus.GaugeValue, float64(s.Due.Unix()), s.Job)
	}
}
