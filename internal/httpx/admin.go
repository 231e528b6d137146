package httpx

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"timeslots/internal/apperr"
	"timeslots/internal/auth"
	"timeslots/internal/auth/verifier"
)

// Access is what a request may do with admin operations.
type Access int

// The outcomes of the admin check.
const (
	// AccessDenied: no credentials where they are required.
	AccessUnauthenticated Access = iota
	// AccessForbidden: wrong credentials, or not a loopback client in open mode.
	AccessForbidden
	// AccessAdmin: admin operations are allowed.
	AccessAdmin
)

// AdminGate decides admin access: with a token, a request must carry
// "Authorization: Bearer <token>" (compared in constant time, by digest, so
// neither content nor length leaks); without one (development only), admin
// operations are open to loopback clients and no one else.
//
// With WithCustomers it also reads end users' JWTs, and one rule tells a
// bearer value apart, in this order: equal to the admin token, it is the
// admin; otherwise, on the customers' paths, a value for which
// auth.LooksLikeJWT holds is a customer's token and is verified (valid: the
// request is that customer's and not an admin's; invalid: 401
// UNAUTHENTICATED); anything else is a wrong admin token.
//
// Guessing is slowed: a client that sent AdminFailureLimit wrong tokens
// within AdminFailureWindow gets 429 (with Retry-After) for every request
// that carries a token until the window ends, without the token being
// checked. Wrong admin tokens count, and so do customers' tokens that no
// trusted key signed (forged, unsigned, of a refused algorithm or unknown
// key); a token a trusted key signed whose claims fail (expired, another
// audience) does not, as it comes from the identity provider rather than
// from guessing, and counting it would shut out every customer behind one
// address whose app retries with a stale token.
type AdminGate struct {
	digest [32]byte
	open   bool

	customers     *verifier.Verifier // nil: end-user authentication is off
	customerPaths Paths

	sessions *Sessions // nil: no console sign-in

	failures *failureCounter
}

// Limits of admin token guessing, per client address.
const (
	AdminFailureLimit  = 10
	AdminFailureWindow = time.Minute
)

// AdminOption configures an AdminGate beyond its token.
type AdminOption func(*AdminGate)

// WithCustomers has the gate verify customers' JWTs with v on requests for
// paths (the edges that serve customers; elsewhere, as on /metrics, a
// bearer value is only ever an admin token) and, when v.Required(), mark
// every request's context with auth.WithRequired. A nil v leaves end-user
// authentication off.
func WithCustomers(v *verifier.Verifier, paths Paths) AdminOption {
	return func(g *AdminGate) {
		g.customers, g.customerPaths = v, paths
	}
}

// WithSessions has the gate accept the admin console's session cookie
// (see Sessions) on requests without an Authorization header: a valid
// session is admin access, except on reads from another origin, which go
// on as if without it (Sessions.Authorizes); a request it authorises that
// may change state must pass Sessions.CheckRequest (same origin, CSRF
// token) or is answered 403 FORBIDDEN. A nil s leaves the cookie unread.
func WithSessions(s *Sessions) AdminOption {
	return func(g *AdminGate) { g.sessions = s }
}

// NewAdminGate builds the gate; an empty token means loopback-only access.
func NewAdminGate(token string, opts ...AdminOption) *AdminGate {
	g := &AdminGate{open: token == "", failures: newFailureCounter(AdminFailureLimit, AdminFailureWindow, time.Now)}
	if token != "" {
		g.digest = sha256.Sum256([]byte(token))
	}
	for _, o := range opts {
		o(g)
	}
	return g
}

// HasToken reports whether admin access needs a token (ADMIN_TOKEN is set).
func (g *AdminGate) HasToken() bool { return !g.open }

// Check decides the admin access of r. A token in the query string is
// ignored: only the Authorization header counts. Loopback means the client
// address (see ClientIPs), so a request relayed by a local proxy is not
// loopback.
func (g *AdminGate) Check(r *http.Request) Access {
	if g.open {
		if ip := clientIPOf(r); ip.IsValid() && ip.IsLoopback() {
			return AccessAdmin
		}
		return AccessForbidden
	}
	token, ok := bearerToken(r)
	if !ok {
		return AccessUnauthenticated
	}
	if g.isAdminToken(token) {
		return AccessAdmin
	}
	return AccessForbidden
}

// bearerToken answers the trimmed value of a "Bearer" Authorization
// header; false when the request has none or another scheme.
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(token), true
}

// isAdminToken compares token with the admin token by digest, in constant
// time.
func (g *AdminGate) isAdminToken(token string) bool {
	got := sha256.Sum256([]byte(token))
	return !g.open && subtle.ConstantTimeCompare(got[:], g.digest[:]) == 1
}

