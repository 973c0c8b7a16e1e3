package main

import (
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authtest"
	"github.com/healthgw/healthgw/internal/openapitest"
	"github.com/healthgw/healthgw/ratelimit"
)

// clientFrom is an HTTP client of g whose connections come from the
// loopback address ip (127.0.0.0/8 is all loopback on Linux), so a test
// can play several source addresses. Its exchanges are validated against
// the OpenAPI document like the helpers'.
func (g *testGateway) clientFrom(ip string) *http.Client {
	g.t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	tr := &http.Transport{DialContext: d.DialContext}
	g.t.Cleanup(tr.CloseIdleConnections)
	c := openAPIClient(g.t, g.url)
	c.Transport.(*openapitest.Transport).Base = tr
	c.Timeout = time.Minute
	return c
}

type tokenReply struct {
	status     int
	retryAfter string
	body       []byte
}

func (g *testGateway) postTokenWith(c *http.Client, assertion string) tokenReply {
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
	resp, err := c.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return tokenReply{resp.StatusCode, resp.Header.Get("Retry-After"), b}
}

// TestTokenRateLimit sends 200 bad client assertions in one org's name
// from one address, with the default limits and the limiter's clock
// stopped: after the failure threshold every one is 429 with Retry-After,
// while another org, and the same org from its own address, get tokens.
// Once the back-off has passed the org's address may try again.
func TestTokenRateLimit(t *testing.T) {
	g := newTestGateway(t)
	clock := authtest.NewClock(time.Now())
	g.limits.SetClock(clock.Now)
	a := g.register("hosp-a", auth.KindHospital)
	b := g.register("hosp-b", auth.KindHospital)
	attacker, orgB, orgA := g.clientFrom("127.0.0.1"), g.clientFrom("127.0.0.2"), g.clientFrom("127.0.0.3")

	// b's key under a's name: a bad assertion naming hosp-a.
	bad := func() string { return b.Sign(t, b.Header(), a.Claims(g.tokenURL(), time.Now())) }
	var unauthorized, limited int
	for i := range 200 {
		r := g.postTokenWith(attacker, bad())
		switch r.status {
		case http.StatusUnauthorized:
			if limited > 0 {
				t.Fatalf("request %d: 401 after a 429: the back-off did not hold", i)
			}
			if got := decode[apiErrorOAuth](t, r.body).Error; got != "invalid_client" {
				t.Fatalf("request %d: 401 %q", i, got)
			}
			unauthorized++
		case http.StatusTooManyRequests:
			secs, err := strconv.Atoi(r.retryAfter)
			if err != nil || secs < 1 {
				t.Fatalf("request %d: 429 with Retry-After %q", i, r.retryAfter)
			}
			body := decode[struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
				RequestID   string `json:"request_id"`
			}](t, r.body)
			if body.Error != "rate_limited" || body.Description == "" || body.RequestID == "" {
				t.Fatalf("request %d: 429 body %s", i, r.body)
			}
			limited++
		default:
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
	}
	if unauthorized != ratelimit.DefaultFailureThreshold || limited != 200-ratelimit.DefaultFailureThreshold {
		t.Fatalf("got %d × 401 and %d × 429, want %d and %d", unauthorized, limited, ratelimit.DefaultFailureThreshold, 200-ratelimit.DefaultFailureThreshold)
	}

	// Another org, from its own address: unaffected.
	if r := g.postTokenWith(orgB, b.Assertion(t, g.tokenURL(), time.Now())); r.status != http.StatusOK {
		t.Fatalf("hosp-b: %d %s", r.status, r.body)
	}
	// The named org from its own address: unaffected too (a third party
	// cannot lock it out).
	if r := g.postTokenWith(orgA, a.Assertion(t, g.tokenURL(), time.Now())); r.status != http.StatusOK {
		t.Fatalf("hosp-a from its own address: %d %s", r.status, r.body)
	}
	// Even a good assertion from the backed-off address waits...
	if r := g.postTokenWith(attacker, a.Assertion(t, g.tokenURL(), time.Now())); r.status != http.StatusTooManyRequests {
		t.Fatalf("good assertion during the back-off: %d %s", r.status, r.body)
	}
	// ...until the back-off has passed.
	clock.Add(ratelimit.DefaultBackoffBase)
	if r := g.postTokenWith(attacker, a.Assertion(t, g.tokenURL(), time.Now())); r.status != http.StatusOK {
		t.Fatalf("good assertion after the back-off: %d %s", r.status, r.body)
	}
}

// TestAPIRateLimitPerPrincipal: one principal past its limit gets 429 with
// Retry-After and the standard error body; another principal does not.
func TestAPIRateLimitPerPrincipal(t *testing.T) {
	g := newTestGateway(t, func(c *serveConfig) { c.RateLimits.PerPrincipal = ratelimit.Limit{Rate: 1, Burst: 5} })
	g.limits.SetClock(authtest.NewClock(time.Now()).Now)
	ta := g.token(g.register("hosp-a", auth.KindHospital), "")
	tb := g.token(g.register("hosp-b", auth.KindHospital), "")
	for i := range 5 {
		if st, body := g.do("GET", "/v1/whoami", ta, nil); st != http.StatusOK {
			t.Fatalf("request %d within the burst: %d %s", i, st, body)
		}
	}
	req, err := http.NewRequestWithContext(t.Context(), "GET", g.url+"/v1/whoami", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+ta)
	resp, err := g.httpClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("over the limit: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if e := decode[apiError](t, body); e.Error != "rate_limited" || e.RequestID == "" || e.Message == "" {
		t.Fatalf("429 body %s", body)
	}
	if st, body := g.do("GET", "/v1/whoami", tb, nil); st != http.StatusOK {
		t.Fatalf("another principal: %d %s", st, body)
	}
}

// TestRateLimitOff: --rate-limit=false installs nothing.
func TestRateLimitOff(t *testing.T) {
	g := newTestGateway(t, func(c *serveConfig) { c.RateLimit = false })
	if g.limits != nil {
		t.Fatal("limiter built with rate limits off")
	}
	a := g.register("hosp-a", auth.KindHospital)
	b := g.register("hosp-b", auth.KindHospital)
	for i := range ratelimit.DefaultFailureThreshold + 5 {
		if st, body := g.postToken(b.Sign(t, b.Header(), a.Claims(g.tokenURL(), time.Now())), ""); st != http.StatusUnauthorized {
			t.Fatalf("request %d: %d %s", i, st, body)
		}
	}
}

// TestBadBearerTokensBackOff: an address whose requests keep failing
// authentication gets 429 after AddressFailureFactor × the threshold;
// a client at another address is not slowed.
func TestBadBearerTokensBackOff(t *testing.T) {
	g := newTestGateway(t)
	g.limits.SetClock(authtest.NewClock(time.Now()).Now)
	good := g.token(g.register("hosp-a", auth.KindHospital), "")
	guesser, other := g.clientFrom("127.0.0.4"), g.clientFrom("127.0.0.5")
	get := func(c *http.Client, token string) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), "GET", g.url+"/v1/whoami", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	limit := ratelimit.DefaultFailureThreshold * ratelimit.AddressFailureFactor
	for i := range limit {
		if st, _ := get(guesser, "guess-"+strconv.Itoa(i)); st != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, st)
		}
	}
	if st, ra := get(guesser, "guess-last"); st != http.StatusTooManyRequests || ra == "" {
		t.Fatalf("after %d failures: %d, Retry-After %q", limit, st, ra)
	}
	if st, _ := get(other, good); st != http.StatusOK {
		t.Fatalf("another address: %d", st)
	}
}
