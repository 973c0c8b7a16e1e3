package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/healthgw/healthgw/ratelimit"
)

// RateLimiter decides whether a request may proceed (ratelimit.Limiter).
type RateLimiter interface {
	TokenRequest(addr, org string) ratelimit.Decision
	TokenResult(addr, org string, ok bool)
	Credentials(addr string) ratelimit.Decision
	CredentialsResult(addr string, ok bool)
	Principal(key string) ratelimit.Decision
	LogAllowed(key string) (bool, int)
}

var _ RateLimiter = (*ratelimit.Limiter)(nil)

// WithRateLimits applies l: POST /oauth2/token per source address, per
// client org and with a back-off after failures; every authenticated
// route per principal, and per address after repeated authentication
// failures. Refusals are 429 with Retry-After.
func WithRateLimits(l RateLimiter) Option { return func(s *Server) { s.limits = l } }

// WithRegistry makes the server expose reg on /metrics instead of a
// registry of its own, so that other components (the rate limits, the
// gateway's metrics) register on the same one.
func WithRegistry(reg *prometheus.Registry) Option {
	return func(s *Server) {
		if reg != nil {
			s.registry = reg
		}
	}
}

const tokenPath = "/oauth2/token"

// rateLimitedError is the 429 body on /oauth2/token: an RFC 6749 section
// 5.2 error object, with the request ID every other error carries.
type rateLimitedError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	RequestID   string `json:"request_id"`
}

// tokenRateLimit limits POST /oauth2/token before the assertion is
// verified, and feeds the outcome back into the failure back-off. It runs
// as global middleware so that it needs nothing from the route.
func (s *Server) tokenRateLimit(c *gin.Context) {
	if c.Request.Method != http.MethodPost || c.FullPath() != tokenPath {
		s.credentialsRateLimit(c)
		return
	}
	addr := s.clientAddress(c)
	org := peekClientOrg(c.Request)
	if d := s.limits.TokenRequest(addr, org); !d.Allowed {
		s.refuseRate(c, d, addr, org)
		return
	}
	c.Next()
	switch st := c.Writer.Status(); {
	case st == http.StatusOK:
		s.limits.TokenResult(addr, org, true)
	case st >= 400 && st < 500 && st != http.StatusRequestEntityTooLarge && st != http.StatusTooManyRequests:
		s.limits.TokenResult(addr, org, false)
	}
}

// credentialsRateLimit backs off an address whose requests with a bearer
// token keep failing authentication (401); any other answer to a request
// that carried one clears it.
func (s *Server) credentialsRateLimit(c *gin.Context) {
	if c.GetHeader("Authorization") == "" {
		c.Next()
		return
	}
	addr := s.clientAddress(c)
	if d := s.limits.Credentials(addr); !d.Allowed {
		s.refuseRate(c, d, addr, "")
		return
	}
	c.Next()
	switch st := c.Writer.Status(); {
	case st == http.StatusUnauthorized:
		s.limits.CredentialsResult(addr, false)
	case st != http.StatusTooManyRequests:
		s.limits.CredentialsResult(addr, true)
	}
}

// limitPrincipal applies the per-principal limit; authenticate calls it
// once the principal is known. It reports whether the request may go on.
func (s *Server) limitPrincipal(c *gin.Context, p Principal) bool {
	if s.limits == nil {
		return true
	}
	key, logKey := "org:"+p.Org, "org:"+p.Org
	if p.IsPatient() {
		// A patient ID is PHI: it keys the limit but is never logged.
		key, logKey = "patient:"+p.Patient, "patient"
	}
	if d := s.limits.Principal(key); !d.Allowed {
		s.refuseRate(c, d, s.clientAddress(c), logKey)
		return false
	}
	return true
}

// refuseRate answers 429 with Retry-After (whole seconds, at least 1) and
// logs the refusal once per interval per limit and key, with the number of
// refusals held back since.
func (s *Server) refuseRate(c *gin.Context, d ratelimit.Decision, addr, key string) {
	secs := max(1, int(math.Ceil(d.RetryAfter.Seconds())))
	c.Header("Retry-After", strconv.Itoa(secs))
	rid := requestID(c)
	if ok, held := s.limits.LogAllowed(string(d.Scope) + "\x00" + key + "\x00" + addr); ok {
		s.log.LogAttrs(c.Request.Context(), slog.LevelWarn, "rate limited",
			slog.String("request_id", rid),
			slog.String("route", c.FullPath()),
			slog.String("limit", string(d.Scope)),
			slog.String("key", key),
			slog.String("addr", addr),
			slog.Duration("retry_after", time.Duration(secs)*time.Second),
			slog.Int("held_back", held),
		)
	}
	msg := "Too many requests; retry after " + strconv.Itoa(secs) + " s."
	if c.FullPath() == tokenPath {
		c.Header("Cache-Control", "no-store")
		c.AbortWithStatusJSON(http.StatusTooManyRequests, rateLimitedError{Error: "rate_limited", Description: msg, RequestID: rid})
		return
	}
	c.AbortWithStatusJSON(http.StatusTooManyRequests, errorResponse{Error: "rate_limited", Message: msg, RequestID: rid})
}

