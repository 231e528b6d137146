package httpx_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"timeslots/internal/httpx"
)

// clientOf runs one request through ClientIPs and answers the client
// address and key the handlers behind it see.
func clientOf(trusted []netip.Prefix, remote string, xff ...string) (netip.Addr, string) {
	var ip netip.Addr
	var key string
	h := httpx.ClientIPs(trusted)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip, key = httpx.ClientIP(r.Context()), httpx.ClientKey(r)
	}))
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	for _, v := range xff {
		r.Header.Add("X-Forwarded-For", v)
	}
	h.ServeHTTP(httptest.NewRecorder(), r)
	return ip, key
}

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
		{"all hops trusted: the left-most", "10.1.2.3:80", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1"},
		{"an empty header: the proxy", "10.1.2.3:80", []string{" "}, "10.1.2.3"},
		{"IPv6 trusted proxy", "[::1]:80", []string{"2001:db8::1"}, "2001:db8::1"},
		{"IPv4-mapped peers are IPv4", "[::ffff:203.0.113.5]:1", nil, "203.0.113.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ip, key := clientOf(trusted, tc.remote, tc.xff...)
			if ip.String() != tc.want || key != tc.want {
				t.Errorf("client %s, key %q; want %s for both", ip, key, tc.want)
			}
		})
	}
}

// Each form a hop may take: the readable ones give the address; any other
// leaves the client unknown — no address, never the proxy's — with a key
// of its own derived from the hop, short whatever the hop's length.
func TestForwardedForHopForms(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}
	long := strings.Repeat("x", 5000)
	for _, tc := range []struct {
		name, hop string
		ip        string // "" for an unknown client
		key       string
	}{
		{"an IPv4 address", "198.51.100.7", "198.51.100.7", "198.51.100.7"},
		{"IPv4 with a port", "198.51.100.7:5555", "198.51.100.7", "198.51.100.7"},
		{"a bare IPv6 address", "2001:db8::1", "2001:db8::1", "2001:db8::1"},
		{"bracketed IPv6", "[2001:db8::1]", "2001:db8::1", "2001:db8::1"},
		{"bracketed IPv6 with a port", "[2001:db8::1]:443", "2001:db8::1", "2001:db8::1"},
		{"IPv4-mapped IPv6 is IPv4", "[::ffff:198.51.100.7]:1", "198.51.100.7", "198.51.100.7"},
		{"a zone is dropped", "fe80::1%eth0", "fe80::1", "fe80::1"},
		{"unknown is not an address", "unknown", "", "hop:unknown"},
		{"a short IPv4 form is not an address", "127.1", "", "hop:127.1"},
		{"an octal IPv4 form is not an address", "0177.0.0.1", "", "hop:0177.0.0.1"},
		{"a host name is not an address", "localhost", "", "hop:localhost"},
		{"brackets around IPv4 are not an address", "[127.0.0.1]:80", "", "hop:[127.0.0.1]:80"},
		{"a bad port is not an address", "198.51.100.7:99999", "", "hop:198.51.100.7:99999"},
		{"an obfuscated node name is not an address", "_hidden", "", "hop:_hidden"},
		{"a long hop is keyed by a digest", long, "", "hop:sha256:"},
		{"a hop with spaces is keyed by a digest", "a b", "", "hop:sha256:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ip, key := clientOf(trusted, "127.0.0.1:4000", "203.0.113.99, "+tc.hop)
			if tc.ip == "" {
				if ip.IsValid() {
					t.Errorf("client %s, want unknown (no address)", ip)
				}
			} else if ip.String() != tc.ip {
				t.Errorf("client %s, want %s", ip, tc.ip)
			}
			if strings.HasSuffix(tc.key, ":") {
				if !strings.HasPrefix(key, tc.key) || len(key) != len(tc.key)+32 {
					t.Errorf("key %q, want %s and 32 hex digits", key, tc.key)
				}
			} else if key != tc.key {
				t.Errorf("key %q, want %q", key, tc.key)
			}
		})
	}
	// The hop to the left of an unreadable one was written by the unknown
	// client itself: it is not believed.
	if ip, key := clientOf(trusted, "10.0.0.1:80", "198.51.100.7, unknown, 10.0.0.2"); ip.IsValid() || key != "hop:unknown" {
		t.Errorf("client %s, key %q; want unknown with key hop:unknown", ip, key)
	}
}

// Thirty clients written as IP:port by a trusted proxy are thirty keys,
// not the proxy's one.
func TestClientsWrittenWithPortsAreDistinct(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	keys := map[string]bool{}
	for i := range 30 {
		_, key := clientOf(trusted, "10.0.0.1:80", "198.51.100."+strconv.Itoa(i+1)+":5555")
		if key == "10.0.0.1" {
			t.Fatalf("client %d got the proxy's key", i)
		}
		keys[key] = true
	}
	if len(keys) != 30 {
		t.Errorf("%d keys for 30 clients", len(keys))
	}
}

// In development (no token) a hop that cannot be read is never taken for
// the loopback proxy that relayed it, so it is never admin.
func TestUnreadableHopsAreNotLoopbackAdmins(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	h := httpx.ClientIPs(trusted)(httpx.NewAdminGate("").Middleware(adminProbe()))
	for _, hop := range []string{"198.51.100.7:5555", "[2001:db8::1]", "unknown", "127.1", "0177.0.0.1", "localhost", "[127.0.0.1]", ""} {
		r := request("127.0.0.1:4000", "", "/")
		r.Header.Set("X-Forwarded-For", "1.2.3.4,"+hop)
		if got := serve(h, r).Code; got != http.StatusForbidden {
			t.Errorf("X-Forwarded-For hop %q through a loopback proxy: status %d, want 403", hop, got)
		}
	}
	// A loopback hop the server can read is loopback, as without a proxy.
	r := request("127.0.0.1:4000", "", "/")
	r.Header.Set("X-Forwarded-For", "127.0.0.1:9")
	if got := serve(h, r).Code; got != http.StatusOK {
		t.Errorf("a readable loopback hop: status %d, want 200", got)
	}
}

// Wrong admin tokens from unknown clients count against the hop they came
// with, not against the proxy every client shares.
func TestBadTokensOfUnknownClientsDoNotBlockTheProxy(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	h := httpx.ClientIPs(trusted)(httpx.NewAdminGate(token).Middleware(adminProbe()))
	guess := func(hop, auth string) int {
		r := request("10.0.0.1:80", auth, "/")
		r.Header.Set("X-Forwarded-For", hop)
		return serve(h, r).Code
	}
	for range httpx.AdminFailureLimit {
		guess("unknown", "Bearer wrong-guess")
	}
	if got := guess("unknown", "Bearer "+token); got != http.StatusTooManyRequests {
		t.Errorf("the guessing hop: status %d, want 429", got)
	}
	if got := guess("198.51.100.7", "Bearer "+token); got != http.StatusOK {
		t.Errorf("another client behind the same proxy: status %d, want 200", got)
	}
	r := request("10.0.0.1:80", "Bearer "+token, "/")
	if got := serve(h, r).Code; got != http.StatusOK {
		t.Errorf("the proxy itself: status %d, want 200", got)
	}
}
