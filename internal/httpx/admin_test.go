package httpx_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"timeslots/internal/httpx"
)

const token = "0123456789abcdef-admin"

// adminProbe answers 200 with admin access, else the error status.
func adminProbe() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := httpx.Admin(r.Context()); err != nil {
			httpx.WriteError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func request(remote, auth, target string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.RemoteAddr = remote
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	return r
}

func TestAdminGateDecisions(t *testing.T) {
	t.Parallel()
	withToken := httpx.ClientIPs(nil)(httpx.NewAdminGate(token).Middleware(adminProbe()))
	open := httpx.ClientIPs(nil)(httpx.NewAdminGate("").Middleware(adminProbe()))
	for _, tc := range []struct {
		name string
		h    http.Handler
		r    *http.Request
		want int
	}{
		{"the right bearer token is admin", withToken, request("203.0.113.9:1", "Bearer "+token, "/"), 200},
		{"the scheme is case-insensitive", withToken, request("203.0.113.9:1", "bearer "+token, "/"), 200},
		{"no token is unauthenticated", withToken, request("203.0.113.9:1", "", "/"), 401},
		{"a wrong token is forbidden", withToken, request("203.0.113.10:1", "Bearer nope", "/"), 403},
		{"a token prefix is forbidden", withToken, request("203.0.113.11:1", "Bearer "+token[:10], "/"), 403},
		{"basic auth is unauthenticated", withToken, request("203.0.113.9:1", "Basic "+token, "/"), 401},
		{"a token in the query string is ignored", withToken, request("203.0.113.9:1", "", "/?token="+token+"&access_token="+token+"&admin_token="+token), 401},
		{"loopback needs the token too when one is set", withToken, request("127.0.0.1:1", "", "/"), 401},
		{"open mode admits loopback", open, request("127.0.0.1:5", "", "/"), 200},
		{"open mode admits IPv6 loopback", open, request("[::1]:5", "", "/"), 200},
		{"open mode refuses others", open, request("192.0.2.1:5", "", "/"), 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := serve(tc.h, tc.r).Code; got != tc.want {
				t.Errorf("status %d, want %d", got, tc.want)
			}
		})
	}
}

// In open mode a local reverse proxy must not make every client loopback:
// the loopback rule looks at the client address behind a trusted proxy.
func TestOpenModeLoopbackMeansTheClientNotTheProxy(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	h := httpx.ClientIPs(trusted)(httpx.NewAdminGate("").Middleware(adminProbe()))
	r := request("127.0.0.1:4000", "", "/")
	r.Header.Set("X-Forwarded-For", "198.51.100.7")
	if got := serve(h, r).Code; got != http.StatusForbidden {
		t.Errorf("relayed remote client: status %d, want 403", got)
	}
}

// After AdminFailureLimit wrong tokens a client is answered 429 with
// Retry-After, even with the right token; other clients are unaffected,
// and requests without a token (public ones) still pass.
func TestRepeatedBadTokensAreSlowed(t *testing.T) {
	t.Parallel()
	h := httpx.ClientIPs(nil)(httpx.NewAdminGate(token).Middleware(adminProbe()))
	const guesser = "198.51.100.1:5555"
	for i := range httpx.AdminFailureLimit {
		if got := serve(h, request(guesser, "Bearer guess-"+strconv.Itoa(i), "/api/admin/time-slots")).Code; got != http.StatusForbidden {
			t.Fatalf("guess %d: status %d, want 403", i, got)
		}
	}
	w := serve(h, request(guesser, "Bearer "+token, "/api/admin/time-slots"))
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("after %d wrong tokens: status %d, want 429", httpx.AdminFailureLimit, w.Code)
	}
	ra, err := strconv.Atoi(w.Header().Get("Retry-After"))
	if err != nil || ra < 1 || ra > int(httpx.AdminFailureWindow.Seconds()) {
		t.Errorf("Retry-After %q, want 1..%d seconds", w.Header().Get("Retry-After"), int(httpx.AdminFailureWindow.Seconds()))
	}
	var body httpx.ErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error.Code != "RATE_LIMITED" {
		t.Errorf("body %s, want a RATE_LIMITED error", w.Body.String())
	}

	// Where an edge supplies its refusal writer, the 429 is written by it.
	edge := serve(httpx.Refusals(edgeRefusal, httpx.Paths{"/edge"})(h), request(guesser, "Bearer "+token, "/edge"))
	if edge.Code != http.StatusTooManyRequests || edge.Header().Get("Retry-After") == "" ||
		!strings.HasPrefix(edge.Body.String(), "edge refusal RATE_LIMITED: ") {
		t.Errorf("/edge answer %d %s, want 429 with the edge's own RATE_LIMITED error", edge.Code, edge.Body.String())
	}

	if got := serve(h, request(guesser, "", "/api/time-slots")).Code; got != http.StatusUnauthorized {
		t.Errorf("the guesser without a token: status %d, want it to pass the gate (401 from the probe)", got)
	}
	if got := serve(h, request("198.51.100.2:5555", "Bearer "+token, "/")).Code; got != http.StatusOK {
		t.Errorf("another client with the right token: status %d, want 200", got)
	}
}
