package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
)

// TestGranteeMustExist: a grant naming an organisation nobody registered,
// an org that cannot read records, or a kind that cannot, is refused with
// a 400 naming the field, and nothing is stored or appended; whoever later
// registers that org ID inherits nothing.
func TestGranteeMustExist(t *testing.T) {
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		w := newWorld(t, func(c *serveConfig) { c.DB = dsn })
		for _, tt := range []struct {
			name    string
			grantee map[string]string
			field   string
		}{
			{"unknown org", map[string]string{"org": "hosp-later"}, "grantee.org"},
			{"a verifier", map[string]string{"org": "ins-v"}, "grantee.org"},
			{"a regulator", map[string]string{"org": "reg-x"}, "grantee.org"},
			{"every verifier", map[string]string{"kind": "verifier"}, "grantee.kind"},
			{"every regulator", map[string]string{"kind": "regulator"}, "grantee.kind"},
			{"an unknown kind", map[string]string{"kind": "astrologer"}, "grantee.kind"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				before := w.size()
				status, body := w.do("POST", "/v1/consents", w.ptok, map[string]any{"grantee": tt.grantee, "purposes": []string{"TREAT"}})
				e := decode[apiError](t, body)
				if status != http.StatusBadRequest || e.Error != "invalid_request" || !strings.HasPrefix(e.Message, tt.field+": ") {
					t.Fatalf("grant to %v: %d %+v, want 400 naming %s", tt.grantee, status, e, tt.field)
				}
				if after := w.size(); after != before {
					t.Errorf("a refused grant appended %d entries", after-before)
				}
			})
		}
		status, body := w.do("GET", "/v1/consents", w.ptok, nil)
		if status != http.StatusOK {
			t.Fatalf("list consents: %d %s", status, body)
		}
		if got := decode[client.ConsentList](t, body); len(got.Consents) != 0 {
			t.Errorf("refused grants are stored: %+v", got.Consents)
		}
		if got := w.entries(ledger.TypeConsentGranted); len(got) != 0 {
			t.Errorf("refused grants are on the ledger: %d", len(got))
		}

		// The org ID registered afterwards inherits nothing.
		ltok := w.token(w.register("hosp-later", auth.KindHospital), "")
		if status, _ := w.read(ltok, "TREAT"); status != http.StatusNotFound {
			t.Errorf("the org registered later reads the record: %d", status)
		}
		status, body = w.do("GET", "/v1/consents", ltok, nil)
		if status != http.StatusOK {
			t.Fatalf("list consents: %d %s", status, body)
		}
		if got := decode[client.ConsentList](t, body); len(got.Consents) != 0 {
			t.Errorf("the org registered later sees grants: %+v", got.Consents)
		}
		// Now that it exists, the patient may name it.
		w.grant(w.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-later"}, "purposes": []string{"TREAT"}})
		if status, body := w.read(ltok, "TREAT"); status != http.StatusOK {
			t.Errorf("read under a grant to a registered org: %d %s", status, body)
		}
	})
}

// lastAccess is the body of the newest access.decided entry.
func (g *testGateway) lastAccess() *ledger.AccessDecided {
	g.t.Helper()
	es := g.entries(ledger.TypeAccessDecided)
	if len(es) == 0 {
		g.t.Fatal("no access.decided entry")
	}
	return es[len(es)-1].Body.(*ledger.AccessDecided)
}

// TestRequestIDsAreTheGateways: the request ID on the ledger is the
// gateway's own; a client's X-Request-ID is kept as client_request_id
// (bounded, safe charset, else dropped), so one org cannot make its
// entries carry another's request ID.
func TestRequestIDsAreTheGateways(t *testing.T) {
	w := newWorld(t)
	w.read(w.atok, "TREAT", "X-Request-ID", "corr-a-1")
	a := w.lastAccess()
	if a.Requester != "hosp-a" || a.ClientRequestID != "corr-a-1" || a.RequestID == "corr-a-1" || a.RequestID == "" {
		t.Fatalf("hospital A's entry: request_id %q client_request_id %q", a.RequestID, a.ClientRequestID)
	}
	// Hospital B replays A's request ID (the gateway's, seen in the log)
	// and A's own correlation ID.
	seen := map[string]bool{a.RequestID: true}
	for _, reuse := range []string{a.RequestID, "corr-a-1"} {
		w.read(w.btok, "TREAT", "X-Request-ID", reuse)
		b := w.lastAccess()
		if b.Requester != "hosp-b" || seen[b.RequestID] || b.RequestID == reuse {
			t.Errorf("hospital B's entry carries request ID %q (reused %q)", b.RequestID, reuse)
		}
		if b.ClientRequestID != reuse {
			t.Errorf("client_request_id %q, want %q", b.ClientRequestID, reuse)
		}
		seen[b.RequestID] = true
	}
	// A malformed or oversized client ID is dropped, never recorded.
	for _, bad := range []string{"<script>", strings.Repeat("x", 65), "a b", "é"} {
		w.read(w.btok, "TREAT", "X-Request-ID", bad)
		if b := w.lastAccess(); b.ClientRequestID != "" || seen[b.RequestID] {
			t.Errorf("X-Request-ID %q: entry client_request_id %q request_id %q", bad, b.ClientRequestID, b.RequestID)
		} else {
			seen[b.RequestID] = true
		}
	}
	// The regulator sees both, the client's marked as such.
	ev := w.events("/v1/audit/events?org=hosp-a", w.rtok)
	if len(ev.Events) != 1 || ev.Events[0].RequestID != a.RequestID || ev.Events[0].ClientRequestID != "corr-a-1" {
		t.Errorf("audit events %+v", ev.Events)
	}
}

