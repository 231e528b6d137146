package metrics

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"timeslots/internal/slots"
)

// Bounds of the horizon metrics.
const (
	// MaxHorizonProviders is the most active providers that get series of
	// their own (labelled provider_id): beyond it only the count of short
	// horizons is exported, so the label set stays small.
	MaxHorizonProviders = 50
	// horizonTTL is how long one reading of the horizons answers scrapes,
	// so scrapes never add to the database's load more than once per TTL.
	horizonTTL = 30 * time.Second
	// horizonTimeout bounds one reading.
	horizonTimeout = 10 * time.Second
)

// HorizonReader reads every active provider's horizon (slots.Manager.Horizons).
type HorizonReader func(context.Context) ([]slots.ProviderHorizon, error)

// horizonCollector exports the providers' generation horizons, read at
// scrape time at most once per ttl: concurrent scrapes wait for the one
// reading, and a failed reading is kept as long as a good one (its scrape
// then has no horizon series).
type horizonCollector struct {
	read HorizonReader
	ttl  time.Duration
	now  func() time.Time

	days, target, short *prometheus.Desc

	mu       sync.Mutex
	readAt   time.Time
	horizons []slots.ProviderHorizon
	err      error
}

func newHorizonCollector(read HorizonReader) *horizonCollector {
	return &horizonCollector{
		read: read, ttl: horizonTTL, now: time.Now,
		days: prometheus.NewDesc(namespace+"_provider_horizon_days",
			"Local days from the provider's today through the date of its last slot, today included (0: no slot from today on); only while there are at most 50 active providers.",
			[]string{"provider_id"}, nil),
		target: prometheus.NewDesc(namespace+"_provider_horizon_target_days",
			"Local days from the provider's today, today included, through the last date of the horizon its demand asks for on which it has working hours; only while there are at most 50 active providers.",
			[]string{"provider_id"}, nil),
		short: prometheus.NewDesc(namespace+"_providers_horizon_short",
			"Active providers whose slots end before the date their horizon's target asks for.",
			nil, nil),
	}
}

// WatchHorizons exports the generation horizons that read answers:
// timeslots_provider_horizon_days and timeslots_provider_horizon_target_days
// per active provider (while there are at most MaxHorizonProviders), and
// timeslots_providers_horizon_short.
func (m *Metrics) WatchHorizons(read HorizonReader) {
	m.reg.MustRegister(newHorizonCollector(read))
}

func (c *horizonCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.days
	ch <- c.target
	ch <- c.short
}

func (c *horizonCollector) Collect(ch chan<- prometheus.Metric) {
	hs, err := c.reading()
	if err != nil {
		return
	}
	short := 0
	for _, h := range hs {
		if h.Short() {
			short++
		}
	}
	ch <- prometheus.MustNewConstMetric(c.short, prometheus.GaugeValue, float64(short))
	if len(hs) > MaxHorizonProviders {
		return
	}
	for _, h := range hs {
		id := strconv.FormatInt(h.ProviderID, 10)
		ch <- prometheus.MustNewConstMetric(c.days, prometheus.GaugeValue, float64(h.Days), id)
		ch <- prometheus.MustNewConstMetric(c.target, prometheus.GaugeValue, float64(h.TargetDays), id)
	}
}

// reading answers the horizons read within the last ttl, or reads them.
func (c *horizonCollector) reading() ([]slots.ProviderHorizon, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if !c.readAt.IsZero() && now.Sub(c.readAt) < c.ttl && now.Sub(c.readAt) >= 0 {
		return c.horizons, c.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), horizonTimeout)
	defer cancel()
	c.horizons, c.err = c.read(ctx)
	c.readAt = now
	return c.horizons, c.err
}