// customerToken reports whether r's bearer value is a customer's token by
// the gate's rule: not the admin token, on a customers' path, shaped like
// a JWT.
func (g *AdminGate) customerToken(r *http.Request) (string, bool) {
	if !g.customers.Enabled() || !g.customerPaths.Match(r.URL.Path) {
		return "", false
	}
	token, ok := bearerToken(r)
	if !ok || g.isAdminToken(token) || !auth.LooksLikeJWT(token) {
		return "", false
	}
	return token, true
}

// Middleware records the admin decision in the request context, where
// GraphQL's admin fields and the REST admin routes read it with Admin, and
// the verified customer of a customer's token, where the resolvers read it
// with auth.CustomerFor (see AdminGate for the rule). A client that has
// been guessing tokens is answered 429 while it carries one; each wrong
// bearer token counts against its address (a malformed Authorization
// header guesses nothing and is simply unauthenticated).
func (g *AdminGate) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.customers.Required() {
			r = r.WithContext(auth.WithRequired(r.Context()))
		}
		token, customer := g.customerToken(r)
		if g.sessions != nil && r.Header.Get("Authorization") == "" {
			if sess, ok := g.sessions.Read(r); ok && g.sessions.Authorizes(r) {
				if err := g.sessions.CheckRequest(r, sess); err != nil {
					Logger(r.Context()).Warn("admin session request refused", slog.String("client", ClientKey(r)),
						slog.String("reason", apperr.ErrorMessage(err)))
					WriteProtocolError(w, r, http.StatusForbidden, err)
					return
				}
				ctx := context.WithValue(r.Context(), adminKey, AccessAdmin)
				ctx = context.WithValue(ctx, sessionKey, sess)
				next.ServeHTTP(w, r.WithContext(ctx))
				return
			}
		}
		if !customer && (g.open || r.Header.Get("Authorization") == "") {
			ctx := context.WithValue(r.Context(), adminKey, g.Check(r))
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		client := ClientKey(r)
		if wait := g.failures.blocked(client); wait > 0 {
			Logger(r.Context()).Warn("admin token attempts slowed", slog.String("client", client))
			why := "too many wrong admin tokens from this client"
			if g.customers.Enabled() {
				why = "too many refused bearer tokens from this client"
			}
			WriteTooManyRequests(w, r, wait, why)
			return
		}
		if customer {
			g.serveCustomer(w, r, next, token, client)
			return
		}
		access := g.Check(r)
		if access == AccessForbidden { // a bearer token, and the wrong one
			g.failures.add(client)
			Logger(r.Context()).Warn("wrong admin token", slog.String("client", client))
		}
		ctx := context.WithValue(r.Context(), adminKey, access)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// SignIn checks a token typed into the console's sign-in form as a bearer
// token is checked: a client that has been guessing waits (wait > 0, and
// the token is not compared), and a wrong token counts toward its lockout.
func (g *AdminGate) SignIn(r *http.Request, token string) (ok bool, wait time.Duration) {
	client := ClientKey(r)
	if wait := g.failures.blocked(client); wait > 0 {
		Logger(r.Context()).Warn("admin token attempts slowed", slog.String("client", client))
		return false, wait
	}
	if g.isAdminToken(token) {
		return true, 0
	}
	g.failures.add(client)
	Logger(r.Context()).Warn("wrong admin token", slog.String("client", client), slog.String("via", "sign-in form"))
	return false, 0
}

// serveCustomer verifies a customer's token: a valid one makes the request
// that customer's, with no admin access (unauthenticated, not forbidden: a
// customer guessed nothing); an invalid one is answered 401 in the
// endpoint's error shape, and counted against the client unless a trusted
// key signed it.
func (g *AdminGate) serveCustomer(w http.ResponseWriter, r *http.Request, next http.Handler, token, client string) {
	c, err := g.customers.Verify(r.Context(), token)
	if err != nil {
		level, guess := slog.LevelInfo, !verifier.SignatureHeld(err)
		if guess {
			g.failures.add(client)
			level = slog.LevelWarn
		}
		Logger(r.Context()).Log(r.Context(), level, "customer token refused",
			slog.String("client", client), slog.String("reason", apperr.ErrorMessage(err)), slog.Bool("counted", guess))
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		WriteProtocolError(w, r, http.StatusUnauthorized, err)
		return
	}
	ctx := auth.WithCustomer(r.Context(), c)
	ctx = context.WithValue(ctx, adminKey, AccessUnauthenticated)
	next.ServeHTTP(w, r.WithContext(ctx))
}

// Authorize applies a bearer token that r carried in another place than
// its Authorization header (a websocket's connection_init payload) by the
// rule of Middleware, and answers r's context with the decision: the
// admin, or a verified customer. A wrong admin token, and a customer's
// token that no trusted key signed, count towards the client's lockout
// like a wrong header; a locked-out client is refused without the token
// being checked. Refusals are coded: RATE_LIMITED, UNAUTHENTICATED (a
// customer's token that fails), FORBIDDEN (a wrong admin token). Without
// an admin token (development) a token that is not a customer's changes
// nothing, as in Middleware.
func (g *AdminGate) Authorize(r *http.Request, token string) (context.Context, error) {
	ctx := r.Context()
	if g.customers.Required() {
		ctx = auth.WithRequired(ctx)
	}
	customer := g.customers.Enabled() && g.customerPaths.Match(r.URL.Path) && !g.isAdminToken(token) && auth.LooksLikeJWT(token)
	if !customer && g.open { // as Middleware: without an admin token, loopback decides
		return ctx, nil
	}
	client := ClientKey(r)
	if wait := g.failures.blocked(client); wait > 0 {
		Logger(ctx).Warn("admin token attempts slowed", slog.String("client", client))
		return nil, apperr.E(apperr.RateLimited, "too many refused bearer tokens from this client: retry in %d s", RetryAfterSeconds(wait))
	}
	if g.isAdminToken(token) {
		return context.WithValue(ctx, adminKey, AccessAdmin), nil
	}
	if customer {
		c, err := g.customers.Verify(ctx, token)
		if err != nil {
			level, guess := slog.LevelInfo, !verifier.SignatureHeld(err)
			if guess {
				g.failures.add(client)
				level = slog.LevelWarn
			}
			Logger(ctx).Log(ctx, level, "customer token refused",
				slog.String("client", client), slog.String("reason", apperr.ErrorMessage(err)), slog.Bool("counted", guess))
			return nil, err
		}
		ctx = auth.WithCustomer(ctx, c)
		return context.WithValue(ctx, adminKey, AccessUnauthenticated), nil
	}
	g.failures.add(client)
	Logger(ctx).Warn("wrong admin token", slog.String("client", client))
	return nil, apperr.E(apperr.Forbidden, "admin access denied")
}

// RequireAdmin answers 401/403 unless the request has admin access. It
// uses the decision Middleware already recorded, if any, so a request is
// checked (and a wrong token counted) once.
func (g *AdminGate) RequireAdmin(next http.Handler) http.Handler {
	require := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := Admin(r.Context()); err != nil {
			WriteError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
	checked := g.Middleware(require)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Context().Value(adminKey).(Access); ok {
			require.ServeHTTP(w, r)
			return
		}
		checked.ServeHTTP(w, r)
	})
}

