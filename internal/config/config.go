// Package config reads the whole configuration of timeslots from environment
// variables, once, into one struct of plain validated values. Invalid
// values stop start-up with one line that names the variable (and never
// holds a secret). It depends on none of the packages that do the work:
// the composition root maps these values onto each edge's own options.
// The AUTH_* values are checked with internal/auth's own rules
// (Options.Validate, LooksLikeJWT), which read nothing but their input.
package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"

	"timeslots/internal/auth"
	"timeslots/internal/schedule"
)

// Config is everything the server can be told.
type Config struct {
	Env string // "development" or "production"
	// DatabaseURL is DATABASE_URL as given (it may hold a password: never
	// logged); database.ParseURL reads it.
	DatabaseURL string
	// DatabaseDirectURL is DATABASE_DIRECT_URL: a direct PostgreSQL
	// connection for what needs a session (migrations' advisory lock, the
	// change feed's LISTEN) when DATABASE_URL goes through a pooler in
	// transaction mode; empty: DATABASE_URL is direct. May hold a password.
	DatabaseDirectURL string
	// DatabaseReplicaURLs are DATABASE_REPLICA_URLS: the read replicas
	// that serve slot and provider reads and stats. May hold passwords.
	DatabaseReplicaURLs []string
	// ReplicaMaxLag is how far behind the primary a replica may be and
	// still serve reads.
	ReplicaMaxLag time.Duration
	Host          string
	Port          int
	AdminToken    string // secret: never logged
	// AdminSessionTTL is how long a console sign-in lasts.
	AdminSessionTTL time.Duration

	// End-user authentication is on when AuthJWKSURL or AuthJWTSecret is
	// set (AUTH_*); the composition root maps these onto auth.Options.
	AuthJWKSURL   string // may hold a password: never logged
	AuthJWTSecret string // secret: never logged
	AuthIssuer    string
	AuthAudience  string
	AuthRequired  bool // customer operations refuse requests without a valid token

	RateLimitRPS   float64 // 0 disables
	RateLimitBurst int
	RedisURL       string         // redis://, rediss:// or unix://; may hold a password: never logged
	RedisPrefix    string         // starts every rate-limit key in Redis
	RedisTimeout   time.Duration  // bounds one Redis round trip of the rate limits
	TrustedProxies []netip.Prefix // X-Forwarded-For is believed only from these

	SchedulerEnabled bool
	GenerateSchedule schedule.Schedule
	GenerateDays     int
	CleanupSchedule  schedule.Schedule
	CleanupDaysOld   int
	// GenerateMaxDays is the ceiling of each provider's demand-driven
	// generation horizon; GenerateDays is its floor.
	GenerateMaxDays int
	// JobLease is how long a claimed job run holds its tick unless its
	// runner renews it; a lapsed lease is taken over by another replica.
	JobLease time.Duration
	// HoldTTL is how long a slot hold keeps its seat when the request
	// does not say.
	HoldTTL time.Duration

	SeedDemo      bool
	Introspection bool
	CORSOrigins   []string

	DBMaxConns int
	// DBReadConcurrency bounds the slot listings running on the database
	// at once (0: no bound).
	DBReadConcurrency int
	RequestTimeout    time.Duration
	MaxBodyBytes      int64
	MaxComplexity     int
	MaxDepth          int
	MaxMutations      int
	// QueryCacheBytes bounds the GraphQL documents kept parsed for
	// queries sent again (0: none are kept).
	QueryCacheBytes int64
	// Websocket subscriptions: how long a connection may take to send
	// connection_init, how often an idle one is pinged, how many
	// connections the server keeps open, how many subscriptions one
	// connection may run, and how many events a subscription may have
	// waiting before it is ended as too slow.
	WSInitTimeout    time.Duration
	WSPingInterval   time.Duration
	MaxWSConnections int
	MaxSubscriptions int
	// WSSubscribeRPS bounds the subscribe messages of one connection: a
	// second's worth on average, MaxSubscriptions at once (0: no limit).
	WSSubscribeRPS     float64
	SubscriptionBuffer int
	// CacheMaxBytes bounds the answers of public slot reads kept for when
	// they are asked again (0: the read cache is off); CacheMaxAge bounds
	// how long one is kept, for what the change feed does not report.
	CacheMaxBytes int64
	CacheMaxAge   time.Duration
	ShutdownGrace time.Duration

	// Webhook deliveries (WEBHOOK_*); the composition root maps these
	// onto webhooks.Options.
	WebhookMaxAttempts  int
	WebhookTimeout      time.Duration
	WebhookBackoff      time.Duration
	WebhookAllowPrivate bool
	WebhookWorkers      int
	WebhookRefresh      time.Duration
	WebhookPoll         time.Duration

	// ShutdownDrain is how long /readyz answers 503 after SIGTERM, while
	// everything else is served, before the server stops accepting.
	ShutdownDrain time.Duration
	LogLevel      string
}

