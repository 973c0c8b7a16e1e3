package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
)

// The API's wire types (package client).
type (
	consentResp = client.ConsentResponse
	eventsResp  = client.EventList
)

// world is two hospitals, a regulator and a verifier with tokens, and one
// lab record of patient pat-1 held by hospital A.
type world struct {
	*testGateway
	atok, btok, rtok, vtok, ptok, qtok string
	rec                                created
}

func newWorld(t *testing.T, mutate ...func(*serveConfig)) *world {
	g := newTestGateway(t, mutate...)
	w := &world{testGateway: g}
	w.atok = g.token(g.register("hosp-a", auth.KindHospital), "")
	w.btok = g.token(g.register("hosp-b", auth.KindHospital), "")
	w.rtok = g.token(g.register("reg-x", auth.KindRegulator), "")
	w.vtok = g.token(g.register("ins-v", auth.KindVerifier), "")
	w.ptok = g.patientToken("pat-1")
	w.qtok = g.patientToken("pat-2")
	w.rec = g.putRecord(w.atok, "pat-1", "labs", "application/fhir+json", json.RawMessage(labFHIR))
	return w
}

func (w *world) grant(token string, body map[string]any) consentResp {
	w.t.Helper()
	status, b := w.do("POST", "/v1/consents", token, body)
	if status != http.StatusCreated {
		w.t.Fatalf("grant: %d %s", status, b)
	}
	return decode[consentResp](w.t, b)
}

func (w *world) read(token, purpose string, hdr ...string) (int, []byte) {
	w.t.Helper()
	return w.do("GET", "/v1/records/"+w.rec.ID+"?purpose="+purpose, token, nil, hdr...)
}

func (w *world) events(path, token string) eventsResp {
	w.t.Helper()
	status, b := w.do("GET", path, token, nil)
	if status != http.StatusOK {
		w.t.Fatalf("GET %s: %d %s", path, status, b)
	}
	return decode[eventsResp](w.t, b)
}

// sameNotFound checks that a denied read looks exactly like a read of a
// record that does not exist (apart from the request ID).
func (w *world) sameNotFound(t *testing.T, token string, status int, body []byte) {
	t.Helper()
	ns, nb := w.do("GET", "/v1/records/rec_doesnotexist00000000000000000000?purpose=TREAT", token, nil)
	got, want := decode[apiError](t, body), decode[apiError](t, nb)
	got.RequestID, want.RequestID = "", ""
	if status != ns || got != want {
		t.Errorf("denied read %d %+v differs from a missing record %d %+v", status, got, ns, want)
	}
}

