package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestHealthAndReadiness(t *testing.T) {
	ts := newTestServer(t)
	if rec := ts.do("GET", "/healthz", "", nil); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"ok"`) {
		t.Errorf("healthz: %d %s", rec.Code, rec.Body)
	}
	rec := ts.do("GET", "/readyz", "", nil)
	got := decodeBody[map[string]any](t, rec)
	if rec.Code != http.StatusOK || got["status"] != "ready" {
		t.Errorf("readyz: %d %v", rec.Code, got)
	}
	ts.ready["ledger"] = CheckerFunc(func(context.Context) error { return errors.New("pq: secret detail") })
	rec = ts.do("GET", "/readyz", "", nil)
	got = decodeBody[map[string]any](t, rec)
	want := map[string]any{"status": "not_ready", "checks": map[string]any{"database": "ok", "ledger": "unavailable"}}
	if rec.Code != http.StatusServiceUnavailable || !cmp.Equal(want, got) || strings.Contains(rec.Body.String(), "secret") {
		t.Errorf("readyz with a failing check: %d %s", rec.Code, rec.Body)
	}
}

func TestMetrics(t *testing.T) {
	ts := newTestServer(t)
	ts.do("GET", "/v1/records/00000000-0000-0000-0000-000000000000?purpose=TREAT", "", nil) // 401
	ts.do("GET", "/no/such/route", "", nil)
	rec := ts.do("GET", "/metrics", "", nil)
	body := rec.Body.String()
	for _, want := range []string{
		`healthgw_http_requests_total{method="GET",route="/v1/records/:id",status="401"} 1`,
		`healthgw_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		"healthgw_http_request_duration_seconds_bucket",
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if strings.Contains(body, "00000000-0000") {
		t.Error("metrics hold a raw path")
	}
}

func TestWhoami(t *testing.T) {
	ts := newTestServer(t)
	for _, tt := range []struct {
		token string
		want  whoamiResponse
	}{
		{"hosp-a", whoamiResponse{Org: "hosp-a", Kind: "hospital", Scopes: []string{"system/records.read", "system/records.write", "system/consents.read"}}},
		{"pat-1", whoamiResponse{Patient: "pat-1"}},
	} {
		rec := ts.do("GET", "/v1/whoami", tt.token, nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", tt.token, rec.Code, rec.Body)
		}
		if diff := cmp.Diff(tt.want, decodeBody[whoamiResponse](t, rec)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.token, diff)
		}
	}
}

// TestAuthentication: one row per way a bearer token fails.
func TestAuthentication(t *testing.T) {
	ts := newTestServer(t)
	for _, tt := range []struct {
		name, header, wantChallenge string
	}{
		{"no header", "", `Bearer realm="healthgw"`},
		{"basic scheme", "Basic dXNlcjpwYXNz", `Bearer realm="healthgw"`},
		{"empty token", "Bearer ", `Bearer realm="healthgw"`},
		{"unknown token", "Bearer nobody", `Bearer realm="healthgw", error="invalid_token"`},
		{"oversized token", "Bearer " + strings.Repeat("x", MaxTokenSize+1), `Bearer realm="healthgw", error="invalid_token"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.header != "" {
				hdr = []string{"Authorization", tt.header}
			}
			rec := ts.do("GET", "/v1/whoami", "", nil, hdr...)
			e := errorOf(t, rec)
			if rec.Code != http.StatusUnauthorized || e.Error != "unauthorized" || rec.Header().Get("WWW-Authenticate") != tt.wantChallenge {
				t.Errorf("%d %+v, challenge %q", rec.Code, e, rec.Header().Get("WWW-Authenticate"))
			}
		})
	}
	// A bearer scheme in any case is accepted.
	if rec := ts.do("GET", "/v1/whoami", "", nil, "Authorization", "bearer pat-1"); rec.Code != http.StatusOK {
		t.Errorf("lower-case scheme: %d", rec.Code)
	}
	// A verified token is cached until it expires: a second use does not
	// verify again.
	calls := 0
	ts.auth = countingAuth{fakeAuth: testPrincipals, calls: &calls}
	for range 2 {
		ts.do("GET", "/v1/whoami", "hosp-a", nil)
	}
	if calls != 1 {
		t.Errorf("a token used twice was verified %d times, want once", calls)
	}
	ts.do("GET", "/v1/whoami", "hosp-b", nil) // no expiry: never cached
	ts.do("GET", "/v1/whoami", "hosp-b", nil)
	if calls != 3 {
		t.Errorf("a token without expiry was verified %d times in 2 requests, want 2", calls-1)
	}
}

type countingAuth struct {
	fakeAuth
	calls *int
}

func (a countingAuth) Authenticate(ctx context.Context, token string) (Principal, error) {
	*a.calls++
	return a.fakeAuth.Authenticate(ctx, token)
}

func TestMethodNotAllowed(t *testing.T) {
	ts := newTestServer(t)
	rec := ts.do("PUT", "/healthz", "", nil)
	if e := errorOf(t, rec); rec.Code != http.StatusMethodNotAllowed || e.Error != "method_not_allowed" {
		t.Errorf("%d %+v", rec.Code, e)
	}
}

// TestWithClock: the option sets the clock the server reads.
func TestWithClock(t *testing.T) {
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s := New(Config{}, nil, nil, WithClock(func() time.Time { return at }))
	if got := s.nowUTC(); !got.Equal(at) {
		t.Errorf("now = %v, want %v", got, at)
	}
}
