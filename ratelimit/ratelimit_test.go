package ratelimit

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) advance(d time.Duration) { c.now = c.now.Add(d) }

func TestLimitSet(t *testing.T) {
	tests := []struct {
		in      string
		want    Limit
		wantErr string
	}{
		{"5:50", Limit{5, 50}, ""},
		{"0.5:1", Limit{0.5, 1}, ""},
		{" 20 : 100 ", Limit{20, 100}, ""},
		{"off", Limit{}, ""},
		{"0", Limit{}, ""},
		{"5", Limit{}, "want RATE:BURST"},
		{"x:5", Limit{}, "not a number"},
		{"5:x", Limit{}, "not a whole number"},
		{"-1:5", Limit{}, "positive"},
		{"5:0", Limit{}, "at least 1"},
		{"NaN:5", Limit{}, "positive"},
		{"+Inf:5", Limit{}, "positive"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got Limit
			err := got.Set(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Set(%q) = %v, want error containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Set(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			var again Limit
			if err := again.Set(got.String()); err != nil || again != got {
				t.Errorf("round trip through %q: %v, %v", got.String(), again, err)
			}
		})
	}
}

func TestBucketsRefuseAfterBurstAndRefill(t *testing.T) {
	b := NewBuckets(Limit{Rate: 2, Burst: 3}, 0)
	for i := range 3 {
		if ok, _ := b.Allow("a", t0); !ok {
			t.Fatalf("request %d refused within the burst", i)
		}
	}
	ok, wait := b.Allow("a", t0)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("4th request: allowed %t, retry after %s; want refused, 500ms", ok, wait)
	}
	if ok, _ := b.Allow("b", t0); !ok {
		t.Fatal("another key was refused")
	}
	if ok, _ := b.Allow("a", t0.Add(500*time.Millisecond)); !ok {
		t.Fatal("refused after the retry interval")
	}
}

func TestBucketsBoundedMemory(t *testing.T) {
	b := NewBuckets(Limit{Rate: 1, Burst: 1}, 100)
	for i := range 1000 {
		b.Allow(fmt.Sprint("k", i), t0)
	}
	if n := b.Len(); n != 100 {
		t.Fatalf("holds %d keys, want 100", n)
	}
	// The most recent key is kept (and still limited).
	if ok, _ := b.Allow("k999", t0); ok {
		t.Error("most recent key was dropped")
	}
	// Idle keys (full buckets again) go first: after one second every key
	// is idle, and a new key finds room by dropping them.
	b.Allow("new", t0.Add(2*time.Second))
	if n := b.Len(); n != 1 {
		t.Errorf("after everything went idle: %d keys, want 1", n)
	}
}

func TestBackoff(t *testing.T) {
	b := newBackoffs(Backoff{Threshold: 3, Base: time.Second, Max: 5 * time.Second}, 0)
	var got []time.Duration
	for range 7 {
		got = append(got, b.failure("k", t0))
	}
	want := []time.Duration{0, 0, time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("back-offs %v, want %v", got, want)
	}
	if d := b.blocked("k", t0.Add(time.Second)); d != 4*time.Second {
		t.Errorf("blocked %s, want 4s", d)
	}
	if d := b.blocked("other", t0); d != 0 {
		t.Errorf("other key blocked %s", d)
	}
	if d := b.blocked("k", t0.Add(5*time.Second)); d != 0 {
		t.Errorf("still blocked after the back-off: %s", d)
	}
	b.success("k")
	if d := b.failure("k", t0); d != 0 {
		t.Errorf("success did not reset: %s", d)
	}
}

func TestLogLimiter(t *testing.T) {
	l := NewLogLimiter(time.Minute, 0)
	if ok, n := l.Allow("x", t0); !ok || n != 0 {
		t.Fatalf("first line: %t %d", ok, n)
	}
	for range 10 {
		if ok, _ := l.Allow("x", t0.Add(time.Second)); ok {
			t.Fatal("repeated line allowed within the interval")
		}
	}
	if ok, _ := l.Allow("y", t0); !ok {
		t.Fatal("another key held back")
	}
	if ok, n := l.Allow("x", t0.Add(time.Minute)); !ok || n != 10 {
		t.Fatalf("after the interval: %t, %d held back; want true, 10", ok, n)
	}
}

