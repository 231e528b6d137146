package httpx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"timeslots/internal/apperr"
	"timeslots/internal/auth"
	"timeslots/internal/auth/verifier"
	"timeslots/internal/httpx"
)

const (
	testIssuer   = "https://id.example.test/"
	testAudience = "timeslots-api"
	testSecret   = "0123456789abcdef0123456789abcdef-gate-test"
)

// customerPaths are the paths the tests' gates read customers' tokens on.
var customerPaths = httpx.Paths{"/graphql", "/api/", "/edge"}

// newCustomers builds an HS256 verifier, closed when the test ends.
func newCustomers(t testing.TB, required bool) *verifier.Verifier {
	t.Helper()
	v, err := verifier.New(context.Background(), auth.Options{
		JWTSecret: testSecret, Issuer: testIssuer, Audience: testAudience, Required: required,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// customerJWT signs valid claims for sub, changed by changes (a nil value
// deletes the claim), with secret under method.
func customerJWT(t testing.TB, method jwt.SigningMethod, secret any, sub string, changes map[string]any) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{
		"iss": testIssuer, "aud": testAudience, "sub": sub,
		"iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
	for k, v := range changes {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	s, err := jwt.NewWithClaims(method, c).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The tokens the tests send.
func validJWT(t testing.TB, sub string) string {
	return customerJWT(t, jwt.SigningMethodHS256, []byte(testSecret), sub, nil)
}

func expiredJWT(t testing.TB) string {
	return customerJWT(t, jwt.SigningMethodHS256, []byte(testSecret), "cust-7",
		map[string]any{"iat": time.Now().Add(-time.Hour).Unix(), "exp": time.Now().Add(-10 * time.Minute).Unix()})
}

func forgedJWT(t testing.TB) string {
	return customerJWT(t, jwt.SigningMethodHS256, []byte(strings.Repeat("not the secret ", 4)), "cust-7", nil)
}

func unsignedJWT(t testing.TB) string {
	return customerJWT(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "cust-7", nil)
}

// seen is what customerProbe saw of a request: its customer, the code of
// its admin decision, and the code auth.CustomerFor answers ("" for none).
type seen struct {
	Customer    string `json:"customer"`
	Admin       string `json:"admin"`
	CustomerFor string `json:"customerFor"`
}

// customerProbe answers 200 with what the gate recorded in the context.
func customerProbe() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := auth.CustomerFrom(r.Context())
		_, _, forErr := auth.CustomerFor(r.Context())
		httpx.WriteJSON(w, http.StatusOK, seen{
			Customer:    c.ID,
			Admin:       string(apperr.ErrorCode(httpx.Admin(r.Context()))),
			CustomerFor: string(apperr.ErrorCode(forErr)),
		})
	})
}

// lockedBuffer is a log destination goroutines may share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// gated wraps customerProbe in gate as the server does, logging to logs.
func gated(gate *httpx.AdminGate, logs *lockedBuffer) http.Handler {
	logger := slog.New(slog.NewTextHandler(logs, nil))
	h := gate.Middleware(customerProbe())
	h = httpx.Refusals(edgeRefusal, httpx.Paths{"/edge"})(h)
	return httpx.ClientIPs(nil)(httpx.RequestLog(logger)(h))
}

// seenOf decodes a probe's answer.
func seenOf(t *testing.T, body []byte) seen {
	t.Helper()
	var s seen
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("answer %s is not the probe's: %v", body, err)
	}
	return s
}

// One rule tells the bearer values apart: the admin token is the admin; on
// the customers' paths a JWT-shaped value is a customer's token, verified;
// anything else is a wrong admin token.
func TestTheGateTellsTheAdminTokenFromCustomersTokens(t *testing.T) {
	t.Parallel()
	customers := newCustomers(t, false)
	withToken := gated(httpx.NewAdminGate(token, httpx.WithCustomers(customers, customerPaths)), &lockedBuffer{})
	open := gated(httpx.NewAdminGate("", httpx.WithCustomers(customers, customerPaths)), &lockedBuffer{})
	const (
		noAdmin   = "UNAUTHENTICATED"
		wrongOnes = "FORBIDDEN"
	)
	for i, tc := range []struct {
		name     string
		h        http.Handler
		remote   string // the client's address; "" for one of its own
		auth     string
		path     string
		want     seen   // when the request passes the gate
		refusal  string // the message of a 401 otherwise
		wantCode int    // the status of the refusal
	}{
		{name: "the admin token is admin beside customers' tokens", h: withToken,
			auth: "Bearer " + token, path: "/graphql", want: seen{}},
		{name: "a valid JWT is the customer it names, without admin access", h: withToken,
			auth: "Bearer " + validJWT(t, "cust-7"), path: "/graphql", want: seen{Customer: "cust-7", Admin: noAdmin}},
		{name: "a valid JWT on an admin path is unauthenticated there, not forbidden", h: withToken,
			auth: "bearer  " + validJWT(t, "cust-8") + " ", path: "/api/admin/time-slots", want: seen{Customer: "cust-8", Admin: noAdmin}},
		{name: "an expired JWT is refused", h: withToken,
			auth: "Bearer " + expiredJWT(t), path: "/api/time-slots", refusal: "bearer token has expired", wantCode: 401},
		{name: "a JWT signed with another secret is refused", h: withToken,
			auth: "Bearer " + forgedJWT(t), path: "/graphql", refusal: "bearer token could not be verified", wantCode: 401},
		{name: `an "alg": "none" JWT is refused`, h: withToken,
			auth: "Bearer " + unsignedJWT(t), path: "/graphql", refusal: "bearer token could not be verified", wantCode: 401},
		{name: "a JWT outside the customers' paths is a wrong admin token", h: withToken,
			auth: "Bearer " + validJWT(t, "cust-7"), path: "/metrics", want: seen{Admin: wrongOnes}},
		{name: "a bearer value that is no JWT is a wrong admin token", h: withToken,
			auth: "Bearer not-a-jwt-at-all", path: "/graphql", want: seen{Admin: wrongOnes}},
		{name: "a JWT under another scheme is not a bearer token", h: withToken,
			auth: "Basic " + validJWT(t, "cust-7"), path: "/graphql", want: seen{Admin: noAdmin}},
		{name: "no Authorization is anonymous", h: withToken,
			path: "/graphql", want: seen{Admin: noAdmin}},
		{name: "without an admin token a loopback client without a token is admin", h: open,
			remote: "127.0.0.1:1", path: "/graphql", want: seen{}},
		{name: "without an admin token a loopback client's JWT makes it a customer, not an admin", h: open,
			remote: "127.0.0.1:2", auth: "Bearer " + validJWT(t, "cust-9"), path: "/graphql", want: seen{Customer: "cust-9", Admin: noAdmin}},
		{name: "without an admin token an invalid JWT is refused", h: open,
			remote: "127.0.0.1:3", auth: "Bearer " + expiredJWT(t), path: "/graphql", refusal: "bearer token has expired", wantCode: 401},
		{name: "without an admin token other bearer values are ignored as before", h: open,
			remote: "127.0.0.1:4", auth: "Bearer not-a-jwt-at-all", path: "/graphql", want: seen{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remote := tc.remote
			if remote == "" {
				remote = fmt.Sprintf("203.0.113.%d:1", i+1)
			}
			w := serve(tc.h, request(remote, tc.auth, tc.path))
			if tc.refusal != "" {
				var body httpx.ErrorBody
				if w.Code != tc.wantCode || json.Unmarshal(w.Body.Bytes(), &body) != nil ||
					body.Error.Code != apperr.Unauthenticated || body.Error.Message != tc.refusal {
					t.Fatalf("answer %d %s, want %d UNAUTHENTICATED %q", w.Code, w.Body.String(), tc.wantCode, tc.refusal)
				}
				if got := w.Header().Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
					t.Errorf("WWW-Authenticate %q, want the RFC 6750 invalid_token challenge", got)
				}
				return
			}
			if w.Code != http.StatusOK {
				t.Fatalf("answer %d %s, want the request to pass the gate", w.Code, w.Body.String())
			}
			if got := seenOf(t, w.Body.Bytes()); got != tc.want {
				t.Errorf("the handler saw %+v, want %+v", got, tc.want)
			}
		})
	}
}

