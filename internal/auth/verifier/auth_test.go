package verifier_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"timeslots/internal/apperr"
	"timeslots/internal/auth"
	"timeslots/internal/auth/verifier"
)

func TestValidate(t *testing.T) {
	const jwksURL = "https://id.example.test/.well-known/jwks.json"
	shortSecret := "too-short-secret-31-bytes-long!"
	cases := []struct {
		name string
		o    auth.Options
		want string // a part of the error; empty: valid
	}{
		{name: "nothing set is valid: authentication is off", o: auth.Options{}},
		{name: "a JWKS URL with issuer and audience is valid",
			o: auth.Options{JWKSURL: jwksURL, Issuer: testIssuer, Audience: testAudience}},
		{name: "an http JWKS URL is valid",
			o: auth.Options{JWKSURL: "http://127.0.0.1:8080/jwks", Issuer: testIssuer, Audience: testAudience}},
		{name: "a secret of 32 bytes with issuer and audience is valid",
			o: auth.Options{JWTSecret: strings.Repeat("k", 32), Issuer: testIssuer, Audience: testAudience, Required: true}},

		{name: "both key sources are refused",
			o:    auth.Options{JWKSURL: jwksURL, JWTSecret: testSecret, Issuer: testIssuer, Audience: testAudience},
			want: "AUTH_JWKS_URL and AUTH_JWT_SECRET"},
		{name: "required without a key source is refused",
			o: auth.Options{Required: true}, want: "AUTH_REQUIRED"},
		{name: "an issuer without a key source is refused",
			o: auth.Options{Issuer: testIssuer}, want: "AUTH_ISSUER"},
		{name: "an audience without a key source is refused",
			o: auth.Options{Audience: testAudience}, want: "AUTH_AUDIENCE"},
		{name: "a JWKS URL without an issuer is refused",
			o: auth.Options{JWKSURL: jwksURL, Audience: testAudience}, want: "AUTH_ISSUER"},
		{name: "a secret without an audience is refused",
			o: auth.Options{JWTSecret: testSecret, Issuer: testIssuer}, want: "AUTH_AUDIENCE"},
		{name: "a blank audience is refused",
			o: auth.Options{JWTSecret: testSecret, Issuer: testIssuer, Audience: "  "}, want: "AUTH_AUDIENCE"},
		{name: "a secret under 32 bytes is refused",
			o: auth.Options{JWTSecret: shortSecret, Issuer: testIssuer, Audience: testAudience}, want: "AUTH_JWT_SECRET must be at least 32 bytes"},
		{name: "a JWKS URL of another scheme is refused",
			o: auth.Options{JWKSURL: "file:///etc/jwks.json", Issuer: testIssuer, Audience: testAudience}, want: "AUTH_JWKS_URL"},
		{name: "a JWKS URL without a host is refused",
			o: auth.Options{JWKSURL: "https:///jwks", Issuer: testIssuer, Audience: testAudience}, want: "AUTH_JWKS_URL"},
		{name: "a JWKS URL that does not parse is refused",
			o: auth.Options{JWKSURL: "https://id.example.test/%zz", Issuer: testIssuer, Audience: testAudience}, want: "AUTH_JWKS_URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error containing %q", err, tc.want)
			}
			if tc.o.JWTSecret != "" && strings.Contains(err.Error(), tc.o.JWTSecret) {
				t.Fatalf("the error %q shows the secret", err)
			}
			// New refuses the same options with the same error.
			if v, nerr := verifier.New(context.Background(), tc.o, nil); nerr == nil || nerr.Error() != err.Error() {
				v.Close()
				t.Fatalf("New = %v, want %v", nerr, err)
			}
		})
	}
}

// With authentication off New answers a nil verifier, which refuses every
// token and requires none.
func TestNewWithAuthenticationOff(t *testing.T) {
	v, err := verifier.New(context.Background(), auth.Options{}, nil)
	if err != nil || v != nil {
		t.Fatalf("New = %v, %v; want nil, nil", v, err)
	}
	if v.Enabled() || v.Required() {
		t.Fatal("a nil verifier is enabled or required")
	}
	token := signHS(t, []byte(testSecret), claims(time.Now()), nil)
	_, err = v.Verify(context.Background(), token)
	wantRefused(t, err, msgUnverified, token)
	v.Close()
}

func TestRequired(t *testing.T) {
	for _, required := range []bool{false, true} {
		v := newVerifier(t, auth.Options{JWTSecret: testSecret, Required: required})
		if !v.Enabled() || v.Required() != required {
			t.Fatalf("Enabled %v, Required %v; want true, %v", v.Enabled(), v.Required(), required)
		}
	}
}