// Admin answers nil when the context's request may use admin operations,
// else an UNAUTHENTICATED or FORBIDDEN error.
func Admin(ctx context.Context) error {
	a, ok := ctx.Value(adminKey).(Access)
	if !ok {
		a = AccessUnauthenticated
	}
	switch a {
	case AccessAdmin:
		return nil
	case AccessForbidden:
		return apperr.E(apperr.Forbidden, "admin access denied")
	default:
		return apperr.E(apperr.Unauthenticated, "admin access needs Authorization: Bearer <ADMIN_TOKEN>")
	}
}

// failureCounter counts failures per client in fixed windows; memory is
// bounded by sweeping ended windows once the map grows.
type failureCounter struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu      sync.Mutex
	clients map[string]*failureWindow
}

type failureWindow struct {
	count int
	ends  time.Time
}

// failureSweepAt is the map size at which ended windows are dropped.
const failureSweepAt = 10_000

func newFailureCounter(limit int, window time.Duration, now func() time.Time) *failureCounter {
	return &failureCounter{limit: limit, window: window, now: now, clients: map[string]*failureWindow{}}
}

// add counts one failure of client.
func (f *failureCounter) add(client string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	w := f.clients[client]
	if w == nil || !now.Before(w.ends) {
		if len(f.clients) >= failureSweepAt {
			for k, v := range f.clients {
				if !now.Before(v.ends) {
					delete(f.clients, k)
				}
			}
		}
		w = &failureWindow{ends: now.Add(f.window)}
		f.clients[client] = w
	}
	w.count++
}

// blocked answers how long client must wait, or 0 when it may try.
func (f *failureCounter) blocked(client string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.clients[client]
	if w == nil || w.count < f.limit {
		return 0
	}
	return w.ends.Sub(f.now())
}