// A refused customer's token is answered in the error shape of the
// endpoint it was sent to.
func TestRefusedCustomerTokensTakeTheEdgesShape(t *testing.T) {
	t.Parallel()
	h := gated(httpx.NewAdminGate(token, httpx.WithCustomers(newCustomers(t, false), customerPaths)), &lockedBuffer{})
	w := serve(h, request("203.0.113.50:1", "Bearer "+expiredJWT(t), "/edge"))
	if w.Code != http.StatusUnauthorized || w.Body.String() != "edge refusal UNAUTHENTICATED: bearer token has expired" {
		t.Errorf("/edge answer %d %q, want 401 with the edge's own UNAUTHENTICATED error", w.Code, w.Body.String())
	}
}

// Customers' tokens that no trusted key signed count against the client
// as wrong admin tokens do, in one count; tokens a trusted key signed,
// valid or not, never count; refused customers' tokens are not logged as
// wrong admin tokens.
func TestForgedCustomerTokensAreSlowedAndSignedOnesAreNot(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	h := gated(httpx.NewAdminGate(token, httpx.WithCustomers(newCustomers(t, false), customerPaths)), logs)

	const stale = "198.51.100.10:1"
	for i := range 2 * httpx.AdminFailureLimit {
		if w := serve(h, request(stale, "Bearer "+expiredJWT(t), "/graphql")); w.Code != http.StatusUnauthorized {
			t.Fatalf("expired token %d: answer %d %s, want 401 every time", i, w.Code, w.Body.String())
		}
		if w := serve(h, request(stale, "Bearer "+validJWT(t, "cust-7"), "/graphql")); w.Code != http.StatusOK {
			t.Fatalf("valid token %d: answer %d %s, want 200 every time", i, w.Code, w.Body.String())
		}
	}
	if strings.Contains(logs.String(), "wrong admin token") || !strings.Contains(logs.String(), "customer token refused") {
		t.Errorf("logs, want refused customers' tokens logged as such and never as wrong admin tokens:\n%s", logs)
	}

	const guesser = "198.51.100.11:1"
	for i := range httpx.AdminFailureLimit {
		tok := forgedJWT(t)
		if i%2 == 1 {
			tok = unsignedJWT(t)
		}
		if w := serve(h, request(guesser, "Bearer "+tok, "/graphql")); w.Code != http.StatusUnauthorized {
			t.Fatalf("forged token %d: answer %d %s, want 401", i, w.Code, w.Body.String())
		}
	}
	for _, auth := range []string{"Bearer " + validJWT(t, "cust-7"), "Bearer " + token} {
		w := serve(h, request(guesser, auth, "/graphql"))
		var body httpx.ErrorBody
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" ||
			json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Error.Code != apperr.RateLimited ||
			!strings.HasPrefix(body.Error.Message, "too many refused bearer tokens from this client: retry in ") {
			t.Errorf("after %d forged tokens, %.20s…: answer %d %s, want 429 RATE_LIMITED with Retry-After", httpx.AdminFailureLimit, auth, w.Code, w.Body.String())
		}
	}
	if w := serve(h, request(guesser, "", "/graphql")); w.Code != http.StatusOK {
		t.Errorf("the guesser without a token: answer %d, want it to pass the gate", w.Code)
	}

	// Wrong admin tokens and forged customers' tokens add up.
	const mixed = "198.51.100.12:1"
	for i := range httpx.AdminFailureLimit {
		auth := "Bearer guess-" + strconv.Itoa(i)
		if i%2 == 1 {
			auth = "Bearer " + forgedJWT(t)
		}
		if w := serve(h, request(mixed, auth, "/graphql")); w.Code == http.StatusTooManyRequests {
			t.Fatalf("attempt %d: 429 before %d failures", i, httpx.AdminFailureLimit)
		}
	}
	if w := serve(h, request(mixed, "Bearer "+token, "/graphql")); w.Code != http.StatusTooManyRequests {
		t.Errorf("after %d mixed failures: answer %d, want 429", httpx.AdminFailureLimit, w.Code)
	}
}

