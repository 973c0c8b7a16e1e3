package main

import (
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authtest"
	"github.com/healthgw/healthgw/ratelimit"
)

// postTokenForwarded is postTokenWith with an X-Forwarded-For header.
func (g *testGateway) postTokenForwarded(c *http.Client, assertion, forwardedFor string) tokenReply {
	g.t.Helper()
	form := url.Values{
		"grant_type":            {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
		"client_assertion":      {assertion},
	}
	req, err := http.NewRequestWithContext(g.t.Context(), http.MethodPost, g.tokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		g.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", forwardedFor)
	}
	resp, err := c.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return tokenReply{resp.StatusCode, resp.Header.Get("Retry-After"), b}
}

// TestForwardedForTrust: with a per-address token limit of burst 3 and
// the limiter's clock stopped, a client that forges a new X-Forwarded-For
// with every request is still limited by its socket address; behind a
// trusted proxy two forwarded clients get a limit each, and a client
// cannot escape its own by putting addresses in front of the one the
// proxy appends.
func TestForwardedForTrust(t *testing.T) {
	perAddress := ratelimit.Limit{Rate: 1, Burst: 3}
	const proxyIP = "127.0.0.7"
	open := func(t *testing.T, proxies ...string) (*testGateway, *authtest.Org) {
		g := newTestGateway(t, func(c *serveConfig) {
			c.RateLimits.TokenPerAddress = perAddress
			for _, p := range proxies {
				c.TrustedProxies = append(c.TrustedProxies, netip.MustParsePrefix(p))
			}
		})
		g.limits.SetClock(authtest.NewClock(time.Now()).Now)
		return g, g.register("hosp-a", auth.KindHospital)
	}
	want := func(t *testing.T, r tokenReply, status int, what string) {
		t.Helper()
		if r.status != status {
			t.Fatalf("%s: %d %s, want %d", what, r.status, r.body, status)
		}
		if status == http.StatusTooManyRequests {
			if s, err := strconv.Atoi(r.retryAfter); err != nil || s < 1 {
				t.Fatalf("%s: 429 with Retry-After %q", what, r.retryAfter)
			}
		}
	}

	t.Run("untrusted peer forging X-Forwarded-For", func(t *testing.T) {
		g, a := open(t)
		c := g.clientFrom("127.0.0.6")
		for i := range perAddress.Burst {
			want(t, g.postTokenForwarded(c, a.Assertion(t, g.tokenURL(), time.Now()), "203.0.113."+strconv.Itoa(i+1)), http.StatusOK, "within the burst")
		}
		want(t, g.postTokenForwarded(c, a.Assertion(t, g.tokenURL(), time.Now()), "203.0.113.99"), http.StatusTooManyRequests, "a fresh forged address past the burst")
		want(t, g.postTokenForwarded(c, a.Assertion(t, g.tokenURL(), time.Now()), ""), http.StatusTooManyRequests, "no header past the burst")
		// Another peer is unaffected.
		want(t, g.postTokenForwarded(g.clientFrom("127.0.0.8"), a.Assertion(t, g.tokenURL(), time.Now()), "203.0.113.1"), http.StatusOK, "another peer")
	})

	t.Run("trusted proxy", func(t *testing.T) {
		g, a := open(t, proxyIP+"/32")
		proxy := g.clientFrom(proxyIP)
		for range perAddress.Burst {
			want(t, g.postTokenForwarded(proxy, a.Assertion(t, g.tokenURL(), time.Now()), "203.0.113.1"), http.StatusOK, "client 1 within its burst")
		}
		want(t, g.postTokenForwarded(proxy, a.Assertion(t, g.tokenURL(), time.Now()), "203.0.113.1"), http.StatusTooManyRequests, "client 1 past its burst")
		// The proxy appends the address it saw; what the client sent
		// before it does not count.
		want(t, g.postTokenForwarded(proxy, a.Assertion(t, g.tokenURL(), time.Now()), "198.51.100.9, 203.0.113.1"), http.StatusTooManyRequests, "client 1 with a forged address in front")
		for range perAddress.Burst {
			want(t, g.postTokenForwarded(proxy, a.Assertion(t, g.tokenURL(), time.Now()), "203.0.113.2"), http.StatusOK, "client 2 has its own limit")
		}
		// The proxy's own requests (no header) are the proxy's.
		want(t, g.postTokenForwarded(proxy, a.Assertion(t, g.tokenURL(), time.Now()), ""), http.StatusOK, "the proxy itself")
		// A peer that is not the proxy is not believed.
		other := g.clientFrom("127.0.0.9")
		for range perAddress.Burst {
			want(t, g.postTokenForwarded(other, a.Assertion(t, g.tokenURL(), time.Now()), "203.0.113.3"), http.StatusOK, "untrusted peer within its burst")
		}
		want(t, g.postTokenForwarded(other, a.Assertion(t, g.tokenURL(), time.Now()), "203.0.113.4"), http.StatusTooManyRequests, "untrusted peer past its burst")
		want(t, g.postTokenForwarded(proxy, a.Assertion(t, g.tokenURL(), time.Now()), "203.0.113.3"), http.StatusOK, "the address the untrusted peer named is untouched")
	})
}

// TestTrustedProxySettings: --trusted-proxy and HEALTHGW_TRUSTED_PROXIES
// are read, the flag wins, and what would trust everyone is refused.
func TestTrustedProxySettings(t *testing.T) {
	e := func(kv map[string]string) *env {
		return &env{getenv: func(k string) string { return kv[k] }, stdout: io.Discard, stderr: io.Discard}
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"default none", nil, nil, ""},
		{"flag, repeated and comma-separated", nil, []string{"--trusted-proxy", "10.0.0.5", "--trusted-proxy", "10.0.1.0/28, fd00::/8"}, "10.0.0.5/32,10.0.1.0/28,fd00::/8"},
		{"environment", map[string]string{"HEALTHGW_TRUSTED_PROXIES": "192.0.2.0/24"}, nil, "192.0.2.0/24"},
		{"the flag wins", map[string]string{"HEALTHGW_TRUSTED_PROXIES": "192.0.2.0/24"}, []string{"--trusted-proxy", "10.0.0.1/32"}, "10.0.0.1/32"},
		{"host bits masked", nil, []string{"--trusted-proxy", "10.1.2.3/16"}, "10.1.0.0/16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, _, err := loadServeConfig(e(tc.env), tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.TrustedProxies.String(); got != tc.want {
				t.Errorf("trusted proxies %q, want %q", got, tc.want)
			}
		})
	}
	for _, bad := range []string{"0.0.0.0/0", "::/0", "proxy.example", "10.0.0.0/33"} {
		if _, _, err := loadServeConfig(e(nil), []string{"--trusted-proxy", bad}); err == nil || !strings.Contains(err.Error(), "trusted-proxy") {
			t.Errorf("--trusted-proxy %s: %v, want a refusal naming the flag", bad, err)
		}
	}
	if _, _, err := loadServeConfig(e(map[string]string{"HEALTHGW_TRUSTED_PROXIES": "0.0.0.0/0"}), nil); err == nil || !strings.Contains(err.Error(), "HEALTHGW_TRUSTED_PROXIES") {
		t.Errorf("HEALTHGW_TRUSTED_PROXIES=0.0.0.0/0: %v, want a refusal naming the variable", err)
	}
}
