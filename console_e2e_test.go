package main

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"timeslots/internal/database"
	"timeslots/internal/httpx"
)

// consoleClient is a browser's view of the server: it keeps cookies and
// does not follow redirects, so the test reads each one.
func consoleClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var (
	formTokenRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	pageCSRFRE  = regexp.MustCompile(`data-csrf="([^"]*)"`)
)

// signIn posts the sign-in form as a browser would: its own token, its
// cookie, from the same origin.
func signIn(t *testing.T, c *http.Client, base, token string) answer {
	t.Helper()
	form, err := getAnswer(c, http.MethodGet, base+"/admin/login", nil, nil)
	if err != nil || form.Status != http.StatusOK {
		t.Fatalf("sign-in form: %v %v", form, err)
	}
	m := formTokenRE.FindSubmatch(form.Body)
	if m == nil {
		t.Fatalf("the form has no token: %s", form.Body)
	}
	body := url.Values{"csrf_token": {string(m[1])}, "token": {token}, "next": {"/admin"}}.Encode()
	a, err := getAnswer(c, http.MethodPost, base+"/admin/login", http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {base}, "Sec-Fetch-Site": {"same-origin"},
	}, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestConsoleSignInInProduction walks the console as a browser does, in
// production: the page sends it to sign in; a wrong token is refused
// without being echoed and counts; the right one sets the cookie, which
// opens the console, the playground and introspection, and authorises
// admin calls that carry the session's CSRF token from the same origin
// (not from another origin, not without the token); signing out ends it.
func TestConsoleSignInInProduction(t *testing.T) {
	t.Parallel()
	const token = "a-long-enough-admin-token"
	srv := startServer(t, testEnv(t, database.SQLite, map[string]string{"APP_ENV": "production", "ADMIN_TOKEN": token}))
	c := consoleClient(t)

	a, err := getAnswer(c, http.MethodGet, srv.URL+"/admin", nil, nil)
	if err != nil || a.Status != http.StatusSeeOther || a.Header.Get("Location") != "/admin/login" {
		t.Fatalf("the console before signing in: %v %v", a, err)
	}
	a, _ = getAnswer(c, http.MethodGet, srv.URL+"/playground", http.Header{"Accept": {"text/html"}}, nil)
	if a.Status != http.StatusSeeOther || a.Header.Get("Location") != "/admin/login?next=%2Fplayground" {
		t.Fatalf("the playground before signing in: %v %v", a.Status, a.Header)
	}

	const wrong = "not-the-admin-token-but-long"
	a = signIn(t, c, srv.URL, wrong)
	if a.Status != http.StatusUnauthorized || strings.Contains(string(a.Body), wrong) || !strings.Contains(string(a.Body), "That is not the admin token.") {
		t.Fatalf("a wrong token: %v", a)
	}
	if !strings.Contains(srv.out.String(), `"msg":"wrong admin token"`) {
		t.Error("the wrong token was not counted (no log line)")
	}

	a = signIn(t, c, srv.URL, token)
	if a.Status != http.StatusSeeOther || a.Header.Get("Location") != "/admin" {
		t.Fatalf("the right token: %v", a)
	}
	set := a.Header.Get("Set-Cookie")
	for _, flag := range []string{httpx.SessionCookie + "=", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=28800"} {
		if !strings.Contains(set, flag) {
			t.Errorf("session cookie %q lacks %s", set, flag)
		}
	}
	if strings.Contains(set, "Secure") {
		t.Errorf("session cookie %q is Secure over plain HTTP", set)
	}

	page, err := getAnswer(c, http.MethodGet, srv.URL+"/admin", nil, nil)
	if err != nil || page.Status != http.StatusOK {
		t.Fatalf("the console: %v %v", page, err)
	}
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("console CSP: %q", csp)
	}
	if page.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("console Cache-Control: %q", page.Header.Get("Cache-Control"))
	}
	m := pageCSRFRE.FindSubmatch(page.Body)
	if m == nil || len(m[1]) == 0 {
		t.Fatalf("the console carries no CSRF token")
	}
	csrf := string(m[1])
	for _, asset := range []string{"/admin/assets/console.js", "/admin/assets/console.css"} {
		if a, _ := getAnswer(c, http.MethodGet, srv.URL+asset, nil, nil); a.Status != http.StatusOK || len(a.Body) == 0 {
			t.Errorf("%s: %d", asset, a.Status)
		}
	}

	pg, _ := getAnswer(c, http.MethodGet, srv.URL+"/playground", http.Header{"Accept": {"text/html"}}, nil)
	if pg.Status != http.StatusOK || !strings.Contains(string(pg.Body), csrf) {
		t.Fatalf("the playground signed in: %d, CSRF token in the page: %v", pg.Status, strings.Contains(string(pg.Body), csrf))
	}

	introspect := `{"query":"{ __schema { queryType { name } } }"}`
	post := func(path, method string, header http.Header, body string) answer {
		t.Helper()
		h := http.Header{"Content-Type": {"application/json"}}
		for k, v := range header {
			h[k] = v
		}
		a, err := getAnswer(c, method, srv.URL+path, h, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	same := http.Header{"Origin": {srv.URL}, "Sec-Fetch-Site": {"same-origin"}, "X-Csrf-Token": {csrf}}
	if a := post("/graphql", http.MethodPost, same, introspect); a.Status != http.StatusOK || !strings.Contains(string(a.Body), `"name":"Query"`) {
		t.Errorf("introspection signed in: %v", a)
	}
	if a, _ := getAnswer(nil, http.MethodPost, srv.URL+"/graphql", http.Header{"Content-Type": {"application/json"}}, strings.NewReader(introspect)); !strings.Contains(string(a.Body), `"code":"FORBIDDEN"`) {
		t.Errorf("introspection anonymous: %v", a)
	}
	cross := http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}, "X-Csrf-Token": {csrf}}
	if a := post("/api/admin/time-slots", http.MethodPost, cross, `{"daysAhead":1}`); a.Status != http.StatusForbidden || !strings.Contains(string(a.Body), "FORBIDDEN") {
		t.Errorf("a cross-origin generation with the cookie: %v", a)
	}
	if a := post("/graphql", http.MethodPost, cross, `{"query":"mutation { cleanupSlots(daysOld: 1) { deleted } }"}`); a.Status != http.StatusForbidden || !strings.Contains(string(a.Body), `"code":"FORBIDDEN"`) {
		t.Errorf("a cross-origin GraphQL mutation with the cookie: %v", a)
	}
	if a := post("/api/admin/time-slots", http.MethodPost, http.Header{"Origin": {srv.URL}, "Sec-Fetch-Site": {"same-origin"}}, `{"daysAhead":1}`); a.Status != http.StatusForbidden {
		t.Errorf("a generation without the CSRF token: %v", a)
	}
	if a := post("/api/admin/time-slots", http.MethodPost, same, `{"daysAhead":1}`); a.Status != http.StatusOK || !strings.Contains(string(a.Body), `"created"`) {
		t.Errorf("a generation from the console: %v", a)
	}
	if a, _ := getAnswer(nil, http.MethodPost, srv.URL+"/api/admin/time-slots", http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + token}}, strings.NewReader(`{"daysAhead":1}`)); a.Status != http.StatusOK {
		t.Errorf("the bearer token: %v", a)
	}

	old := c.Jar.Cookies(mustURL(t, srv.URL))
	out := post("/admin/logout", http.MethodPost, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Origin": {srv.URL}, "Sec-Fetch-Site": {"same-origin"}}, "csrf_token="+url.QueryEscape(csrf))
	if out.Status != http.StatusSeeOther || !strings.Contains(out.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("sign-out: %v %v", out.Status, out.Header)
	}
	if a, _ := getAnswer(c, http.MethodGet, srv.URL+"/admin", nil, nil); a.Status != http.StatusSeeOther {
		t.Errorf("the console after signing out: %d", a.Status)
	}
	// The old cookie, replayed, is refused too.
	replay := &http.Client{CheckRedirect: c.CheckRedirect}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/admin", nil)
	for _, ck := range old {
		req.AddCookie(ck)
	}
	if resp, err := replay.Do(req); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the signed-out cookie replayed: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
