// Package verifier checks end users' JWTs (RS256/ES256 against a JWKS
// URL, or HS256 with a shared secret) for the HTTP edge, with the options
// and rules of package auth.
package verifier

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"timeslots/internal/apperr"
	"timeslots/internal/auth"
)

// Leeway is the clock skew allowed between the identity provider and this
// server when exp, nbf and iat are checked.
const Leeway = 30 * time.Second

// Limits on what a token may carry.
const (
	// MaxTokenBytes bounds the work one bearer value can cause; real
	// tokens are a few hundred bytes to a few kilobytes.
	MaxTokenBytes = 8 << 10
	// MaxSubjectBytes bounds the customer id stored with each booking.
	MaxSubjectBytes = 200
	// MinRSABits refuses RSA keys too short to trust for signatures.
	MinRSABits = 2048
	// MaxJWKSBytes bounds the key set document read from the provider.
	MaxJWKSBytes = 1 << 20
)

// The messages of refused tokens: fixed texts, safe to show a client, that
// never contain the token.
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

// Verifier checks end users' tokens against one key source. A nil
// *Verifier is valid and means end-user authentication is off: Enabled and
// Required answer false and Verify refuses every token.
type Verifier struct {
	parser       *jwt.Parser
	keyfunc      func(ctx context.Context) jwt.Keyfunc
	fetchTimeout time.Duration // JWKS only: the bound of a fetch a token causes
	required     bool
	log          *slog.Logger
	stop         context.CancelFunc
}

// New builds the verifier the options describe, or answers nil (and no
// error) when neither AUTH_JWKS_URL nor AUTH_JWT_SECRET is set. With a
// JWKS URL it fetches the key set once before returning (waiting at most
// FetchTimeout; a failed fetch is logged and retried when a token needs a
// key) and keeps refreshing it in the background until Close or until ctx
// ends.
func New(ctx context.Context, o auth.Options, logger *slog.Logger) (*Verifier, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if !o.Enabled() {
		return nil, nil
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = auth.DefaultFetchTimeout
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = auth.DefaultRefreshInterval
	}
	if o.UnknownKIDRefreshInterval <= 0 {
		o.UnknownKIDRefreshInterval = auth.DefaultUnknownKIDRefreshInterval
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	v := &Verifier{required: o.Required, log: logger, stop: func() {}}

	// The accepted algorithms are fixed by the key source, never taken
	// from the token: "none" is never accepted, and neither is an HMAC
	// token checked against a public key nor the reverse.
	methods := []string{jwt.SigningMethodHS256.Alg()}
	if o.JWKSURL != "" {
		methods = []string{jwt.SigningMethodRS256.Alg(), jwt.SigningMethodES256.Alg()}
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(methods),
		jwt.WithIssuer(o.Issuer),
		jwt.WithAudience(o.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	)

	if o.JWTSecret != "" {
		secret := []byte(o.JWTSecret)
		v.keyfunc = func(context.Context) jwt.Keyfunc {
			return func(t *jwt.Token) (any, error) {
				if err := refuseCritical(t); err != nil {
					return nil, err
				}
				return secret, nil
			}
		}
		return v, nil
	}

	ctx, stop := context.WithCancel(ctx)
	keys, err := newKeySet(ctx, o, logger)
	if err != nil {
		stop()
		return nil, err
	}
	v.stop = stop
	v.keyfunc = keys.keyfunc
	v.fetchTimeout = o.FetchTimeout
	return v, nil
}

// Enabled reports whether end-user authentication is on.
func (v *Verifier) Enabled() bool { return v != nil }

// Required reports whether customer operations refuse requests without a
// valid token (AUTH_REQUIRED=true).
func (v *Verifier) Required() bool { return v != nil && v.required }

// Close stops the background refresh of the key set; tokens signed by
// keys already fetched still verify, and no further fetch is made.
func (v *Verifier) Close() {
	if v != nil {
		v.stop()
	}
}

// Verify checks a bearer token and answers the customer it speaks for.
// Every refusal is an UNAUTHENTICATED error whose message is safe to show
// the client; the reason in detail is logged at debug level.
func (v *Verifier) Verify(ctx context.Context, raw string) (auth.Customer, error) {
	if v == nil {
		return auth.Customer{}, apperr.E(apperr.Unauthenticated, "%s", msgUnverified)
	}
	if len(raw) > MaxTokenBytes {
		return auth.Customer{}, apperr.E(apperr.Unauthenticated, "%s", msgTooLong)
	}
	if v.fetchTimeout > 0 {
		// A key set fetch caused by this token (an unknown key id) ends
		// with this deadline, so a slow or unreachable provider cannot
		// hold the request for longer.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, v.fetchTimeout)
		defer cancel()
	}
	var claims jwt.RegisteredClaims
	if _, err := v.parser.ParseWithClaims(raw, &claims, v.keyfunc(ctx)); err != nil {
		v.log.DebugContext(ctx, "bearer token refused", slog.String("reason", err.Error()))
		refused := apperr.E(apperr.Unauthenticated, "%s", refusal(err, &claims))
		if errors.Is(err, jwt.ErrTokenInvalidClaims) {
			// The parser validates claims only once the signature holds.
			return auth.Customer{}, signedRefusal{refused}
		}
		return auth.Customer{}, refused
	}
	if !validSubject(claims.Subject) {
		v.log.DebugContext(ctx, "bearer token refused", slog.String("reason", "invalid sub"))
		return auth.Customer{}, signedRefusal{apperr.E(apperr.Unauthenticated, "%s", msgSubject)}
	}
	return auth.Customer{ID: claims.Subject}, nil
}

// signedRefusal is Verify's refusal of a token whose signature holds: a
// trusted key signed it, and its claims (expiry, issuer, audience,
// subject) are what failed. It reads as the UNAUTHENTICATED error it
// wraps.
type signedRefusal struct{ err *apperr.Error }

func (s signedRefusal) Error() string { return s.err.Error() }
func (s signedRefusal) Unwrap() error { return s.err }

// SignatureHeld reports whether err, a refusal of Verify, is about a token
// that a trusted key signed (expired, not yet valid, for another issuer,
// audience or subject) rather than one that is malformed, unsigned, of an
// algorithm or key not accepted, or forged. Such a token comes from the
// identity provider, not from guessing: the admin gate counts only the
// others against a client.
func SignatureHeld(err error) bool {
	var s signedRefusal
	return errors.As(err, &s)
}

// refusal chooses the client's message for a token the parser refused.
// Claims are only validated once the signature holds, so the claims
// messages never describe a forged token.
func refusal(err error, claims *jwt.RegisteredClaims) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return msgMalformed
	case !errors.Is(err, jwt.ErrTokenInvalidClaims):
		return msgUnverified
	case errors.Is(err, jwt.ErrTokenExpired):
		return msgExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return msgNotYet
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return msgIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return msgAudience
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// The parser says which claim only in its text; the claims tell.
		switch {
		case claims.Issuer == "":
			return msgIssuer
		case len(claims.Audience) == 0:
			return msgAudience
		case claims.ExpiresAt == nil:
			return msgNoExpiry
		}
	}
	return msgUnverified
}

