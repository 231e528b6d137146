package metrics

import "github.com/prometheus/client_golang/prometheus"

// liveMetrics are the figures of GraphQL subscriptions over websockets.
type liveMetrics struct {
	connections   prometheus.Gauge
	subscriptions prometheus.Gauge
	events        *prometheus.CounterVec
	delivered     prometheus.Counter
	dropped       prometheus.Counter
}

func newLiveMetrics() liveMetrics {
	l := liveMetrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "websocket_connections",
			Help: "Open GraphQL websocket connections.",
		}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace, Name: "subscriptions_active",
			Help: "Running GraphQL subscriptions.",
		}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "subscription_events_total",
			Help: "Slot changes sent to subscriptions (delivered), and those a subscription's full buffer could not take (dropped: the subscription ends with SUBSCRIPTION_OVERFLOW).",
		}, []string{"outcome"}),
	}
	l.delivered = l.events.WithLabelValues("delivered")
	l.dropped = l.events.WithLabelValues("dropped")
	return l
}

// Live answers the observer of the GraphQL edge's websockets
// (graph.LiveObserver).
func (m *Metrics) Live() *LiveObserver { return &LiveObserver{m: &m.live} }

// LiveObserver counts websocket connections, subscriptions and the events
// they are sent.
type LiveObserver struct{ m *liveMetrics }

// ConnectionOpened counts an open connection.
func (o *LiveObserver) ConnectionOpened() { o.m.connections.Inc() }

// ConnectionClosed counts a connection out.
func (o *LiveObserver) ConnectionClosed() { o.m.connections.Dec() }

// SubscriptionStarted counts a running subscription.
func (o *LiveObserver) SubscriptionStarted() { o.m.subscriptions.Inc() }

// SubscriptionEnded counts a subscription out.
func (o *LiveObserver) SubscriptionEnded() { o.m.subscriptions.Dec() }

// EventDelivered counts a change handed to a subscription's client.
func (o *LiveObserver) EventDelivered() { o.m.delivered.Inc() }

// EventDropped counts a change a subscription's full buffer could not take.
func (o *LiveObserver) EventDropped() { o.m.dropped.Inc() }