// DirectURL answers the URL of a direct PostgreSQL connection, for what
// needs a session: DATABASE_DIRECT_URL, else DATABASE_URL.
func (c *Config) DirectURL() string {
	if c.DatabaseDirectURL != "" {
		return c.DatabaseDirectURL
	}
	return c.DatabaseURL
}

// AuthEnabled reports whether end-user authentication is on.
func (c *Config) AuthEnabled() bool { return c.AuthJWKSURL != "" || c.AuthJWTSecret != "" }

// Production reports whether APP_ENV=production.
func (c *Config) Production() bool { return c.Env == "production" }

// Addr answers the listen address.
func (c *Config) Addr() string { return fmt.Sprintf("%s:%d", c.Host, c.Port) }

// Load reads the configuration through getenv (os.Getenv in production,
// a map in tests).
func Load(getenv func(string) string) (*Config, error) {
	r := reader{getenv: getenv}
	c := &Config{}
	c.Env = r.str("APP_ENV", "development")
	if c.Env != "development" && c.Env != "production" {
		return nil, fmt.Errorf("APP_ENV must be development or production, got %q", c.Env)
	}
	prod := c.Production()
	c.DatabaseURL = r.str("DATABASE_URL", "")
	c.DatabaseDirectURL = r.str("DATABASE_DIRECT_URL", "")
	c.DatabaseReplicaURLs = r.list("DATABASE_REPLICA_URLS")
	c.ReplicaMaxLag = r.durationRange("REPLICA_MAX_LAG", time.Second, 10*time.Millisecond, time.Hour)
	c.Host = r.str("HOST", map[bool]string{true: "0.0.0.0", false: "127.0.0.1"}[prod])
	c.Port = r.intRange("PORT", 3000, 0, 65535)
	c.AdminToken = r.str("ADMIN_TOKEN", "")
	if prod && c.AdminToken == "" && r.err == nil {
		return nil, fmt.Errorf("ADMIN_TOKEN must be set when APP_ENV=production")
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 && r.err == nil {
		return nil, fmt.Errorf("ADMIN_TOKEN must be at least 16 characters")
	}
	c.AdminSessionTTL = r.durationRange("ADMIN_SESSION_TTL", 8*time.Hour, time.Minute, 7*24*time.Hour)
	c.AuthJWKSURL = r.str("AUTH_JWKS_URL", "")
	c.AuthJWTSecret = r.str("AUTH_JWT_SECRET", "")
	c.AuthIssuer = r.str("AUTH_ISSUER", "")
	c.AuthAudience = r.str("AUTH_AUDIENCE", "")
	c.AuthRequired = r.boolean("AUTH_REQUIRED", false)
	r.checkAuth(c)
	c.RateLimitRPS = r.float("RATE_LIMIT_RPS", 50, 0, 1e6)
	c.RateLimitBurst = r.intRange("RATE_LIMIT_BURST", 100, 0, 1e6)
	c.RedisURL = r.redisURL("REDIS_URL")
	c.RedisPrefix = r.str("REDIS_PREFIX", "timeslots:ratelimit")
	c.RedisTimeout = r.duration("REDIS_TIMEOUT", 50*time.Millisecond)
	c.TrustedProxies = r.prefixes("TRUSTED_PROXIES")
	c.SchedulerEnabled = r.boolean("SCHEDULER_ENABLED", true)
	c.GenerateSchedule = r.schedule("GENERATE_SCHEDULE", "0 2 * * *")
	c.GenerateDays = r.intRange("GENERATE_DAYS_AHEAD", 30, 1, 365)
	c.GenerateMaxDays = r.intRange("GENERATE_MAX_DAYS_AHEAD", max(90, c.GenerateDays), 1, 365)
	if c.GenerateMaxDays < c.GenerateDays && r.err == nil {
		r.fail("GENERATE_MAX_DAYS_AHEAD must be at least GENERATE_DAYS_AHEAD (%d), got %d", c.GenerateDays, c.GenerateMaxDays)
	}
	c.CleanupSchedule = r.schedule("CLEANUP_SCHEDULE", "0 3 * * 0")
	c.CleanupDaysOld = r.intRange("CLEANUP_DAYS_OLD", 30, 0, 3650)
	c.JobLease = r.durationRange("JOB_LEASE", time.Minute, time.Second, time.Hour)
	c.HoldTTL = r.durationRange("HOLD_TTL", 10*time.Minute, time.Minute, time.Hour)
	c.SeedDemo = r.boolean("SEED_DEMO", !prod)
	c.Introspection = r.boolean("INTROSPECTION", !prod)
	c.CORSOrigins = r.origins("CORS_ORIGINS")
	c.DBMaxConns = r.intRange("DB_MAX_CONNS", 0, 0, 1000)
	c.DBReadConcurrency = r.intRange("DB_READ_CONCURRENCY", 2*runtime.GOMAXPROCS(0), 0, 1000)
	c.RequestTimeout = r.duration("REQUEST_TIMEOUT", 10*time.Second)
	c.MaxBodyBytes = int64(r.intRange("MAX_BODY_BYTES", 1<<20, 1024, 1<<30))
	c.MaxComplexity = r.intRange("GRAPHQL_MAX_COMPLEXITY", 5000, 1, 1e9)
	c.MaxDepth = r.intRange("GRAPHQL_MAX_DEPTH", 10, 1, 1000)
	c.MaxMutations = r.intRange("GRAPHQL_MAX_MUTATIONS", 10, 1, 1000)
	c.QueryCacheBytes = int64(r.intRange("QUERY_CACHE_BYTES", 4<<20, 0, 1<<30))
	c.WSInitTimeout = r.durationRange("WS_INIT_TIMEOUT", 10*time.Second, 100*time.Millisecond, time.Minute)
	c.WSPingInterval = r.durationRange("WS_PING_INTERVAL", 20*time.Second, 100*time.Millisecond, 10*time.Minute)
	c.MaxWSConnections = r.intRange("MAX_WS_CONNECTIONS", 10_000, 1, 1_000_000)
	c.MaxSubscriptions = r.intRange("MAX_SUBSCRIPTIONS_PER_CONNECTION", 20, 1, 1000)
	c.WSSubscribeRPS = r.float("WS_SUBSCRIBE_RPS", 5, 0, 1000)
	c.SubscriptionBuffer = r.intRange("SUBSCRIPTION_BUFFER", 256, 1, 100_000)
	c.CacheMaxBytes = int64(r.intRange("CACHE_MAX_BYTES", 16<<20, 0, 1<<34))
	c.CacheMaxAge = r.durationRange("CACHE_MAX_AGE", time.Minute, time.Second, time.Hour)
	c.ShutdownGrace = r.duration("SHUTDOWN_TIMEOUT", 20*time.Second)
	c.ShutdownDrain = r.durationRange("SHUTDOWN_DRAIN", map[bool]time.Duration{true: 5 * time.Second, false: 0}[prod], 0, 5*time.Minute)
	c.WebhookMaxAttempts = r.intRange("WEBHOOK_MAX_ATTEMPTS", 10, 1, 50)
	c.WebhookTimeout = r.durationRange("WEBHOOK_TIMEOUT", 10*time.Second, 100*time.Millisecond, time.Minute)
	c.WebhookBackoff = r.durationRange("WEBHOOK_BACKOFF", 30*time.Second, 10*time.Millisecond, time.Hour)
	c.WebhookAllowPrivate = r.boolean("WEBHOOK_ALLOW_PRIVATE", false)
	c.WebhookWorkers = r.intRange("WEBHOOK_WORKERS", 20, 1, 500)
	c.WebhookRefresh = r.durationRange("WEBHOOK_REFRESH", 5*time.Second, 10*time.Millisecond, 5*time.Minute)
	c.WebhookPoll = r.durationRange("WEBHOOK_POLL", 200*time.Millisecond, 10*time.Millisecond, time.Hour)
	c.LogLevel = r.str("LOG_LEVEL", "info")
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		if r.err == nil {
			r.err = fmt.Errorf("LOG_LEVEL must be debug, info, warn or error, got %q", c.LogLevel)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
}

// reader collects the first error, so Load reads straight through.
type reader struct {
	getenv func(string) string
	err    error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, args...)
	}
}

