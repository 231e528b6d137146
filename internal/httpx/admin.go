package httpx

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"

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
type AdminGate struct {
	digest [32]byte
	open   bool
}

// NewAdminGate builds the gate; an empty token means loopback-only access.
func NewAdminGate(token string) *AdminGate {
	g := &AdminGate{open: token == ""}
	if token != "" {
		g.digest = sha256.Sum256([]byte(token))
	}
	return g
}

// Check decides the access of r. A token in the query string is ignored.
func (g *AdminGate) Check(r *http.Request) Access {
	auth := r.Header.Get("Authorization")
	if g.open {
		if isLoopback(r.RemoteAddr) {
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
// GraphQL's admin fields and the REST admin routes read it with Admin.
func (g *AdminGate) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), adminKey, g.Check(r))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// RequireAdmin answers 401/403 unless the request has admin access.
func (g *AdminGate) RequireAdmin(next http.Handler) http.Handler {
	return g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := Admin(r.Context()); err != nil {
			WriteError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	}))
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

func isLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