// TestReadPathsSameWork: a read of a record that does not exist, a denied
// read, a permitted read and the holder's own read run the very same SQL
// statements up to the response (the record's metadata, the grant
// queries, the access.decided append) and append one entry each, counted
// on the real SQLite path as TestGatedReadStatements does; a permitted
// read (the caller learns it was permitted) then loads the sealed content,
// one statement more, after the append. So does a patient listing with
// and without records held elsewhere.
func TestReadPathsSameWork(t *testing.T) {
	dir := t.TempDir()
	db, err := database.Open(t.Context(), filepath.Join(dir, "healthgw.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { database.Close(db) })
	var counter statementCounter
	counter.install(t, db)
	g := newTestGatewayOn(t, db, func(c *serveConfig) { c.DataDir = filepath.Join(dir, "data") })
	w := &world{testGateway: g}
	w.atok = g.token(g.register("hosp-a", auth.KindHospital), "")
	w.btok = g.token(g.register("hosp-b", auth.KindHospital), "")
	ctok := g.token(g.register("hosp-c", auth.KindHospital), "")
	w.ptok = g.patientToken("pat-1")
	w.rec = g.putRecord(w.atok, "pat-1", "labs", "application/fhir+json", json.RawMessage(labFHIR))
	g.putRecord(w.btok, "pat-2", "labs", "application/fhir+json", json.RawMessage(labFHIR))
	w.grant(w.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "purposes": []string{"TREAT"}})
	for _, tok := range []string{w.atok, w.btok, ctok} { // first use of a token checks revocations
		if status, body := w.do("GET", "/v1/whoami", tok, nil); status != http.StatusOK {
			t.Fatalf("whoami: %d %s", status, body)
		}
	}
	get := func(token, path string) (int, []string, uint64) {
		t.Helper()
		var status int
		before := g.size()
		sqls := counter.during(func() {
			req := httptest.NewRequestWithContext(context.WithValue(t.Context(), markKey{}, true), "GET", path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			rec := httptest.NewRecorder()
			g.api.Handler().ServeHTTP(rec, req)
			status = rec.Code
		})
		return status, sqls, g.size() - before
	}
	missing := "/v1/records/0b7d0a52-1d1c-4b59-8a2a-00000000dead?purpose=TREAT"
	record := "/v1/records/" + w.rec.ID + "?purpose=TREAT"
	cases := []struct {
		name, token, path string
		status            int
	}{
		{"denied", ctok, record, http.StatusNotFound},
		{"missing", ctok, missing, http.StatusNotFound},
		{"permitted", w.btok, record, http.StatusOK},
		{"holder", w.atok, record, http.StatusOK},
		{"missing, asked by the holder", w.atok, missing, http.StatusNotFound},
	}
	var want []string
	for i, tt := range cases {
		status, sqls, appended := get(tt.token, tt.path)
		if status != tt.status {
			t.Fatalf("%s: status %d, want %d", tt.name, status, tt.status)
		}
		if appended != 1 {
			t.Errorf("%s: %d ledger appends, want 1", tt.name, appended)
		}
		t.Logf("%s: %d statements", tt.name, len(sqls))
		if i == 0 {
			want = sqls
			if len(want) < 4 {
				t.Fatalf("denied: only %d statements counted:\n  %s", len(want), strings.Join(want, "\n  "))
			}
			continue
		}
		if tt.status == http.StatusOK {
			// Permitted: the content load comes after everything a
			// denied read does.
			if len(sqls) == 0 || !isContentLoad(sqls[len(sqls)-1]) {
				t.Errorf("%s: the last statement is not the content load:\n  %s", tt.name, strings.Join(sqls, "\n  "))
			} else {
				sqls = sqls[:len(sqls)-1]
			}
		}
		if diff := cmp.Diff(want, sqls); diff != "" {
			t.Errorf("%s: statements differ from a denied read (-denied +%s):\n%s", tt.name, tt.name, diff)
		}
	}

	// Listings: grants are loaded whether or not the patient has records
	// held by others, or any records at all.
	var wantList []string
	for i, tt := range []struct{ name, token, patient string }{
		{"records held elsewhere", ctok, "pat-1"},
		{"only the caller's own records", w.btok, "pat-2"},
		{"no records", ctok, "pat-nobody"},
	} {
		status, sqls, appended := get(tt.token, "/v1/patients/"+tt.patient+"/records?purpose=TREAT")
		if status != http.StatusOK || appended != 0 {
			t.Fatalf("%s: status %d, %d appends", tt.name, status, appended)
		}
		if i == 0 {
			wantList = sqls
			continue
		}
		if diff := cmp.Diff(wantList, sqls); diff != "" {
			t.Errorf("listing, %s: statements differ (-elsewhere +this):\n%s", tt.name, diff)
		}
	}
}

// TestProbeInAudit: a read of a record that does not exist answers as a
// denied read does and is logged as access.decided deny.not-found, naming
// the prober and the ID but no patient: the regulator sees the probe, no
// patient's access log shows it.
func TestProbeInAudit(t *testing.T) {
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		w := newWorld(t, func(c *serveConfig) { c.DB = dsn })
		const probed = "0b7d0a52-1d1c-4b59-8a2a-00000000beef"
		status, body := w.do("GET", "/v1/records/"+probed+"?purpose=TREAT", w.btok, nil)
		ds, db := w.read(w.btok, "TREAT")
		got, want := decode[apiError](t, body), decode[apiError](t, db)
		got.RequestID, want.RequestID = "", ""
		if status != http.StatusNotFound || status != ds || got != want {
			t.Fatalf("probe %d %+v, denied read %d %+v", status, got, ds, want)
		}
		ev := w.events("/v1/audit/events?org=hosp-b&decision=deny", w.rtok)
		var probes []client.AccessEvent
		for _, e := range ev.Events {
			if e.Reason == string(ledger.ReasonNotFound) {
				probes = append(probes, e)
			}
		}
		if len(probes) != 1 {
			t.Fatalf("regulator sees %d probes in %+v, want 1", len(probes), ev.Events)
		}
		p := probes[0]
		if p.RecordID != probed || p.Requester != "hosp-b" || p.Decision != "deny" || p.Patient != "" || p.Category != "" || p.Purpose != "TREAT" {
			t.Errorf("probe event %+v", p)
		}
		if len(w.events("/v1/audit/events", w.rtok).Events) != 2 {
			t.Errorf("the unfiltered audit does not show both decisions")
		}
		for _, e := range w.events("/v1/me/access-log", w.ptok).Events {
			if e.Reason == string(ledger.ReasonNotFound) {
				t.Errorf("the patient's access log shows another's probe: %+v", e)
			}
		}
		w.verifyLedger()
	})
}

