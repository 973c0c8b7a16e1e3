package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/healthgw/healthgw/ratelimit"
)

func TestClientOrgOf(t *testing.T) {
	jwt := func(payload string) string {
		return "eyJhbGciOiJFUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
	}
	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	tests := []struct {
		name, form, want string
	}{
		{"assertion iss", form("client_assertion", jwt(`{"iss":"hosp-a","sub":"hosp-a"}`)), "hosp-a"},
		{"client_id wins", form("client_id", "hosp-b", "client_assertion", jwt(`{"iss":"hosp-a"}`)), "hosp-b"},
		{"bad client_id", form("client_id", "a b"), ""},
		{"iss not a string", form("client_assertion", jwt(`{"iss":5}`)), ""},
		{"iss too long", form("client_assertion", jwt(`{"iss":"`+strings.Repeat("a", 65)+`"}`)), ""},
		{"two parts", form("client_assertion", "a.b"), ""},
		{"bad base64", form("client_assertion", "a.!!.c"), ""},
		{"no assertion", form("grant_type", "client_credentials"), ""},
		{"not a form", "%zz", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clientOrgOf(tt.form); got != tt.want {
				t.Errorf("clientOrgOf = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSourceAddress(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5000":                 "127.0.0.1",
		"[::ffff:10.0.0.1]:1":            "10.0.0.1",
		"[2001:db8:1:2:3:4:5:6]:443":     "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff:4:5:6]:8080": "2001:db8:1:2::/64",
		"garbage":                        "garbage",
		"192.0.2.7":                      "192.0.2.7",
		"::ffff:192.0.2.7":               "192.0.2.7",
		"2001:db8:1:2:3:4:5:6":           "2001:db8:1:2::/64",
		"fe80::1%eth0":                   "fe80::/64",
	} {
		if got := sourceAddress(in); got != want {
			t.Errorf("sourceAddress(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzClientOrgOf(f *testing.F) {
	f.Add("client_assertion=eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJob3NwLWEifQ.c2ln")
	f.Add("client_id=x&client_assertion=a.b.c")
	f.Add("%")
	f.Fuzz(func(t *testing.T, form string) {
		got := clientOrgOf(form)
		if got != "" && !orgIDPattern.MatchString(got) {
			t.Fatalf("clientOrgOf returned a key outside the pattern: %q", got)
		}
	})
}

type fakeAuthn map[string]Principal

func (f fakeAuthn) Authenticate(_ context.Context, token string) (Principal, error) {
	p, ok := f[token]
	if !ok {
		return Principal{}, errors.New("unknown token")
	}
	return p, nil
}

// TestPrincipalLimitLogsOnce: refusals past a principal's limit are 429
// with Retry-After and the error body, logged once per interval (with the
// count held back), and a patient's ID never reaches the log.
func TestPrincipalLimitLogsOnce(t *testing.T) {
	var logs bytes.Buffer
	cfg := ratelimit.Config{PerPrincipal: ratelimit.Limit{Rate: 1, Burst: 1}, LogInterval: time.Minute}
	l := ratelimit.New(cfg, nil)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l.SetClock(func() time.Time { return now })
	s := New(Config{}, slog.New(slog.NewJSONHandler(&logs, nil)), fakeAuthn{
		"org": {Org: "hosp-a"}, "pat": {Patient: "patient-secret-id"},
	}, WithRateLimits(l))
	get := func(token string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/v1/whoami", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		s.Handler().ServeHTTP(w, r)
		return w
	}
	for _, tok := range []string{"org", "pat"} {
		if w := get(tok); w.Code != http.StatusOK {
			t.Fatalf("%s first request: %d", tok, w.Code)
		}
		for i := range 5 {
			w := get(tok)
			if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
				t.Fatalf("%s request %d: %d Retry-After %q", tok, i, w.Code, w.Header().Get("Retry-After"))
			}
			var e errorResponse
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error != "rate_limited" || e.RequestID == "" {
				t.Fatalf("%s 429 body %s", tok, w.Body)
			}
		}
	}
	if n := strings.Count(logs.String(), `"msg":"rate limited"`); n != 2 {
		t.Errorf("%d rate-limited log lines for 10 refusals of 2 principals, want 2:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "patient-secret-id") {
		t.Errorf("patient ID logged:\n%s", logs.String())
	}
	now = now.Add(time.Minute)
	get("org")
	get("org")
	if !strings.Contains(logs.String(), `"held_back":4`) {
		t.Errorf("after the interval, no line with the 4 held back:\n%s", logs.String())
	}
}
