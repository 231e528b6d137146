package httpx

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"timeslots/internal/apperr"
)

// Names of the admin console's cookies and of the header and form field
// that carry a session's CSRF token.
const (
	SessionCookie = "timeslots_admin"
	LoginCookie   = "timeslots_login"
	CSRFHeader    = "X-CSRF-Token"
	CSRFField     = "csrf_token"
)

// loginNonceTTL bounds how long a sign-in form stays usable.
const loginNonceTTL = time.Hour

// Sessions signs and reads the admin console's session cookie, so that a
// browser, which sends no bearer token when it navigates, can use the
// admin pages. A session is a random id and an expiry, signed with
// HMAC-SHA256 under a key derived from the admin token: every replica
// reads every replica's sessions without shared state, and a new
// ADMIN_TOKEN signs everyone out. Signing out revokes the session in this
// process (and clears the cookie); other replicas accept the signed value
// until it expires.
//
// Each session has a CSRF token (an HMAC of its id) that the pages send in
// the X-CSRF-Token header (or the csrf_token form field): a request that
// the cookie authorises and that changes state needs it, and must come
// from the same origin (see CheckRequest).
type Sessions struct {
	key   []byte
	ttl   time.Duration
	now   func() time.Time
	cross *http.CrossOriginProtection

	mu      sync.Mutex
	revoked map[string]time.Time // id → its expiry, after which it is forgotten
}

// Session is one signed-in browser.
type Session struct {
	ID      string
	Expires time.Time
	csrf    string
}

// CSRFToken answers the token the session's pages send with every request
// that changes state.
func (s Session) CSRFToken() string { return s.csrf }

// NewSessions derives the signing key from the admin token; sessions last
// ttl. An empty token (development, loopback-only admin access) answers
// nil: there is nothing to sign in with.
func NewSessions(adminToken string, ttl time.Duration) *Sessions {
	if adminToken == "" {
		return nil
	}
	mac := hmac.New(sha256.New, []byte(adminToken))
	mac.Write([]byte("timeslots admin console session key v1"))
	return &Sessions{key: mac.Sum(nil), ttl: ttl, now: time.Now,
		cross: http.NewCrossOriginProtection(), revoked: map[string]time.Time{}}
}

// TTL answers how long a session lasts.
func (s *Sessions) TTL() time.Duration { return s.ttl }

func (s *Sessions) sign(parts ...string) []byte {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(strings.Join(parts, "|")))
	return mac.Sum(nil)
}

var b64 = base64.RawURLEncoding

// Start signs a new session into the response's cookie: HttpOnly,
// SameSite=Strict, Path=/, Secure when the client came over TLS (HTTPS),
// and expiring with the session.
func (s *Sessions) Start(w http.ResponseWriter, r *http.Request) Session {
	id := randomID()
	exp := s.now().Add(s.ttl).Truncate(time.Second)
	value := id + "." + strconv.FormatInt(exp.Unix(), 10)
	value += "." + b64.EncodeToString(s.sign("session", value))
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: value, Path: "/", Expires: exp, MaxAge: int(s.ttl / time.Second),
		HttpOnly: true, Secure: HTTPS(r), SameSite: http.SameSiteStrictMode,
	})
	return s.session(id, exp)
}

func (s *Sessions) session(id string, exp time.Time) Session {
	return Session{ID: id, Expires: exp, csrf: b64.EncodeToString(s.sign("csrf", id))}
}

// Read answers r's session: false when it has no cookie, or one that is
// tampered with, expired or signed out.
func (s *Sessions) Read(r *http.Request) (Session, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return Session{}, false
	}
	i := strings.LastIndexByte(c.Value, '.')
	if i < 0 {
		return Session{}, false
	}
	value, mac := c.Value[:i], c.Value[i+1:]
	got, err := b64.DecodeString(mac)
	if err != nil || !hmac.Equal(got, s.sign("session", value)) {
		return Session{}, false
	}
	id, unix, ok := strings.Cut(value, ".")
	sec, err := strconv.ParseInt(unix, 10, 64)
	if !ok || err != nil {
		return Session{}, false
	}
	exp := time.Unix(sec, 0)
	if !s.now().Before(exp) || s.isRevoked(id) {
		return Session{}, false
	}
	return s.session(id, exp), true
}

