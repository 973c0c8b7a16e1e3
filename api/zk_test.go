package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/eligibility"
)

// fakeZK is a ZKService with function fields; a nil field fails the test
// when called.
type fakeZK struct {
	t        *testing.T
	issue    func(ctx context.Context, org string, req eligibility.CredentialRequest, now time.Time) ([]byte, error)
	circuits func(ctx context.Context) ([]eligibility.CircuitStatus, error)
	pkPath   func(ctx context.Context, statement string) (string, error)
	newCh    func(ctx context.Context, verifier, statement string, params map[string]string, now time.Time) ([]byte, error)
	verify   func(ctx context.Context, verifier string, proof []byte, now time.Time) (eligibility.Result, error)
	status   func(ctx context.Context, verifier, id string, now time.Time) (eligibility.ChallengeStatus, error)
}

func (f *fakeZK) unexpected(name string) error {
	f.t.Errorf("unexpected call of %s", name)
	return errors.New("unexpected call")
}

func (f *fakeZK) IssueCredential(ctx context.Context, org string, req eligibility.CredentialRequest, now time.Time) ([]byte, error) {
	if f.issue == nil {
		return nil, f.unexpected("IssueCredential")
	}
	return f.issue(ctx, org, req, now)
}

func (f *fakeZK) Circuits(ctx context.Context) ([]eligibility.CircuitStatus, error) {
	if f.circuits == nil {
		return nil, f.unexpected("Circuits")
	}
	return f.circuits(ctx)
}

func (f *fakeZK) ProvingKeyPath(ctx context.Context, statement string) (string, error) {
	if f.pkPath == nil {
		return "", f.unexpected("ProvingKeyPath")
	}
	return f.pkPath(ctx, statement)
}

func (f *fakeZK) NewChallenge(ctx context.Context, verifier, statement string, params map[string]string, now time.Time) ([]byte, error) {
	if f.newCh == nil {
		return nil, f.unexpected("NewChallenge")
	}
	return f.newCh(ctx, verifier, statement, params, now)
}

func (f *fakeZK) Verify(ctx context.Context, verifier string, proof []byte, now time.Time) (eligibility.Result, error) {
	if f.verify == nil {
		return eligibility.Result{}, f.unexpected("Verify")
	}
	return f.verify(ctx, verifier, proof, now)
}

func (f *fakeZK) ChallengeStatus(ctx context.Context, verifier, id string, now time.Time) (eligibility.ChallengeStatus, error) {
	if f.status == nil {
		return eligibility.ChallengeStatus{}, f.unexpected("ChallengeStatus")
	}
	return f.status(ctx, verifier, id, now)
}

// tokenAuth authenticates the tokens "hosp-a", "ins-v" and "patient".
type tokenAuth struct{}

func (tokenAuth) Authenticate(_ context.Context, token string) (Principal, error) {
	switch token {
	case "hosp-a":
		return Principal{Org: "hosp-a", Kind: auth.KindHospital, Scopes: []auth.Scope{auth.ScopeCredentialsIssue}}, nil
	case "ins-v":
		return Principal{Org: "ins-v", Kind: auth.KindVerifier, Scopes: []auth.Scope{auth.ScopeProofsVerify}}, nil
	case "patient":
		return Principal{Patient: "p-1"}, nil
	}
	return Principal{}, errors.New("unknown token")
}

var zkNow = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func zkServer(t *testing.T, f *fakeZK) http.Handler {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	f.t = t
	s := New(Config{}, nil, tokenAuth{}, WithClock(func() time.Time { return zkNow }))
	s.MountZK(ZKDeps{Service: f})
	return s.Handler()
}

type zkResponse struct {
	status int
	header http.Header
	body   string
}

func zkDo(t *testing.T, h http.Handler, method, path, token, body string) zkResponse {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return zkResponse{rec.Code, rec.Header(), rec.Body.String()}
}