// TestBreakGlassReasonCommitted: a break-glass reason is on the ledger only
// as a salted commitment (a short templated reason cannot be found by
// hashing candidate reasons), the regulator's audit shows the reason
// opened from it, the patient and the reader never see it, and an
// oversized reason is a 400 that logs nothing.
func TestBreakGlassReasonCommitted(t *testing.T) {
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		w := newWorld(t, func(c *serveConfig) { c.DB = dsn })
		const reason = "pt unconscious in ED, need labs" // short, templated
		for range 2 {
			if status, body := w.read(w.btok, "ETREAT", HeaderBreakGlassName, reason); status != http.StatusOK {
				t.Fatalf("break-glass read: %d %s", status, body)
			}
		}
		es := w.entries(ledger.TypeAccessDecided)
		var published []string
		for _, e := range es {
			b := e.Body.(*ledger.AccessDecided)
			if b.BreakGlass {
				published = append(published, b.JustificationCommitment)
				if b.JustificationHash != "" {
					t.Errorf("an unsalted justification_hash is still written: %s", b.JustificationHash)
				}
			}
			raw, _ := ledger.Encode(e)
			if strings.Contains(string(raw), "unconscious") {
				t.Errorf("the ledger holds the reason: %s", raw)
			}
		}
		if len(published) != 2 || published[0] == published[1] || len(published[0]) != 64 {
			t.Fatalf("published commitments %q: want two distinct digests", published)
		}
		for _, guess := range []string{reason, "pt unconscious in ED", "unconscious", reason + "."} {
			plain := sha256.Sum256([]byte(guess))
			for _, c := range published {
				if c == hex.EncodeToString(plain[:]) || c == ledger.JustificationCommitment(ledger.Salt{}, guess).String() {
					t.Errorf("commitment %s matches the guess %q", c, guess)
				}
			}
		}
		// The regulator opens it; nobody else sees it.
		audit := w.events("/v1/audit/events?break_glass=true", w.rtok)
		if len(audit.Events) != 2 {
			t.Fatalf("regulator sees %d break-glass events", len(audit.Events))
		}
		for _, e := range audit.Events {
			if e.Justification != reason || (e.JustificationCommitment != published[0] && e.JustificationCommitment != published[1]) {
				t.Errorf("regulator's event %+v", e)
			}
		}
		for _, e := range w.events("/v1/me/access-log", w.ptok).Events {
			if e.Justification != "" {
				t.Errorf("the patient's access log shows the reason: %+v", e)
			}
		}
		// An oversized reason: 400 before any read, nothing logged.
		before := w.size()
		status, body := w.read(w.btok, "ETREAT", HeaderBreakGlassName, strings.Repeat("r", ledger.MaxJustificationLength+1))
		if e := decode[apiError](t, body); status != http.StatusBadRequest || !strings.HasPrefix(e.Message, "Break-glass reason: ") {
			t.Errorf("oversized reason: %d %+v", status, e)
		}
		if w.size() != before {
			t.Errorf("an oversized reason appended entries")
		}
	})
}

