package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"timeslots/internal/httpx"
)

// signedIn starts a session on a recorder and answers its cookie.
func signedIn(t *testing.T, s *httpx.Sessions, r *http.Request) (*http.Cookie, httpx.Session) {
	t.Helper()
	w := httptest.NewRecorder()
	sess := s.Start(w, r)
	cs := w.Result().Cookies()
	if len(cs) != 1 || cs[0].Name != httpx.SessionCookie {
		t.Fatalf("cookies: %v", cs)
	}
	return cs[0], sess
}

// TestSessionCookieFlags: the cookie is HttpOnly, SameSite=Strict, for
// the whole site, expiring with the session, and Secure exactly when the
// client came over TLS: directly, or as a trusted proxy says.
func TestSessionCookieFlags(t *testing.T) {
	t.Parallel()
	s := httpx.NewSessions(token, 2*time.Hour)
	proxy := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, c := range []struct {
		name    string
		remote  string
		proto   string
		tls     bool
		trusted []netip.Prefix
		secure  bool
	}{
		{"plain HTTP", "203.0.113.9:1", "", false, nil, false},
		{"TLS", "203.0.113.9:1", "", true, nil, true},
		{"a trusted proxy that says https", "10.0.0.2:1", "https", false, proxy, true},
		{"a trusted proxy that says http", "10.0.0.2:1", "http", false, proxy, false},
		{"a client that says https itself", "203.0.113.9:1", "https", false, proxy, false},
	} {
		var cookie *http.Cookie
		h := httpx.ClientIPs(c.trusted)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cookie, _ = signedIn(t, s, r)
		}))
		r := httptest.NewRequest(http.MethodPost, "/admin/login", nil)
		r.RemoteAddr = c.remote
		if c.proto != "" {
			r.Header.Set("X-Forwarded-Proto", c.proto)
		}
		if !c.tls {
			r.TLS = nil
		} else if r.TLS == nil {
			r = httptest.NewRequest(http.MethodPost, "https://example.test/admin/login", nil)
			r.RemoteAddr = c.remote
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		if cookie.Secure != c.secure || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" ||
			cookie.MaxAge != int((2*time.Hour)/time.Second) {
			t.Errorf("%s: cookie %+v; want Secure=%v HttpOnly SameSite=Strict Path=/ Max-Age=7200", c.name, cookie, c.secure)
		}
	}
}

// TestSessionsRefuseWhatTheyDidNotSign: a cookie whose value is altered
// anywhere, signed under another admin token, expired or signed out is
// no session; the untouched one is.
func TestSessionsRefuseWhatTheyDidNotSign(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).Unix())
	s := httpx.NewSessions(token, time.Hour)
	s.SetClock(func() time.Time { return time.Unix(now.Load(), 0) })
	cookie, sess := signedIn(t, s, httptest.NewRequest(http.MethodGet, "/", nil))
	read := func(value string) bool {
		r := httptest.NewRequest(http.MethodGet, "/admin", nil)
		r.AddCookie(&http.Cookie{Name: httpx.SessionCookie, Value: value})
		got, ok := s.Read(r)
		return ok && got.ID == sess.ID
	}
	if !read(cookie.Value) {
		t.Fatal("the session's own cookie is refused")
	}
	id, rest, _ := strings.Cut(cookie.Value, ".")
	exp, mac, _ := strings.Cut(rest, ".")
	later := time.Unix(now.Load(), 0).Add(24 * time.Hour).Unix()
	other, _ := signedIn(t, httpx.NewSessions(token+"-rotated", time.Hour), httptest.NewRequest(http.MethodGet, "/", nil))
	for name, v := range map[string]string{
		"another id":             "A" + id[1:] + "." + rest,
		"a later expiry":         id + "." + strconv.FormatInt(later, 10) + "." + mac,
		"a flipped signature":    id + "." + exp + "." + flip(mac),
		"no signature":           id + "." + exp,
		"an empty value":         "",
		"another admin token's":  other.Value,
		"garbage":                "not.a.cookie",
		"a signature of nothing": "." + "." + mac,
	} {
		if read(v) {
			t.Errorf("%s: accepted", name)
		}
	}
	now.Add(int64(time.Hour/time.Second) - 1)
	if !read(cookie.Value) {
		t.Error("refused a second before it expires")
	}
	now.Add(1)
	if read(cookie.Value) {
		t.Error("accepted once expired")
	}

	cookie2, sess2 := signedIn(t, s, httptest.NewRequest(http.MethodGet, "/", nil))
	w := httptest.NewRecorder()
	s.End(w, httptest.NewRequest(http.MethodPost, "/admin/logout", nil), sess2)
	if cs := w.Result().Cookies(); len(cs) != 1 || cs[0].MaxAge >= 0 || cs[0].Value != "" {
		t.Errorf("sign-out cookie: %v; want the cookie deleted", cs)
	}
	r := httptest.NewRequest(http.MethodGet, "/admin", nil)
	r.AddCookie(cookie2)
	if _, ok := s.Read(r); ok {
		t.Error("a signed-out session is still accepted")
	}
}