func TestLooksLikeJWT(t *testing.T) {
	real := signHS(t, []byte(testSecret), claims(time.Now()), nil)
	cases := []struct {
		name  string
		token string
		want  bool
	}{
		{"a signed token", real, true},
		{`an "alg": "none" token with an empty signature`, b64([]byte(`{"alg":"none"}`)) + "." + b64([]byte(`{}`)) + ".", true},
		{"a header with alg and other members", b64([]byte(`{"typ":"JWT","alg":"RS256","kid":"k"}`)) + ".e30.c2ln", true},

		{"an admin token", "s3cr3t-admin-token-0123456789", false},
		{"an admin token with two dots", "admin.token.value", false},
		{"an empty string", "", false},
		{"two segments", b64([]byte(`{"alg":"HS256"}`)) + ".e30", false},
		{"four segments", b64([]byte(`{"alg":"HS256"}`)) + ".e30.c2ln.c2ln", false},
		{"an empty header", ".e30.c2ln", false},
		{"an empty payload", b64([]byte(`{"alg":"HS256"}`)) + "..c2ln", false},
		{"a header without alg", b64([]byte(`{"typ":"JWT"}`)) + ".e30.c2ln", false},
		{"a header whose alg is not a string", b64([]byte(`{"alg":256}`)) + ".e30.c2ln", false},
		{"a header with ALG in capitals", b64([]byte(`{"ALG":"HS256"}`)) + ".e30.c2ln", false},
		{"a header that is a JSON array", b64([]byte(`["alg"]`)) + ".e30.c2ln", false},
		{"a padded header", b64([]byte(`{"alg":"HS256"}`)) + "==.e30.c2ln", false},
		{"standard base64 in the payload", b64([]byte(`{"alg":"HS256"}`)) + ".e3+/.c2ln", false},
		{"a space in the signature", b64([]byte(`{"alg":"HS256"}`)) + ".e30.c2 ln", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := auth.LooksLikeJWT(tc.token); got != tc.want {
				t.Fatalf("LooksLikeJWT(%q) = %v, want %v", tc.token, got, tc.want)
			}
		})
	}
}

func TestCustomerContext(t *testing.T) {
	ctx := context.Background()
	if c, ok := auth.CustomerFrom(ctx); ok {
		t.Fatalf("a bare context carries customer %+v", c)
	}
	ctx = auth.WithCustomer(ctx, auth.Customer{ID: "cust-7"})
	if c, ok := auth.CustomerFrom(ctx); !ok || c.ID != "cust-7" {
		t.Fatalf("CustomerFrom = %+v, %v; want cust-7", c, ok)
	}
}

// FuzzVerify feeds arbitrary bearer values to LooksLikeJWT and to both
// verifiers: nothing panics, every refusal is UNAUTHENTICATED with one of
// the fixed messages, and a value that verifies also looks like a JWT (the
// edges' rule never sends a valid token down the admin path).
func FuzzVerify(f *testing.F) {
	now := time.Now()
	srv := newJWKSServer(f, key("rsa"), key("ec"))
	jwks := newVerifier(f, auth.Options{JWKSURL: srv.URL})
	hs := newVerifier(f, auth.Options{JWTSecret: testSecret})

	f.Add(sign(f, jwt.SigningMethodRS256, key("rsa"), claims(now)))
	f.Add(sign(f, jwt.SigningMethodES256, key("ec"), claims(now)))
	f.Add(signHS(f, []byte(testSecret), claims(now), nil))
	f.Add(signHS(f, []byte(testSecret), with(claims(now), map[string]any{"sub": "\x00"}), nil))
	f.Add(b64([]byte(`{"alg":"none"}`)) + "." + b64([]byte(`{"sub":"x"}`)) + ".")
	f.Add(b64([]byte(`{"alg":"RS256","kid":"rsa-1"}`)) + ".e30.")
	f.Add(b64([]byte(`{"alg":"ES256","kid":["x"]}`)) + ".e30.AAAA")
	f.Add(b64([]byte(`{"alg":"HS256","crit":["b64"]}`)) + ".e30.AAAA")
	f.Add("s3cr3t-admin-token-0123456789")
	f.Add("a.b.c")
	f.Add("...")
	f.Add("")
	f.Add("\xff\xfe.\x00.\n")

	f.Fuzz(func(t *testing.T, token string) {
		looks := auth.LooksLikeJWT(token)
		for _, v := range []*verifier.Verifier{jwks, hs} {
			c, err := v.Verify(context.Background(), token)
			if err == nil {
				if c.ID == "" || !looks {
					t.Fatalf("accepted %q as %+v; LooksLikeJWT %v", token, c, looks)
				}
				continue
			}
			e, ok := apperr.As(err)
			if !ok || e.Code != apperr.Unauthenticated || !refusalMessages[e.Message] {
				t.Fatalf("Verify(%q) = %v, want UNAUTHENTICATED with a fixed message", token, err)
			}
		}
	})
}

// An anonymous request may act for no one, unless the request is marked as
// needing a customer; a verified customer is answered either way.
func TestCustomerFor(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	if _, ok, err := auth.CustomerFor(ctx); ok || err != nil {
		t.Errorf("anonymous, not required: ok %v, err %v; want false, nil", ok, err)
	}
	if _, ok, err := auth.CustomerFor(auth.WithRequired(ctx)); ok || apperr.ErrorCode(err) != apperr.Unauthenticated {
		t.Errorf("anonymous, required: ok %v, err %v; want false, UNAUTHENTICATED", ok, err)
	}
	c, ok, err := auth.CustomerFor(auth.WithRequired(auth.WithCustomer(ctx, auth.Customer{ID: "user-1"})))
	if !ok || err != nil || c.ID != "user-1" {
		t.Errorf("verified, required: %+v %v %v; want user-1", c, ok, err)
	}
}
