package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwe"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/ledger"
)

// wireTap records the answers a gateway sends to other gateways' federation
// requests, as they cross the wire.
type wireTap struct {
	mu      sync.Mutex
	answers []tappedAnswer
}

type tappedAnswer struct {
	path, contentType string
	body              []byte
}

func (w *wireTap) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/federation/") {
			h.ServeHTTP(rw, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		w.mu.Lock()
		w.answers = append(w.answers, tappedAnswer{path: r.URL.Path, contentType: rec.Header().Get("Content-Type"), body: rec.Body.Bytes()})
		w.mu.Unlock()
		for k, v := range rec.Header() {
			rw.Header()[k] = v
		}
		rw.WriteHeader(rec.Code)
		rw.Write(rec.Body.Bytes())
	})
}

// TestConsortiumFederatedRead (issue 14, must-show 1): over four nodes,
// hospital B at its own gateway lists patient P's records across the
// consortium (only those it may read), reads one held by hospital A
// through its gateway (sealed end to end, to B's gateway or, asked for, to
// B's own encryption key; the ledger at every node has A's decision logged
// for B), is denied another exactly as at A, and gets
// an honest error, not a denial, once A's gateway is down.
//
// Gateway 0 is the patients' custodian (where P grants), gateway 1 homes
// hospital A, gateway 2 hospital B, gateway 3 hospital D, which holds a
// record of P that no grant lets B read.
func TestConsortiumFederatedRead(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a four-validator network")
	}
	const (
		patient = "pat-fed-1"
		marker  = "HbA1c-federated-7f31"
	)
	tapA := &wireTap{}
	c := newConsortiumWith(t, 4, consortiumOptions{wrap: func(i int, h http.Handler) http.Handler {
		if i == 1 {
			return tapA.wrap(h)
		}
		return h
	}})
	cust, gA, gB, gD := c.gws[0], c.gws[1], c.gws[2], c.gws[3]
	hospA := gA.register("hosp-a", auth.KindHospital)
	hospB := gB.register("hosp-b", auth.KindHospital)
	hospD := gD.register("hosp-d", auth.KindHospital)
	c.syncAll(t)

	labs := json.RawMessage(`{"resourceType":"Observation","status":"final","code":{"text":"` + marker + `"}}`)
	tokA := gA.token(hospA, "")
	recLabs := gA.putRecord(tokA, patient, "labs", "application/fhir+json", labs)
	recImg := gA.putRecord(tokA, patient, "imaging", "application/fhir+json", json.RawMessage(labFHIR))
	gD.putRecord(gD.token(hospD, ""), patient, "labs", "application/fhir+json", json.RawMessage(labFHIR))
	c.syncAll(t)
	// P grants hospital B one labs record of A for treatment, at the
	// custodian (it reaches every holder's gateway: A's and D's). D's
	// labs record is not covered.
	status, body := cust.do("POST", "/v1/consents", cust.patientToken(patient), map[string]any{
		"grantee": map[string]string{"org": "hosp-b"}, "categories": []string{"labs"}, "purposes": []string{"TREAT"},
		"record_ids": []string{recLabs.ID},
	})
	if status != http.StatusCreated {
		t.Fatalf("grant at the custodian: %d %s", status, body)
	}
	c.syncAll(t)

	tokB := gB.token(hospB, "")
	// The locator at B: A's labs record only (not A's imaging, not D's
	// labs), with A's endpoint.
	status, body = gB.do("GET", "/v1/patients/"+patient+"/records?purpose=TREAT", tokB, nil)
	if status != http.StatusOK {
		t.Fatalf("list at B: %d %s", status, body)
	}
	list := decode[client.RecordList](t, body)
	var got []string
	for _, r := range list.Records {
		got = append(got, fmt.Sprintf("%s %s %s %s %s %d", r.ID, r.Holder, r.HolderEndpoint, r.ReadPath, r.ContentType, r.Size))
	}
	want := []string{fmt.Sprintf("%s hosp-a %s /v1/holders/hosp-a/records/%s application/fhir+json %d", recLabs.ID, gA.url, recLabs.ID, len(labs))}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("listing at B (-want +got):\n%s", diff)
	}
	// The listing came from the custodian alone: no holder was asked
	// (so none learnt that B asked about P).
	tapA.mu.Lock()
	for _, a := range tapA.answers {
		if strings.HasPrefix(a.path, "/v1/federation/patients/") {
			t.Errorf("the locator asked A's gateway: %s", a.path)
		}
	}
	tapA.mu.Unlock()

	// The listing is paged: A lists P's records at its own gateway one
	// per page, and following next_cursor gives its labs and imaging
	// records, each once (not D's: no grant lets A read it).
	var paged []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 4 {
			t.Fatal("the listing's cursors do not end")
		}
		path := "/v1/patients/" + patient + "/records?purpose=TREAT&limit=1"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		status, body := gA.do("GET", path, tokA, nil)
		if status != http.StatusOK {
			t.Fatalf("paged listing at A: %d %s", status, body)
		}
		l := decode[client.RecordList](t, body)
		if len(l.Records) > 1 {
			t.Errorf("page %d at A: %d records", pages, len(l.Records))
		}
		for _, r := range l.Records {
			paged = append(paged, r.ID)
		}
		if l.NextCursor == "" {
			break
		}
		cursor = l.NextCursor
	}
	slices.Sort(paged)
	wantPaged := []string{recLabs.ID, recImg.ID}
	slices.Sort(wantPaged)
	if diff := cmp.Diff(wantPaged, paged); diff != "" {
		t.Errorf("A's paged listing (-want +got):\n%s", diff)
	}
	if status, body := gA.do("GET", "/v1/patients/"+patient+"/records?purpose=TREAT&cursor=forged", tokA, nil); status != http.StatusBadRequest {
		t.Errorf("a forged cursor: %d %s", status, body)
	}

	// The read through B: decided and logged at A, sealed on the wire.
	sizeBefore := gA.size()
	status, body = gB.do("GET", list.Records[0].ReadPath+"?purpose=TREAT", tokB, nil)
	if status != http.StatusOK {
		t.Fatalf("federated read at B: %d %s", status, body)
	}
	rc := decode[client.RecordContent](t, body)
	if rc.ID != recLabs.ID || rc.Holder != "hosp-a" || !jsonEqual(t, rc.Content, labs) {
		t.Errorf("federated read: %+v, content %s", rc.Record, rc.Content)
	}
	tapA.mu.Lock()
	answers := append([]tappedAnswer(nil), tapA.answers...)
	tapA.mu.Unlock()
	var sawRecord bool
	for _, a := range answers {
		if a.contentType != "application/jose" || bytes.Contains(a.body, []byte(marker)) || bytes.Contains(a.body, []byte(recLabs.ID)) {
			t.Errorf("A's answer to %s crossed the wire as %q, in the clear: %.120s", a.path, a.contentType, a.body)
		}
		sawRecord = sawRecord || a.path == "/v1/federation/records/"+recLabs.ID
	}
	if !sawRecord {
		t.Fatalf("no federated read reached A's gateway (%d answers seen)", len(answers))
	}

	// Sealed to B's own encryption key (Accept: application/jose): B's
	// gateway passes A's JWE through; only hospital B opens it.
	status, body = gB.do("GET", list.Records[0].ReadPath+"?purpose=TREAT", tokB, nil, "Accept", "application/jose")
	if status != http.StatusOK || bytes.Contains(body, []byte(marker)) {
		t.Fatalf("federated read sealed to B: %d %.200s", status, body)
	}
	plain, err := jwe.Decrypt(body, jwe.WithKey(jwa.ECDH_ES_A256KW(), hospB.EncKey))
	if err != nil || !jsonEqual(t, plain, labs) {
		t.Errorf("hospital B opens the JWE: %v, %s", err, plain)
	}

	// Denied: A's imaging record, which no grant covers, and a record
	// that does not exist: the same 404 as at A directly.
	_, directDeny := gA.do("GET", "/v1/records/"+recImg.ID+"?purpose=TREAT", gA.token(hospB, ""), nil)
	for _, id := range []string{recImg.ID, "no-such-record"} {
		status, body := gB.do("GET", "/v1/holders/hosp-a/records/"+id+"?purpose=TREAT", tokB, nil)
		if e := decode[client.Error](t, body); status != http.StatusNotFound || e.Error != "not_found" || e.Message != decode[client.Error](t, directDeny).Message {
			t.Errorf("federated read of %s: %d %s, want the 404 of a direct deny (%s)", id, status, body, directDeny)
		}
	}

	// Every node has A's decisions for B: authored by A's gateway for
	// hosp-a, opened at the parties (A, B, the custodian) as hosp-b's
	// reads (the permit, then the two denies), and at D not at all.
	c.syncAll(t)
	size := gA.size()
	var decided []uint64
	envs, err := c.net.Log(1).Envelopes(t.Context(), sizeBefore, size)
	if err != nil {
		t.Fatal(err)
	}
	for i, env := range envs {
		h, err := ledger.DecodeHeader(env.Header)
		if err != nil {
			t.Fatal(err)
		}
		if h.Type == ledger.TypeAccessDecided && h.Author == gA.node.Gateway() && h.Org == "hosp-a" {
			decided = append(decided, sizeBefore+uint64(i))
		}
	}
	// The two permits through B, the direct deny at A, the two denies
	// through B.
	wantDecisions := []string{"hosp-b " + recLabs.ID + " permit", "hosp-b " + recLabs.ID + " permit", "hosp-b " + recImg.ID + " deny", "hosp-b " + recImg.ID + " deny", "hosp-b no-such-record deny"}
	for gi, g := range c.gws {
		genvs, err := c.net.Log(gi).Envelopes(t.Context(), sizeBefore, size)
		if err != nil {
			t.Fatal(err)
		}
		var seen []string
		for _, idx := range decided {
			if !bytes.Equal(genvs[idx-sizeBefore].Header, envs[idx-sizeBefore].Header) {
				t.Errorf("node %d has another header at %d", gi, idx)
			}
			o, err := g.node.Open(t.Context(), idx)
			if gi == 3 {
				if !errors.Is(err, ledger.ErrNotRecipient) {
					t.Errorf("node 3 (not a party) opens A's decision %d: %v", idx, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("node %d opens A's decision %d: %v", gi, idx, err)
			}
			d, ok := o.Entry.Body.(*ledger.AccessDecided)
			if !ok {
				t.Fatalf("node %d: entry %d body %T", gi, idx, o.Entry.Body)
			}
			if d.Requester == "hosp-b" {
				seen = append(seen, d.Requester+" "+d.RecordID+" "+d.Decision)
			}
		}
		if gi == 3 {
			if len(decided) != len(wantDecisions) {
				t.Errorf("%d decisions by A since the listing, want %d", len(decided), len(wantDecisions))
			}
			continue
		}
		if diff := cmp.Diff(wantDecisions, seen); diff != "" {
			t.Errorf("node %d: A's decisions for hosp-b (-want +got):\n%s", gi, diff)
		}
	}

	// Direct reads at the holder keep working.
	if status, body := gA.do("GET", "/v1/records/"+recLabs.ID, tokA, nil); status != http.StatusOK {
		t.Errorf("A reads its own record at A: %d %s", status, body)
	}

	// A's gateway goes down: the listing, made from the ledger at the
	// custodian, still lists A's record; the read is a 502 saying the
	// holder is unreachable, never a 404.
	gA.srv.Close()
	status, body = gB.do("GET", "/v1/patients/"+patient+"/records?purpose=TREAT", tokB, nil)
	if status != http.StatusOK {
		t.Fatalf("list at B with A down: %d %s", status, body)
	}
	list = decode[client.RecordList](t, body)
	if len(list.Records) != 1 || list.Records[0].ID != recLabs.ID || list.Records[0].HolderEndpoint != gA.url {
		t.Errorf("listing with A down: %s", body)
	}
	status, body = gB.do("GET", "/v1/holders/hosp-a/records/"+recLabs.ID+"?purpose=TREAT", tokB, nil)
	if e := decode[client.Error](t, body); status != http.StatusBadGateway || e.Error != "holder_unreachable" || !strings.Contains(e.Message, "unreachable") {
		t.Errorf("read with A down: %d %s, want 502 holder_unreachable", status, body)
	}
	// The custodian's gateway goes down: no listing can be made, and B is
	// told so (never an empty listing that looks like "no records").
	cust.srv.Close()
	status, body = gB.do("GET", "/v1/patients/"+patient+"/records?purpose=TREAT", tokB, nil)
	if e := decode[client.Error](t, body); status != http.StatusBadGateway || e.Error != "locator_unreachable" || !strings.Contains(e.Message, "custodian") {
		t.Errorf("list with the custodian down: %d %s, want 502 locator_unreachable", status, body)
	}
}

func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return cmp.Equal(x, y)
}