// TestConsentStory is the product's main path: deny, grant, permit,
// revoke, deny — each decision logged, visible to the patient and the
// regulator, and the ledger verifies.
func TestConsentStory(t *testing.T) {
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		w := newWorld(t, func(c *serveConfig) { c.DB = dsn })
		status, body := w.read(w.btok, "TREAT")
		if status != http.StatusNotFound {
			t.Fatalf("read without consent: %d %s", status, body)
		}
		w.sameNotFound(t, w.btok, status, body)

		cr := w.grant(w.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "categories": []string{"labs"}, "purposes": []string{"TREAT"}})
		if cr.Consent.Status != "active" || cr.Receipt.TreeSize <= cr.Receipt.Index || cr.Receipt.Checkpoint == "" || cr.Receipt.Index != cr.Consent.LedgerIndex {
			t.Fatalf("grant response %+v", cr)
		}
		// The receipt checks out against the signed checkpoint.
		v, err := ledger.ParseVerifierKey(w.vkey)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := ledger.OpenCheckpoint([]byte(cr.Receipt.Checkpoint), v, "")
		if err != nil {
			t.Fatalf("receipt checkpoint: %v", err)
		}
		if err := ledger.VerifyInclusion(cp, cr.Receipt.Index, cr.Receipt.Entry, cr.Receipt.Proof); err != nil {
			t.Errorf("receipt inclusion proof: %v", err)
		}

		if status, body := w.read(w.btok, "TREAT"); status != http.StatusOK {
			t.Fatalf("read with consent: %d %s", status, body)
		}
		// The hospital named by the grant lists it; another hospital does not.
		listIDs := func(token string) []string {
			t.Helper()
			status, body := w.do("GET", "/v1/consents", token, nil)
			if status != http.StatusOK {
				t.Fatalf("list consents: %d %s", status, body)
			}
			out := decode[client.ConsentList](t, body)
			var ids []string
			for _, c := range out.Consents {
				ids = append(ids, c.ID)
			}
			return ids
		}
		if diff := cmp.Diff([]string{cr.Consent.ID}, listIDs(w.btok)); diff != "" {
			t.Errorf("hospital B's consent list (-want +got):\n%s", diff)
		}
		if got := listIDs(w.atok); len(got) != 0 {
			t.Errorf("hospital A lists grants naming B: %v", got)
		}
		if diff := cmp.Diff([]string{cr.Consent.ID}, listIDs(w.ptok)); diff != "" {
			t.Errorf("the patient's consent list (-want +got):\n%s", diff)
		}
		if status, _ := w.read(w.btok, "HPAYMT"); status != http.StatusNotFound {
			t.Errorf("read for a purpose the grant does not cover: %d", status)
		}
		if status, body := w.do("POST", "/v1/consents/"+cr.Consent.ID+"/revoke", w.ptok, nil); status != http.StatusOK {
			t.Fatalf("revoke: %d %s", status, body)
		}
		// The very next request is denied.
		if status, _ := w.read(w.btok, "TREAT"); status != http.StatusNotFound {
			t.Errorf("read right after revocation: %d, want 404", status)
		}

		log := w.events("/v1/me/access-log", w.ptok)
		var got []string
		for _, e := range log.Events {
			got = append(got, e.Requester+" "+e.Purpose+" "+e.Decision+" "+e.Reason)
		}
		want := []string{ // newest first
			"hosp-b TREAT deny deny.revoked",
			"hosp-b HPAYMT deny deny.purpose",
			"hosp-b TREAT permit permit.grant",
			"hosp-b TREAT deny deny.no-grant",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("patient access log (-want +got):\n%s", diff)
		}
		audit := w.events("/v1/audit/events?patient=pat-1&org=hosp-b", w.rtok)
		if len(audit.Events) != 4 {
			t.Errorf("regulator sees %d events, want 4", len(audit.Events))
		}
		// Three denied reads, and sameNotFound's probe of a missing ID
		// (deny.not-found, naming no patient).
		denies := w.events("/v1/audit/events?decision=deny", w.rtok)
		if len(denies.Events) != 4 {
			t.Errorf("regulator sees %d denies, want 4", len(denies.Events))
		}
		// Every event is a real ledger entry of type access.decided.
		for _, e := range audit.Events {
			read, err := w.ledger.Read(t.Context(), e.LedgerIndex, e.LedgerIndex+1)
			if err != nil {
				t.Fatal(err)
			}
			le := read[0]
			if le.Type != ledger.TypeAccessDecided || le.Body.(*ledger.AccessDecided).Decision != e.Decision {
				t.Errorf("event at %d is not its access.decided entry: %+v", e.LedgerIndex, le)
			}
		}
		// Another patient sees none of it.
		if other := w.events("/v1/me/access-log", w.qtok); len(other.Events) != 0 {
			t.Errorf("pat-2 sees %d of pat-1's events", len(other.Events))
		}
		w.verifyLedger()
	})
}

