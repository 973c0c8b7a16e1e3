package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/federation"
	"github.com/healthgw/healthgw/records"
)

type fakeFed struct {
	t    testing.TB
	read func(federation.ReadRequest) (federation.Result, error)
	list func(access.ListRequest) (federation.Listing, error)
}

func (f *fakeFed) Read(_ context.Context, r federation.ReadRequest) (federation.Result, error) {
	if f.read == nil {
		f.t.Fatal("unexpected Federation.Read")
	}
	return f.read(r)
}

func (f *fakeFed) List(_ context.Context, r access.ListRequest, _ consent.Page) (federation.Listing, error) {
	if f.list == nil {
		f.t.Fatal("unexpected Federation.List")
	}
	return f.list(r)
}

type fakeFedHolder struct {
	authorize func(token, method, target string) (federation.Claims, access.Caller, error)
	homes     map[string]bool
}

func (f *fakeFedHolder) Authorize(_ context.Context, token, method, target string) (federation.Claims, access.Caller, error) {
	return f.authorize(token, method, target)
}

func (f *fakeFedHolder) SealAnswer(c federation.Claims, body []byte) ([]byte, error) {
	return []byte("sealed-for-" + c.Gateway), nil
}

func (f *fakeFedHolder) HomedHere(org string) bool { return f.homes[org] }

func newFedServer(t *testing.T) (*testServer, *fakeFed, *fakeFedHolder) {
	ts := newTestServer(t)
	f := &fakeFed{t: t}
	h := &fakeFedHolder{homes: map[string]bool{"hosp-a": true}, authorize: func(token, method, target string) (federation.Claims, access.Caller, error) {
		if token != "gw-b-token" {
			return federation.Claims{}, access.Caller{}, &federation.TokenError{Reason: "test"}
		}
		return federation.Claims{Gateway: "gw-b", Org: "hosp-b", ID: "jti-1", Target: target}, access.Caller{Org: "hosp-b", Kind: "hospital"}, nil
	}}
	ts.MountFederation(f, h)
	return ts, f, h
}

// TestHeldRecordErrors: across the hop, a deny is the direct read's 404,
// and a holder that cannot be asked is a 502 or 503 saying so, never a
// 404.
func TestHeldRecordErrors(t *testing.T) {
	ts, f, _ := newFedServer(t)
	ts.gate.read = func(access.ReadRequest) (access.Result, error) { return access.Result{}, access.ErrNotFound }
	direct := errorOf(t, ts.do("GET", "/v1/records/rec-1?purpose=TREAT", "hosp-b", nil))
	for _, tt := range []struct {
		err    error
		status int
		code   string
	}{
		{access.ErrNotFound, http.StatusNotFound, "not_found"},
		{fmt.Errorf("%w: gateway gw-a: dial: refused", federation.ErrHolderUnreachable), http.StatusBadGateway, "holder_unreachable"},
		{fmt.Errorf("%w: not caught up", federation.ErrHolderUnavailable), http.StatusServiceUnavailable, "holder_unavailable"},
		{fmt.Errorf("%w: %w", federation.ErrHolderFailed, federation.ErrBadAnswer), http.StatusBadGateway, "holder_failed"},
	} {
		t.Run(tt.code, func(t *testing.T) {
			var got federation.ReadRequest
			f.read = func(r federation.ReadRequest) (federation.Result, error) { got = r; return federation.Result{}, tt.err }
			rec := ts.do("GET", "/v1/holders/hosp-a/records/rec-1?purpose=TREAT", "hosp-b", nil)
			e := errorOf(t, rec)
			if rec.Code != tt.status || e.Error != tt.code {
				t.Fatalf("%d %s, want %d %s", rec.Code, rec.Body, tt.status, tt.code)
			}
			if tt.status == http.StatusNotFound && e.Message != direct.Message {
				t.Errorf("federated deny says %q, a direct one %q", e.Message, direct.Message)
			}
			if got.Holder != "hosp-a" || got.RecordID != "rec-1" || got.Caller.Org != "hosp-b" || got.Purpose != "TREAT" {
				t.Errorf("read request %+v", got)
			}
		})
	}
	f.read = nil // a malformed holder is never asked
	if rec := ts.do("GET", "/v1/holders/Not_An_Org/records/rec-1", "hosp-b", nil); rec.Code != http.StatusNotFound {
		t.Errorf("malformed holder: %d %s", rec.Code, rec.Body)
	}
}