func errorCode(t *testing.T, body string) (code, msg string) {
	t.Helper()
	var e errorResponse
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return e.Error, e.Message
}

func TestPostCredential(t *testing.T) {
	var got eligibility.CredentialRequest
	f := &fakeZK{issue: func(_ context.Context, org string, req eligibility.CredentialRequest, now time.Time) ([]byte, error) {
		if org != "hosp-a" || !now.Equal(zkNow) {
			t.Errorf("issued for %q at %v", org, now)
		}
		got = req
		switch req.Holder {
		case "bad":
			return nil, &eligibility.ValidationError{Message: "holder must be a field element in hex."}
		case "attr":
			return nil, fmt.Errorf("%w: shoe_size", credential.ErrUnknownAttribute)
		case "down":
			return nil, errors.New("disk full at /var/lib/secret")
		}
		return []byte(`{"credential":"x"}`), nil
	}}
	h := zkServer(t, f)
	r := zkDo(t, h, "POST", "/v1/credentials", "hosp-a", `{"holder":"ab","schema":"s","attributes":{"birth_date":"1990-01-01"},"expires":"2027-01-01"}`)
	if r.status != http.StatusCreated || r.body != `{"credential":"x"}` || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("issue: %d %q %v", r.status, r.body, r.header)
	}
	want := eligibility.CredentialRequest{Holder: "ab", Schema: "s", Attributes: map[string]string{"birth_date": "1990-01-01"}, Expires: "2027-01-01"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
	for _, tt := range []struct {
		name, token, body string
		status            int
		code, msg         string
	}{
		{"no token", "", `{}`, 401, "unauthorized", ""},
		{"a verifier", "ins-v", `{"holder":"ab","attributes":{"a":"b"},"expires":"2027-01-01"}`, 403, "forbidden", ""},
		{"a patient", "patient", `{"holder":"ab","attributes":{"a":"b"},"expires":"2027-01-01"}`, 403, "forbidden", ""},
		{"no holder", "hosp-a", `{"attributes":{"a":"b"},"expires":"2027-01-01"}`, 400, "invalid_request", "holder (the holder commitment) is required."},
		{"no attributes", "hosp-a", `{"holder":"ab","expires":"2027-01-01"}`, 400, "invalid_request", "attributes are required."},
		{"no expiry", "hosp-a", `{"holder":"ab","attributes":{"a":"b"}}`, 400, "invalid_request", "expires is required."},
		{"unknown field", "hosp-a", `{"holder":"ab","attributes":{"a":"b"},"expires":"2027-01-01","secret":"s"}`, 400, "invalid_request", ""},
		{"refused by the use case", "hosp-a", `{"holder":"bad","attributes":{"a":"b"},"expires":"2027-01-01"}`, 400, "invalid_request", "holder must be a field element in hex."},
		{"a schema error", "hosp-a", `{"holder":"attr","attributes":{"a":"b"},"expires":"2027-01-01"}`, 400, "invalid_request", ""},
		{"an internal failure", "hosp-a", `{"holder":"down","attributes":{"a":"b"},"expires":"2027-01-01"}`, 500, "internal", "Internal error."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := zkDo(t, h, "POST", "/v1/credentials", tt.token, tt.body)
			code, msg := errorCode(t, r.body)
			if r.status != tt.status || code != tt.code || (tt.msg != "" && msg != tt.msg) {
				t.Errorf("got %d %s %q, want %d %s %q", r.status, code, msg, tt.status, tt.code, tt.msg)
			}
			if strings.Contains(r.body, "/var/lib") {
				t.Errorf("internal detail in the response: %s", r.body)
			}
		})
	}
}

