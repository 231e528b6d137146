package main

import (
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"timeslots/graph"
	"timeslots/internal/auth/verifier"
	"timeslots/internal/config"
	"timeslots/internal/console"
	"timeslots/internal/database"
	"timeslots/internal/feed"
	"timeslots/internal/httpx"
	"timeslots/internal/jobs"
	"timeslots/internal/metrics"
	"timeslots/internal/ratelimit"
	"timeslots/internal/readcache"
	"timeslots/internal/rest"
	"timeslots/internal/slots"
	"timeslots/internal/webhooks"
)

// Paths of the endpoints that are not under rest.Prefix.
const (
	graphQLPath    = "/graphql"
	playgroundPath = "/playground"
	metricsPath    = "/metrics"
)

// application holds what the HTTP edges need; routes wires them.
type application struct {
	cfg    *config.Config
	logger *slog.Logger
	db     *database.DB
	slots  *slots.Manager
	// feed carries the committed changes to slots (subscriptions,
	// webhooks and the read cache consume it); it is never nil.
	feed *feed.Feed
	// live serves subscriptions to the feed over websockets (routes builds
	// it; serve closes its connections on shutdown).
	live *graph.Live
	// answers keeps whole answers of public slot reads (nil with
	// CACHE_MAX_BYTES=0), shared by GraphQL and REST.
	answers *readcache.Cache
	jobs    *jobs.Scheduler // nil when SCHEDULER_ENABLED=false
	redis   *redis.Client   // nil without REDIS_URL
	// customers verifies end users' tokens; nil without AUTH_JWKS_URL or
	// AUTH_JWT_SECRET.
	customers *verifier.Verifier

	metrics  *metrics.Metrics
	webhooks *webhooks.Service

	// draining is set on SIGTERM: /readyz answers 503 from then on.
	draining atomic.Bool
	stopOnce sync.Once
}

// routes builds the whole HTTP handler.
func (a *application) routes() (http.Handler, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.Handle("GET /readyz", a.metrics.Readiness(http.HandlerFunc(a.readyz)))
	mux.Handle("GET "+metricsPath, a.metrics.Handler())

	// Customers' tokens are read where customers are served: GraphQL and
	// REST.
	// Browsers sign in at /admin/login; the session cookie then stands for
	// the admin token on the console's own requests.
	sessions := httpx.NewSessions(a.cfg.AdminToken, a.cfg.AdminSessionTTL)
	gate := httpx.NewAdminGate(a.cfg.AdminToken,
		httpx.WithCustomers(a.customers, httpx.Paths{graphQLPath, graphQLPath + "/", rest.Prefix}),
		httpx.WithSessions(sessions))
	// Public endpoints are limited per client; requests with the admin
	// token are not counted.
	limiter, err := ratelimit.New(ratelimit.Options{
		RPS: a.cfg.RateLimitRPS, Burst: a.cfg.RateLimitBurst,
		Redis: a.redis, Prefix: a.cfg.RedisPrefix, Timeout: a.cfg.RedisTimeout, Logger: a.logger,
		Exempt: func(r *http.Request) bool { return gate.HasToken() && httpx.Admin(r.Context()) == nil },
	})
	if err != nil {
		return nil, err
	}
	api, err := rest.New(rest.Options{
		Slots: a.slots, Admin: gate,
		Maintenance: maintenance(a.cfg, a.slots),
		Performance: a.metrics,
		Answers:     a.answers, AnswerAliasBytes: answerAliasBytes(a.cfg),
	})
	if err != nil {
		return nil, err
	}
	mux.Handle(rest.Prefix, limiter.Middleware(api))

	// GraphQL: queries by POST or GET, mutations by POST only (GET answers
	// them 405), subscriptions over a websocket (an upgrading GET);
	// GraphiQL at /playground, and / leads there.
	gqlOpt := graph.Options{
		Production: a.cfg.Production(), Introspection: a.cfg.Introspection,
		MaxComplexity: a.cfg.MaxComplexity, MaxDepth: a.cfg.MaxDepth, MaxMutations: a.cfg.MaxMutations,
		QueryCacheBytes: a.cfg.QueryCacheBytes, Webhooks: a.webhooks, Answers: a.answers,
		AnswerAliasBytes: answerAliasBytes(a.cfg),
	}
	// A connection may open all its subscriptions at once, then
	// WS_SUBSCRIBE_RPS a second.
	subscribes, err := ratelimit.NewCounter(a.cfg.WSSubscribeRPS, a.cfg.MaxSubscriptions)
	if err != nil {
		return nil, err
	}
	a.live = graph.NewLive(graph.LiveOptions{
		Feed: a.feed, InitTimeout: a.cfg.WSInitTimeout, PingInterval: a.cfg.WSPingInterval,
		MaxConnections: a.cfg.MaxWSConnections, MaxSubscriptions: a.cfg.MaxSubscriptions, Subscribes: subscribes,
		Buffer: a.cfg.SubscriptionBuffer, MaxMessageBytes: a.cfg.MaxBodyBytes, Origins: a.cfg.CORSOrigins,
		Authorize: gate.Authorize, Observer: a.metrics.Live(), Logger: a.logger,
	})
	gqlOpt.Live = a.live
	gql := limiter.Middleware(graph.NewHandler(gqlOpt, a.slots, a.metrics.GraphQL()))
	mux.Handle("POST "+graphQLPath, gql)
	mux.Handle("GET "+graphQLPath, gql)
	mux.Handle("OPTIONS "+graphQLPath, gql)
	mux.Handle("GET "+playgroundPath, graph.Playground(gqlOpt, graph.PlaygroundLinks{
		GraphQL: graphQLPath, Console: console.Path, Login: console.LoginPath}))
	mux.Handle("GET /{$}", http.RedirectHandler(playgroundPath, http.StatusFound))

	// The admin console: sign-in, the page, its embedded assets.
	con, err := console.New(console.Options{
		Slots: a.slots, Gate: gate, Sessions: sessions,
		GenerateDays: a.cfg.GenerateDays, CleanupDaysOld: a.cfg.CleanupDaysOld,
		PlaygroundPath: playgroundPath, GraphQLPath: graphQLPath, AdminAPI: rest.AdminPrefix + "time-slots",
	})
	if err != nil {
		return nil, err
	}
	mux.Handle(console.Path, con)
	mux.Handle(console.Path+"/", con)

	// From the outermost: find the client, log, set the common headers
	// (no-store on GraphQL, admin and metrics answers), answer browsers,
	// give refusals in front of GraphQL its error shape, give the request
	// its deadline (which the body's read is held to), refuse oversized
	// headers and oversized or late bodies, decide admin access, time it
	// by route, answer what no route takes in the error shape. The route
	// timer wraps the mux (through Unrouted, which leaves routed requests
	// to it): it reads the pattern the mux matched back from the request.
	h := a.metrics.Routes(httpx.Unrouted(mux))
	h = gate.Middleware(h)
	h = httpx.LimitBody(a.cfg.MaxBodyBytes)(h)
	h = httpx.LimitHeaders(httpx.MaxHeaderBytes)(h)
	h = httpx.Deadline(a.cfg.RequestTimeout)(h)
	h = httpx.Refusals(graph.WriteRefusal, httpx.Paths{graphQLPath, graphQLPath + "/"})(h)
	h = httpx.CORS(a.cfg.CORSOrigins)(h)
	h = httpx.SecurityHeaders(httpx.Paths{graphQLPath, rest.AdminPrefix, metricsPath, console.Path, console.Path + "/"})(h)
	h = httpx.RequestLog(a.logger)(h)
	h = httpx.ClientIPs(a.cfg.TrustedProxies)(h)
	return h, nil
}

