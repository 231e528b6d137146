package config_test

import (
	"encoding/base64"
	"maps"
	"net/netip"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"timeslots/internal/config"
)

// load reads a configuration from env alone.
func load(env map[string]string) (*config.Config, error) {
	return config.Load(func(k string) string { return env[k] })
}

// The direct URL of session work is DATABASE_DIRECT_URL, else DATABASE_URL.
func TestDirectURLDefaultsToDatabaseURL(t *testing.T) {
	t.Parallel()
	c, err := load(map[string]string{"DATABASE_URL": "postgres://pooler:6432/ts"})
	if err != nil || c.DirectURL() != "postgres://pooler:6432/ts" {
		t.Fatalf("DirectURL() = %q (%v), want DATABASE_URL", c.DirectURL(), err)
	}
	c, err = load(map[string]string{"DATABASE_URL": "postgres://pooler:6432/ts", "DATABASE_DIRECT_URL": "postgres://db:5432/ts"})
	if err != nil || c.DirectURL() != "postgres://db:5432/ts" {
		t.Fatalf("DirectURL() = %q (%v), want DATABASE_DIRECT_URL", c.DirectURL(), err)
	}
}

// Every variable: its default, a valid value it keeps, and invalid values
// refused with one line that starts with the variable's name.
func TestEveryVariable(t *testing.T) {
	t.Parallel()
	prefixes := func(ps ...string) []netip.Prefix {
		out := make([]netip.Prefix, len(ps))
		for i, p := range ps {
			out[i] = netip.MustParsePrefix(p)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		get     func(*config.Config) any
		def     any
		valid   string
		want    any
		invalid []string // none where any value is accepted here
	}{
		{"APP_ENV", func(c *config.Config) any { return c.Env }, "development", "development", "development", []string{"staging", "prod"}},
		// DATABASE_URL is kept as given; database.ParseURL reads and checks it.
		{"DATABASE_URL", func(c *config.Config) any { return c.DatabaseURL }, "", " sqlite:./x.db ", "sqlite:./x.db", nil},
		// DATABASE_DIRECT_URL and DATABASE_REPLICA_URLS are kept as given too;
		// the composition root checks them with the database's parsers.
		{"DATABASE_DIRECT_URL", func(c *config.Config) any { return c.DatabaseDirectURL }, "", "postgres://db:5432/ts", "postgres://db:5432/ts", nil},
		{"DATABASE_REPLICA_URLS", func(c *config.Config) any { return c.DatabaseReplicaURLs }, []string(nil), " postgres://r1/ts, ,postgres://r2/ts ", []string{"postgres://r1/ts", "postgres://r2/ts"}, nil},
		{"REPLICA_MAX_LAG", func(c *config.Config) any { return c.ReplicaMaxLag }, time.Second, "250ms", 250 * time.Millisecond, []string{"0s", "5ms", "2h", "1"}},
		{"HOST", func(c *config.Config) any { return c.Host }, "127.0.0.1", "0.0.0.0", "0.0.0.0", nil},
		{"PORT", func(c *config.Config) any { return c.Port }, 3000, "0", 0, []string{"70000", "-1", "http"}},
		{"ADMIN_TOKEN", func(c *config.Config) any { return c.AdminToken }, "", "0123456789abcdef", "0123456789abcdef", []string{"short-token"}},
		{"ADMIN_SESSION_TTL", func(c *config.Config) any { return c.AdminSessionTTL }, 8 * time.Hour, "30m", 30 * time.Minute, []string{"30s", "8d", "soon"}},
		{"RATE_LIMIT_RPS", func(c *config.Config) any { return c.RateLimitRPS }, 50.0, "0.5", 0.5, []string{"-1", "fast", "2e6"}},
		{"WS_SUBSCRIBE_RPS", func(c *config.Config) any { return c.WSSubscribeRPS }, 5.0, "0", 0.0, []string{"-1", "often", "1001"}},
		{"RATE_LIMIT_BURST", func(c *config.Config) any { return c.RateLimitBurst }, 100, "0", 0, []string{"-1", "1.5"}},
		{"REDIS_URL", func(c *config.Config) any { return c.RedisURL }, "", "redis://127.0.0.1:6379/2", "redis://127.0.0.1:6379/2", []string{"http://127.0.0.1:6379", "127.0.0.1:6379", "redis://%zz"}},
		{"REDIS_PREFIX", func(c *config.Config) any { return c.RedisPrefix }, "timeslots:ratelimit", "blue:rl", "blue:rl", nil},
		{"REDIS_TIMEOUT", func(c *config.Config) any { return c.RedisTimeout }, 50 * time.Millisecond, "200ms", 200 * time.Millisecond, []string{"50", "0s", "-1ms"}},
		{"TRUSTED_PROXIES", func(c *config.Config) any { return c.TrustedProxies }, []netip.Prefix(nil), "10.0.0.0/8, 192.0.2.7 ,::1", prefixes("10.0.0.0/8", "192.0.2.7/32", "::1/128"), []string{"10.0.0.0/40", "proxy.local"}},
		{"CORS_ORIGINS", func(c *config.Config) any { return c.CORSOrigins }, []string(nil), "https://app.example.com, http://localhost:5173", []string{"https://app.example.com", "http://localhost:5173"}, []string{"app.example.com", "ftp://app.example.com", "https://app.example.com/path", "https://user@app.example.com"}},
		{"SCHEDULER_ENABLED", func(c *config.Config) any { return c.SchedulerEnabled }, true, "false", false, []string{"maybe"}},
		{"GENERATE_SCHEDULE", func(c *config.Config) any { return c.GenerateSchedule.String() }, "0 2 * * *", "@every 10s", "@every 10s", []string{"0 2 * *", "@every soon", "@every 500ms", "every day"}},
		{"GENERATE_DAYS_AHEAD", func(c *config.Config) any { return c.GenerateDays }, 30, "365", 365, []string{"0", "366", "a month"}},
		{"GENERATE_MAX_DAYS_AHEAD", func(c *config.Config) any { return c.GenerateMaxDays }, 90, "365", 365, []string{"0", "366", "29", "a quarter"}},
		{"CLEANUP_SCHEDULE", func(c *config.Config) any { return c.CleanupSchedule.String() }, "0 3 * * 0", "*/5 * * * *", "*/5 * * * *", []string{"0 0 2 * * *", "@every"}},
		{"JOB_LEASE", func(c *config.Config) any { return c.JobLease }, time.Minute, "1s", time.Second, []string{"999ms", "61m", "0s", "-1s", "1", "a minute"}},
		{"HOLD_TTL", func(c *config.Config) any { return c.HoldTTL }, 10 * time.Minute, "90s", 90 * time.Second, []string{"59s", "61m", "0s", "10", "ten minutes"}},
		{"CLEANUP_DAYS_OLD", func(c *config.Config) any { return c.CleanupDaysOld }, 30, "0", 0, []string{"-1", "3651"}},
		{"SEED_DEMO", func(c *config.Config) any { return c.SeedDemo }, true, "false", false, []string{"yes"}},
		{"INTROSPECTION", func(c *config.Config) any { return c.Introspection }, true, "false", false, []string{"on"}},
		{"GRAPHQL_MAX_COMPLEXITY", func(c *config.Config) any { return c.MaxComplexity }, 5000, "200", 200, []string{"0", "lots"}},
		{"GRAPHQL_MAX_DEPTH", func(c *config.Config) any { return c.MaxDepth }, 10, "4", 4, []string{"0", "1001"}},
		{"GRAPHQL_MAX_MUTATIONS", func(c *config.Config) any { return c.MaxMutations }, 10, "1", 1, []string{"0", "1001"}},
		{"QUERY_CACHE_BYTES", func(c *config.Config) any { return c.QueryCacheBytes }, int64(4 << 20), "0", int64(0), []string{"-1", "4MiB", "2147483648"}},
		{"CACHE_MAX_BYTES", func(c *config.Config) any { return c.CacheMaxBytes }, int64(16 << 20), "0", int64(0), []string{"-1", "16MiB", "17179869185"}},
		{"CACHE_MAX_AGE", func(c *config.Config) any { return c.CacheMaxAge }, time.Minute, "5s", 5 * time.Second, []string{"0s", "999ms", "61m", "60"}},
		{"MAX_BODY_BYTES", func(c *config.Config) any { return c.MaxBodyBytes }, int64(1 << 20), "2048", int64(2048), []string{"100", "1GiB"}},
		{"REQUEST_TIMEOUT", func(c *config.Config) any { return c.RequestTimeout }, 10 * time.Second, "1m30s", 90 * time.Second, []string{"10", "-1s", "0s"}},
		{"DB_MAX_CONNS", func(c *config.Config) any { return c.DBMaxConns }, 0, "40", 40, []string{"-1", "1001"}},
		{"DB_READ_CONCURRENCY", func(c *config.Config) any { return c.DBReadConcurrency }, 2 * runtime.GOMAXPROCS(0), "0", 0, []string{"-1", "all"}},
		{"SHUTDOWN_TIMEOUT", func(c *config.Config) any { return c.ShutdownGrace }, 20 * time.Second, "250ms", 250 * time.Millisecond, []string{"0s", "soon"}},
		{"SHUTDOWN_DRAIN", func(c *config.Config) any { return c.ShutdownDrain }, time.Duration(0), "2s", 2 * time.Second, []string{"-1s", "6m", "soon", "5"}},
		{"LOG_LEVEL", func(c *config.Config) any { return c.LogLevel }, "info", "debug", "debug", []string{"verbose", "INFO"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := load(nil)
			if err != nil {
				t.Fatalf("defaults: %v", err)
			}
			if got := tc.get(c); !reflect.DeepEqual(got, tc.def) {
				t.Errorf("default %#v, want %#v", got, tc.def)
			}
			c, err = load(map[string]string{tc.name: tc.valid})
			if err != nil {
				t.Fatalf("%s=%q: %v", tc.name, tc.valid, err)
			}
			if got := tc.get(c); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s=%q gives %#v, want %#v", tc.name, tc.valid, got, tc.want)
			}
			for _, bad := range tc.invalid {
				c, err := load(map[string]string{tc.name: bad})
				if err == nil {
					t.Errorf("%s=%q accepted (%#v), want an error", tc.name, bad, tc.get(c))
					continue
				}
				if msg := err.Error(); !strings.HasPrefix(msg, tc.name+" ") || strings.Contains(msg, "\n") {
					t.Errorf("%s=%q: error %q, want one line starting with %s", tc.name, bad, msg, tc.name)
				}
			}
		})
	}
}

