package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"timeslots/internal/httpx"
)

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	h := httpx.SecurityHeaders(httpx.Paths{"/api/admin/", "/graphql", "/metrics"})(okHandler)
	for _, tc := range []struct {
		path, auth string
		noStore    bool
	}{
		{"/api/time-slots", "", false},
		{"/api/admin/time-slots", "", true},
		{"/api/admin/", "", true},
		{"/api/admin", "", false},
		{"/graphql", "", true},
		{"/graphql/x", "", false},
		{"/graphqlx", "", false},
		{"/metrics", "", true},
		{"/api/time-slots", "Bearer x", true},
		{"/healthz", "", false},
	} {
		r := httptest.NewRequest(http.MethodGet, tc.path, nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", tc.path)
		}
		if got := w.Header().Get("Cache-Control") == "no-store"; got != tc.noStore {
			t.Errorf("%s (auth %q): no-store = %v, want %v", tc.path, tc.auth, got, tc.noStore)
		}
	}
}

func corsRequest(method, origin string, preflight bool) *http.Request {
	r := httptest.NewRequest(method, "/graphql", nil)
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	if preflight {
		r.Header.Set("Access-Control-Request-Method", "POST")
		r.Header.Set("Access-Control-Request-Headers", "content-type, authorization")
	}
	return r
}

func TestCORSAllowList(t *testing.T) {
	t.Parallel()
	listed := httpx.CORS([]string{"https://app.example.com"})(okHandler)
	star := httpx.CORS([]string{"*"})(okHandler)
	none := httpx.CORS(nil)(okHandler)
	for _, tc := range []struct {
		name        string
		h           http.Handler
		r           *http.Request
		status      int
		allowOrigin string
		credentials bool
	}{
		{"a listed origin is echoed with credentials", listed, corsRequest("POST", "https://app.example.com", false), 200, "https://app.example.com", true},
		{"an unlisted origin gets no CORS headers", listed, corsRequest("POST", "https://evil.example", false), 200, "", false},
		{"a listed origin's preflight is answered", listed, corsRequest("OPTIONS", "https://app.example.com", true), 204, "https://app.example.com", true},
		{"an unlisted origin's preflight gets nothing", listed, corsRequest("OPTIONS", "https://evil.example", true), 204, "", false},
		{"* admits any origin without credentials", star, corsRequest("POST", "https://any.example", false), 200, "*", false},
		{"* preflight is answered without credentials", star, corsRequest("OPTIONS", "https://any.example", true), 204, "*", false},
		{"no list: no CORS at all", none, corsRequest("POST", "https://app.example.com", false), 200, "", false},
		{"same-origin requests pass untouched", listed, corsRequest("POST", "", false), 200, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tc.h.ServeHTTP(w, tc.r)
			if w.Code != tc.status {
				t.Errorf("status %d, want %d", w.Code, tc.status)
			}
			if got := w.Header().Get("Access-Control-Allow-Origin"); got != tc.allowOrigin {
				t.Errorf("Allow-Origin %q, want %q", got, tc.allowOrigin)
			}
			creds := w.Header().Get("Access-Control-Allow-Credentials") == "true"
			if creds != tc.credentials {
				t.Errorf("Allow-Credentials %v, want %v", creds, tc.credentials)
			}
			if creds && w.Header().Get("Access-Control-Allow-Origin") == "*" {
				t.Error("* with credentials")
			}
			if tc.status == 204 && tc.allowOrigin != "" && !strings.Contains(w.Header().Get("Access-Control-Allow-Headers"), "Authorization") {
				t.Errorf("preflight Allow-Headers %q lacks Authorization", w.Header().Get("Access-Control-Allow-Headers"))
			}
		})
	}
}

func TestDeadlineReachesTheHandlersContext(t *testing.T) {
	t.Parallel()
	var deadline time.Time
	var ok bool
	h := httpx.Deadline(3 * time.Second)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		deadline, ok = r.Context().Deadline()
	}))
	before := time.Now()
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if !ok || deadline.Before(before) || deadline.After(before.Add(3*time.Second+time.Minute)) {
		t.Errorf("deadline %v (set %v), want about 3s after %v", deadline, ok, before)
	}
}
