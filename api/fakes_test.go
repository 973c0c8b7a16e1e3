package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"golang.org/x/mod/sumdb/note"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
	"github.com/healthgw/healthgw/records"
)

// Hand-written fakes with function fields: a nil field is a call the test
// does not expect, and fails it.

type fakeAuth map[string]Principal

func (f fakeAuth) Authenticate(_ context.Context, token string) (Principal, error) {
	p, ok := f[token]
	if !ok {
		return Principal{}, errors.New("unknown token")
	}
	return p, nil
}

type fakeVault struct {
	t     testing.TB
	put   func(records.PutRequest) (records.Record, error)
	shred func(holder, id string) (uint64, error)
	// shredRetry, when nil, fails the test.
	shredRetry func(holder, id string) (uint64, error)
	// putStream, when nil, fails the test.
	putStream func(r records.PutRequest, content io.Reader) (records.Record, error)
}

func (f *fakeVault) PutStream(_ context.Context, r records.PutRequest, content io.Reader) (records.Record, error) {
	if f.putStream == nil {
		f.t.Fatal("unexpected Vault.PutStream")
	}
	return f.putStream(r, content)
}

func (f *fakeVault) MaxStreamSize() int64 { return 16 << 20 }

func (f *fakeVault) ShredRetry(_ context.Context, holder, id string) (uint64, error) {
	if f.shredRetry == nil {
		f.t.Fatal("unexpected Vault.ShredRetry")
	}
	return f.shredRetry(holder, id)
}

func (f *fakeVault) Put(_ context.Context, r records.PutRequest) (records.Record, error) {
	if f.put == nil {
		f.t.Fatal("unexpected Vault.Put")
	}
	return f.put(r)
}

func (f *fakeVault) Shred(_ context.Context, holder, id string) (uint64, error) {
	if f.shred == nil {
		f.t.Fatal("unexpected Vault.Shred")
	}
	return f.shred(holder, id)
}

func (f *fakeVault) MaxSize() int64 { return 1 << 20 }

type fakeGate struct {
	t    testing.TB
	read func(access.ReadRequest) (access.Result, error)
	// readStream, when nil, fails the test.
	readStream func(access.ReadRequest) (access.Result, error)
	readable   func(access.ListRequest) ([]records.Record, error)
	locate     func(access.ListRequest) ([]records.Record, error)
}

func (f *fakeGate) Read(_ context.Context, r access.ReadRequest) (access.Result, error) {
	if f.read == nil {
		f.t.Fatal("unexpected Gate.Read")
	}
	return f.read(r)
}

func (f *fakeGate) ReadStream(_ context.Context, r access.ReadRequest) (access.Result, error) {
	if f.readStream == nil {
		f.t.Fatal("unexpected Gate.ReadStream")
	}
	return f.readStream(r)
}

func (f *fakeGate) Readable(_ context.Context, r access.ListRequest) ([]records.Record, error) {
	if f.readable == nil {
		f.t.Fatal("unexpected Gate.Readable")
	}
	return f.readable(r)
}

func (f *fakeGate) Locate(_ context.Context, r access.ListRequest) ([]records.Record, error) {
	if f.locate == nil {
		f.t.Fatal("unexpected Gate.Locate")
	}
	return f.locate(r)
}

type fakeEncKeys struct {
	key func(org string) (jwk.Key, bool, error)
}

func (f *fakeEncKeys) EncryptionKey(_ context.Context, org string) (jwk.Key, bool, error) {
	if f.key == nil {
		return nil, false, nil
	}
	return f.key(org)
}

type fakeConsents struct {
	t              testing.TB
	grantsFor      func(patient, org string, kind auth.Kind) ([]consent.Grant, error)
	grant          func(id string) (consent.Grant, error)
	listByPatient  func(patient string, p consent.Page) ([]consent.Grant, string, error)
	listForGrantee func(org string, kind auth.Kind, p consent.Page) ([]consent.Grant, string, error)
	accessLog      func(patient string, p consent.Page) ([]consent.AccessEvent, string, error)
	auditEvents    func(f consent.AuditFilter, p consent.Page) ([]consent.AccessEvent, string, error)
}

