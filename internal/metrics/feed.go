package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"timeslots/internal/feed"
)

// WatchFeed exports the change feed's counters, read from f at scrape
// time: events this replica published and received from other replicas,
// its subscribers and those dropped for falling behind, and the state of
// its PostgreSQL listener.
func (m *Metrics) WatchFeed(f *feed.Feed) {
	counter := func(name, help string, read func(feed.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help},
			func() float64 { return float64(read(f.Stats())) })
	}
	gauge := func(name, help string, read func(feed.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help},
			func() float64 { return read(f.Stats()) })
	}
	m.reg.MustRegister(
		counter("feed_events_published_total", "Change-feed events this replica's own changes published.",
			func(s feed.Stats) uint64 { return s.Published }),
		counter("feed_events_received_total", "Change-feed events received from other replicas through PostgreSQL (REFETCH signals included).",
			func(s feed.Stats) uint64 { return s.Received }),
		counter("feed_events_sent_total", "Change-feed events this replica sent to the other replicas (NOTIFY, PostgreSQL).",
			func(s feed.Stats) uint64 { return s.Sent }),
		counter("feed_events_unsent_total", "Change-feed events this replica could not send to the other replicas (a full queue, a failed send, or still queued at shutdown); the others were told to refetch.",
			func(s feed.Stats) uint64 { return s.Unsent }),
		counter("feed_subscriber_overflows_total", "Change-feed subscriptions ended because their consumer fell behind (its buffer filled up).",
			func(s feed.Stats) uint64 { return s.Overflows }),
		counter("feed_listener_reconnects_total", "Times the change feed's PostgreSQL listener reconnected after losing its connection.",
			func(s feed.Stats) uint64 { return s.Reconnects }),
		gauge("feed_subscribers", "Open change-feed subscriptions.",
			func(s feed.Stats) float64 { return float64(s.Subscribers) }),
		gauge("feed_listener_connected", "1 while the change feed's PostgreSQL listener is connected (always 1 on SQLite, whose feed needs no connection).",
			func(s feed.Stats) float64 {
				if s.Connected {
					return 1
				}
				return 0
			}),
	)
}