// With end-user authentication off, the 429 of a guesser reads as before.
func TestTheSlowingMessageWithoutCustomers(t *testing.T) {
	t.Parallel()
	h := gated(httpx.NewAdminGate(token), &lockedBuffer{})
	const guesser = "198.51.100.20:1"
	for i := range httpx.AdminFailureLimit {
		serve(h, request(guesser, "Bearer "+validJWT(t, "cust-7")+strconv.Itoa(i), "/graphql"))
	}
	w := serve(h, request(guesser, "Bearer "+token, "/graphql"))
	var body httpx.ErrorBody
	if w.Code != http.StatusTooManyRequests || json.Unmarshal(w.Body.Bytes(), &body) != nil ||
		!strings.HasPrefix(body.Error.Message, "too many wrong admin tokens from this client: retry in ") {
		t.Errorf("answer %d %s, want 429 about wrong admin tokens", w.Code, w.Body.String())
	}
}

// AUTH_REQUIRED marks every request's context, on every path, so the
// operations that act for a customer refuse anonymous requests; without
// it, or with authentication off, anonymous requests may act.
func TestRequiredMarksEveryRequest(t *testing.T) {
	t.Parallel()
	required := gated(httpx.NewAdminGate(token, httpx.WithCustomers(newCustomers(t, true), customerPaths)), &lockedBuffer{})
	optional := gated(httpx.NewAdminGate(token, httpx.WithCustomers(newCustomers(t, false), customerPaths)), &lockedBuffer{})
	off := gated(httpx.NewAdminGate(token), &lockedBuffer{})
	for _, tc := range []struct {
		name string
		h    http.Handler
		auth string
		path string
		want string // auth.CustomerFor's error code
	}{
		{"a required customer is missing from an anonymous GraphQL request", required, "", "/graphql", "UNAUTHENTICATED"},
		{"a required customer is missing from an anonymous request anywhere", required, "", "/healthz", "UNAUTHENTICATED"},
		{"a required customer is missing from an admin's request", required, "Bearer " + token, "/graphql", "UNAUTHENTICATED"},
		{"a required customer is there with a valid token", required, "Bearer " + validJWT(t, "cust-7"), "/graphql", ""},
		{"an optional customer may be missing", optional, "", "/graphql", ""},
		{"authentication off asks for no customer", off, "", "/graphql", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(tc.h, request("203.0.113.99:1", tc.auth, tc.path))
			if w.Code != http.StatusOK {
				t.Fatalf("answer %d %s, want the request to pass the gate", w.Code, w.Body.String())
			}
			if got := seenOf(t, w.Body.Bytes()).CustomerFor; got != tc.want {
				t.Errorf("CustomerFor answers %q, want %q", got, tc.want)
			}
		})
	}
}