func (r *reader) str(name, def string) string {
	if v := strings.TrimSpace(r.getenv(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) intRange(name string, def, lo, hi int) int {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.fail("%s must be an integer between %d and %d, got %q", name, lo, hi, v)
		return def
	}
	return n
}

func (r *reader) float(name string, def, lo, hi float64) float64 {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < lo || f > hi {
		r.fail("%s must be a number between %g and %g, got %q", name, lo, hi, v)
		return def
	}
	return f
}

func (r *reader) boolean(name string, def bool) bool {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail("%s must be true or false, got %q", name, v)
		return def
	}
	return b
}

func (r *reader) duration(name string, def time.Duration) time.Duration {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.fail("%s must be a positive duration such as 10s, got %q", name, v)
		return def
	}
	return d
}

// durationRange reads a duration between lo and hi inclusive.
func (r *reader) durationRange(name string, def, lo, hi time.Duration) time.Duration {
	v := strings.TrimSpace(r.getenv(name))
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		r.fail("%s must be a duration between %s and %s, got %q", name, lo, hi, v)
		return def
	}
	return d
}

// schedule parses a cron expression or "@every <duration>" as the
// scheduler will, so every accepted schedule can run.
func (r *reader) schedule(name, def string) schedule.Schedule {
	v := r.str(name, def)
	s, err := schedule.Parse(v)
	if err != nil {
		r.fail("%s must be a 5-field cron expression (UTC) or \"@every <duration>\" of at least 1s, got %q", name, v)
		return schedule.MustParse(def)
	}
	return s
}