// The horizon's ceiling is never below its floor: a ceiling under the
// floor stops start-up, and without a ceiling a floor above 90 is also the
// ceiling.
func TestGenerationCeilingAgreesWithItsFloor(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		floor, ceil  string
		wantFloor    int
		wantCeil     int
		wantErrStart string // "" for no error
	}{
		{"the defaults are 30 and 90 days", "", "", 30, 90, ""},
		{"a ceiling equal to the floor fixes the horizon", "45", "45", 45, 45, ""},
		{"a floor above 90 without a ceiling is the ceiling too", "120", "", 120, 120, ""},
		{"a ceiling below a floor set alongside it is refused", "60", "59", 0, 0, "GENERATE_MAX_DAYS_AHEAD "},
		{"a ceiling below the default floor is refused", "", "10", 0, 0, "GENERATE_MAX_DAYS_AHEAD "},
		{"a bad floor is named before the ceiling", "0", "10", 0, 0, "GENERATE_DAYS_AHEAD "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := load(map[string]string{"GENERATE_DAYS_AHEAD": tc.floor, "GENERATE_MAX_DAYS_AHEAD": tc.ceil})
			if tc.wantErrStart != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tc.wantErrStart) {
					t.Fatalf("error %v, want one starting with %q", err, tc.wantErrStart)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.GenerateDays != tc.wantFloor || c.GenerateMaxDays != tc.wantCeil {
				t.Errorf("floor %d, ceiling %d; want %d, %d", c.GenerateDays, c.GenerateMaxDays, tc.wantFloor, tc.wantCeil)
			}
		})
	}
}