// End signs the session out: this process refuses it from now on, and the
// browser is told to drop its cookie.
func (s *Sessions) End(w http.ResponseWriter, r *http.Request, sess Session) {
	s.mu.Lock()
	now := s.now()
	for id, exp := range s.revoked {
		if !now.Before(exp) {
			delete(s.revoked, id)
		}
	}
	s.revoked[sess.ID] = sess.Expires
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: HTTPS(r), SameSite: http.SameSiteStrictMode})
}

func (s *Sessions) isRevoked(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.revoked[id]
	return ok
}

// Refusals of requests that the cookie would authorise.
var (
	errCrossOrigin = apperr.E(apperr.Forbidden, "cross-origin request refused: the admin session cookie works only for the console's own pages")
	errNoCSRF      = apperr.E(apperr.Forbidden, "the admin session needs its CSRF token in the X-CSRF-Token header; reload the console")
)

// safeMethod reports whether method only reads.
func safeMethod(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

// crossSite reports whether a browser says r comes from another origin:
// Sec-Fetch-Site other than same-origin or none (a typed address), or
// else an Origin header that names another host.
func crossSite(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return false
	case "":
	default:
		return true
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	return err != nil || u.Host != r.Host
}

// Authorizes reports whether the cookie's session stands for the admin on
// r: not on a read another origin makes (a site CORS_ORIGINS admits with
// credentials, or a sibling of the same site, which SameSite=Strict lets
// the cookie reach), so such a site cannot read admin answers with an
// admin's browser. The request then goes on as if it had no cookie.
// Requests that may change state are CheckRequest's.
func (s *Sessions) Authorizes(r *http.Request) bool {
	return !safeMethod(r.Method) || !crossSite(r)
}

// CheckRequest protects a request sess authorises against cross-site
// request forgery: a request that may change state (any method but GET,
// HEAD and OPTIONS) must come from the same origin (Sec-Fetch-Site, or
// else Origin against Host, by net/http's CrossOriginProtection) and carry
// the session's CSRF token, in the X-CSRF-Token header or, for a form, the
// csrf_token field. The answer is a FORBIDDEN error or nil.
func (s *Sessions) CheckRequest(r *http.Request, sess Session) error {
	if safeMethod(r.Method) {
		return nil
	}
	if err := s.cross.Check(r); err != nil {
		return errCrossOrigin
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		got = r.PostFormValue(CSRFField)
	}
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) != 1 {
		return errNoCSRF
	}
	return nil
}

// StartLogin gives a sign-in form its token: a random nonce in a short
// cookie (HttpOnly, SameSite=Strict, for the login path only) and its
// HMAC, which the form carries back, so a sign-in posted from another
// site (login CSRF) fails: it has neither the cookie nor the token.
func (s *Sessions) StartLogin(w http.ResponseWriter, r *http.Request) string {
	nonce := randomID()
	http.SetCookie(w, &http.Cookie{
		Name: LoginCookie, Value: nonce, Path: r.URL.Path, MaxAge: int(loginNonceTTL / time.Second),
		HttpOnly: true, Secure: HTTPS(r), SameSite: http.SameSiteStrictMode,
	})
	return b64.EncodeToString(s.sign("login", nonce))
}

// errLoginForm refuses a sign-in without the form's own token.
var errLoginForm = apperr.E(apperr.Forbidden, "the sign-in form has expired or was posted from another site; open the sign-in page again")

// CheckLogin checks a posted sign-in form: same origin, and its csrf_token
// field is the HMAC of the login cookie's nonce.
func (s *Sessions) CheckLogin(r *http.Request) error {
	if err := s.cross.Check(r); err != nil {
		return errCrossOrigin
	}
	c, err := r.Cookie(LoginCookie)
	if err != nil || c.Value == "" {
		return errLoginForm
	}
	got, err := b64.DecodeString(r.PostFormValue(CSRFField))
	if err != nil || !hmac.Equal(got, s.sign("login", c.Value)) {
		return errLoginForm
	}
	return nil
}

func randomID() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return b64.EncodeToString(b[:])
}

// SessionOf answers the console session that authorised the request in
// ctx (see WithSessions); false for requests authorised otherwise.
func SessionOf(ctx context.Context) (Session, bool) {
	s, ok := ctx.Value(sessionKey).(Session)
	return s, ok
}
