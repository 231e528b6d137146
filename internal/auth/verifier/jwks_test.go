package verifier_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"timeslots/internal/auth"
	"timeslots/internal/auth/verifier"
)

// When the key set cannot be had, New still starts (a provider outage must
// not keep the server down) and tokens are refused as UNAUTHENTICATED
// within the fetch timeout, never held.
func TestVerifyWhenTheProviderIsDown(t *testing.T) {
	const fetchTimeout = 300 * time.Millisecond
	const bound = 3 * time.Second // fetchTimeout plus generous scheduling slack under -race

	hanging := func(t *testing.T) string {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) }) // runs first: lets the handlers end
		return srv.URL
	}
	refusing := func(t *testing.T) string {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		return srv.URL
	}
	failing := func(t *testing.T) string {
		srv := newJWKSServer(t, key("rsa"))
		srv.failing.Store(true)
		return srv.URL
	}
	notJSON := func(t *testing.T) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("<html>maintenance</html>"))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	oversized := func(t *testing.T) string {
		// A valid set holding the key, padded past MaxJWKSBytes.
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"padding":"` + strings.Repeat("x", verifier.MaxJWKSBytes) + `","keys":[`))
			body := `{"kty":"RSA","kid":"` + key("rsa").kid + `","n":"` + key("rsa").jwk["n"] + `","e":"` + key("rsa").jwk["e"] + `"}]}`
			_, _ = w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}

	cases := []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"a provider that never answers", hanging},
		{"a provider that refuses connections", refusing},
		{"a provider that answers 503", failing},
		{"a provider that answers something else than JSON", notJSON},
		{"a key set over MaxJWKSBytes", oversized},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url := tc.url(t)
			start := time.Now()
			v := newVerifier(t, auth.Options{JWKSURL: url, FetchTimeout: fetchTimeout})
			d := time.Since(start)
			t.Logf("New took %v", d)
			if d > bound {
				t.Fatalf("New took %v", d)
			}
			token := sign(t, jwt.SigningMethodRS256, key("rsa"), claims(time.Now()))
			for i := range 2 { // the first refreshes, the second is rate-limited
				start = time.Now()
				_, err := v.Verify(context.Background(), token)
				wantRefused(t, err, msgUnverified, token)
				d := time.Since(start)
				t.Logf("Verify %d took %v", i, d)
				if d > bound {
					t.Fatalf("Verify %d took %v", i, d)
				}
			}
		})
	}
}

// A provider down at start-up is tried again when a token needs a key, so
// the server recovers without a restart.
func TestVerifyRecoversWhenTheProviderComesBack(t *testing.T) {
	srv := newJWKSServer(t, key("rsa"))
	srv.failing.Store(true)
	v := newVerifier(t, auth.Options{JWKSURL: srv.URL})
	srv.failing.Store(false)

	token := sign(t, jwt.SigningMethodRS256, key("rsa"), claims(time.Now()))
	got, err := v.Verify(context.Background(), token)
	if err != nil || got.ID != "cust-1" {
		t.Fatalf("Verify = %+v, %v; want cust-1", got, err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (the failed one and the refresh)", n)
	}
}

// A failed fetch is logged as a warning, without the credentials the URL
// may hold.
func TestFetchFailuresAreLoggedWithoutCredentials(t *testing.T) {
	srv := newJWKSServer(t, key("rsa"))
	srv.failing.Store(true)
	var logs lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	url := strings.Replace(srv.URL, "http://", "http://reader:hunter2@", 1)
	v, err := verifier.New(context.Background(), auth.Options{JWKSURL: url, Issuer: testIssuer, Audience: testAudience}, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	out := logs.String()
	if !strings.Contains(out, `"level":"WARN","msg":"JWKS fetch failed"`) || !strings.Contains(out, "503") {
		t.Fatalf("log %q lacks the failed fetch", out)
	}
	if strings.Contains(out, "hunter2") {
		t.Fatalf("log %q shows the URL's password", out)
	}
}

// lockedBuffer is a bytes.Buffer safe for the logger's concurrent writes.
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

// The set is refreshed in the background until Close; after Close nothing
// is fetched, and keys already fetched still verify.
func TestBackgroundRefreshStopsOnClose(t *testing.T) {
	const interval = 20 * time.Millisecond
	srv := newJWKSServer(t, key("rsa"))
	v, err := verifier.New(context.Background(), auth.Options{
		JWKSURL: srv.URL, Issuer: testIssuer, Audience: testAudience, RefreshInterval: interval,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	// New's fetch, then background ones, with no token asking for them.
	deadline := time.After(10 * time.Second)
	for range 4 {
		select {
		case <-srv.fetched:
		case <-deadline:
			t.Fatalf("only %d fetches in 10s with a %v refresh interval", srv.fetches.Load(), interval)
		}
	}

	v.Close()
	closedAt := srv.fetches.Load()
	time.Sleep(15 * interval)
	// A fetch under way when Close was called may still arrive.
	if n := srv.fetches.Load(); n > closedAt+1 {
		t.Fatalf("%d fetches after Close", n-closedAt)
	}

	now := time.Now()
	if _, err := v.Verify(context.Background(), sign(t, jwt.SigningMethodRS256, key("rsa"), claims(now))); err != nil {
		t.Fatalf("a cached key after Close: %v", err)
	}
	before := srv.fetches.Load()
	madeUp := sign(t, jwt.SigningMethodRS256, testKey{kid: "made-up", private: key("rsa").private}, claims(now))
	_, err = v.Verify(context.Background(), madeUp)
	wantRefused(t, err, msgUnverified, madeUp)
	if n := srv.fetches.Load(); n != before {
		t.Fatalf("an unknown key id after Close fetched the set")
	}
}