// answerAliasBytes is what each edge may remember of the requests whose
// answers the read cache keeps (by their raw bytes, so that they are
// answered again before they are parsed): a sixteenth of the cache's
// budget. An alias is about 300 bytes and a 20-slot page about 5 KB, so
// that holds an alias for about as many requests as the cache holds
// pages.
func answerAliasBytes(cfg *config.Config) int64 { return cfg.CacheMaxBytes / 16 }

// readyz answers 200 when the database answers and no migration is
// pending, and 503 once the server is shutting down. The primary alone
// decides: the body lists the read replicas and their states, but a
// replica that is skipped only sends its reads to the primary.
func (a *application) readyz(w http.ResponseWriter, r *http.Request) {
	status, reason := http.StatusOK, ""
	switch {
	case a.draining.Load():
		status, reason = http.StatusServiceUnavailable, "shutting down"
	case a.slots.Ping(r.Context()) != nil:
		status, reason = http.StatusServiceUnavailable, "database unreachable"
	default:
		if pending, err := a.db.Pending(r.Context()); err != nil || pending {
			status, reason = http.StatusServiceUnavailable, "migrations pending"
		}
	}
	body := readiness{Status: "ready", Reason: reason, Replicas: replicaStates(a.db.Replicas())}
	if status != http.StatusOK {
		body.Status = "unavailable"
	}
	httpx.WriteJSON(w, status, body)
}

// readiness is the body of /readyz.
type readiness struct {
	Status   string          `json:"status"`
	Reason   string          `json:"reason,omitempty"`
	Replicas []replicaReport `json:"replicas,omitempty"`
}

// replicaReport is one read replica in /readyz.
type replicaReport struct {
	Name       string  `json:"name"`
	State      string  `json:"state"`
	LagSeconds float64 `json:"lagSeconds"`
}

func replicaStates(r *database.Replicas) []replicaReport {
	if r == nil {
		return nil
	}
	var out []replicaReport
	for _, s := range r.Status() {
		out = append(out, replicaReport{Name: s.Name, State: string(s.State), LagSeconds: s.Lag.Seconds()})
	}
	return out
}