func (f *fakeConsents) fail(m string) { f.t.Helper(); f.t.Fatalf("unexpected ConsentStore.%s", m) }

func (f *fakeConsents) GrantsFor(_ context.Context, patient, org string, kind auth.Kind) ([]consent.Grant, error) {
	if f.grantsFor == nil {
		f.fail("GrantsFor")
	}
	return f.grantsFor(patient, org, kind)
}

func (f *fakeConsents) Grant(_ context.Context, id string) (consent.Grant, error) {
	if f.grant == nil {
		f.fail("Grant")
	}
	return f.grant(id)
}

func (f *fakeConsents) ListByPatient(_ context.Context, patient string, p consent.Page) ([]consent.Grant, string, error) {
	if f.listByPatient == nil {
		f.fail("ListByPatient")
	}
	return f.listByPatient(patient, p)
}

func (f *fakeConsents) ListForGrantee(_ context.Context, org string, kind auth.Kind, p consent.Page) ([]consent.Grant, string, error) {
	if f.listForGrantee == nil {
		f.fail("ListForGrantee")
	}
	return f.listForGrantee(org, kind, p)
}

func (f *fakeConsents) AccessLog(_ context.Context, patient string, p consent.Page) ([]consent.AccessEvent, string, error) {
	if f.accessLog == nil {
		f.fail("AccessLog")
	}
	return f.accessLog(patient, p)
}

func (f *fakeConsents) AuditEvents(_ context.Context, flt consent.AuditFilter, p consent.Page) ([]consent.AccessEvent, string, error) {
	if f.auditEvents == nil {
		f.fail("AuditEvents")
	}
	return f.auditEvents(flt, p)
}

type fakeChanges struct {
	t      testing.TB
	grant  func(patient string, g consent.Grant) (consent.Grant, access.Receipt, error)
	revoke func(patient, id string) (consent.Grant, access.Receipt, error)
	// writes are the access.Write of every call, in order.
	writes []access.Write
}

func (f *fakeChanges) GrantOnce(_ context.Context, patient string, g consent.Grant, w access.Write) (consent.Grant, access.Receipt, error) {
	if f.grant == nil {
		f.t.Fatal("unexpected ConsentChanges.GrantOnce")
	}
	f.writes = append(f.writes, w)
	return f.grant(patient, g)
}

func (f *fakeChanges) RevokeOnce(_ context.Context, patient, id string, w access.Write) (consent.Grant, access.Receipt, error) {
	if f.revoke == nil {
		f.t.Fatal("unexpected ConsentChanges.RevokeOnce")
	}
	f.writes = append(f.writes, w)
	return f.revoke(patient, id)
}

type fakeSync struct {
	sync  func(size uint64) error
	calls []uint64
}

func (f *fakeSync) Sync(_ context.Context, size uint64) error {
	f.calls = append(f.calls, size)
	if f.sync == nil {
		return nil
	}
	return f.sync(size)
}

// fakePseud: "ps_" and the patient ID, padded (tests only compare).
type fakePseud struct{}

func (fakePseud) Pseudonym(patient string) string { return "ps_" + patient }

func (fakePseud) ForReader(reader, pseudonym string) string { return "rp_" + reader + "_" + pseudonym }

type fakeTokens struct {
	exchange func(auth.TokenRequest) (auth.AccessToken, error)
}

func (f *fakeTokens) Exchange(_ context.Context, r auth.TokenRequest) (auth.AccessToken, error) {
	return f.exchange(r)
}

func (f *fakeTokens) SMARTConfiguration() map[string]any {
	return map[string]any{"token_endpoint": "http://gw.test/oauth2/token"}
}

func (f *fakeTokens) AuthorizationServerMetadata() map[string]any {
	return map[string]any{"issuer": "http://gw.test", "token_endpoint": "http://gw.test/oauth2/token"}
}

