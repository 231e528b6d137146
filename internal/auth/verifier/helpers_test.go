package verifier_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"timeslots/internal/auth"
	"timeslots/internal/auth/verifier"
)

const (
	testIssuer   = "https://id.example.test/"
	testAudience = "timeslots-api"
	testSecret   = "0123456789abcdef0123456789abcdef-test-secret"
)

// testKey is a signing key generated for the tests and the JWK its public
// half is served as.
type testKey struct {
	kid     string
	private any // *rsa.PrivateKey or *ecdsa.PrivateKey
	jwk     map[string]string
}

// newRSAKey generates an RSA key; it panics if the system's random
// source fails, as crypto/rand itself does.
func newRSAKey(kid string, bits int) testKey {
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		panic(err)
	}
	return testKey{kid: kid, private: k, jwk: map[string]string{
		"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64(k.N.Bytes()),
		"e": b64(big.NewInt(int64(k.E)).Bytes()),
	}}
}

// newECKey generates a P-256 key.
func newECKey(kid string) testKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	point, err := k.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		panic(err)
	}
	// No "use" and no "alg": many providers leave them out.
	return testKey{kid: kid, private: k, jwk: map[string]string{
		"kty": "EC", "kid": kid, "crv": "P-256",
		"x": b64(point[1:33]), "y": b64(point[33:]),
	}}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// The RSA keys take a while to generate under -race, so the tests share
// them.
var sharedKeys = sync.OnceValue(func() map[string]testKey {
	return map[string]testKey{
		"rsa":      newRSAKey("rsa-1", 2048),
		"rotated":  newRSAKey("rsa-2", 2048),
		"weak":     newRSAKey("rsa-weak", 1024),
		"ec":       newECKey("ec-1"),
		"stranger": newRSAKey("rsa-1", 2048), // the kid of "rsa", another key
	}
})

func key(name string) testKey { return sharedKeys()[name] }

// jwksServer serves a JSON Web Key Set that a test may change, and counts
// the fetches.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int64  // requests, answered or not
	fetched chan struct{} // one value per fetch, dropped when full
	failing atomic.Bool   // answer 503 instead of the set

	mu   sync.Mutex
	keys []map[string]string
}

func newJWKSServer(t testing.TB, keys ...testKey) *jwksServer {
	t.Helper()
	s := &jwksServer{fetched: make(chan struct{}, 100)}
	s.set(keys...)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		select {
		case s.fetched <- struct{}{}:
		default:
		}
		if s.failing.Load() {
			http.Error(w, "provider down", http.StatusServiceUnavailable)
			return
		}
		s.mu.Lock()
		body, err := json.Marshal(map[string]any{"keys": s.keys})
		s.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

// set replaces the served keys.
func (s *jwksServer) set(keys ...testKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = s.keys[:0]
	for _, k := range keys {
		s.keys = append(s.keys, k.jwk)
	}
}

// setRaw serves JWKs written out by the test.
func (s *jwksServer) setRaw(jwks ...map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = jwks
}

// newVerifier builds a verifier and closes it when the test ends.
func newVerifier(t testing.TB, o auth.Options) *verifier.Verifier {
	t.Helper()
	if o.Issuer == "" {
		o.Issuer = testIssuer
	}
	if o.Audience == "" {
		o.Audience = testAudience
	}
	v, err := verifier.New(context.Background(), o, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if v == nil {
		t.Fatal("New answered no verifier for enabled options")
	}
	t.Cleanup(v.Close)
	return v
}

// claims are valid claims for customer "cust-1" at now.
func claims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": testIssuer,
		"aud": testAudience,
		"sub": "cust-1",
		"iat": now.Unix(),
		"nbf": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(),
	}
}

// with returns c changed: a nil value deletes the claim.
func with(c jwt.MapClaims, changes map[string]any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for k, v := range changes {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// sign signs c with k under alg, with k's kid in the header.
func sign(t testing.TB, method jwt.SigningMethod, k testKey, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.private)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// signHS signs c with an HMAC secret.
func signHS(t testing.TB, secret []byte, c jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
