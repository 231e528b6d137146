package main

// End users' JWTs at the HTTP edges, end to end: the real server verifies
// tokens against a JSON Web Key Set served by an httptest server, with keys
// generated here.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"timeslots/internal/database"
	"timeslots/internal/gqlws"
	"timeslots/internal/httpx"
	"timeslots/internal/rest/openapitest"
)

const (
	e2eIssuer   = "https://id.example.test/"
	e2eAudience = "timeslots-api"
)

// signingKey is an RSA key generated for a test, with its key id.
type signingKey struct {
	kid string
	key *rsa.PrivateKey
}

func newSigningKey(t testing.TB, kid string) signingKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid: kid, key: k}
}

// jwk is the public half of k as a JSON Web Key.
func (k signingKey) jwk() map[string]string {
	b64 := base64.RawURLEncoding.EncodeToString
	return map[string]string{
		"kty": "RSA", "kid": k.kid, "use": "sig", "alg": "RS256",
		"n": b64(k.key.N.Bytes()), "e": b64(big.NewInt(int64(k.key.E)).Bytes()),
	}
}

// keySetServer serves a JSON Web Key Set the test may replace.
type keySetServer struct {
	*httptest.Server
	mu   sync.Mutex
	keys []signingKey
}

func newKeySetServer(t testing.TB, keys ...signingKey) *keySetServer {
	t.Helper()
	s := &keySetServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		set := map[string]any{"keys": []map[string]string{}}
		for _, k := range s.keys {
			set["keys"] = append(set["keys"].([]map[string]string), k.jwk())
		}
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	return s
}

// serve replaces the key set: the identity provider rotates its keys.
func (s *keySetServer) serve(keys ...signingKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

// customerClaims are valid claims for sub, changed by changes.
func customerClaims(sub string, changes jwt.MapClaims) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"iss": e2eIssuer, "aud": e2eAudience, "sub": sub,
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
	for k, v := range changes {
		c[k] = v
	}
	return c
}