// validSubject accepts a non-empty "sub" of at most MaxSubjectBytes of
// UTF-8 without control characters: it is stored as the bookings' owner
// and shown back in answers and logs.
func validSubject(sub string) bool {
	if sub == "" || len(sub) > MaxSubjectBytes || !utf8.ValidString(sub) {
		return false
	}
	for _, r := range sub {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// refuseCritical refuses a token whose header lists critical extensions:
// none is understood here, and RFC 7515 requires refusing them.
func refuseCritical(t *jwt.Token) error {
	if _, ok := t.Header["crit"]; ok {
		return errors.New(`the "crit" header is not supported`)
	}
	return nil
}

// keySet is the provider's JSON Web Key Set as fetched from AUTH_JWKS_URL.
type keySet struct {
	jwks keyfunc.Keyfunc
}

// newKeySet fetches the key set at o.JWKSURL (once, before returning,
// bounded by o.FetchTimeout) and refreshes it every o.RefreshInterval
// until ctx ends, and on demand for a token with an unknown key id, at
// most once per o.UnknownKIDRefreshInterval.
func newKeySet(ctx context.Context, o auth.Options, logger *slog.Logger) (*keySet, error) {
	target := o.JWKSURL
	if u, err := url.Parse(o.JWKSURL); err == nil {
		target = u.Redacted()
	}
	client := &http.Client{Timeout: o.FetchTimeout, Transport: limitedTransport{http.DefaultTransport}}
	cached, err := jwkset.NewStorageFromHTTP(o.JWKSURL, jwkset.HTTPClientStorageOptions{
		Client:                    client,
		Ctx:                       ctx,
		HTTPTimeout:               o.FetchTimeout,
		NoErrorReturnFirstHTTPReq: true,
		RefreshErrorHandler: func(ctx context.Context, err error) {
			if ctx.Err() != nil && errors.Is(err, context.Canceled) {
				return // Close or shutdown, not a provider failure
			}
			logger.WarnContext(ctx, "JWKS fetch failed", slog.String("url", target), slog.String("error", err.Error()))
		},
		RefreshInterval: o.RefreshInterval,
	})
	if err != nil {
		// Only a URL that does not parse gets here; the URL may hold
		// credentials, so the error (which quotes it) is not passed on.
		return nil, errors.New("AUTH_JWKS_URL must be an http:// or https:// URL")
	}
	// The refreshing storage: a read of an unknown key id fetches the set
	// again, rate-limited, and waits for the limiter no longer than a fetch
	// may take (a token arriving while the limiter is empty is refused at
	// once rather than held).
	refreshing, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs:          map[string]jwkset.Storage{o.JWKSURL: cached},
		RateLimitWaitMax:  o.FetchTimeout,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(o.UnknownKIDRefreshInterval), 1),
	})
	if err != nil {
		return nil, fmt.Errorf("AUTH_JWKS_URL: %w", err)
	}
	kf, err := keyfunc.New(keyfunc.Options{
		Ctx:     ctx,
		Storage: &gatedStorage{Storage: refreshing, cached: cached, closed: ctx, gate: make(chan struct{}, 1)},
		// A key marked for encryption never verifies a signature; a key
		// without "use" may.
		UseWhitelist: []jwkset.USE{jwkset.UseSig, ""},
	})
	if err != nil {
		return nil, fmt.Errorf("AUTH_JWKS_URL: %w", err)
	}
	return &keySet{jwks: kf}, nil
}