// TestFederationRoutes: the holder's side admits only a gateway request
// token, reads for the org it acts for under the named holder, and
// answers sealed.
func TestFederationRoutes(t *testing.T) {
	ts, _, _ := newFedServer(t)
	var got access.ReadRequest
	ts.gate.read = func(r access.ReadRequest) (access.Result, error) {
		got = r
		return access.Result{Record: records.Record{ID: r.RecordID, Holder: "hosp-a"}, Content: []byte("x")}, nil
	}
	for _, tok := range []string{"", "hosp-b", "forged"} {
		if rec := ts.do("GET", "/v1/federation/records/rec-1?holder=hosp-a", tok, nil); rec.Code != http.StatusUnauthorized {
			t.Errorf("token %q: %d %s, want 401", tok, rec.Code, rec.Body)
		}
	}
	rec := ts.do("GET", "/v1/federation/records/rec-1?holder=hosp-a&purpose=TREAT", "gw-b-token", nil)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != records.JOSEContentType || rec.Body.String() != "sealed-for-gw-b" {
		t.Fatalf("federated read: %d %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	if got.Caller.Org != "hosp-b" || got.Holder != "hosp-a" || got.Purpose != "TREAT" {
		t.Errorf("gated read %+v", got)
	}
	got = access.ReadRequest{}
	if rec := ts.do("GET", "/v1/federation/records/rec-1?holder=hosp-z", "gw-b-token", nil); rec.Code != http.StatusNotFound || got.RecordID != "" {
		t.Errorf("holder not homed here: %d %s (read %+v)", rec.Code, rec.Body, got)
	}
}

// TestLocatorListing: the locator's records carry their holder's
// endpoint and where to read them here; a custodian that cannot be asked
// is an error saying so (never an empty listing), and the custodian's side
// of the route lists with Locate, not the holder-only Readable.
func TestLocatorListing(t *testing.T) {
	ts, f, _ := newFedServer(t)
	f.list = func(r access.ListRequest) (federation.Listing, error) {
		return federation.Listing{
			Records: []federation.Located{
				{Record: records.Record{ID: "r1", Holder: "hosp-a"}, Home: federation.Peer{Gateway: "gw-a", BaseURL: "http://a.test"}},
				{Record: records.Record{ID: "r2", Holder: "hosp-b"}, Home: federation.Peer{Gateway: "gw-b", BaseURL: "http://b.test"}, Local: true},
			},
			Next: "next-page",
		}, nil
	}
	rec := ts.do("GET", "/v1/patients/pat-1/records?purpose=TREAT", "hosp-b", nil)
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	l := decodeBody[client.RecordList](t, rec)
	want := client.RecordList{
		Records: []client.Record{
			{ID: "r1", Holder: "hosp-a", Patient: "pat-1", HolderEndpoint: "http://a.test", ReadPath: "/v1/holders/hosp-a/records/r1"},
			{ID: "r2", Holder: "hosp-b", Patient: "pat-1", HolderEndpoint: "http://b.test", ReadPath: "/v1/records/r2"},
		},
		NextCursor: "next-page",
	}
	for i := range l.Records {
		l.Records[i].CreatedAt = time.Time{}
	}
	if diff := cmp.Diff(want, l); diff != "" {
		t.Errorf("listing (-want +got):\n%s", diff)
	}

	for _, tt := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("%w: gateway gw-0: dial: refused", federation.ErrLocatorUnreachable), http.StatusBadGateway, "locator_unreachable"},
		{fmt.Errorf("%w: not caught up", federation.ErrLocatorUnavailable), http.StatusServiceUnavailable, "locator_unavailable"},
		{fmt.Errorf("%w: bad answer", federation.ErrLocatorFailed), http.StatusBadGateway, "locator_failed"},
	} {
		f.list = func(access.ListRequest) (federation.Listing, error) { return federation.Listing{}, tt.err }
		rec := ts.do("GET", "/v1/patients/pat-1/records?purpose=TREAT", "hosp-b", nil)
		if e := errorOf(t, rec); rec.Code != tt.status || e.Error != tt.code || !strings.Contains(e.Message, "custodian") {
			t.Errorf("%v: %d %s, want %d %s", tt.err, rec.Code, rec.Body, tt.status, tt.code)
		}
		if tt.status == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == "" {
			t.Errorf("%v: a 503 without Retry-After", tt.err)
		}
	}

	var asked access.ListRequest
	ts.gate.locate = func(r access.ListRequest) ([]records.Record, error) {
		asked = r
		return []records.Record{{ID: "r1", Holder: "hosp-a", LedgerIndex: 3}}, nil
	}
	rec = ts.do("GET", "/v1/federation/patients/pat-1/records?purpose=TREAT&limit=5", "gw-b-token", nil)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != records.JOSEContentType {
		t.Fatalf("custodian's side: %d %s", rec.Code, rec.Body)
	}
	if asked.Caller.Org != "hosp-b" || asked.Patient != "pat-1" || asked.Purpose != "TREAT" {
		t.Errorf("custodian's side located %+v", asked)
	}
}