// TestConsentHostile: one row per attack on the consent and records API.
func TestConsentHostile(t *testing.T) {
	w := newWorld(t)
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	longAgo := time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)
	g1 := w.grant(w.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "purposes": []string{"TREAT"}})

	tests := []struct {
		name       string
		method     string
		path       string
		token      string
		body       any
		hdr        []string
		wantStatus int
	}{
		{"hospital B reads A's record without a grant for payment", "GET", "/v1/records/" + w.rec.ID + "?purpose=HPAYMT", w.btok, nil, nil, 404},
		{"unknown purpose", "GET", "/v1/records/" + w.rec.ID + "?purpose=SNOOP", w.btok, nil, nil, 400},
		{"patient token on the records route", "GET", "/v1/records/" + w.rec.ID, w.ptok, nil, nil, 403},
		{"patient token uploading a record", "POST", "/v1/records", w.ptok, map[string]any{"patient": "pat-1", "category": "labs", "content_type": "application/pdf", "content": "AAAA"}, nil, 403},
		{"regulator writes a record", "POST", "/v1/records", w.rtok, map[string]any{"patient": "pat-1", "category": "labs", "content_type": "application/pdf", "content": "AAAA"}, nil, 403},
		{"regulator reads clinical content", "GET", "/v1/records/" + w.rec.ID + "?purpose=PUBHLTH", w.rtok, nil, nil, 403},
		{"regulator shreds a record", "DELETE", "/v1/records/" + w.rec.ID, w.rtok, nil, nil, 403},
		{"regulator grants consent", "POST", "/v1/consents", w.rtok, map[string]any{"grantee": map[string]string{"org": "reg-x"}}, nil, 403},
		{"regulator lists a patient's records", "GET", "/v1/patients/pat-1/records?purpose=TREAT", w.rtok, nil, nil, 403},
		{"verifier reads the audit log", "GET", "/v1/audit/events", w.vtok, nil, nil, 403},
		{"hospital reads the audit log", "GET", "/v1/audit/events", w.atok, nil, nil, 403},
		{"patient reads the audit log", "GET", "/v1/audit/events", w.ptok, nil, nil, 403},
		{"hospital grants consent", "POST", "/v1/consents", w.btok, map[string]any{"grantee": map[string]string{"org": "hosp-b"}}, nil, 403},
		{"patient X revokes patient Y's grant", "POST", "/v1/consents/" + g1.Consent.ID + "/revoke", w.qtok, nil, nil, 404},
		{"patient X reads patient Y's grant", "GET", "/v1/consents/" + g1.Consent.ID, w.qtok, nil, nil, 404},
		{"hospital A reads a grant naming B", "GET", "/v1/consents/" + g1.Consent.ID, w.atok, nil, nil, 404},
		{"hospital revokes a grant", "POST", "/v1/consents/" + g1.Consent.ID + "/revoke", w.btok, nil, nil, 403},
		{"mass assignment: status", "POST", "/v1/consents", w.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "status": "active"}, nil, 400},
		{"mass assignment: patient on someone else's behalf", "POST", "/v1/consents", w.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "patient": "pat-2"}, nil, 400},
		{"mass assignment: ledger index", "POST", "/v1/consents", w.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "ledger_index": 0}, nil, 400},
		{"mass assignment: id", "POST", "/v1/consents", w.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "id": "cns_00000000000000000000000000000000"}, nil, 400},
		{"grant with both org and kind", "POST", "/v1/consents", w.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-b", "kind": "hospital"}}, nil, 400},
		{"grant for an unknown purpose", "POST", "/v1/consents", w.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "purposes": []string{"FUN"}}, nil, 400},
		{"grant for an unknown category", "POST", "/v1/consents", w.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "categories": []string{"astrology"}}, nil, 400},
		{"grant that ends before it starts", "POST", "/v1/consents", w.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "not_before": future, "not_after": past}, nil, 400},
		{"grant already expired", "POST", "/v1/consents", w.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "not_before": longAgo, "not_after": past}, nil, 400},
		{"break-glass with a short reason", "GET", "/v1/records/" + w.rec.ID + "?purpose=ETREAT", w.btok, nil, []string{HeaderBreakGlassName, "unconscious"}, 404},
		{"break-glass without a reason", "GET", "/v1/records/" + w.rec.ID + "?purpose=ETREAT", w.btok, nil, nil, 404},
		{"bad audit filter", "GET", "/v1/audit/events?decision=maybe", w.rtok, nil, nil, 400},
		{"bad audit time", "GET", "/v1/audit/events?since=yesterday", w.rtok, nil, nil, 400},
		{"bad cursor", "GET", "/v1/audit/events?cursor=not-a-cursor", w.rtok, nil, nil, 400},
	}
	before := w.size()
	appending := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.method == "GET" && strings.HasPrefix(tt.path, "/v1/records/") && tt.wantStatus == 404 {
				appending++ // a denied read is logged
			}
			status, body := w.do(tt.method, tt.path, tt.token, tt.body, tt.hdr...)
			if status != tt.wantStatus {
				t.Errorf("got %d %s, want %d", status, body, tt.wantStatus)
			}
			if e := decode[apiError](t, body); e.Error == "" || e.Message == "" || e.RequestID == "" {
				t.Errorf("error body %s lacks error, message or request_id", body)
			}
		})
	}
	if got := w.size(); got != before+uint64(appending) {
		t.Errorf("ledger grew by %d, want %d (only denied reads are logged)", got-before, appending)
	}

	t.Run("expired grant", func(t *testing.T) {
		// A grant that was valid and has run out: the gateway's clock moves
		// past its end.
		w2 := newWorld(t)
		notAfter := time.Now().Add(time.Hour).UTC()
		g := w2.grant(w2.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "purposes": []string{"TREAT"}, "not_after": notAfter.Format(time.RFC3339Nano)})
		w2.clock.set(func() time.Time { return notAfter.Add(time.Second) })
		status, body := w2.read(w2.btok, "TREAT")
		if status != http.StatusNotFound {
			t.Fatalf("read under an expired grant: %d %s", status, body)
		}
		log := w2.events("/v1/me/access-log", w2.ptok)
		if len(log.Events) != 1 || log.Events[0].Reason != "deny.expired" || log.Events[0].GrantID != g.Consent.ID {
			t.Errorf("access log %+v, want one deny.expired naming the grant", log.Events)
		}
		if status, body := w2.do("GET", "/v1/consents/"+g.Consent.ID, w2.ptok, nil); status != http.StatusOK || !strings.Contains(string(body), `"status":"expired"`) {
			t.Errorf("the patient's view of the expired grant: %d %s", status, body)
		}
	})
	t.Run("revoking twice", func(t *testing.T) {
		g := w.grant(w.ptok, map[string]any{"grantee": map[string]string{"kind": "hospital"}, "purposes": []string{"HRESCH"}})
		if status, _ := w.do("POST", "/v1/consents/"+g.Consent.ID+"/revoke", w.ptok, nil); status != http.StatusOK {
			t.Fatal("first revoke failed")
		}
		if status, _ := w.do("POST", "/v1/consents/"+g.Consent.ID+"/revoke", w.ptok, nil); status != http.StatusConflict {
			t.Errorf("second revoke: %d, want 409", status)
		}
	})
}

