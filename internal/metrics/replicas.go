package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"timeslots/internal/database"
)

var (
	replicaLagDesc = prometheus.NewDesc(namespace+"_replica_lag_seconds",
		"How long the oldest WAL a read replica has not replayed has been on the primary, at its last check (0: caught up).",
		[]string{"replica"}, nil)
	replicaLagBytesDesc = prometheus.NewDesc(namespace+"_replica_lag_bytes",
		"WAL a read replica has still to replay, at its last check.",
		[]string{"replica"}, nil)
	replicaStateDesc = prometheus.NewDesc(namespace+"_replica_state",
		"1 for a read replica's state (healthy serves reads; lagging, unreachable and not_standby are skipped), 0 for the others.",
		[]string{"replica", "state"}, nil)
	replicaReadsDesc = prometheus.NewDesc(namespace+"_replica_reads_total",
		"Reads sent to a read replica.",
		[]string{"replica"}, nil)
	replicaRetriedDesc = prometheus.NewDesc(namespace+"_replica_reads_retried_total",
		"Reads that failed to reach a read replica and were answered by the primary.",
		[]string{"replica"}, nil)
)

// WatchReplicas reports the read replicas' lag and state (database.Replicas.Status)
// at every scrape; nothing without replicas.
func (m *Metrics) WatchReplicas(r *database.Replicas) {
	if r != nil {
		m.reg.MustRegister(replicaCollector{r})
	}
}

type replicaCollector struct{ r *database.Replicas }

func (replicaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- replicaLagDesc
	ch <- replicaLagBytesDesc
	ch <- replicaStateDesc
	ch <- replicaReadsDesc
	ch <- replicaRetriedDesc
}

func (c replicaCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.r.Status() {
		ch <- prometheus.MustNewConstMetric(replicaLagDesc, prometheus.GaugeValue, s.Lag.Seconds(), s.Name)
		ch <- prometheus.MustNewConstMetric(replicaLagBytesDesc, prometheus.GaugeValue, float64(s.LagBytes), s.Name)
		for _, state := range database.ReplicaStates {
			v := 0.0
			if state == s.State {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(replicaStateDesc, prometheus.GaugeValue, v, s.Name, string(state))
		}
		ch <- prometheus.MustNewConstMetric(replicaReadsDesc, prometheus.CounterValue, float64(s.Reads), s.Name)
		ch <- prometheus.MustNewConstMetric(replicaRetriedDesc, prometheus.CounterValue, float64(s.Retried), s.Name)
	}
}