func TestListCircuits(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fail := error(nil)
	f := &fakeZK{circuits: func(context.Context) ([]eligibility.CircuitStatus, error) {
		if fail != nil {
			return nil, fail
		}
		return []eligibility.CircuitStatus{
			{Circuit: eligibility.Circuit{Statement: "age", Version: 1, VKHash: "h1", Setup: "dev", LedgerIndex: 3, Time: at}, Loaded: true},
			{Circuit: eligibility.Circuit{Statement: "range", Version: 1, VKHash: "h2", Setup: "ceremony", LedgerIndex: 4, Time: at}},
		}, nil
	}}
	h := zkServer(t, f)
	r := zkDo(t, h, "GET", "/v1/circuits", "patient", "")
	if r.status != http.StatusOK {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	var got struct {
		Circuits []circuitView `json:"circuits"`
	}
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatal(err)
	}
	want := []circuitView{
		{Statement: "age", Version: 1, VKHash: "h1", Setup: "dev", LedgerIndex: 3, RegisteredAt: at, Loaded: true, ProvingKeyPath: "/v1/circuits/age/proving-key"},
		{Statement: "range", Version: 1, VKHash: "h2", Setup: "ceremony", LedgerIndex: 4, RegisteredAt: at},
	}
	if diff := cmp.Diff(want, got.Circuits); diff != "" {
		t.Errorf("circuits (-want +got):\n%s", diff)
	}
	if r := zkDo(t, h, "GET", "/v1/circuits", "", ""); r.status != http.StatusUnauthorized {
		t.Errorf("without a token: %d", r.status)
	}
	fail = errors.New("db down")
	if r := zkDo(t, h, "GET", "/v1/circuits", "ins-v", ""); r.status != http.StatusInternalServerError {
		t.Errorf("store failure: %d %s", r.status, r.body)
	}
}

func TestGetProvingKey(t *testing.T) {
	dir := t.TempDir()
	pk := filepath.Join(dir, "age.pk")
	if err := os.WriteFile(pk, []byte("proving key bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &fakeZK{pkPath: func(_ context.Context, st string) (string, error) {
		switch st {
		case "age":
			return pk, nil
		case "range":
			return filepath.Join(dir, "missing.pk"), nil
		case "member":
			return "", fmt.Errorf("%w: no manifest", eligibility.ErrNotReady)
		}
		return "", eligibility.ErrNotFound
	}}
	h := zkServer(t, f)
	r := zkDo(t, h, "GET", "/v1/circuits/age/proving-key", "patient", "")
	if r.status != http.StatusOK || r.body != "proving key bytes" || r.header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("download: %d %q %v", r.status, r.body, r.header)
	}
	for _, tt := range []struct {
		path   string
		status int
		code   string
	}{
		{"/v1/circuits/height/proving-key", 404, "not_found"},
		{"/v1/circuits/range/proving-key", 404, "not_found"},
		{"/v1/circuits/member/proving-key", 503, "unavailable"},
	} {
		r := zkDo(t, h, "GET", tt.path, "ins-v", "")
		if code, _ := errorCode(t, r.body); r.status != tt.status || code != tt.code {
			t.Errorf("%s: %d %s, want %d %s", tt.path, r.status, code, tt.status, tt.code)
		}
	}
}