// flip changes the first character of a base64url string.
func flip(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// gateWithSessions is the admin gate of a server with console sign-in,
// in front of adminProbe.
func gateWithSessions(s *httpx.Sessions) http.Handler {
	return httpx.ClientIPs(nil)(httpx.NewAdminGate(token, httpx.WithSessions(s)).Middleware(adminProbe()))
}

// TestSessionRequestsNeedSameOriginAndToken: the cookie authorises reads
// as they are; a request that may change state needs the same origin and
// the session's CSRF token, so a cross-origin POST with the cookie fails
// even with the token, and a same-origin one without it fails too. The
// bearer token goes on working without either.
func TestSessionRequestsNeedSameOriginAndToken(t *testing.T) {
	t.Parallel()
	s := httpx.NewSessions(token, time.Hour)
	h := gateWithSessions(s)
	cookie, sess := signedIn(t, s, httptest.NewRequest(http.MethodGet, "/", nil))
	other, _ := signedIn(t, s, httptest.NewRequest(http.MethodGet, "/", nil))
	otherSess, _ := s.Read(withCookie(httptest.NewRequest(http.MethodGet, "/", nil), other))
	for _, c := range []struct {
		name   string
		method string
		header map[string]string
		cookie *http.Cookie
		want   int
	}{
		{"a GET with the cookie", http.MethodGet, nil, cookie, 200},
		{"a same-origin GET with the cookie", http.MethodGet, map[string]string{"Sec-Fetch-Site": "same-origin"}, cookie, 200},
		{"a typed address with the cookie", http.MethodGet, map[string]string{"Sec-Fetch-Site": "none"}, cookie, 200},
		{"a same-site GET from another origin", http.MethodGet, map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "https://app.example.com"}, cookie, 401},
		{"a cross-site GET", http.MethodGet, map[string]string{"Sec-Fetch-Site": "cross-site"}, cookie, 401},
		{"a GET from another Origin without Sec-Fetch-Site", http.MethodGet, map[string]string{"Origin": "https://app.example.com"}, cookie, 401},
		{"a GET without it", http.MethodGet, nil, nil, 401},
		{"a same-origin POST with the token", http.MethodPost, map[string]string{"Sec-Fetch-Site": "same-origin", "X-CSRF-Token": sess.CSRFToken()}, cookie, 200},
		{"an Origin-checked POST with the token", http.MethodPost, map[string]string{"Origin": "http://example.com", "X-CSRF-Token": sess.CSRFToken()}, cookie, 200},
		{"a cross-site POST with the token", http.MethodPost, map[string]string{"Sec-Fetch-Site": "cross-site", "X-CSRF-Token": sess.CSRFToken()}, cookie, 403},
		{"a same-site but cross-origin POST", http.MethodPost, map[string]string{"Sec-Fetch-Site": "same-site", "X-CSRF-Token": sess.CSRFToken()}, cookie, 403},
		{"a POST from another Origin", http.MethodPost, map[string]string{"Origin": "https://evil.example", "X-CSRF-Token": sess.CSRFToken()}, cookie, 403},
		{"a DELETE from another Origin", http.MethodDelete, map[string]string{"Origin": "https://evil.example", "X-CSRF-Token": sess.CSRFToken()}, cookie, 403},
		{"a same-origin POST without the token", http.MethodPost, map[string]string{"Sec-Fetch-Site": "same-origin"}, cookie, 403},
		{"a same-origin POST with another session's token", http.MethodPost, map[string]string{"Sec-Fetch-Site": "same-origin", "X-CSRF-Token": otherSess.CSRFToken()}, cookie, 403},
		{"a POST with the bearer token and no cookie", http.MethodPost, map[string]string{"Authorization": "Bearer " + token, "Origin": "https://evil.example"}, nil, 200},
	} {
		r := httptest.NewRequest(c.method, "/api/admin/time-slots", strings.NewReader("{}"))
		r.RemoteAddr = "203.0.113.20:1"
		for k, v := range c.header {
			r.Header.Set(k, v)
		}
		if c.cookie != nil {
			r.AddCookie(c.cookie)
		}
		if w := serve(h, r); w.Code != c.want {
			t.Errorf("%s: %d, want %d: %s", c.name, w.Code, c.want, w.Body)
		} else if c.want == 403 && !strings.Contains(w.Body.String(), "FORBIDDEN") {
			t.Errorf("%s: %s; want the FORBIDDEN code", c.name, w.Body)
		}
	}
}