// Requests released together each get their own customer, and a guesser
// sending forged tokens among them at the same time is refused and then
// slowed, without touching the others.
func TestCustomerTokensConcurrently(t *testing.T) {
	t.Parallel()
	h := gated(httpx.NewAdminGate(token, httpx.WithCustomers(newCustomers(t, false), customerPaths)), &lockedBuffer{})
	const n = 32
	const guesser = "198.51.100.30:1"
	tokens := make([]string, n)
	for i := range tokens {
		if i%2 == 0 {
			tokens[i] = validJWT(t, "cust-"+strconv.Itoa(i))
		} else {
			tokens[i] = forgedJWT(t)
		}
	}
	start := make(chan struct{})
	errs := make(chan error, n)
	for i, tok := range tokens {
		go func() {
			<-start
			remote := fmt.Sprintf("203.0.113.%d:1", 100+i)
			if i%2 == 1 {
				remote = guesser
			}
			w := serve(h, request(remote, "Bearer "+tok, "/graphql"))
			switch {
			case i%2 == 1 && w.Code != http.StatusUnauthorized && w.Code != http.StatusTooManyRequests:
				errs <- fmt.Errorf("forged token %d: answer %d %s, want 401 or 429", i, w.Code, w.Body.String())
			case i%2 == 0 && w.Code != http.StatusOK:
				errs <- fmt.Errorf("valid token %d: answer %d %s, want 200", i, w.Code, w.Body.String())
			case i%2 == 0:
				var s seen
				if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil || s.Customer != "cust-"+strconv.Itoa(i) {
					errs <- fmt.Errorf("valid token %d: the handler saw %s, want customer cust-%d", i, w.Body.String(), i)
					return
				}
				errs <- nil
			default:
				errs <- nil
			}
		}()
	}
	close(start)
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if w := serve(h, request(guesser, "Bearer "+validJWT(t, "cust-x"), "/graphql")); w.Code != http.StatusTooManyRequests {
		t.Errorf("after %d forged tokens: answer %d, want 429", n/2, w.Code)
	}
}