func TestPostChallenge(t *testing.T) {
	f := &fakeZK{newCh: func(_ context.Context, verifier, statement string, params map[string]string, now time.Time) ([]byte, error) {
		if verifier != "ins-v" || !now.Equal(zkNow) {
			t.Errorf("challenge for %q at %v", verifier, now)
		}
		switch statement {
		case "height":
			return nil, fmt.Errorf("%q: %w", statement, circuits.ErrUnknownStatement)
		case "range":
			return nil, fmt.Errorf("%w: range needs \"lo\"", circuits.ErrParams)
		case "member":
			return nil, fmt.Errorf("%w: /srv/zk: no manifest", eligibility.ErrNotReady)
		}
		if diff := cmp.Diff(map[string]string{"attribute": "birth_date", "cutoff": "2008-03-01"}, params); diff != "" {
			t.Errorf("params (-want +got):\n%s", diff)
		}
		return []byte(`{"id":"c1"}`), nil
	}}
	h := zkServer(t, f)
	r := zkDo(t, h, "POST", "/v1/proofs/challenges", "ins-v", `{"statement":"age","params":{"attribute":"birth_date","cutoff":"2008-03-01"}}`)
	if r.status != http.StatusCreated || r.body != `{"id":"c1"}` || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("challenge: %d %q", r.status, r.body)
	}
	for _, tt := range []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"a hospital", "hosp-a", `{"statement":"age"}`, 403, "forbidden"},
		{"no statement", "ins-v", `{"params":{}}`, 400, "invalid_request"},
		{"not JSON", "ins-v", `{"statement":`, 400, "invalid_request"},
		{"unknown statement", "ins-v", `{"statement":"height"}`, 400, "invalid_request"},
		{"bad params", "ins-v", `{"statement":"range","params":{"attribute":"hba1c"}}`, 400, "invalid_request"},
		{"no keys yet", "ins-v", `{"statement":"member"}`, 503, "unavailable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := zkDo(t, h, "POST", "/v1/proofs/challenges", tt.token, tt.body)
			if code, _ := errorCode(t, r.body); r.status != tt.status || code != tt.code {
				t.Errorf("got %d %s, want %d %s", r.status, code, tt.status, tt.code)
			}
			if strings.Contains(r.body, "/srv/zk") {
				t.Errorf("internal detail in the response: %s", r.body)
			}
		})
	}
}