// fakeLedger is the gateway's ledger node over an in-memory store
// (ledgertest.MemLog), its checkpoint covering every entry, with failures
// to inject: sizeErr fails Size, checkpoint, when set, overrides the
// signed checkpoint. newFakeLedger fills it with five entries naming
// every kind of party (see the constants below).
type fakeLedger struct {
	*ledgertest.MemLog
	vkey       string
	sizeErr    error
	checkpoint func() ([]byte, error)
	// sealedElsewhere are indices Open refuses as sealed to other
	// gateways (ledger.ErrNotRecipient).
	sealedElsewhere map[uint64]bool
}

// Open implements EntryOpener.
func (l *fakeLedger) Open(ctx context.Context, index uint64) (ledger.Opened, error) {
	if l.sealedElsewhere[index] {
		return ledger.Opened{}, ledger.ErrNotRecipient
	}
	return l.MemLog.Open(ctx, index)
}

// The fake ledger's entries: 0 registers hosp-a; 1 is a record hosp-a
// holds for pat-1; 2 pat-1's grant to hosp-b; 3 hosp-a's decision on
// hosp-b's read of it; 4 an issuer key of hosp-a.
const (
	entryOrgA      = 0
	entryRecord    = 1
	entryGrant     = 2
	entryAccess    = 3
	entryIssuer    = 4
	fakeLedgerSize = 5
)

func newFakeLedger(t testing.TB) *fakeLedger {
	t.Helper()
	skey, vkey, err := ledger.GenerateCheckpointKey("api.test/log")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l := &fakeLedger{MemLog: &ledgertest.MemLog{Signer: s, Clock: ledgertest.StepClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Second)}, vkey: vkey}
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pub := strings.Repeat("0a", 32)
	kid, err := ledger.IssuerKeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		org  string
		body any
	}{
		{"gateway", &ledger.OrgRegistered{ID: "hosp-a", Name: "Hospital A & Co <main>", Kind: "hospital"}},
		{"hosp-a", &ledger.RecordRegistered{RecordID: recID, Holder: "hosp-a", Patient: "ps_pat-1", Category: "labs", Commitment: strings.Repeat("c", 64)}},
		{"patient:ps_pat-1", &ledger.ConsentGranted{ConsentID: grantB1.ID, Patient: "ps_pat-1", Grantee: ledger.Grantee{Org: "hosp-b"}, Decision: "permit",
			Actions: []string{"read"}, Categories: []string{"labs"}, Purposes: []string{"TREAT"}, NotBefore: nb, NotAfter: nb.AddDate(1, 0, 0)}},
		{"hosp-a", &ledger.AccessDecided{Requester: "hosp-b", RecordID: recID, Patient: "ps_pat-1", Category: "labs", Purpose: "TREAT",
			Decision: "permit", Reason: "permit.grant", GrantID: grantB1.ID, RequestID: "r1"}},
		{"hosp-a", &ledger.IssuerRegistered{Issuer: "hosp-a", KeyID: kid, PublicKey: pub}},
	} {
		l.add(t, e.org, e.body)
	}
	return l
}

// add appends an entry of org and returns its index.
func (l *fakeLedger) add(t testing.TB, org string, body any) uint64 {
	t.Helper()
	e, err := ledger.NewEntry(org, body)
	if err != nil {
		t.Fatal(err)
	}
	i, err := l.Append(t.Context(), e)
	if err != nil {
		t.Fatalf("append %T: %v", body, err)
	}
	return i
}

func (l *fakeLedger) Size(ctx context.Context) (uint64, error) {
	if l.sizeErr != nil {
		return 0, l.sizeErr
	}
	return l.MemLog.Size(ctx)
}

func (l *fakeLedger) Checkpoint(ctx context.Context) ([]byte, error) {
	if l.checkpoint != nil {
		return l.checkpoint()
	}
	l.Publish()
	return l.MemLog.Checkpoint(ctx)
}