// Production changes the defaults that are safe only on a developer's
// machine, and needs an admin token.
func TestProductionDefaults(t *testing.T) {
	t.Parallel()
	const token = "a-long-enough-admin-token"
	c, err := load(map[string]string{"APP_ENV": "production", "ADMIN_TOKEN": token})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Production() || c.Host != "0.0.0.0" || c.SeedDemo || c.Introspection || c.ShutdownDrain != 5*time.Second {
		t.Errorf("production: Production()=%v Host=%q SeedDemo=%v Introspection=%v ShutdownDrain=%v; want true, 0.0.0.0, false, false, 5s",
			c.Production(), c.Host, c.SeedDemo, c.Introspection, c.ShutdownDrain)
	}
	if c.Addr() != "0.0.0.0:3000" {
		t.Errorf("Addr() = %q, want 0.0.0.0:3000", c.Addr())
	}
	c, err = load(map[string]string{"APP_ENV": "production", "ADMIN_TOKEN": token, "INTROSPECTION": "true", "SEED_DEMO": "true"})
	if err != nil || !c.Introspection || !c.SeedDemo {
		t.Errorf("production with INTROSPECTION and SEED_DEMO set: %+v, %v; want both on", c, err)
	}
	if _, err := load(map[string]string{"APP_ENV": "production"}); err == nil || !strings.HasPrefix(err.Error(), "ADMIN_TOKEN ") {
		t.Errorf("production without ADMIN_TOKEN: %v, want an error naming ADMIN_TOKEN", err)
	}
	if c, err := load(nil); err != nil || c.Production() || c.Addr() != "127.0.0.1:3000" {
		t.Errorf("development: %v; want 127.0.0.1:3000 and not production", err)
	}
}