func TestVerifyProof(t *testing.T) {
	f := &fakeZK{verify: func(_ context.Context, verifier string, proof []byte, now time.Time) (eligibility.Result, error) {
		if verifier != "ins-v" || !now.Equal(zkNow) {
			t.Errorf("verify for %q at %v", verifier, now)
		}
		switch string(proof) {
		case "valid":
			return eligibility.Result{Valid: true, Statement: circuits.Age, Issuer: "hosp-a", Nullifier: "0abc", LedgerIndex: 7}, nil
		case "replayed":
			return eligibility.Result{Statement: circuits.Age, Nullifier: "0abc", Reason: eligibility.ReasonChallengeUsed, LedgerIndex: 8}, nil
		case "malformed":
			return eligibility.Result{}, fmt.Errorf("%w: unexpected EOF", circuits.ErrFile)
		case "down":
			return eligibility.Result{}, errors.New("check proof: pq: connection refused")
		}
		return eligibility.Result{}, fmt.Errorf("%w: none", eligibility.ErrNotReady)
	}}
	h := zkServer(t, f)
	for _, tt := range []struct {
		name, token, body string
		status            int
		want              verifyResponse
		code              string
	}{
		{name: "valid", token: "ins-v", body: "valid", status: 200,
			want: verifyResponse{Valid: true, Statement: "age", Issuer: "hosp-a", Nullifier: "0abc", LedgerIndex: 7}},
		{name: "refused", token: "ins-v", body: "replayed", status: 200,
			want: verifyResponse{Statement: "age", Nullifier: "0abc", Reason: "challenge.used", Message: eligibility.ReasonChallengeUsed.Message(), LedgerIndex: 8}},
		{name: "malformed", token: "ins-v", body: "malformed", status: 400, code: "invalid_request"},
		{name: "storage failure", token: "ins-v", body: "down", status: 500, code: "internal"},
		{name: "no keys yet", token: "ins-v", body: "none", status: 503, code: "unavailable"},
		{name: "a hospital", token: "hosp-a", body: "valid", status: 403, code: "forbidden"},
		{name: "too large", token: "ins-v", body: strings.Repeat("x", maxProofBody+1), status: 413, code: "too_large"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := zkDo(t, h, "POST", "/v1/proofs/verify", tt.token, tt.body)
			if r.status != tt.status {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tt.status)
			}
			if tt.code != "" {
				if code, _ := errorCode(t, r.body); code != tt.code {
					t.Errorf("code %s, want %s", code, tt.code)
				}
				if strings.Contains(r.body, "pq:") {
					t.Errorf("internal detail in the response: %s", r.body)
				}
				return
			}
			var got verifyResponse
			if err := json.Unmarshal([]byte(r.body), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGetChallenge(t *testing.T) {
	created := zkNow.Add(-time.Minute)
	ch := eligibility.Challenge{ID: "c1", Verifier: "ins-v", Statement: "age", Params: map[string]string{"attribute": "birth_date", "cutoff": "2008-03-01"},
		CreatedAt: created, ExpiresAt: created.Add(5 * time.Minute)}
	f := &fakeZK{status: func(_ context.Context, verifier, id string, now time.Time) (eligibility.ChallengeStatus, error) {
		if verifier != "ins-v" || !now.Equal(zkNow) {
			t.Errorf("status for %q at %v", verifier, now)
		}
		switch id {
		case "c1":
			return eligibility.ChallengeStatus{Challenge: ch, State: eligibility.StateOpen}, nil
		case "c2":
			return eligibility.ChallengeStatus{Challenge: ch, State: eligibility.StateAnswered, Outcome: &eligibility.Outcome{
				Verifier: "ins-v", Challenge: "c1", Statement: "age", Valid: true, Issuer: "hosp-a", Nullifier: "0abc", LedgerIndex: 9}}, nil
		case "c3":
			return eligibility.ChallengeStatus{Challenge: ch, State: eligibility.StateAnswered, Outcome: &eligibility.Outcome{
				Verifier: "ins-v", Challenge: "c1", Statement: "age", Reason: eligibility.ReasonInvalid, LedgerIndex: 10}}, nil
		}
		return eligibility.ChallengeStatus{}, eligibility.ErrNotFound
	}}
	h := zkServer(t, f)
	exp := created.Add(5 * time.Minute)
	for _, tt := range []struct {
		name, token, id string
		status          int
		want            challengeStatusResponse
		code            string
	}{
		{name: "open", token: "ins-v", id: "c1", status: 200, want: challengeStatusResponse{ID: "c1", Statement: "age", Params: ch.Params, CreatedAt: &created, ExpiresAt: &exp, Status: "open"}},
		{name: "answered", token: "ins-v", id: "c2", status: 200, want: challengeStatusResponse{ID: "c1", Statement: "age", Params: ch.Params, CreatedAt: &created, ExpiresAt: &exp, Status: "answered",
			Result: &verifyResponse{Valid: true, Statement: "age", Issuer: "hosp-a", Nullifier: "0abc", LedgerIndex: 9}}},
		{name: "refused", token: "ins-v", id: "c3", status: 200, want: challengeStatusResponse{ID: "c1", Statement: "age", Params: ch.Params, CreatedAt: &created, ExpiresAt: &exp, Status: "answered",
			Result: &verifyResponse{Statement: "age", Reason: "proof.invalid", Message: eligibility.ReasonInvalid.Message(), LedgerIndex: 10}}},
		{name: "not found", token: "ins-v", id: "nope", status: 404, code: "not_found"},
		{name: "a hospital", token: "hosp-a", id: "c1", status: 403, code: "forbidden"},
		{name: "a patient", token: "patient", id: "c1", status: 403, code: "forbidden"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := zkDo(t, h, "GET", "/v1/proofs/challenges/"+tt.id, tt.token, "")
			if r.status != tt.status {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tt.status)
			}
			if tt.code != "" {
				if code, _ := errorCode(t, r.body); code != tt.code {
					t.Errorf("code %s, want %s", code, tt.code)
				}
				return
			}
			var got challengeStatusResponse
			if err := json.Unmarshal([]byte(r.body), &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("response (-want +got):\n%s", diff)
			}
		})
	}
}
