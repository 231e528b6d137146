package console_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"timeslots/internal/console"
	"timeslots/internal/database"
	"timeslots/internal/dbtest"
	"timeslots/internal/httpx"
	"timeslots/internal/slots"
	"timeslots/models"
)

// page serves one request to a console over m without ADMIN_TOKEN, where
// loopback clients are admins, and answers the recorder.
func page(t *testing.T, m *slots.Manager, remote, target string) *httptest.ResponseRecorder {
	t.Helper()
	gate := httpx.NewAdminGate("")
	h, err := console.New(console.Options{Slots: m, Gate: gate, GenerateDays: 30, CleanupDaysOld: 30,
		PlaygroundPath: "/playground", GraphQLPath: "/graphql", AdminAPI: "/api/admin/time-slots"})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, target, nil)
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	httpx.ClientIPs(nil)(gate.Middleware(h)).ServeHTTP(w, r)
	return w
}

// TestConsoleSpeaksInSentences: an empty store reads as sentences, not
// as empty tables; a failed maintenance run is highlighted and marked,
// not told by colour alone; a bad date in the bookings search is a
// sentence too; and a client that is not an admin gets no page.
func TestConsoleSpeaksInSentences(t *testing.T) {
	t.Parallel()
	m := slots.New(dbtest.Open(t, database.SQLite))
	w := page(t, m, "127.0.0.1:1", "/admin")
	body := w.Body.String()
	if w.Code != http.StatusOK {
		t.Fatalf("empty console: %d %s", w.Code, body)
	}
	for _, s := range []string{
		"There are no slots yet.",
		"There is nothing to draw yet: no provider has a slot from today on.",
		"There are no providers yet.",
		"No maintenance job has run yet.",
		"There are no providers, so there are no bookings.",
	} {
		if !strings.Contains(body, s) {
			t.Errorf("the empty console does not say %q", s)
		}
	}

	run, err := m.ClaimJobRun(t.Context(), "cleanup", time.Now().Truncate(time.Minute), "test", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.FinishJobRun(t.Context(), run.ID, models.JobFailed, "", errors.New("the disk is full")); err != nil {
		t.Fatal(err)
	}
	p, err := m.CreateProvider(t.Context(), models.ProviderInput{Name: "Dr. Ada", TimeZone: "UTC", SlotMinutes: 60,
		WorkingHours: []models.WorkingHours{{Weekday: models.Monday, Start: "09:00", End: "10:00"}}})
	if err != nil {
		t.Fatal(err)
	}
	body = page(t, m, "127.0.0.1:1", "/admin").Body.String()
	if !strings.Contains(body, `<tr class="failed">`) || !strings.Contains(body, "⚠ failed") || !strings.Contains(body, "the disk is full") {
		t.Errorf("the failed run is not highlighted and marked:\n%s", body)
	}
	if !strings.Contains(body, "Dr. Ada has no bookings on ") {
		t.Errorf("no sentence for a day without bookings")
	}
	body = page(t, m, "127.0.0.1:1", "/admin?provider="+strconv.FormatInt(p.ID, 10)+"&date=tomorrow").Body.String()
	if !strings.Contains(body, "The date must be written as YYYY-MM-DD") {
		t.Errorf("a bad date is not a sentence")
	}
	if w := page(t, m, "203.0.113.9:1", "/admin"); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "loopback clients only") {
		t.Errorf("a remote client without ADMIN_TOKEN: %d %s", w.Code, w.Body)
	}
	if w := page(t, m, "127.0.0.1:1", "/admin/nothing"); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "There is no console page at this address.") {
		t.Errorf("an unknown console path: %d", w.Code)
	}
}

// TestSignInFormLockout: wrong tokens typed into the form are refused
// with a sentence that never shows them, and once a client has sent
// AdminFailureLimit of them even the right token waits (429, Retry-After).
func TestSignInFormLockout(t *testing.T) {
	t.Parallel()
	const token = "0123456789abcdef-admin"
	m := slots.New(dbtest.Open(t, database.SQLite))
	sessions := httpx.NewSessions(token, time.Hour)
	gate := httpx.NewAdminGate(token, httpx.WithSessions(sessions))
	con, err := console.New(console.Options{Slots: m, Gate: gate, Sessions: sessions, PlaygroundPath: "/playground"})
	if err != nil {
		t.Fatal(err)
	}
	h := httpx.ClientIPs(nil)(gate.Middleware(con))
	signIn := func(typed string) *httptest.ResponseRecorder {
		form := httptest.NewRecorder()
		get := httptest.NewRequest(http.MethodGet, "/admin/login", nil)
		get.RemoteAddr = "203.0.113.40:1"
		h.ServeHTTP(form, get)
		m := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindStringSubmatch(form.Body.String())
		if m == nil {
			t.Fatalf("no form token: %s", form.Body)
		}
		r := httptest.NewRequest(http.MethodPost, "/admin/login",
			strings.NewReader(url.Values{"csrf_token": {m[1]}, "token": {typed}}.Encode()))
		r.RemoteAddr = "203.0.113.40:1"
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		for _, c := range form.Result().Cookies() {
			r.AddCookie(c)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for i := range httpx.AdminFailureLimit {
		wrong := "wrong-admin-token-" + strconv.Itoa(i)
		w := signIn(wrong)
		if w.Code != http.StatusUnauthorized || strings.Contains(w.Body.String(), wrong) || !strings.Contains(w.Body.String(), "That is not the admin token.") {
			t.Fatalf("wrong token %d: %d %s", i, w.Code, w.Body)
		}
	}
	w := signIn(token)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "Too many wrong tokens came from your address") {
		t.Errorf("the right token after %d wrong ones: %d %s", httpx.AdminFailureLimit, w.Code, w.Body)
	}
	if len(w.Result().Cookies()) != 1 || w.Result().Cookies()[0].Name != httpx.LoginCookie {
		t.Errorf("a locked-out sign-in set %v; want only a new form's cookie", w.Result().Cookies())
	}
}