// Principals of the test tokens.
var testPrincipals = fakeAuth{
	"hosp-a":   {Org: "hosp-a", Kind: auth.KindHospital, Scopes: []auth.Scope{auth.ScopeRecordsRead, auth.ScopeRecordsWrite, auth.ScopeConsentsRead}, Expires: time.Now().Add(time.Hour)},
	"hosp-b":   {Org: "hosp-b", Kind: auth.KindHospital, Scopes: []auth.Scope{auth.ScopeRecordsRead}},
	"reg-x":    {Org: "reg-x", Kind: auth.KindRegulator, Scopes: []auth.Scope{auth.ScopeAuditRead}},
	"ins-v":    {Org: "ins-v", Kind: auth.KindVerifier, Scopes: []auth.Scope{auth.ScopeProofsVerify}},
	"pat-1":    {Patient: "pat-1"},
	"pat-2":    {Patient: "pat-2"},
	"noscope":  {Org: "hosp-c", Kind: auth.KindHospital},
	"obs-only": {Org: "hosp-b", Kind: auth.KindHospital, Scopes: []auth.Scope{"system/Observation.rs"}},
}

// testServer is a Server with every capability of this package mounted
// on fakes (the zero-knowledge routes are tested with their own).
type testServer struct {
	*Server
	t        *testing.T
	vault    *fakeVault
	gate     *fakeGate
	keys     *fakeEncKeys
	consents *fakeConsents
	changes  *fakeChanges
	sync     *fakeSync
	ledger   *fakeLedger
	tokens   *fakeTokens
	openings fakeOpenings
}

// fakeOpenings are stored break-glass justification openings by
// commitment.
type fakeOpenings map[string]ledger.Justification

func (f fakeOpenings) Openings(_ context.Context, cs []string) (map[string]ledger.Justification, error) {
	out := map[string]ledger.Justification{}
	for _, c := range cs {
		if j, ok := f[c]; ok {
			out[c] = j
		}
	}
	return out, nil
}

func newTestServer(t *testing.T, opts ...Option) *testServer {
	t.Helper()
	gin.SetMode(gin.ReleaseMode)
	ts := &testServer{
		t:        t,
		vault:    &fakeVault{t: t},
		gate:     &fakeGate{t: t},
		keys:     &fakeEncKeys{},
		consents: &fakeConsents{t: t},
		changes:  &fakeChanges{t: t},
		sync:     &fakeSync{},
		ledger:   newFakeLedger(t),
		tokens:   &fakeTokens{},
		openings: fakeOpenings{},
	}
	ts.Server = New(Config{BaseURL: "http://gw.test"}, nil, testPrincipals,
		append([]Option{WithReadiness("database", CheckerFunc(func(context.Context) error { return nil }))}, opts...)...)
	jwks := jwk.NewSet()
	ts.MountAuth(ts.tokens, jwks)
	ts.MountLedger(ts.ledger, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "tile "+r.URL.Path)
	}))
	ts.MountRecords(ts.vault, ts.gate, ts.keys)
	ts.MountConsent(ConsentDeps{
		Changes: ts.changes,
		Queries: access.NewQueries(access.QueriesConfig{Store: ts.consents, Pseud: fakePseud{}, Log: ts.ledger, Sync: ts.sync, Openings: ts.openings}),
		Pseud:   fakePseud{},
	})
	return ts
}

// do sends a request (body: nil, a string sent as is, or a value sent as
// JSON) and returns the recorder.
func (ts *testServer) do(method, path, token string, body any, hdr ...string) *httptest.ResponseRecorder {
	ts.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req := httptest.NewRequestWithContext(ts.t.Context(), method, path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	ts.Handler().ServeHTTP(rec, req)
	return rec
}

// errorOf decodes an error body.
func errorOf(t *testing.T, rec *httptest.ResponseRecorder) errorResponse {
	t.Helper()
	var e errorResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
		t.Fatalf("error body %q: %v", rec.Body, err)
	}
	return e
}

func decodeBody[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, rec.Body, err)
	}
	return v
}
