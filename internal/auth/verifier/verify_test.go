package verifier_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"timeslots/internal/apperr"
	"timeslots/internal/auth"
	"timeslots/internal/auth/verifier"
)

// The messages of refused tokens, as clients read them.
const (
	msgMalformed  = "bearer token is not a well-formed JWT"
	msgUnverified = "bearer token could not be verified"
	msgTooLong    = "bearer token is too long"
	msgExpired    = "bearer token has expired"
	msgNotYet     = "bearer token is not valid yet"
	msgIssuer     = "bearer token was not issued by the expected issuer"
	msgAudience   = "bearer token is not meant for this service"
	msgNoExpiry   = "bearer token has no expiry (exp)"
	msgSubject    = "bearer token has no valid subject (sub)"
)

// claimsMessages are the refusals of tokens whose signature holds: only
// their claims failed.
var claimsMessages = map[string]bool{
	msgExpired: true, msgNotYet: true, msgIssuer: true, msgAudience: true, msgNoExpiry: true, msgSubject: true,
}

var refusalMessages = map[string]bool{
	msgMalformed: true, msgUnverified: true, msgTooLong: true, msgExpired: true, msgNotYet: true,
	msgIssuer: true, msgAudience: true, msgNoExpiry: true, msgSubject: true,
}

// wantRefused fails the test unless err is an UNAUTHENTICATED error with
// message want that does not echo the token.
func wantRefused(t *testing.T, err error, want, token string) {
	t.Helper()
	if err == nil {
		t.Fatalf("token accepted, want refusal %q", want)
	}
	e, ok := apperr.As(err)
	if !ok || e.Code != apperr.Unauthenticated {
		t.Fatalf("error %v (code %s), want UNAUTHENTICATED", err, apperr.ErrorCode(err))
	}
	if e.Message != want {
		t.Fatalf("message %q, want %q", e.Message, want)
	}
	if len(token) >= 8 && strings.Contains(e.Error(), token) {
		t.Fatalf("error %q echoes the token", e.Error())
	}
}

