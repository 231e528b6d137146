package httpx

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIPs finds each request's client address once and puts it in the
// context (read with ClientIP), for rate limiting, admin slowing, the
// loopback rule and logs. X-Forwarded-For is believed only when the peer
// is one of the trusted proxies; the client is then the right-most address
// of the header that is not itself a trusted proxy (addresses further left
// were written by the client and prove nothing).
func ClientIPs(trusted []netip.Prefix) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ip := clientIP(r, trusted)
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientIPKey, ip)))
		})
	}
}

// ClientIP answers the client address of the request in ctx, or the zero
// Addr outside ClientIPs.
func ClientIP(ctx context.Context) netip.Addr {
	ip, _ := ctx.Value(clientIPKey).(netip.Addr)
	return ip
}

// clientIPOf answers the client address of r: from the context when
// ClientIPs ran, else the peer address.
func clientIPOf(r *http.Request) netip.Addr {
	if ip := ClientIP(r.Context()); ip.IsValid() {
		return ip
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

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() || !isTrusted(peer, trusted) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		ip, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			// A hop we cannot read: stop believing the chain here.
			return peer
		}
		ip = ip.Unmap().WithZone("")
		if !isTrusted(ip, trusted) {
			return ip
		}
		peer = ip
	}
	return peer
}