func withCookie(r *http.Request, c *http.Cookie) *http.Request {
	r.AddCookie(c)
	return r
}

// TestSignInCountsTowardTheLockout: wrong tokens typed into the sign-in
// form count with wrong bearer tokens; once the client is locked out even
// the right token waits, and a bearer request from it gets 429.
func TestSignInCountsTowardTheLockout(t *testing.T) {
	t.Parallel()
	g := httpx.NewAdminGate(token)
	h := httpx.ClientIPs(nil)(g.Middleware(adminProbe()))
	in := func(remote, tok string) (bool, time.Duration) {
		var ok bool
		var wait time.Duration
		httpx.ClientIPs(nil)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ok, wait = g.SignIn(r, tok)
		})).ServeHTTP(httptest.NewRecorder(), request(remote, "", "/admin/login"))
		return ok, wait
	}
	const client = "203.0.113.30:1"
	if ok, wait := in(client, token); !ok || wait != 0 {
		t.Fatalf("the right token: ok=%v wait=%v", ok, wait)
	}
	for i := range httpx.AdminFailureLimit - 1 {
		if ok, wait := in(client, "wrong-token-number-"+strconv.Itoa(i)); ok || wait != 0 {
			t.Fatalf("wrong token %d: ok=%v wait=%v", i, ok, wait)
		}
	}
	if w := serve(h, request(client, "Bearer still-wrong-token", "/")); w.Code != 403 {
		t.Fatalf("the last wrong bearer token: %d", w.Code)
	}
	if ok, wait := in(client, token); ok || wait <= 0 {
		t.Errorf("locked out, the right token: ok=%v wait=%v; want a wait", ok, wait)
	}
	if w := serve(h, request(client, "Bearer "+token, "/")); w.Code != 429 {
		t.Errorf("locked out, a bearer request: %d, want 429", w.Code)
	}
	if ok, _ := in(client, token); ok {
		t.Error("locked out")
	}
	if ok, wait := in("203.0.113.31:1", token); !ok || wait != 0 {
		t.Errorf("another client: ok=%v wait=%v", ok, wait)
	}
}

// TestLoginFormToken: a sign-in posts back the token of the form it was
// shown, with that form's cookie, from the same origin.
func TestLoginFormToken(t *testing.T) {
	t.Parallel()
	s := httpx.NewSessions(token, time.Hour)
	w := httptest.NewRecorder()
	formToken := s.StartLogin(w, httptest.NewRequest(http.MethodGet, "/admin/login", nil))
	cookies := w.Result().Cookies()
	if len(cookies) != 1 || cookies[0].Name != httpx.LoginCookie || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("login cookie: %v", cookies)
	}
	other := s.StartLogin(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/admin/login", nil))
	post := func(field string, cookie bool, site string) error {
		r := httptest.NewRequest(http.MethodPost, "/admin/login", strings.NewReader(url.Values{"csrf_token": {field}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Sec-Fetch-Site", site)
		if cookie {
			r.AddCookie(cookies[0])
		}
		return s.CheckLogin(r)
	}
	if err := post(formToken, true, "same-origin"); err != nil {
		t.Fatalf("the form's own token: %v", err)
	}
	for name, err := range map[string]error{
		"without the cookie":        post(formToken, false, "same-origin"),
		"without the token":         post("", true, "same-origin"),
		"with another form's token": post(other, true, "same-origin"),
		"from another site":         post(formToken, true, "cross-site"),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
