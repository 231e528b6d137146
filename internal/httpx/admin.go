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
// Guessing is slowed: a client that sent AdminFailureLimit wrong tokens
// within AdminFailureWindow gets 429 (with Retry-After) for every request
// that carries a token until the window ends, without the token being
// checked.
type AdminGate struct {
	digest [32]byte
	open   bool

	failures *failureCounter
}

// Limits of admin token guessing, per client address.
const (
	AdminFailureLimit  = 10
	AdminFailureWindow = time.Minute
)

// NewAdminGate builds the gate; an empty token means loopback-only access.
func NewAdminGate(token string) *AdminGate {
	g := &AdminGate{open: token == "", failures: newFailureCounter(AdminFailureLimit, AdminFailureWindow, time.Now)}
	if token != "" {
		g.digest = sha256.Sum256([]byte(token))
	}
	return g
}

// HasToken reports whether admin access needs a token (ADMIN_TOKEN is set).
func (g *AdminGate) HasToken() bool { return !g.open }

// Check decides the access of r. A token in the query string is ignored:
// only the Authorization header counts. Loopback means the client address
// (see ClientIPs), so a request relayed by a local proxy is not loopback.
func (g *AdminGate) Check(r *http.Request) Access {
	auth := r.Header.Get("Authorization")
	if g.open {
		if ip := clientIPOf(r); ip.IsValid() && ip.IsLoopback() {
			return AccessAdmin
		}
		return AccessForbidden
	}
	if auth == "" {
		return AccessUnauthenticated
	}
	scheme, token, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return AccessUnauthenticated
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	if subtle.ConstantTimeCompare(got[:], g.digest[:]) == 1 {
		return AccessAdmin
	}
	return AccessForbidden
}

// Middleware records the admin decision in the request context, where
// GraphQL's admin fields and the REST admin routes read it with Admin. A
// client that has been guessing tokens is answered 429 while it carries
// one; each wrong bearer token counts against its address (a malformed
// Authorization header guesses nothing and is simply unauthenticated).
func (g *AdminGate) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.open || r.Header.Get("Authorization") == "" {
			ctx := context.WithValue(r.Context(), adminKey, g.Check(r))
			next.ServeHTTP(w, r.WithContext(ctx))
			return
		}
		client := ClientKey(r)
		if wait := g.failures.blocked(client); wait > 0 {
			Logger(r.Context()).Warn("admin token attempts slowed", slog.String("client", client))
			WriteTooManyRequests(w, r, wait, "too many wrong admin tokens from this client")
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