// WithTrustedProxies makes the server take the client address (for the
// rate limits and logs) from X-Forwarded-For when the connection comes
// from one of proxies: the address is the right-most one in the header
// that is not itself a trusted proxy. Without this option, or from any
// other peer, the client address is the connection's peer address and
// X-Forwarded-For is ignored, so a client cannot pick its own limit key.
func WithTrustedProxies(proxies []netip.Prefix) Option {
	return func(s *Server) { s.trustedProxies = slices.Clone(proxies) }
}

// trustProxies configures gin's ClientIP: only X-Forwarded-For, only from
// s.trustedProxies (none by default; gin's own default trusts everyone).
func (s *Server) trustProxies(e *gin.Engine) {
	e.ForwardedByClientIP = true
	e.RemoteIPHeaders = []string{"X-Forwarded-For"}
	e.TrustedPlatform = ""
	cidrs := make([]string, len(s.trustedProxies))
	for i, p := range s.trustedProxies {
		cidrs[i] = p.Masked().String()
	}
	if err := e.SetTrustedProxies(cidrs); err != nil {
		// Prefixes always parse; should one not, trust no proxy.
		s.log.Error("trusted proxies not applied; trusting none", slog.String("err", err.Error()))
		_ = e.SetTrustedProxies(nil)
	}
}

// clientAddress is the limit and log key of the request's client: the
// connection's peer, or what a trusted proxy forwarded (see
// WithTrustedProxies), as sourceAddress reduces it.
func (s *Server) clientAddress(c *gin.Context) string {
	if ip := c.ClientIP(); ip != "" {
		return sourceAddress(ip)
	}
	return sourceAddress(c.Request.RemoteAddr)
}

// sourceAddress reduces an address (IP or IP:port) to a limit key: the
// IP, or its /64 for IPv6 (one host usually holds a whole /64).
func sourceAddress(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		ap, perr := netip.ParseAddrPort(addr)
		if perr != nil {
			return addr
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}

// orgIDPattern bounds what a limit key built from a request may hold.
var orgIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)

// maxPeekAssertion bounds the client assertion peekClientOrg decodes.
const maxPeekAssertion = 16 << 10

// peekClientOrg reads the client org a token request names, without
// verifying anything: the form's client_id, else the iss of the client
// assertion. It restores the body for the handler and returns "" when the
// request names none it can read cheaply. The name is only a limit key: a
// request naming someone else's org spends that org's bucket, which is
// why the failure back-off is keyed by org and source address.
func peekClientOrg(r *http.Request) string {
	if r.Body == nil || r.ContentLength > maxTokenForm {
		return ""
	}
	if ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); !strings.EqualFold(strings.TrimSpace(ct), "application/x-www-form-urlencoded") {
		return ""
	}
	orig := r.Body
	buf, err := io.ReadAll(io.LimitReader(orig, maxTokenForm+1))
	r.Body = readCloser{io.MultiReader(bytes.NewReader(buf), orig), orig}
	if err != nil || len(buf) > maxTokenForm {
		return ""
	}
	return clientOrgOf(string(buf))
}

type readCloser struct {
	io.Reader
	io.Closer
}

// clientOrgOf extracts the org a token form names (see peekClientOrg).
func clientOrgOf(form string) string {
	vals, err := url.ParseQuery(form)
	if err != nil {
		return ""
	}
	if id := vals.Get("client_id"); id != "" {
		if orgIDPattern.MatchString(id) {
			return id
		}
		return ""
	}
	a := vals.Get("client_assertion")
	if len(a) > maxPeekAssertion {
		return ""
	}
	parts := strings.Split(a, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(payload, &claims) != nil || !orgIDPattern.MatchString(claims.Iss) {
		return ""
	}
	return claims.Iss
}
