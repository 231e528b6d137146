package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"timeslots/internal/readcache"
)

// WatchAnswers exports the read cache's counters, read at each scrape:
// hits, misses, evictions (to stay within CACHE_MAX_BYTES), invalidations
// (answers dropped by a change, a purge or their time), the bytes and
// answers kept, and whether it is on (0 while the change feed is down).
// A nil cache (CACHE_MAX_BYTES=0) exports nothing.
func (m *Metrics) WatchAnswers(c *readcache.Cache) {
	if c == nil {
		return
	}
	counter := func(name, help string, v func(readcache.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help},
			func() float64 { return float64(v(c.Stats())) })
	}
	gauge := func(name, help string, v func(readcache.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help},
			func() float64 { return v(c.Stats()) })
	}
	m.reg.MustRegister(
		counter("cache_hits_total", "Public slot reads answered from the read cache.",
			func(s readcache.Stats) uint64 { return s.Hits }),
		counter("cache_misses_total", "Cacheable slot reads the read cache did not hold, answered afresh.",
			func(s readcache.Stats) uint64 { return s.Misses }),
		counter("cache_evictions_total", "Answers the read cache dropped to stay within CACHE_MAX_BYTES.",
			func(s readcache.Stats) uint64 { return s.Evictions }),
		counter("cache_invalidations_total", "Answers the read cache dropped because a change touched them, the feed asked for a refetch or went down, or their time was up.",
			func(s readcache.Stats) uint64 { return s.Invalidations }),
		gauge("cache_bytes", "What the answers the read cache holds are counted as, in bytes.",
			func(s readcache.Stats) float64 { return float64(s.Bytes) }),
		gauge("cache_entries", "Answers the read cache holds.",
			func(s readcache.Stats) float64 { return float64(s.Entries) }),
		gauge("cache_enabled", "1 while the read cache answers, 0 while it is off because the change feed lost its connection.",
			func(s readcache.Stats) float64 {
				if s.Enabled {
					return 1
				}
				return 0
			}),
	)
}
