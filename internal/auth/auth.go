// Package auth verifies end users' JSON Web Tokens: a request that bears a
// valid token is a customer, identified by the token's subject.
//
// End-user authentication is optional and off by default. It is on with one
// key source: a JWKS URL (RS256 and ES256 keys, fetched, cached and refreshed
// on an unknown key id) or a shared secret (HS256); the token's issuer and
// audience must then match the configured ones.
//
// The edges tell an admin bearer token and a customer's JWT apart with one
// rule: a bearer value equal to the admin token is an admin (checked first,
// in constant time, by the admin gate); otherwise a value for which
// LooksLikeJWT holds is verified here; anything else is a wrong admin token.
package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"

	"timeslots/internal/apperr"
)

// Options configure end-user authentication. JWKSURL, JWTSecret, Issuer,
// Audience and Required come from the AUTH_* environment variables; the
// other fields have defaults that suit production and exist for tests.
type Options struct {
	// JWKSURL is the http(s) URL of the identity provider's JSON Web Key Set
	// (AUTH_JWKS_URL); tokens are then signed with RS256 or ES256.
	JWKSURL string
	// JWTSecret is the shared HS256 key, taken as its bytes
	// (AUTH_JWT_SECRET).
	JWTSecret string
	// Issuer is the required "iss" claim (AUTH_ISSUER).
	Issuer string
	// Audience is the "aud" value a token must carry (AUTH_AUDIENCE).
	Audience string
	// Required makes the customer operations refuse requests without a
	// valid token (AUTH_REQUIRED); the edges read it with Verifier.Required.
	Required bool

	// FetchTimeout bounds one fetch of the key set, and so the wait of a
	// request whose key id is unknown; zero means DefaultFetchTimeout.
	FetchTimeout time.Duration
	// RefreshInterval is how often the key set is fetched in the
	// background; zero means DefaultRefreshInterval.
	RefreshInterval time.Duration
	// UnknownKIDRefreshInterval is the least time between two fetches
	// caused by tokens with an unknown key id; zero means
	// DefaultUnknownKIDRefreshInterval.
	UnknownKIDRefreshInterval time.Duration
	// Now is the clock the time claims are checked against; nil means
	// time.Now.
	Now func() time.Time
}

// Defaults of the Options fields that have no environment variable.
const (
	// DefaultFetchTimeout keeps a slow identity provider from holding
	// requests for long: a request waits at most this for a key set fetch.
	DefaultFetchTimeout = 5 * time.Second
	// DefaultRefreshInterval picks up a provider's key changes even when no
	// token with a new key id arrives.
	DefaultRefreshInterval = time.Hour
	// DefaultUnknownKIDRefreshInterval lets a rotated key be picked up
	// within a minute while capping the fetches that tokens with made-up
	// key ids can cause at one a minute.
	DefaultUnknownKIDRefreshInterval = time.Minute
)

// MinSecretBytes is the least length of an HS256 secret: a key shorter
// than the hash's 32-byte output weakens HMAC-SHA256.
const MinSecretBytes = 32

// Enabled reports whether end-user authentication is configured.
func (o Options) Enabled() bool { return o.JWKSURL != "" || o.JWTSecret != "" }

// Validate checks the options; each error names the environment variable
// at fault and never contains the secret.
func (o Options) Validate() error {
	switch {
	case o.JWKSURL != "" && o.JWTSecret != "":
		return errors.New("AUTH_JWKS_URL and AUTH_JWT_SECRET exclude each other: set one of them")
	case !o.Enabled():
		switch {
		case o.Required:
			return errors.New("AUTH_REQUIRED=true needs AUTH_JWKS_URL or AUTH_JWT_SECRET")
		case o.Issuer != "":
			return errors.New("AUTH_ISSUER is set but neither AUTH_JWKS_URL nor AUTH_JWT_SECRET is")
		case o.Audience != "":
			return errors.New("AUTH_AUDIENCE is set but neither AUTH_JWKS_URL nor AUTH_JWT_SECRET is")
		}
		return nil
	}
	if o.JWKSURL != "" {
		u, err := url.Parse(o.JWKSURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("AUTH_JWKS_URL must be an http:// or https:// URL")
		}
	}
	if o.JWTSecret != "" && len(o.JWTSecret) < MinSecretBytes {
		return errors.New("AUTH_JWT_SECRET must be at least 32 bytes")
	}
	if strings.TrimSpace(o.Issuer) == "" {
		return errors.New("AUTH_ISSUER must be set when AUTH_JWKS_URL or AUTH_JWT_SECRET is")
	}
	if strings.TrimSpace(o.Audience) == "" {
		return errors.New("AUTH_AUDIENCE must be set when AUTH_JWKS_URL or AUTH_JWT_SECRET is")
	}
	return nil
}

// Customer is the end user a verified token speaks for.
type Customer struct {
	// ID is the token's "sub" claim: who owns the bookings made with it.
	ID string
}

type customerKey struct{}

// WithCustomer returns a context that carries the request's verified
// customer, where the resolvers and the domain find it with CustomerFrom.
func WithCustomer(ctx context.Context, c Customer) context.Context {
	return context.WithValue(ctx, customerKey{}, c)
}

// CustomerFrom answers the customer WithCustomer put in ctx; false when the
// request carries no verified token.
func CustomerFrom(ctx context.Context) (Customer, bool) {
	c, ok := ctx.Value(customerKey{}).(Customer)
	return c, ok
}

type requiredKey struct{}

// WithRequired returns a context whose request must carry a verified
// customer for the operations that act for one (AUTH_REQUIRED).
func WithRequired(ctx context.Context) context.Context {
	return context.WithValue(ctx, requiredKey{}, true)
}

// CustomerFor answers the verified customer of an operation that acts for
// one (booking, a customer's own bookings): ok is false for an anonymous
// request, which is refused with UNAUTHENTICATED where WithRequired marked
// the request.
func CustomerFor(ctx context.Context) (c Customer, ok bool, err error) {
	if c, ok = CustomerFrom(ctx); ok {
		return c, true, nil
	}
	if required, _ := ctx.Value(requiredKey{}).(bool); required {
		return Customer{}, false, apperr.E(apperr.Unauthenticated, "this operation needs a signed-in customer: send Authorization: Bearer <JWT>")
	}
	return Customer{}, false, nil
}

// LooksLikeJWT reports whether a bearer value has the shape of a JWT in
// compact form: three base64url segments separated by dots (the signature
// may be empty, as in "alg": "none", so that such a token is refused as a
// token rather than taken for an admin token), the first decoding to a JSON
// object with a string "alg" member. It checks the shape only, never the
// signature. The edges apply it after the admin token comparison, to the
// same trimmed value.
func LooksLikeJWT(token string) bool {
	header, rest, ok := strings.Cut(token, ".")
	if !ok || header == "" {
		return false
	}
	payload, signature, ok := strings.Cut(rest, ".")
	if !ok || payload == "" || !isBase64URL(payload) || !isBase64URL(signature) {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return false
	}
	var fields map[string]any
	if json.Unmarshal(raw, &fields) != nil {
		return false
	}
	_, ok = fields["alg"].(string)
	return ok
}

// isBase64URL reports whether s uses only the unpadded base64url alphabet
// (so it has no dot either).
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}