// A refused secret is named, never quoted.
func TestSecretsAreNeverInMessages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value, secret string
	}{
		{"ADMIN_TOKEN", "pa55-short", "pa55-short"},
		{"REDIS_URL", "http://:redis-pa55@127.0.0.1:6379", "redis-pa55"},
		{"REDIS_URL", "redis://:redis-pa55@%zz", "redis-pa55"},
		{"AUTH_JWT_SECRET", "jwt-pa55-too-short", "jwt-pa55-too-short"},
		{"AUTH_JWKS_URL", "ftp://user:jwks-pa55@id.example.com/jwks", "jwks-pa55"},
	} {
		_, err := load(map[string]string{tc.name: tc.value})
		if err == nil {
			t.Errorf("%s=%q accepted, want an error", tc.name, tc.value)
			continue
		}
		if !strings.HasPrefix(err.Error(), tc.name+" ") || strings.Contains(err.Error(), tc.secret) {
			t.Errorf("%s: error %q, want it to name the variable and not hold %q", tc.name, err, tc.secret)
		}
	}
}

// The first bad value is the one reported: start-up names one variable.
func TestTheFirstBadVariableIsReported(t *testing.T) {
	t.Parallel()
	_, err := load(map[string]string{"PORT": "x", "LOG_LEVEL": "loud", "GENERATE_SCHEDULE": "soon"})
	if err == nil || !strings.HasPrefix(err.Error(), "PORT ") {
		t.Errorf("error %v, want the one about PORT, read first", err)
	}
}