// TestNoCrossHospitalPatientValue: nothing the API hands two hospitals
// links a patient across them: record reads name no patient, listings
// echo the caller's own patient ID, and consents naming a hospital show
// the patient under that hospital's own pseudonym.
func TestNoCrossHospitalPatientValue(t *testing.T) {
	w := newWorld(t)
	ctok := w.token(w.register("hosp-c", auth.KindHospital), "")
	for _, org := range []string{"hosp-b", "hosp-c"} {
		w.grant(w.ptok, map[string]any{"grantee": map[string]string{"org": org}, "purposes": []string{"TREAT"}})
	}
	pseudonym := w.entries(ledger.TypeRecordRegistered)[0].Body.(*ledger.RecordRegistered).Patient
	seen := map[string]string{}
	for _, tc := range []struct{ org, tok string }{{"hosp-b", w.btok}, {"hosp-c", ctok}} {
		status, body := w.read(tc.tok, "TREAT")
		if status != http.StatusOK {
			t.Fatalf("%s reads: %d %s", tc.org, status, body)
		}
		if rc := decode[client.RecordContent](t, body); rc.Patient != "" {
			t.Errorf("%s's read names patient %q", tc.org, rc.Patient)
		}
		status, body = w.do("GET", "/v1/patients/pat-1/records?purpose=TREAT", tc.tok, nil)
		if l := decode[client.RecordList](t, body); status != http.StatusOK || len(l.Records) != 1 || l.Records[0].Patient != "pat-1" {
			t.Errorf("%s's listing: %d %+v", tc.org, status, l)
		}
		status, body = w.do("GET", "/v1/consents", tc.tok, nil)
		cl := decode[client.ConsentList](t, body)
		if status != http.StatusOK || len(cl.Consents) != 1 {
			t.Fatalf("%s's consents: %d %s", tc.org, status, body)
		}
		p := cl.Consents[0].Patient
		status, body = w.do("GET", "/v1/consents/"+cl.Consents[0].ID, tc.tok, nil)
		if one := decode[client.Consent](t, body); status != http.StatusOK || one.Patient != p {
			t.Errorf("%s's consent by ID names %q, the list %q", tc.org, one.Patient, p)
		}
		if p == "" || p == pseudonym || strings.Contains(string(body), pseudonym) {
			t.Errorf("%s is shown the ledger pseudonym or nothing: %q", tc.org, p)
		}
		for other, v := range seen {
			if v == p {
				t.Errorf("%s and %s are shown the same patient value %q", tc.org, other, p)
			}
		}
		seen[tc.org] = p
	}
	// The patient sees their own grants as before.
	status, body := w.do("GET", "/v1/consents", w.ptok, nil)
	if cl := decode[client.ConsentList](t, body); status != http.StatusOK || len(cl.Consents) != 2 || cl.Consents[0].Patient != pseudonym {
		t.Errorf("the patient's consents: %d %s", status, body)
	}
}