// HeaderBreakGlassName is the break-glass header.
const HeaderBreakGlassName = client.HeaderBreakGlass

// TestBreakGlass: emergency access without a grant is permitted for
// hospitals with a long enough reason, flagged everywhere, and a patient's
// explicit deny of emergency access is honoured.
func TestBreakGlass(t *testing.T) {
	w := newWorld(t)
	reason := "patient unconscious in ED, suspected DKA, need recent labs"
	if status, body := w.read(w.btok, "ETREAT", HeaderBreakGlassName, reason); status != http.StatusOK {
		t.Fatalf("break-glass read: %d %s", status, body)
	}
	flagged := w.events("/v1/audit/events?break_glass=true", w.rtok)
	if len(flagged.Events) != 1 || !flagged.Events[0].BreakGlass || flagged.Events[0].Reason != "permit.break-glass" {
		t.Fatalf("regulator's break-glass list: %+v", flagged.Events)
	}
	if mine := w.events("/v1/me/access-log", w.ptok); len(mine.Events) != 1 || !mine.Events[0].BreakGlass {
		t.Errorf("patient does not see the break-glass access: %+v", mine.Events)
	}
	// The ledger holds the reason's hash only.
	for _, e := range w.entries(ledger.TypeAccessDecided) {
		b, _ := ledger.Encode(e)
		if strings.Contains(string(b), "unconscious") {
			t.Errorf("ledger entry holds the justification text: %s", b)
		}
	}
	// The patient denies emergency access; break-glass is refused.
	w.grant(w.ptok, map[string]any{"grantee": map[string]string{"kind": "hospital"}, "decision": "deny", "purposes": []string{"ETREAT"}})
	if status, _ := w.read(w.btok, "ETREAT", HeaderBreakGlassName, reason); status != http.StatusNotFound {
		t.Errorf("break-glass against an explicit deny: %d, want 404", status)
	}
	// Not configured for hospitals: refused.
	w2 := newWorld(t, func(c *serveConfig) { c.BreakGlass = "" })
	if status, _ := w2.read(w2.btok, "ETREAT", HeaderBreakGlassName, reason); status != http.StatusNotFound {
		t.Errorf("break-glass when not allowed for the kind: %d, want 404", status)
	}
}