// signed signs claims with key under method, naming kid (if any) in the
// header.
func signed(t testing.TB, method jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fromClient is the header of a request that carries token ("" for none)
// and comes from client, as the trusted loopback proxy reports it.
func fromClient(token, client string) http.Header {
	h := bearer(token, false)
	h.Set("X-Forwarded-For", client)
	return h
}

// listSlots asks GET /api/time-slots.
func listSlots(t *testing.T, base string, header http.Header) answer {
	t.Helper()
	a, err := getAnswer(nil, http.MethodGet, base+"/api/time-slots?limit=1", header, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// wantUnauthenticated fails the test unless /graphql and /api/time-slots
// both refuse token from client with 401 UNAUTHENTICATED, each in its own
// error shape.
func wantUnauthenticated(t *testing.T, srv *testServer, api *openapitest.Validator, token, client string) {
	t.Helper()
	g := postGraphQL(t, srv.URL, "{ __typename }", nil, fromClient(token, client))
	if g.Status != http.StatusUnauthorized || g.Code() != "UNAUTHENTICATED" || len(g.Errors) != 1 ||
		!strings.HasPrefix(g.Errors[0].Message, "bearer token ") || g.Data != nil {
		t.Errorf("/graphql answered %s, want 401 with one GraphQL error coded UNAUTHENTICATED and no data", g.answer)
	}
	r := listSlots(t, srv.URL, fromClient(token, client))
	var body httpx.ErrorBody
	if r.Status != http.StatusUnauthorized || json.Unmarshal(r.Body, &body) != nil ||
		body.Error.Code != "UNAUTHENTICATED" || !strings.HasPrefix(body.Error.Message, "bearer token ") {
		t.Errorf("/api/time-slots answered %s, want 401 with the REST error coded UNAUTHENTICATED", r)
	}
	api.CheckSchema(t, "401 of /api/time-slots", "Error", r.Body)
	for _, a := range []answer{g.answer, r} {
		if a.Header.Get("WWW-Authenticate") != `Bearer error="invalid_token"` || a.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s answered WWW-Authenticate %q, Cache-Control %q; want the invalid_token challenge, not stored",
				a.URL.Path, a.Header.Get("WWW-Authenticate"), a.Header.Get("Cache-Control"))
		}
	}
}

func TestEndUserTokensAtTheEdges(t *testing.T) {
	t.Parallel()
	current, next := newSigningKey(t, "rsa-1"), newSigningKey(t, "rsa-2")
	jwks := newKeySetServer(t, current)
	// The URL carries credentials, which must never reach the logs.
	jwksURL, err := url.Parse(jwks.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	jwksURL.User = url.UserPassword("reader", "jwks-pa55")
	const admin = "e2e-admin-token-0123456789"
	srv := startServer(t, testEnv(t, database.SQLite, map[string]string{
		"SEED_DEMO":       "false",
		"ADMIN_TOKEN":     admin,
		"AUTH_JWKS_URL":   jwksURL.String(),
		"AUTH_ISSUER":     e2eIssuer,
		"AUTH_AUDIENCE":   e2eAudience,
		"TRUSTED_PROXIES": "127.0.0.1",
	}))
	api := openapitest.New(t, srv.URL)
	if logs := srv.Logs(); !strings.Contains(logs, `"msg":"end-user authentication on"`) ||
		!strings.Contains(logs, `"mode":"jwks"`) || strings.Contains(logs, "jwks-pa55") {
		t.Errorf("start-up logs, want the JWKS mode logged without the URL's password:\n%s", logs)
	}

	valid := signed(t, jwt.SigningMethodRS256, current.kid, current.key, customerClaims("cust-1", nil))

	t.Run("a valid token passes on GraphQL and REST", func(t *testing.T) {
		g := postGraphQL(t, srv.URL, "{ __typename }", nil, fromClient(valid, "192.0.2.1"))
		var data struct {
			Typename string `json:"__typename"`
		}
		g.Decode(t, &data)
		if g.Status != http.StatusOK || data.Typename != "Query" {
			t.Errorf("/graphql answered %s, want 200 with the Query type", g.answer)
		}
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/time-slots?limit=1", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header = fromClient(valid, "192.0.2.1")
		if r := api.Do(t, http.DefaultClient, req); r.Status != http.StatusOK {
			t.Errorf("/api/time-slots answered %s, want 200", r)
		}
	})

	publicPEM := func() []byte {
		der, err := x509.MarshalPKIXPublicKey(&current.key.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	forged := func() string {
		parts := strings.Split(valid, ".")
		payload, err := json.Marshal(customerClaims("someone-else", nil))
		if err != nil {
			t.Fatal(err)
		}
		parts[1] = base64.RawURLEncoding.EncodeToString(payload)
		return strings.Join(parts, ".")
	}()
	hour := time.Hour
	for i, tc := range []struct {
		name  string
		token string
	}{
		{"an expired token is refused", signed(t, jwt.SigningMethodRS256, current.kid, current.key,
			customerClaims("cust-1", jwt.MapClaims{"iat": time.Now().Add(-2 * hour).Unix(), "exp": time.Now().Add(-hour).Unix()}))},
		{"a token not valid yet is refused", signed(t, jwt.SigningMethodRS256, current.kid, current.key,
			customerClaims("cust-1", jwt.MapClaims{"nbf": time.Now().Add(hour).Unix()}))},
		{"a token of another issuer is refused", signed(t, jwt.SigningMethodRS256, current.kid, current.key,
			customerClaims("cust-1", jwt.MapClaims{"iss": "https://evil.example.test/"}))},
		{"a token for another audience is refused", signed(t, jwt.SigningMethodRS256, current.kid, current.key,
			customerClaims("cust-1", jwt.MapClaims{"aud": "another-api"}))},
		{`an "alg": "none" token is refused`, signed(t, jwt.SigningMethodNone, current.kid, jwt.UnsafeAllowNoneSignatureType,
			customerClaims("cust-1", nil))},
		{"an HS256 token keyed with the RSA public key is refused", signed(t, jwt.SigningMethodHS256, current.kid, publicPEM,
			customerClaims("cust-1", nil))},
		{"a token whose payload was changed after signing is refused", forged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantUnauthenticated(t, srv, api, tc.token, fmt.Sprintf("192.0.2.%d", 10+i))
		})
	}

	t.Run("a rotated key is picked up and the retired one refused", func(t *testing.T) {
		jwks.serve(next)
		rotated := signed(t, jwt.SigningMethodRS256, next.kid, next.key, customerClaims("cust-2", nil))
		if g := postGraphQL(t, srv.URL, "{ __typename }", nil, fromClient(rotated, "192.0.2.30")); g.Status != http.StatusOK || len(g.Errors) > 0 {
			t.Errorf("a token with the new key id: /graphql answered %s, want 200", g.answer)
		}
		if r := listSlots(t, srv.URL, fromClient(rotated, "192.0.2.30")); r.Status != http.StatusOK {
			t.Errorf("a token with the new key id: /api/time-slots answered %s, want 200", r)
		}
		wantUnauthenticated(t, srv, api, valid, "192.0.2.31")
	})

	t.Run("the admin token works beside customers' tokens", func(t *testing.T) {
		g := postGraphQL(t, srv.URL, "{ slotStats { __typename } }", nil, fromClient(admin, "192.0.2.40"))
		if g.Status != http.StatusOK || len(g.Errors) > 0 {
			t.Errorf("slotStats with the admin token answered %s, want 200", g.answer)
		}
		a, err := getAnswer(nil, http.MethodGet, srv.URL+"/api/admin/time-slots", fromClient(admin, "192.0.2.40"), nil)
		if err != nil || a.Status != http.StatusOK {
			t.Errorf("admin stats with the admin token answered %v %v, want 200", a, err)
		}
		customer := signed(t, jwt.SigningMethodRS256, next.kid, next.key, customerClaims("cust-3", nil))
		a, err = getAnswer(nil, http.MethodGet, srv.URL+"/api/admin/time-slots", fromClient(customer, "192.0.2.41"), nil)
		if err != nil || a.Status != http.StatusUnauthorized || !strings.Contains(string(a.Body), `"code":"UNAUTHENTICATED"`) {
			t.Errorf("admin stats with a customer's token answered %v %v, want 401 UNAUTHENTICATED", a, err)
		}
		g = postGraphQL(t, srv.URL, "{ slotStats { __typename } }", nil, fromClient(customer, "192.0.2.41"))
		if g.Code() != "UNAUTHENTICATED" {
			t.Errorf("slotStats with a customer's token answered %s, want UNAUTHENTICATED", g.answer)
		}
	})

	t.Run("forged tokens are slowed, expired ones are not", func(t *testing.T) {
		const guesser, stale = "192.0.2.50", "192.0.2.51"
		expired := signed(t, jwt.SigningMethodRS256, next.kid, next.key,
			customerClaims("cust-4", jwt.MapClaims{"iat": time.Now().Add(-2 * hour).Unix(), "exp": time.Now().Add(-hour).Unix()}))
		for i := range httpx.AdminFailureLimit + 2 {
			if g := postGraphQL(t, srv.URL, "{ __typename }", nil, fromClient(expired, stale)); g.Status != http.StatusUnauthorized {
				t.Fatalf("expired token %d: /graphql answered %s, want 401 every time", i, g.answer)
			}
			if i < httpx.AdminFailureLimit {
				if g := postGraphQL(t, srv.URL, "{ __typename }", nil, fromClient(forged, guesser)); g.Status != http.StatusUnauthorized {
					t.Fatalf("forged token %d: /graphql answered %s, want 401", i, g.answer)
				}
			}
		}
		fresh := signed(t, jwt.SigningMethodRS256, next.kid, next.key, customerClaims("cust-4", nil))
		g := postGraphQL(t, srv.URL, "{ __typename }", nil, fromClient(fresh, guesser))
		if g.Status != http.StatusTooManyRequests || g.Code() != "RATE_LIMITED" || g.Header.Get("Retry-After") == "" {
			t.Errorf("the guesser's next token: /graphql answered %s, want 429 RATE_LIMITED with Retry-After", g.answer)
		}
		if g := postGraphQL(t, srv.URL, "{ __typename }", nil, fromClient(fresh, stale)); g.Status != http.StatusOK {
			t.Errorf("a fresh token after expired ones: /graphql answered %s, want 200", g.answer)
		}
		if logs := srv.Logs(); strings.Contains(logs, "wrong admin token") || !strings.Contains(logs, "customer token refused") {
			t.Errorf("logs, want refused customers' tokens logged as such, never as wrong admin tokens")
		}
	})
}

// e2eSecret is the HS256 secret of authRequiredEnv's server.
const e2eSecret = "e2e-hs256-secret-0123456789abcdef-0123"

// authRequiredEnv is a server on SQLite without demo data that verifies
// customers' tokens with e2eSecret and requires them (AUTH_REQUIRED).
func authRequiredEnv(t *testing.T) map[string]string {
	return testEnv(t, database.SQLite, map[string]string{
		"SEED_DEMO":       "false",
		"AUTH_JWT_SECRET": e2eSecret,
		"AUTH_ISSUER":     e2eIssuer,
		"AUTH_AUDIENCE":   e2eAudience,
		"AUTH_REQUIRED":   "true",
	})
}

// With AUTH_REQUIRED=true (here with an HS256 secret), a request without a
// token still reads public listings: only the operations that act for a
// customer need one.
func TestAuthRequiredLeavesPublicListingsOpen(t *testing.T) {
	t.Parallel()
	const secret = e2eSecret
	srv := startServer(t, authRequiredEnv(t))
	if logs := srv.Logs(); !strings.Contains(logs, `"mode":"hs256"`) || !strings.Contains(logs, `"required":true`) ||
		strings.Contains(logs, secret) {
		t.Errorf("start-up logs, want the HS256 mode and AUTH_REQUIRED logged without the secret:\n%s", logs)
	}
	if r := listSlots(t, srv.URL, nil); r.Status != http.StatusOK {
		t.Errorf("/api/time-slots without a token answered %s, want 200", r)
	}
	g := postGraphQL(t, srv.URL, "{ timeSlots(first: 1) { totalCount } }", nil, nil)
	if g.Status != http.StatusOK || len(g.Errors) > 0 {
		t.Errorf("timeSlots without a token answered %s, want 200", g.answer)
	}
	token := signed(t, jwt.SigningMethodHS256, "", []byte(secret), customerClaims("cust-1", nil))
	if g := postGraphQL(t, srv.URL, "{ __typename }", nil, bearer(token, false)); g.Status != http.StatusOK || len(g.Errors) > 0 {
		t.Errorf("a valid HS256 token answered %s, want 200", g.answer)
	}
	rs := newSigningKey(t, "rsa-1")
	wrongKind := signed(t, jwt.SigningMethodRS256, rs.kid, rs.key, customerClaims("cust-1", nil))
	if g := postGraphQL(t, srv.URL, "{ __typename }", nil, bearer(wrongKind, false)); g.Status != http.StatusUnauthorized || g.Code() != "UNAUTHENTICATED" {
		t.Errorf("an RS256 token to the HS256 verifier answered %s, want 401 UNAUTHENTICATED", g.answer)
	}
}

// A signed-in customer owns what it books: with AUTH_REQUIRED an anonymous
// booking is refused, the token's subject is the booking's owner, the
// owner pages its own bookings and cancels by id, another customer can
// neither see nor cancel them, and idempotency keys are the owner's own.
func TestCustomersOwnTheirBookingsEndToEnd(t *testing.T) {
	t.Parallel()
	const secret = "e2e-hs256-secret-0123456789abcdef-0123"
	srv := startServer(t, testEnv(t, database.SQLite, map[string]string{
		"AUTH_JWT_SECRET": secret,
		"AUTH_ISSUER":     e2eIssuer,
		"AUTH_AUDIENCE":   e2eAudience,
		"AUTH_REQUIRED":   "true",
		// Without it loopback clients would be admins (development).
		"ADMIN_TOKEN": "e2e-admin-token-0123456789",
	}))
	as := func(sub string) http.Header {
		return bearer(signed(t, jwt.SigningMethodHS256, "", []byte(secret), customerClaims(sub, nil)), false)
	}
	var page struct {
		TimeSlots struct {
			Nodes []struct{ ID string } `json:"nodes"`
		} `json:"timeSlots"`
	}
	day := time.Now().UTC().AddDate(0, 0, 3).Format("2006-01-02")
	postGraphQL(t, srv.URL, `query($d: Date) { timeSlots(first: 2, filter: {startDate: $d}) { nodes { id } } }`,
		map[string]any{"d": day}, nil).Decode(t, &page)
	if len(page.TimeSlots.Nodes) < 2 {
		t.Fatalf("the demo has %d free slots on %s, want 2", len(page.TimeSlots.Nodes), day)
	}
	const book = `mutation($s: ID!, $k: String) { bookSlot(input: {slotId: $s, customer: "Ann", idempotencyKey: $k}) {
		booking { id reference customerId status } } }`
	if g := postGraphQL(t, srv.URL, book, map[string]any{"s": page.TimeSlots.Nodes[0].ID}, nil); g.Code() != "UNAUTHENTICATED" {
		t.Fatalf("an anonymous bookSlot under AUTH_REQUIRED answered %s, want UNAUTHENTICATED", g.answer)
	}
	type booked struct {
		BookSlot struct {
			Booking struct{ ID, Reference, CustomerID, Status string } `json:"booking"`
		} `json:"bookSlot"`
	}
	var ann, bob booked
	postGraphQL(t, srv.URL, book, map[string]any{"s": page.TimeSlots.Nodes[0].ID, "k": "same-key"}, as("ann")).Decode(t, &ann)
	if b := ann.BookSlot.Booking; b.CustomerID != "ann" || !strings.HasPrefix(b.Reference, "bk_") || b.Status != "CONFIRMED" {
		t.Fatalf("ann's booking %+v, want hers, confirmed, with a bk_ reference", b)
	}
	// The same idempotency key is bob's own: a second booking, no conflict.
	postGraphQL(t, srv.URL, book, map[string]any{"s": page.TimeSlots.Nodes[1].ID, "k": "same-key"}, as("bob")).Decode(t, &bob)
	if bob.BookSlot.Booking.ID == ann.BookSlot.Booking.ID || bob.BookSlot.Booking.CustomerID != "bob" {
		t.Fatalf("bob's booking %+v beside ann's %+v, want a booking of his own", bob.BookSlot.Booking, ann.BookSlot.Booking)
	}

	const mine = `{ myBookings(first: 10) { nodes { id customerId } } }`
	var got struct {
		MyBookings struct {
			Nodes []struct{ ID, CustomerID string } `json:"nodes"`
		} `json:"myBookings"`
	}
	postGraphQL(t, srv.URL, mine, nil, as("ann")).Decode(t, &got)
	if len(got.MyBookings.Nodes) != 1 || got.MyBookings.Nodes[0].ID != ann.BookSlot.Booking.ID {
		t.Errorf("ann's myBookings %+v, want only her booking %s", got.MyBookings.Nodes, ann.BookSlot.Booking.ID)
	}
	if g := postGraphQL(t, srv.URL, mine, nil, nil); g.Code() != "UNAUTHENTICATED" {
		t.Errorf("an anonymous myBookings answered %s, want UNAUTHENTICATED", g.answer)
	}

	const cancel = `mutation($id: ID!) { cancelBooking(input: {bookingId: $id}) { booking { status } } }`
	vars := map[string]any{"id": ann.BookSlot.Booking.ID}
	if g := postGraphQL(t, srv.URL, cancel, vars, as("bob")); g.Code() != "NOT_FOUND" {
		t.Errorf("bob cancelling ann's booking by id answered %s, want NOT_FOUND", g.answer)
	}
	if g := postGraphQL(t, srv.URL, cancel, vars, nil); g.Code() != "UNAUTHENTICATED" {
		t.Errorf("an anonymous cancel by id answered %s, want UNAUTHENTICATED", g.answer)
	}
	var cancelled struct {
		CancelBooking struct {
			Booking struct{ Status string } `json:"booking"`
		} `json:"cancelBooking"`
	}
	postGraphQL(t, srv.URL, cancel, vars, as("ann")).Decode(t, &cancelled)
	if cancelled.CancelBooking.Booking.Status != "CANCELLED" {
		t.Errorf("ann cancelling her booking by id: %+v, want CANCELLED", cancelled)
	}
}

// A customer's JWT in connection_init's payload is decided as in an
// Authorization header: a valid one opens the connection and its
// subscriptions run; an expired, forged or misaddressed one closes the
// connection with 4403 and UNAUTHENTICATED in the reason; a payload
// without one leaves the connection anonymous, which may still subscribe
// (slotsChanged is public, even with AUTH_REQUIRED).
func TestCustomerTokensInConnectionInit(t *testing.T) {
	t.Parallel()
	const secret = e2eSecret
	srv := startServer(t, authRequiredEnv(t))
	var created struct {
		CreateProvider struct {
			ID int64 `json:",string"`
		}
	}
	postGraphQL(t, srv.URL, `mutation { createProvider(input: {name: "Live", timeZone: "UTC", slotMinutes: 60,
		workingHours: [{weekday: MONDAY, start: "09:00", end: "17:00"}]}) { id } }`, nil, nil).Decode(t, &created)
	provider := created.CreateProvider.ID
	token := func(key string, changes jwt.MapClaims) string {
		return signed(t, jwt.SigningMethodHS256, "", []byte(key), customerClaims("cust-1", changes))
	}
	withToken := func(tok string) map[string]any { return map[string]any{"Authorization": "Bearer " + tok} }

	// subscribe fails the test unless the connection is acknowledged and
	// its subscription counted as running.
	subscribe(t, srv.URL, withToken(token(secret, nil)), provider)
	subscribe(t, srv.URL, map[string]any{"authorization": "bearer " + token(secret, nil)}, provider)
	subscribe(t, srv.URL, nil, provider)
	subscribe(t, srv.URL, map[string]any{"client": "no token"}, provider)

	hourAgo := time.Now().Add(-time.Hour)
	for name, tok := range map[string]string{
		"an expired token":                   token(secret, jwt.MapClaims{"iat": hourAgo.Add(-time.Hour).Unix(), "exp": hourAgo.Unix()}),
		"a token signed with another secret": token("another-hs256-secret-0123456789abcdef", nil),
		"a token for another audience":       token(secret, jwt.MapClaims{"aud": "another-api"}),
	} {
		c, _, err := gqlws.Dial(t.Context(), wsURL(srv.URL), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Send(t.Context(), "connection_init", "", withToken(tok)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		m, err := c.Next(ctx)
		cancel()
		var ce *gqlws.CloseError
		if !errors.As(err, &ce) || ce.Code != 4403 || !strings.HasPrefix(ce.Reason, "UNAUTHENTICATED: ") {
			t.Errorf("%s in connection_init: %v %s %s, want close 4403 UNAUTHENTICATED", name, err, m.Type, m.Payload)
		}
		_ = c.CloseNow()
	}
	// In the upgrade request's Authorization header instead, a refused
	// token is refused before the upgrade, as on any request.
	expired := token(secret, jwt.MapClaims{"iat": hourAgo.Add(-time.Hour).Unix(), "exp": hourAgo.Unix()})
	c, resp, err := gqlws.Dial(t.Context(), wsURL(srv.URL), bearer(expired, false))
	if c != nil {
		_ = c.CloseNow()
	}
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("an upgrade with an expired token: %v %v, want 401", resp, err)
	}
	if n := activeSubscriptions(t, srv.URL); n != 4 {
		t.Errorf("%d subscriptions running, want the four accepted connections'", n)
	}
}
