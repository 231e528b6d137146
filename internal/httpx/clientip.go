package httpx

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// client is what ClientIPs records of a request's client: its address, or
// none when the hop that names the client cannot be read, and the key that
// stands for the client in rate limits and admin slowing.
type client struct {
	ip  netip.Addr
	key string
	// https: the client reached us over TLS, directly or (as a trusted
	// proxy says with X-Forwarded-Proto) through the proxy.
	https bool
}

// ClientIPs finds each request's client once and puts it in the context
// (read with ClientIP and ClientKey), for rate limiting, admin slowing, the
// loopback rule and logs. X-Forwarded-For is believed only when the peer
// is one of the trusted proxies; the client is then the right-most hop of
// the header that is not itself a trusted proxy (hops further left were
// written by the client and prove nothing). A hop is an IP, IP:port,
// [IPv6]:port or [IPv6]; anything else (unknown, 127.1, 0177.0.0.1, a
// name) leaves the client unknown: it has no address, so it is never
// loopback, and its key is derived from the hop as written. It is never
// taken for the proxy that wrote the hop.
func ClientIPs(trusted []netip.Prefix) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c := clientOf(r, trusted)
			c.https = overTLS(r, trusted)
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientIPKey, c)))
		})
	}
}

// ClientIP answers the client address of the request in ctx, or the zero
// Addr outside ClientIPs and for a client whose hop could not be read.
func ClientIP(ctx context.Context) netip.Addr {
	c, _ := ctx.Value(clientIPKey).(client)
	return c.ip
}

// ClientKey answers the text that stands for r's client in per-client
// counts: its address, or for a client ClientIPs could not read, "hop:"
// and the hop as written (at most 64 printable characters, else a digest
// of it). Outside ClientIPs it is the peer address.
func ClientKey(r *http.Request) string {
	if c, ok := r.Context().Value(clientIPKey).(client); ok {
		return c.key
	}
	return peerClient(r.RemoteAddr).key
}

// HTTPS reports whether r's client reached the server over TLS: the
// connection is TLS, or its peer is a trusted proxy (TRUSTED_PROXIES) whose
// X-Forwarded-Proto says https (the last value, the one that proxy
// wrote). It decides the Secure flag of cookies.
func HTTPS(r *http.Request) bool {
	if c, ok := r.Context().Value(clientIPKey).(client); ok {
		return c.https
	}
	return r.TLS != nil
}

// overTLS is HTTPS for a request ClientIPs has not seen yet.
func overTLS(r *http.Request, trusted []netip.Prefix) bool {
	if r.TLS != nil {
		return true
	}
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() || !isTrusted(peer, trusted) {
		return false
	}
	var protos []string
	for _, v := range r.Header.Values("X-Forwarded-Proto") {
		protos = append(protos, strings.Split(v, ",")...)
	}
	return len(protos) > 0 && strings.EqualFold(strings.TrimSpace(protos[len(protos)-1]), "https")
}

// clientIPOf answers the client address of r: the one ClientIPs recorded
// (none for an unreadable hop), else the peer address.
func clientIPOf(r *http.Request) netip.Addr {
	if c, ok := r.Context().Value(clientIPKey).(client); ok {
		return c.ip
	}
	return peerAddr(r.RemoteAddr)
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap().WithZone("")
}

// peerClient is the client of a request taken at its word: the peer.
func peerClient(remote string) client {
	if ip := peerAddr(remote); ip.IsValid() {
		return client{ip: ip, key: ip.String()}
	}
	return client{key: "peer:" + boundedKey(remote)}
}

// parseHop reads one element of X-Forwarded-For: an IP, IP:port,
// [IPv6]:port or [IPv6]. IPv4 is read strictly (four decimal fields, no
// leading zeros), as netip does.
func parseHop(hop string) (netip.Addr, bool) {
	if ip, err := netip.ParseAddr(hop); err == nil {
		return ip.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(hop); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if inner, ok := strings.CutPrefix(hop, "["); ok {
		if inner, ok := strings.CutSuffix(inner, "]"); ok {
			if ip, err := netip.ParseAddr(inner); err == nil && ip.Is6() {
				return ip.Unmap().WithZone(""), true
			}
		}
	}
	return netip.Addr{}, false
}

// maxKeyHop is the longest hop kept as written in a client key.
const maxKeyHop = 64

// boundedKey answers s when it is short printable ASCII, else a digest of
// it, so a client key stays short and safe in logs and Redis keys.
func boundedKey(s string) string {
	if len(s) <= maxKeyHop && strings.IndexFunc(s, func(r rune) bool { return r <= ' ' || r > '~' }) < 0 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:16])
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func clientOf(r *http.Request, trusted []netip.Prefix) client {
	peer := peerClient(r.RemoteAddr)
	if !peer.ip.IsValid() || !isTrusted(peer.ip, trusted) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	if strings.TrimSpace(strings.Join(hops, "")) == "" {
		// No header, or only empty ones: the proxy is the client.
		return peer
	}
	for i := len(hops) - 1; i >= 0; i-- {
		hop := strings.TrimSpace(hops[i])
		ip, ok := parseHop(hop)
		if !ok {
			// A trusted proxy wrote a hop we cannot read: the client is
			// unknown. The chain stops here (what lies left of it was
			// written by that client), and the proxy's own address is
			// not the client's.
			return client{key: "hop:" + boundedKey(hop)}
		}
		if !isTrusted(ip, trusted) {
			return client{ip: ip, key: ip.String()}
		}
		peer = client{ip: ip, key: ip.String()}
	}
	return peer
}