// TestRevocationRace: many reads race a revocation; once the revocation is
// acknowledged, no permit is logged and no content is served for that
// grant. The test counts the reads that really overlapped a revocation
// (began before it was acknowledged, ended after it was sent) and fails
// if, in several rounds, none did.
func TestRevocationRace(t *testing.T) {
	w := newWorld(t)
	const readers, rounds = 8, 10
	var overlapped int64
	for round := 0; round < rounds && overlapped == 0; round++ {
		g := w.grant(w.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "purposes": []string{"TREAT"}})
		var (
			revoking, acked      atomic.Bool
			overlaps, servedLate atomic.Int64
			wg                   sync.WaitGroup
			stop                 = make(chan struct{})
			progress             = make(chan struct{}, 1024)
		)
		for range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					afterAck := acked.Load()
					status, _ := w.read(w.btok, "TREAT")
					if !afterAck && revoking.Load() {
						overlaps.Add(1)
					}
					if afterAck && status == http.StatusOK {
						servedLate.Add(1) // began after the ack and was served
					}
					select {
					case progress <- struct{}{}:
					default:
					}
				}
			}()
		}
		waitReads := func(n int) {
			for range n {
				select {
				case <-progress:
				case <-t.Context().Done():
					t.Fatal("readers stalled")
				}
			}
		}
		waitReads(readers) // the readers are going
		revoking.Store(true)
		status, body := w.do("POST", "/v1/consents/"+g.Consent.ID+"/revoke", w.ptok, nil)
		acked.Store(true)
		if status != http.StatusOK {
			t.Fatalf("revoke: %d %s", status, body)
		}
		for len(progress) > 0 { // drop what came before the ack
			<-progress
		}
		waitReads(2 * readers) // reads that began after the ack
		close(stop)
		wg.Wait()
		if n := servedLate.Load(); n != 0 {
			t.Errorf("round %d: %d reads that began after the revocation was acknowledged were served", round, n)
		}
		revokeIndex := decode[consentResp](t, body).Receipt.Index
		read, err := w.ledger.Read(t.Context(), revokeIndex+1, w.size())
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range read {
			if ad, ok := e.Body.(*ledger.AccessDecided); ok && ad.Decision == "permit" && ad.GrantID == g.Consent.ID {
				t.Errorf("permit under the revoked grant logged at %d, after the revocation at %d", revokeIndex+1+uint64(i), revokeIndex)
			}
		}
		overlapped += overlaps.Load()
	}
	if overlapped == 0 {
		t.Fatalf("in %d rounds no read overlapped a revocation: the test proved nothing", rounds)
	}
}

// TestProjectionRebuild drops the consent projection, rebuilds it from the
// ledger and compares what the API shows.
func TestProjectionRebuild(t *testing.T) {
	w := newWorld(t)
	for i := range 5 {
		cr := w.grant(w.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "purposes": []string{"TREAT"}, "categories": []string{"labs"}})
		if i%2 == 0 {
			w.do("POST", "/v1/consents/"+cr.Consent.ID+"/revoke", w.ptok, nil)
		}
		w.read(w.btok, "TREAT")
	}
	snapshot := func() string {
		_, a := w.do("GET", "/v1/consents?limit=500", w.ptok, nil)
		_, b := w.do("GET", "/v1/audit/events?limit=500", w.rtok, nil)
		_, c := w.do("GET", "/v1/consents?limit=500", w.btok, nil)
		return string(a) + "\n" + string(b) + "\n" + string(c)
	}
	live := snapshot()
	if err := w.consent.Reset(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := w.follower.SyncAll(t.Context()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(live, snapshot()); diff != "" {
		t.Errorf("rebuilt projection differs (-live +rebuilt):\n%s", diff)
	}
	if !strings.Contains(live, "revoked") || !strings.Contains(live, "permit.grant") {
		t.Errorf("snapshot does not exercise revocations and permits: %s", live)
	}
}

// TestPatientRecordsListing: a hospital lists a patient's records and sees
// only what it may read — nothing at all before a grant, and never the
// records a grant does not cover.
func TestPatientRecordsListing(t *testing.T) {
	w := newWorld(t)
	w.putRecord(w.atok, "pat-1", "notes", "application/pdf", "AAAA")
	list := func(token, purpose string) []string {
		t.Helper()
		status, body := w.do("GET", "/v1/patients/pat-1/records?purpose="+purpose, token, nil)
		if status != http.StatusOK {
			t.Fatalf("list: %d %s", status, body)
		}
		out := decode[client.RecordList](t, body)
		var ids []string
		for _, r := range out.Records {
			ids = append(ids, r.ID)
		}
		return ids
	}
	if got := list(w.btok, "TREAT"); len(got) != 0 {
		t.Errorf("before any grant hospital B lists %v", got)
	}
	if got := list(w.atok, "TREAT"); len(got) != 2 {
		t.Errorf("the holder lists %v, want both its records", got)
	}
	w.grant(w.ptok, map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "categories": []string{"labs"}, "purposes": []string{"TREAT"}})
	if diff := cmp.Diff([]string{w.rec.ID}, list(w.btok, "TREAT")); diff != "" {
		t.Errorf("after a labs grant (-want +got):\n%s", diff)
	}
	if got := list(w.btok, "HPAYMT"); len(got) != 0 {
		t.Errorf("for another purpose hospital B lists %v", got)
	}
}