func TestVerify(t *testing.T) {
	now := time.Date(2030, 5, 17, 9, 30, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	valid := claims(now)

	encKey := maps.Clone(key("rotated").jwk)
	encKey["kid"], encKey["use"] = "enc-1", "enc"
	srv := newJWKSServer(t)
	srv.setRaw(key("rsa").jwk, key("ec").jwk, key("weak").jwk, encKey)
	jwks := newVerifier(t, auth.Options{JWKSURL: srv.URL, Now: clock})
	hs := newVerifier(t, auth.Options{JWTSecret: testSecret, Now: clock})

	rsaPEM := func() []byte {
		der, err := x509.MarshalPKIXPublicKey(&key("rsa").private.(*rsa.PrivateKey).PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	none := func(c jwt.MapClaims, kid string) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodNone, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	forged := func() string {
		parts := strings.Split(sign(t, jwt.SigningMethodRS256, key("rsa"), valid), ".")
		payload, err := json.Marshal(with(valid, map[string]any{"sub": "someone-else"}))
		if err != nil {
			t.Fatal(err)
		}
		parts[1] = b64(payload)
		return strings.Join(parts, ".")
	}
	hsWithHeader := func(c jwt.MapClaims, header map[string]any) string {
		return signHS(t, []byte(testSecret), c, header)
	}
	withoutKID := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, valid)
		s, err := tok.SignedString(key("rsa").private)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	cases := []struct {
		name     string
		verifier *verifier.Verifier
		token    string
		wantID   string // when accepted
		want     string // the refusal message otherwise
	}{
		{name: "an RS256 token signed by a key of the set is the customer it names",
			verifier: jwks, token: sign(t, jwt.SigningMethodRS256, key("rsa"), valid), wantID: "cust-1"},
		{name: "an ES256 token signed by a key of the set is the customer it names",
			verifier: jwks, token: sign(t, jwt.SigningMethodES256, key("ec"), valid), wantID: "cust-1"},
		{name: "an HS256 token signed with the secret is the customer it names",
			verifier: hs, token: hsWithHeader(valid, nil), wantID: "cust-1"},
		{name: "an RS256 token without a key id is checked against the set's keys",
			verifier: jwks, token: withoutKID(), wantID: "cust-1"},
		{name: "a token whose audience list includes this service is accepted",
			verifier: hs, token: hsWithHeader(with(valid, map[string]any{"aud": []string{"other", testAudience}}), nil), wantID: "cust-1"},
		{name: "a token expired less than the leeway ago is accepted",
			verifier: hs, token: hsWithHeader(with(valid, map[string]any{"exp": now.Add(-10 * time.Second).Unix()}), nil), wantID: "cust-1"},
		{name: "a subject of exactly 200 bytes is accepted",
			verifier: hs, token: hsWithHeader(with(valid, map[string]any{"sub": strings.Repeat("é", 100)}), nil), wantID: strings.Repeat("é", 100)},

		{name: "an expired token is refused",
			verifier: jwks, token: sign(t, jwt.SigningMethodRS256, key("rsa"), with(valid, map[string]any{"exp": now.Add(-time.Minute).Unix()})), want: msgExpired},
		{name: "a token not valid before a later time is refused",
			verifier: jwks, token: sign(t, jwt.SigningMethodRS256, key("rsa"), with(valid, map[string]any{"nbf": now.Add(5 * time.Minute).Unix()})), want: msgNotYet},
		{name: "a token issued in the future is refused",
			verifier: hs, token: hsWithHeader(with(valid, map[string]any{"iat": now.Add(5 * time.Minute).Unix()}), nil), want: msgNotYet},
		{name: "a token of another issuer is refused",
			verifier: jwks, token: sign(t, jwt.SigningMethodES256, key("ec"), with(valid, map[string]any{"iss": "https://evil.example.test/"})), want: msgIssuer},
		{name: "a token without an issuer is refused",
			verifier: hs, token: hsWithHeader(with(valid, map[string]any{"iss": nil}), nil), want: msgIssuer},
		{name: "a token for another audience is refused",
			verifier: jwks, token: sign(t, jwt.SigningMethodRS256, key("rsa"), with(valid, map[string]any{"aud": "another-api"})), want: msgAudience},
		{name: "a token without an audience is refused",
			verifier: hs, token: hsWithHeader(with(valid, map[string]any{"aud": nil}), nil), want: msgAudience},
		{name: "a token without an expiry is refused",
			verifier: jwks, token: sign(t, jwt.SigningMethodRS256, key("rsa"), with(valid, map[string]any{"exp": nil})), want: msgNoExpiry},
		{name: "a token without a subject is refused",
			verifier: jwks, token: sign(t, jwt.SigningMethodRS256, key("rsa"), with(valid, map[string]any{"sub": nil})), want: msgSubject},
		{name: "a token with an empty subject is refused",
			verifier: hs, token: hsWithHeader(with(valid, map[string]any{"sub": ""}), nil), want: msgSubject},
		{name: "a subject over 200 bytes is refused",
			verifier: hs, token: hsWithHeader(with(valid, map[string]any{"sub": strings.Repeat("a", 201)}), nil), want: msgSubject},
		{name: "a subject with a control character is refused",
			verifier: hs, token: hsWithHeader(with(valid, map[string]any{"sub": "cust-1\nadmin"}), nil), want: msgSubject},
		{name: "a subject that is not a string is refused",
			verifier: hs, token: hsWithHeader(with(valid, map[string]any{"sub": 42}), nil), want: msgMalformed},

		{name: `an "alg": "none" token is refused by the JWKS verifier`,
			verifier: jwks, token: none(valid, "rsa-1"), want: msgUnverified},
		{name: `an "alg": "none" token is refused by the HS256 verifier`,
			verifier: hs, token: none(valid, ""), want: msgUnverified},
		{name: "an HS256 token keyed with the RSA public key's PEM is refused by the JWKS verifier",
			verifier: jwks, token: signHS(t, rsaPEM, valid, map[string]any{"kid": "rsa-1"}), want: msgUnverified},
		{name: "an HS256 token keyed with the RSA modulus is refused by the JWKS verifier",
			verifier: jwks, token: signHS(t, key("rsa").private.(*rsa.PrivateKey).N.Bytes(), valid, map[string]any{"kid": "rsa-1"}), want: msgUnverified},
		{name: "an RS256 token is refused by the HS256 verifier",
			verifier: hs, token: sign(t, jwt.SigningMethodRS256, key("rsa"), valid), want: msgUnverified},
		{name: "a token whose payload was altered after signing is refused",
			verifier: jwks, token: forged(), want: msgUnverified},
		{name: "a token signed by another key under a known key id is refused",
			verifier: jwks, token: sign(t, jwt.SigningMethodRS256, key("stranger"), valid), want: msgUnverified},
		{name: "an HS256 token signed with another secret is refused",
			verifier: hs, token: signHS(t, []byte(strings.Repeat("x", 40)), valid, nil), want: msgUnverified},
		{name: "an RS256 token naming the EC key is refused",
			verifier: jwks, token: sign(t, jwt.SigningMethodRS256, testKey{kid: "ec-1", private: key("rsa").private}, valid), want: msgUnverified},
		{name: "a token signed by a 1024-bit RSA key of the set is refused",
			verifier: jwks, token: sign(t, jwt.SigningMethodRS256, key("weak"), valid), want: msgUnverified},
		{name: "a token signed by a key the set marks for encryption is refused",
			verifier: jwks, token: sign(t, jwt.SigningMethodRS256, testKey{kid: "enc-1", private: key("rotated").private}, valid), want: msgUnverified},
		{name: "a token with critical header extensions is refused",
			verifier: hs, token: hsWithHeader(valid, map[string]any{"crit": []string{"exp"}}), want: msgUnverified},
		{name: "an HS512 token signed with the secret is refused",
			verifier: hs, token: func() string {
				s, err := jwt.NewWithClaims(jwt.SigningMethodHS512, valid).SignedString([]byte(testSecret))
				if err != nil {
					t.Fatal(err)
				}
				return s
			}(), want: msgUnverified},
		{name: "an RS384 token is refused",
			verifier: jwks, token: sign(t, jwt.SigningMethodRS384, key("rsa"), valid), want: msgUnverified},

		{name: "an empty string is refused", verifier: jwks, token: "", want: msgMalformed},
		{name: "a word is refused", verifier: jwks, token: "garbage", want: msgMalformed},
		{name: "three dots are refused", verifier: hs, token: "...", want: msgMalformed},
		{name: "three short segments are refused", verifier: hs, token: "a.b.c", want: msgMalformed},
		{name: "a header that is not JSON is refused", verifier: jwks, token: b64([]byte("not json")) + ".e30.", want: msgMalformed},
		{name: "a header without alg is refused", verifier: hs, token: b64([]byte(`{"typ":"JWT"}`)) + ".e30.c2ln", want: msgUnverified},
		{name: "an admin-looking token is refused", verifier: hs, token: "s3cr3t-admin-token-0123456789", want: msgMalformed},
		{name: "a token over the size limit is refused", verifier: jwks, token: strings.Repeat("a", verifier.MaxTokenBytes+1), want: msgTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.verifier.Verify(context.Background(), tc.token)
			if tc.want != "" {
				wantRefused(t, err, tc.want, tc.token)
				if got, want := verifier.SignatureHeld(err), claimsMessages[tc.want]; got != want {
					t.Fatalf("SignatureHeld = %v, want %v", got, want)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.ID != tc.wantID {
				t.Fatalf("customer %q, want %q", got.ID, tc.wantID)
			}
		})
	}
	// Known key ids never cause a fetch: the set was fetched once, by New.
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("the key set was fetched %d times, want 1", n)
	}
}

// A token signed by a rotated key (unknown key id) makes the verifier
// fetch the set again; the refresh is rate-limited, so tokens with made-up
// key ids cannot make it fetch again and again.
func TestVerifyPicksUpARotatedKey(t *testing.T) {
	srv := newJWKSServer(t, key("rsa"))
	v := newVerifier(t, auth.Options{JWKSURL: srv.URL})
	now := time.Now()
	old := sign(t, jwt.SigningMethodRS256, key("rsa"), claims(now))
	rotated := sign(t, jwt.SigningMethodRS256, key("rotated"), claims(now))
	madeUp := sign(t, jwt.SigningMethodRS256, testKey{kid: "made-up", private: key("rsa").private}, claims(now))

	steps := []struct {
		name        string
		serve       []testKey // the set from this step on; nil: unchanged
		token       string
		want        string // refusal message; empty: accepted
		wantFetches int64
	}{
		{name: "the current key verifies from the cache", token: old, wantFetches: 1},
		{name: "the provider rotates: the new key id makes one fetch", serve: []testKey{key("rotated")}, token: rotated, wantFetches: 2},
		{name: "the new key verifies from the cache", token: rotated, wantFetches: 2},
		{name: "the retired key is gone with the old set", token: old, want: msgUnverified, wantFetches: 2},
		{name: "a made-up key id is refused without a fetch", token: madeUp, want: msgUnverified, wantFetches: 2},
	}
	for _, s := range steps {
		if s.serve != nil {
			srv.set(s.serve...)
		}
		start := time.Now()
		got, err := v.Verify(context.Background(), s.token)
		if s.want != "" {
			wantRefused(t, err, s.want, s.token)
		} else if err != nil || got.ID != "cust-1" {
			t.Fatalf("%s: Verify = %+v, %v", s.name, got, err)
		}
		if n := srv.fetches.Load(); n != s.wantFetches {
			t.Fatalf("%s: %d fetches, want %d", s.name, n, s.wantFetches)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%s: took %v", s.name, d)
		}
	}
}

// Requests released together with a just-rotated key id all wait for one
// fetch and are all accepted; made-up key ids among them cause no second
// fetch.
func TestVerifyConcurrentRotation(t *testing.T) {
	srv := newJWKSServer(t, key("rsa"))
	v := newVerifier(t, auth.Options{JWKSURL: srv.URL})
	srv.set(key("rsa"), key("rotated"))
	now := time.Now()
	rotated := sign(t, jwt.SigningMethodRS256, key("rotated"), claims(now))
	madeUp := sign(t, jwt.SigningMethodRS256, testKey{kid: "made-up", private: key("rsa").private}, claims(now))

	const n = 32
	start := make(chan struct{})
	errs := make(chan error, n)
	for i := range n {
		token := rotated
		if i%2 == 1 {
			token = madeUp
		}
		go func() {
			<-start
			_, err := v.Verify(context.Background(), token)
			if token == madeUp {
				switch {
				case err == nil:
					err = errors.New("a made-up key id was accepted")
				case apperr.ErrorCode(err) == apperr.Unauthenticated:
					err = nil
				}
			}
			errs <- err
		}()
	}
	close(start)
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("Verify: %v", err)
		}
	}
	if got := srv.fetches.Load(); got != 2 {
		t.Fatalf("%d fetches, want 2 (New's and one refresh)", got)
	}
}