// checkAuth checks the AUTH_* values together, with the rules verifier.New
// applies (its messages name the variable and never hold the secret or the
// URL), and refuses an ADMIN_TOKEN that has the shape of a JWT while
// authentication is on, so the two kinds of bearer value never overlap:
// one that looks like a JWT is always a customer's.
func (r *reader) checkAuth(c *Config) {
	if r.err != nil {
		return
	}
	o := auth.Options{
		JWKSURL: c.AuthJWKSURL, JWTSecret: c.AuthJWTSecret,
		Issuer: c.AuthIssuer, Audience: c.AuthAudience, Required: c.AuthRequired,
	}
	if err := o.Validate(); err != nil {
		r.err = err
		return
	}
	if c.AuthEnabled() && auth.LooksLikeJWT(c.AdminToken) {
		r.fail("ADMIN_TOKEN must not have the shape of a JWT when AUTH_JWKS_URL or AUTH_JWT_SECRET is set: such bearer values are verified as customers' tokens")
	}
}

// redisURL checks the syntax of a Redis URL; the Redis client reads the
// rest (database number, options) when the server starts. The value may
// hold a password, so the message never quotes it.
func (r *reader) redisURL(name string) string {
	v := r.str(name, "")
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
		r.fail("%s must be a redis:// or rediss:// URL", name)
		return ""
	}
	return v
}

func (r *reader) list(name string) []string {
	var out []string
	for _, s := range strings.Split(r.getenv(name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// origins reads browser origins: "*" or scheme://host[:port], nothing more.
func (r *reader) origins(name string) []string {
	out := r.list(name)
	for _, o := range out {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			r.fail("%s must list origins like https://app.example.com (or *), got %q", name, o)
			return nil
		}
	}
	return out
}

func (r *reader) prefixes(name string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range r.list(name) {
		if !strings.Contains(s, "/") {
			if a, err := netip.ParseAddr(s); err == nil {
				out = append(out, netip.PrefixFrom(a, a.BitLen()))
				continue
			}
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			r.fail("%s must list IP addresses or CIDR ranges, got %q", name, s)
			return nil
		}
		out = append(out, p.Masked())
	}
	return out
}