func TestLimiterToken(t *testing.T) {
	c := &clock{now: t0}
	cfg := Config{
		TokenPerAddress: Limit{Rate: 1, Burst: 1000},
		TokenPerOrg:     Limit{Rate: 1, Burst: 10},
		TokenFailures:   Backoff{Threshold: 5, Base: time.Second, Max: time.Minute},
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	l := New(cfg, reg)
	l.SetClock(c.Now)

	// Failures of org a from one address: refused by the back-off after 5.
	for i := range 5 {
		if d := l.TokenRequest("10.0.0.1", "a"); !d.Allowed {
			t.Fatalf("request %d refused: %+v", i, d)
		}
		l.TokenResult("10.0.0.1", "a", false)
	}
	d := l.TokenRequest("10.0.0.1", "a")
	if d.Allowed || d.Scope != ScopeTokenBackoff || d.RetryAfter != time.Second {
		t.Fatalf("after 5 failures: %+v", d)
	}
	// The same org from another address is not backed off (a third party
	// cannot lock an org out), and neither is another org.
	if d := l.TokenRequest("10.0.0.2", "a"); !d.Allowed {
		t.Fatalf("org a from another address: %+v", d)
	}
	if d := l.TokenRequest("10.0.0.1", "b"); !d.Allowed {
		t.Fatalf("org b: %+v", d)
	}
	// The per-org bucket (10) is shared across addresses: 6 so far.
	for range 4 {
		l.TokenRequest("10.0.0.3", "a")
	}
	if d := l.TokenRequest("10.0.0.4", "a"); d.Allowed || d.Scope != ScopeTokenOrg {
		t.Fatalf("org bucket: %+v", d)
	}
	c.advance(time.Second)
	if d := l.TokenRequest("10.0.0.1", "a"); !d.Allowed {
		t.Fatalf("after the back-off and a refill: %+v", d)
	}
	l.TokenResult("10.0.0.1", "a", true)
	if got := testutil.ToFloat64(l.refused.WithLabelValues(string(ScopeTokenBackoff))); got != 1 {
		t.Errorf("backoff refusals counted %v, want 1", got)
	}
	if got := testutil.ToFloat64(l.refused.WithLabelValues(string(ScopeTokenOrg))); got != 1 {
		t.Errorf("org refusals counted %v, want 1", got)
	}
}

// TestLimiterAddressBackoff: a client naming a new org with every failed
// request still backs off, after AddressFailureFactor × the threshold.
func TestLimiterAddressBackoff(t *testing.T) {
	l := New(Config{TokenFailures: Backoff{Threshold: 2, Base: time.Second, Max: time.Minute}}, nil)
	l.SetClock(func() time.Time { return t0 })
	n := 0
	for ; n < 100; n++ {
		org := fmt.Sprint("org-", n)
		if d := l.TokenRequest("10.0.0.9", org); !d.Allowed {
			if d.Scope != ScopeTokenBackoff {
				t.Fatalf("refused by %s", d.Scope)
			}
			break
		}
		l.TokenResult("10.0.0.9", org, false)
	}
	if n != 2*AddressFailureFactor {
		t.Fatalf("address backed off after %d failures, want %d", n, 2*AddressFailureFactor)
	}
	if d := l.TokenRequest("10.0.0.10", "org-0"); !d.Allowed {
		t.Fatalf("another address: %+v", d)
	}
}

func TestLimiterPrincipalAndUnlimited(t *testing.T) {
	l := New(Config{PerPrincipal: Limit{Rate: 1, Burst: 2}}, nil)
	l.SetClock(func() time.Time { return t0 })
	l.Principal("p")
	l.Principal("p")
	if d := l.Principal("p"); d.Allowed || d.Scope != ScopePrincipal || d.RetryAfter != time.Second {
		t.Fatalf("3rd request: %+v", d)
	}
	// Token limits are off in this Config.
	for range 100 {
		if d := l.TokenRequest("x", "y"); !d.Allowed {
			t.Fatalf("unlimited token endpoint refused: %+v", d)
		}
		l.TokenResult("x", "y", false)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	bad := []Config{
		{TokenPerOrg: Limit{Rate: 1}},
		{PerPrincipal: Limit{Rate: -1, Burst: 1}},
		{TokenFailures: Backoff{Threshold: 0, Base: time.Second, Max: time.Second}},
		{TokenFailures: Backoff{Threshold: 1, Base: time.Minute, Max: time.Second}},
		{MaxKeys: -1},
	}
	for i, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("config %d: accepted %+v", i, c)
		}
	}
}

func TestLimiterCredentials(t *testing.T) {
	l := New(Config{TokenFailures: Backoff{Threshold: 2, Base: time.Second, Max: time.Minute}}, nil)
	l.SetClock(func() time.Time { return t0 })
	for i := range 2 * AddressFailureFactor {
		if d := l.Credentials("10.0.0.1"); !d.Allowed {
			t.Fatalf("request %d refused", i)
		}
		l.CredentialsResult("10.0.0.1", false)
	}
	if d := l.Credentials("10.0.0.1"); d.Allowed || d.Scope != ScopeAuthBackoff {
		t.Fatalf("after %d failures: %+v", 2*AddressFailureFactor, d)
	}
	if d := l.Credentials("10.0.0.2"); !d.Allowed {
		t.Fatalf("another address: %+v", d)
	}
	l.CredentialsResult("10.0.0.1", true)
	if d := l.Credentials("10.0.0.1"); !d.Allowed {
		t.Fatalf("after a success: %+v", d)
	}
}