// keyfunc answers the key of a token: the set's key with the token's key
// id (or, without a key id, every key), if it fits the token's algorithm.
func (s *keySet) keyfunc(ctx context.Context) jwt.Keyfunc {
	lookup := s.jwks.KeyfuncCtx(ctx)
	return func(t *jwt.Token) (any, error) {
		if err := refuseCritical(t); err != nil {
			return nil, err
		}
		key, err := lookup(t)
		if err != nil {
			return nil, err
		}
		alg := t.Method.Alg()
		if set, ok := key.(jwt.VerificationKeySet); ok {
			var fitting jwt.VerificationKeySet
			for _, k := range set.Keys {
				if fitsAlgorithm(alg, k) {
					fitting.Keys = append(fitting.Keys, k)
				}
			}
			if len(fitting.Keys) == 0 {
				return nil, fmt.Errorf("no key of the set fits %s", alg)
			}
			return fitting, nil
		}
		if !fitsAlgorithm(alg, key) {
			return nil, fmt.Errorf("key %v does not fit %s", t.Header["kid"], alg)
		}
		return key, nil
	}
}

// fitsAlgorithm reports whether key may verify a signature of alg: an RSA
// key of at least MinRSABits for RS256, a P-256 key for ES256.
func fitsAlgorithm(alg string, key any) bool {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return alg == jwt.SigningMethodRS256.Alg() && k.Size()*8 >= MinRSABits
	case *ecdsa.PublicKey:
		return alg == jwt.SigningMethodES256.Alg() && k.Curve == elliptic.P256()
	}
	return false
}

// gatedStorage reads keys from the cached set and lets one request at a
// time look for an unknown key id in the refreshing storage: requests that
// carry a just-rotated key id wait for the one fetch under way (within
// their deadline) and then find the key in the cache, instead of each
// asking the rate limiter and most being refused. After Close (closed
// ends) nothing is fetched any more.
type gatedStorage struct {
	jwkset.Storage // refreshing: fetches on an unknown key id
	cached         jwkset.Storage
	closed         context.Context
	gate           chan struct{}
}

// KeyRead answers the key with keyID, fetching the set again when it is
// unknown (see gatedStorage).
func (g *gatedStorage) KeyRead(ctx context.Context, keyID string) (jwkset.JWK, error) {
	jwk, err := g.cached.KeyRead(ctx, keyID)
	if !errors.Is(err, jwkset.ErrKeyNotFound) || g.closed.Err() != nil {
		return jwk, err
	}
	select {
	case g.gate <- struct{}{}:
	case <-ctx.Done():
		return jwkset.JWK{}, fmt.Errorf("waiting for a key set fetch: %w", ctx.Err())
	}
	defer func() { <-g.gate }()
	if jwk, err := g.cached.KeyRead(ctx, keyID); !errors.Is(err, jwkset.ErrKeyNotFound) {
		return jwk, err
	}
	return g.Storage.KeyRead(ctx, keyID)
}

// limitedTransport refuses a key set document over MaxJWKSBytes.
type limitedTransport struct{ base http.RoundTripper }

// RoundTrip sends the request and limits the body of the answer.
func (t limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	// A nil ResponseWriter is fine: MaxBytesReader only tells a server's
	// writer, when it has one, that the body was too large.
	resp.Body = http.MaxBytesReader(nil, resp.Body, MaxJWKSBytes)
	return resp, nil
}
