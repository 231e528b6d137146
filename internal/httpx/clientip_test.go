package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"timeslots/internal/httpx"
)

func TestClientIPBelievesForwardedForOnlyFromTrustedProxies(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tc := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"no proxy: the peer", "203.0.113.5:1234", nil, "203.0.113.5"},
		{"an untrusted peer's header is ignored", "203.0.113.5:1234", []string{"198.51.100.1"}, "203.0.113.5"},
		{"a trusted proxy's header names the client", "10.1.2.3:80", []string{"198.51.100.1"}, "198.51.100.1"},
		{"the right-most untrusted hop wins over spoofed ones", "10.1.2.3:80", []string{"1.2.3.4, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"several header lines are one chain", "10.1.2.3:80", []string{"1.2.3.4", "198.51.100.1"}, "198.51.100.1"},
		{"an unreadable hop stops the chain", "10.1.2.3:80", []string{"198.51.100.1, garbage"}, "10.1.2.3"},
		{"all hops trusted: the left-most", "10.1.2.3:80", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1"},
		{"IPv6 trusted proxy", "[::1]:80", []string{"2001:db8::1"}, "2001:db8::1"},
		{"IPv4-mapped peers are IPv4", "[::ffff:203.0.113.5]:1", nil, "203.0.113.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got netip.Addr
			h := httpx.ClientIPs(trusted)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = httpx.ClientIP(r.Context())
			}))
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if got.String() != tc.want {
				t.Errorf("client %s, want %s", got, tc.want)
			}
		})
	}
}
