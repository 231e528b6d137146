package httpx

import (
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// SecurityHeaders sets the headers every answer carries: nosniff (a JSON
// answer is never run as a script), no framing, no referrer; and
// Cache-Control: no-store on answers that may hold admin data or
// credentials' results, so no shared cache keeps them: answers to requests
// for the noStore paths (Paths) and to any request that carried
// Authorization.
func SecurityHeaders(noStore Paths) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Referrer-Policy", "no-referrer")
			if noStore.Match(r.URL.Path) || r.Header.Get("Authorization") != "" {
				h.Set("Cache-Control", "no-store")
			}
			next.ServeHTTP(w, r)
		})
	}
}

// CORS answers browsers from the allowed origins (CORS_ORIGINS). An exact
// origin is echoed with credentials allowed; "*" admits any origin but
// then never with credentials (browsers refuse the pair, and it would hand
// a logged-in browser's access to any site). Preflights are answered here
// with 204; other origins get no CORS headers, so browsers block them.
func CORS(origins []string) func(http.Handler) http.Handler {
	wildcard := slices.Contains(origins, "*")
	allowed := map[string]bool{}
	for _, o := range origins {
		if o != "*" {
			allowed[strings.TrimRight(o, "/")] = true
		}
	}
	return func(next http.Handler) http.Handler {
		if len(origins) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			h := w.Header()
			h.Add("Vary", "Origin")
			ok := origin != "" && (allowed[origin] || wildcard)
			if ok {
				if allowed[origin] {
					h.Set("Access-Control-Allow-Origin", origin)
					h.Set("Access-Control-Allow-Credentials", "true")
				} else {
					h.Set("Access-Control-Allow-Origin", "*")
				}
				h.Set("Access-Control-Expose-Headers", "X-Request-Id, RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, Retry-After")
			}
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Add("Vary", "Access-Control-Request-Method")
				h.Add("Vary", "Access-Control-Request-Headers")
				if ok {
					h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
					h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id")
					h.Set("Access-Control-Max-Age", "600")
				}
				w.WriteHeader(http.StatusNoContent)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Deadline gives every request a context that ends after timeout, so a
// slow query is cancelled (the database drivers stop the statement when
// the context ends) instead of holding a connection past the client's
// patience. PostgreSQL's statement_timeout (database.Options) backs it up.
//
// The deadline covers reading the body too: it is the connection's read
// deadline until the body has been read to its end, so a body trickled
// slower than timeout fails its read (LimitBody answers 408) instead of
// holding the handler. The read deadline is lifted at the body's end, so
// the server's watch for a closed connection cannot time out while the
// handler works. Without a body the server's own ReadTimeout applies.
//
// A websocket upgrade has no deadline: the connection lives as long as its
// client keeps it, bounded by its own limits (the GraphQL edge's init
// timeout and pings).
func Deadline(timeout time.Duration) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if timeout <= 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if IsWebsocketUpgrade(r) {
				next.ServeHTTP(w, r)
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), timeout)
			defer cancel()
			if r.Body != nil && r.Body != http.NoBody {
				rc := http.NewResponseController(w)
				if deadline, _ := ctx.Deadline(); rc.SetReadDeadline(deadline) == nil {
					r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
				}
			}
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// deadlineBody is a request body read under a connection read deadline,
// which it lifts when the body ends.
type deadlineBody struct {
	io.ReadCloser
	rc     *http.ResponseController
	lifted bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.lifted {
		b.lifted = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// IsWebsocketUpgrade reports whether r asks to become a websocket
// (Upgrade: websocket), whether or not the handshake is complete.
func IsWebsocketUpgrade(r *http.Request) bool {
	for _, v := range r.Header.Values("Upgrade") {
		for p := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(p), "websocket") {
				return true
			}
		}
	}
	return false
}