// The AUTH_* variables are read together: end-user authentication is off
// by default, on with one key source plus an issuer and an audience, and
// each inconsistent setting is refused with one line naming the variable
// at fault.
func TestAuthVariables(t *testing.T) {
	t.Parallel()
	const (
		jwks     = "https://id.example.com/.well-known/jwks.json"
		secret   = "0123456789abcdef0123456789abcdef" // 32 bytes
		issuer   = "https://id.example.com/"
		audience = "timeslots-api"
		admin    = "0123456789abcdef-admin"
	)
	// A bearer value with a JWT's shape: {"alg":"HS256"}.{}.sig
	jwtShaped := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256"}`)) + ".e30.c2ln"
	type auth struct {
		JWKSURL, Secret, Issuer, Audience string
		Required                          bool
		Enabled                           bool
	}
	authOf := func(c *config.Config) auth {
		return auth{c.AuthJWKSURL, c.AuthJWTSecret, c.AuthIssuer, c.AuthAudience, c.AuthRequired, c.AuthEnabled()}
	}
	on := func(env map[string]string) map[string]string {
		out := map[string]string{"AUTH_ISSUER": issuer, "AUTH_AUDIENCE": audience}
		maps.Copy(out, env)
		return out
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    auth   // when accepted
		wantErr string // the variable the error names, when refused
	}{
		{name: "nothing set leaves authentication off", env: nil, want: auth{}},
		{name: "AUTH_REQUIRED=false alone keeps it off", env: map[string]string{"AUTH_REQUIRED": "false"}, want: auth{}},
		{name: "a JWKS URL with an issuer and an audience turns it on",
			env:  on(map[string]string{"AUTH_JWKS_URL": " " + jwks + " "}),
			want: auth{JWKSURL: jwks, Issuer: issuer, Audience: audience, Enabled: true}},
		{name: "an http JWKS URL is accepted for a provider on a private network",
			env:  on(map[string]string{"AUTH_JWKS_URL": "http://keycloak:8080/certs"}),
			want: auth{JWKSURL: "http://keycloak:8080/certs", Issuer: issuer, Audience: audience, Enabled: true}},
		{name: "a 32-byte HS256 secret with an issuer and an audience turns it on",
			env:  on(map[string]string{"AUTH_JWT_SECRET": secret}),
			want: auth{Secret: secret, Issuer: issuer, Audience: audience, Enabled: true}},
		{name: "AUTH_REQUIRED=true with a key source is kept",
			env:  on(map[string]string{"AUTH_JWKS_URL": jwks, "AUTH_REQUIRED": "true"}),
			want: auth{JWKSURL: jwks, Issuer: issuer, Audience: audience, Required: true, Enabled: true}},
		{name: "an admin token that is no JWT sits beside authentication",
			env:  on(map[string]string{"AUTH_JWT_SECRET": secret, "ADMIN_TOKEN": admin}),
			want: auth{Secret: secret, Issuer: issuer, Audience: audience, Enabled: true}},
		{name: "a JWT-shaped admin token is kept while authentication is off",
			env: map[string]string{"ADMIN_TOKEN": jwtShaped}, want: auth{}},

		{name: "a JWKS URL that is not http(s) is refused", env: on(map[string]string{"AUTH_JWKS_URL": "ftp://id.example.com/jwks"}), wantErr: "AUTH_JWKS_URL"},
		{name: "a JWKS URL without a host is refused", env: on(map[string]string{"AUTH_JWKS_URL": "https:///jwks"}), wantErr: "AUTH_JWKS_URL"},
		{name: "a JWKS path without a scheme is refused", env: on(map[string]string{"AUTH_JWKS_URL": "id.example.com/jwks"}), wantErr: "AUTH_JWKS_URL"},
		{name: "a JWKS URL and a secret together are refused", env: on(map[string]string{"AUTH_JWKS_URL": jwks, "AUTH_JWT_SECRET": secret}), wantErr: "AUTH_JWKS_URL"},
		{name: "a secret of 31 bytes is refused", env: on(map[string]string{"AUTH_JWT_SECRET": secret[:31]}), wantErr: "AUTH_JWT_SECRET"},
		{name: "a key source without an issuer is refused", env: map[string]string{"AUTH_JWKS_URL": jwks, "AUTH_AUDIENCE": audience}, wantErr: "AUTH_ISSUER"},
		{name: "an issuer without a key source is refused", env: map[string]string{"AUTH_ISSUER": issuer}, wantErr: "AUTH_ISSUER"},
		{name: "a key source without an audience is refused", env: map[string]string{"AUTH_JWT_SECRET": secret, "AUTH_ISSUER": issuer}, wantErr: "AUTH_AUDIENCE"},
		{name: "an audience without a key source is refused", env: map[string]string{"AUTH_AUDIENCE": audience}, wantErr: "AUTH_AUDIENCE"},
		{name: "AUTH_REQUIRED that is no boolean is refused", env: on(map[string]string{"AUTH_JWKS_URL": jwks, "AUTH_REQUIRED": "yes please"}), wantErr: "AUTH_REQUIRED"},
		{name: "AUTH_REQUIRED=true without a key source is refused", env: map[string]string{"AUTH_REQUIRED": "true"}, wantErr: "AUTH_REQUIRED"},
		{name: "a JWT-shaped admin token is refused while authentication is on",
			env: on(map[string]string{"AUTH_JWT_SECRET": secret, "ADMIN_TOKEN": jwtShaped}), wantErr: "ADMIN_TOKEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := load(tc.env)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("accepted (%+v), want an error naming %s", authOf(c), tc.wantErr)
				}
				msg := err.Error()
				if !strings.HasPrefix(msg, tc.wantErr+" ") && !strings.HasPrefix(msg, tc.wantErr+"=") || strings.Contains(msg, "\n") {
					t.Fatalf("error %q, want one line starting with %s", msg, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := authOf(c); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
