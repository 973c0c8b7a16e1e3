package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/healthgw/healthgw/api"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/internal/testscale"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/comet"
	"github.com/healthgw/healthgw/ledger/comet/comettest"
	"github.com/healthgw/healthgw/ledger/unsettledstore"
)

// TestConsortiumUnknownOutcome is the 503-then-commit story: hospital A
// uploads a record and a patient grants consent at node 1 while two of
// the four validators are down. Both writes are answered 503, saying
// their outcome is unknown, with the key to repeat them and where to
// look; so are their repeats while the quorum is still lost (they
// resubmit the same entries). The quorum comes back and the transactions waiting in the
// mempools commit: the registration has its record (kept pending, then
// published as the registration is applied), and the repeats with the
// same Idempotency-Keys answer with the writes' results and append
// nothing: one registration, one grant.
func TestConsortiumUnknownOutcome(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a four-validator network")
	}
	// A short append timeout (scaled to the machine): the writes without
	// quorum are answered 503 sooner.
	c := newConsortiumWith(t, 4, consortiumOptions{net: comettest.Options{TimeoutCommit: 100 * time.Millisecond, AppendTimeout: testscale.Timeout(3 * time.Second)}})
	n1 := c.gws[0]
	hospA := n1.register("hosp-a", auth.KindHospital)
	// The grantee is homed at node 2, so that node 2 is a party to the
	// grant (consortium/routing) and applies it below.
	c.gws[1].register("hosp-b", auth.KindHospital)
	c.syncAll(t)
	atok, ptok := n1.token(hospA, ""), n1.patientToken("pat-1")
	upload := map[string]any{"patient": "pat-1", "category": "labs", "content_type": "application/fhir+json", "content": json.RawMessage(labFHIR)}
	grant := map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "categories": []string{"labs"}, "purposes": []string{"TREAT"}}
	recKey := []string{api.HeaderIdempotencyKey, `"upload-1"`}
	grantKey := []string{api.HeaderIdempotencyKey, `"grant-1"`}

	// Quorum lost: two of four validators stop.
	c.net.StopNode(2)
	c.net.StopNode(3)
	unknown := func(what string, status int, body []byte, key, prefix string) string {
		t.Helper()
		e := decode[apiError](t, body)
		if status != http.StatusServiceUnavailable || e.Outcome != "unknown" || e.IdempotencyKey != key ||
			!strings.HasPrefix(e.Location, prefix) || !strings.Contains(e.Message, "outcome is unknown") {
			t.Fatalf("%s without quorum: %d %s", what, status, body)
		}
		return strings.TrimPrefix(e.Location, prefix)
	}
	status, body := n1.do("POST", "/v1/records", atok, upload, recKey...)
	recID := unknown("upload", status, body, "upload-1", "/v1/records/")
	status, body = n1.do("POST", "/v1/consents", ptok, grant, grantKey...)
	consentID := unknown("grant", status, body, "grant-1", "/v1/consents/")
	if _, _, err := n1.vault.Open(t.Context(), recID); err == nil {
		t.Fatalf("record %s readable before its registration is known", recID)
	}
	// The client repeats both while the quorum is still lost: again 503,
	// outcome unknown, about the same record and consent. The gateway
	// submits the first attempts' envelopes again (ledger.Node keeps
	// them), so the repeats cannot commit a second entry.
	status, body = n1.do("POST", "/v1/records", atok, upload, recKey...)
	if id := unknown("upload repeated", status, body, "upload-1", "/v1/records/"); id != recID {
		t.Fatalf("upload repeated: record %s, first attempt %s", id, recID)
	}
	status, body = n1.do("POST", "/v1/consents", ptok, grant, grantKey...)
	if id := unknown("grant repeated", status, body, "grant-1", "/v1/consents/"); id != consentID {
		t.Fatalf("grant repeated: consent %s, first attempt %s", id, consentID)
	}

	// The quorum is back: the transactions in the mempools commit.
	c.net.StartNode(2)
	log1 := c.net.Log(0)
	waitCommitted(t, log1, func() bool {
		return len(entriesFor(n1, ledger.TypeRecordRegistered, recID)) >= 1 &&
			len(entriesFor(n1, ledger.TypeConsentGranted, consentID)) >= 1
	})
	// The registration has its record: still pending until the store
	// applies the registration, then published, with no retry.
	if _, _, err := n1.vault.Open(t.Context(), recID); err == nil {
		t.Logf("record %s already published by the time the test looked", recID)
	}
	if err := n1.follower.Sync(t.Context(), n1.size()); err != nil {
		t.Fatal(err)
	}
	if _, content, err := n1.vault.Open(t.Context(), recID); err != nil || !strings.Contains(string(content), "HbA1c") {
		t.Fatalf("the committed registration's record: %q, %v", content, err)
	}

	// The repeats with the same keys find the writes committed.
	size := n1.size()
	status, body = n1.do("POST", "/v1/records", atok, upload, recKey...)
	if status != http.StatusCreated {
		t.Fatalf("upload repeated: %d %s", status, body)
	}
	rc := decode[created](t, body)
	reg := entriesFor(n1, ledger.TypeRecordRegistered, recID)
	if rc.ID != recID || rc.LedgerIndex != reg[0].index || rc.Commitment != reg[0].e.Body.(*ledger.RecordRegistered).Commitment {
		t.Errorf("repeated upload = %+v, want record %s registered at %d", rc, recID, reg[0].index)
	}
	status, body = n1.do("POST", "/v1/consents", ptok, grant, grantKey...)
	if status != http.StatusCreated {
		t.Fatalf("grant repeated: %d %s", status, body)
	}
	gr := decode[struct {
		Consent struct {
			ID          string `json:"id"`
			Status      string `json:"status"`
			LedgerIndex uint64 `json:"ledger_index"`
		} `json:"consent"`
	}](t, body)
	granted := entriesFor(n1, ledger.TypeConsentGranted, consentID)
	if gr.Consent.ID != consentID || gr.Consent.Status != "active" || gr.Consent.LedgerIndex != granted[0].index {
		t.Errorf("repeated grant = %+v, want consent %s granted at %d", gr.Consent, consentID, granted[0].index)
	}
	// Once more: the stored results, byte for byte.
	for _, r := range []struct {
		path, token string
		body        any
		key         []string
	}{{"/v1/records", atok, upload, recKey}, {"/v1/consents", ptok, grant, grantKey}} {
		st, first := n1.do("POST", r.path, r.token, r.body, r.key...)
		st2, again := n1.do("POST", r.path, r.token, r.body, r.key...)
		if st != st2 || string(first) != string(again) {
			t.Errorf("%s: replays differ: %d %s / %d %s", r.path, st, first, st2, again)
		}
	}
	if got := n1.size(); got != size {
		t.Errorf("the repeats appended %d entries", got-size)
	}
	if n := len(entriesFor(n1, ledger.TypeRecordRegistered, recID)); n != 1 {
		t.Errorf("%d registrations of %s, want 1", n, recID)
	}
	if n := len(entriesFor(n1, ledger.TypeConsentGranted, consentID)); n != 1 {
		t.Errorf("%d grants of %s, want 1", n, consentID)
	}
	// No record registered without its record.
	for _, e := range n1.entries(ledger.TypeRecordRegistered) {
		b := e.Body.(*ledger.RecordRegistered)
		if _, _, err := n1.vault.Open(t.Context(), b.RecordID); err != nil {
			t.Errorf("record %s is registered but not in its holder's vault: %v", b.RecordID, err)
		}
	}
	// The grant holds at the grantee's home once it applies it.
	c.net.StartNode(3)
	n2 := c.gws[1]
	if err := n2.follower.Sync(t.Context(), size); err != nil {
		t.Fatal(err)
	}
	if g, err := n2.consent.Grant(t.Context(), consentID); err != nil || g.Revoked || g.GrantedIndex != granted[0].index {
		t.Errorf("the grant at node 2: %+v, %v", g, err)
	}
}

// indexed is an entry with its index.
type indexed struct {
	index uint64
	e     ledger.Entry
}

// entriesFor returns the entries of type typ about id (a record or a
// consent), with their indices.
func entriesFor(g *testGateway, typ ledger.Type, id string) []indexed {
	g.t.Helper()
	es, err := g.node.Read(g.t.Context(), 0, g.size())
	if err != nil {
		g.t.Fatal(err)
	}
	var out []indexed
	for i, e := range es {
		if e.Type != typ {
			continue
		}
		switch body := e.Body.(type) {
		case *ledger.RecordRegistered:
			if body.RecordID == id {
				out = append(out, indexed{uint64(i), e})
			}
		case *ledger.ConsentGranted:
			if body.ConsentID == id {
				out = append(out, indexed{uint64(i), e})
			}
		}
	}
	return out
}

// waitCommitted waits, commit by commit, until cond holds on node l
// (bounded, scaled to the machine).
func waitCommitted(t *testing.T, l *comet.Log, cond func() bool) {
	t.Helper()
	timeout := testscale.Timeout(2 * time.Minute)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		next := l.Committed()
		if cond() {
			return
		}
		select {
		case <-next:
		case <-deadline.C:
			t.Fatalf("not committed after %v", timeout)
		}
	}
}

// restart stops gateway i (its HTTP server and every component) and opens
// it again from its data directory and database, over the same running
// CometBFT node, listening on the same address. Whatever the gateway held
// in memory is gone; the node's mempool (standing in for a peer's: a real
// restart takes the in-process node down too) still holds what was
// submitted.
func (c *consortium) restart(t *testing.T, i int) *testGateway {
	t.Helper()
	old := c.gws[i]
	old.srv.Close()
	if err := old.gateway.close(); err != nil {
		t.Fatalf("stop gateway %d: %v", i, err)
	}
	g, err := openGatewayOn(t.Context(), old.cfg, consortiumLogger(i), &env{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard}, c.net.Log(i))
	if err != nil {
		t.Fatalf("restart gateway %d: %v", i, err)
	}
	ln, err := net.Listen("tcp", old.cfg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(g.api.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	tg := &testGateway{gateway: g, t: t, srv: srv, url: old.url}
	t.Cleanup(func() {
		srv.Close()
		if err := g.close(); err != nil {
			t.Errorf("close restarted gateway %d: %v", i, err)
		}
	})
	c.gws[i] = tg
	return tg
}

// TestConsortiumUnknownOutcomeAcrossRestart: an upload and a grant are
// answered 503 (quorum lost, outcome unknown), the gateway restarts, and
// the client repeats both with the same Idempotency-Keys, first while the
// quorum is still lost, then after it is back. The restarted gateway
// loaded the envelopes it kept in its database and resubmits them byte
// for byte, so the first transactions (still in a mempool) and the
// repeats commit one registration and one grant; without the kept
// envelopes the repeats seal new entries and both commit.
func TestConsortiumUnknownOutcomeAcrossRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a four-validator network")
	}
	c := newConsortiumWith(t, 4, consortiumOptions{net: comettest.Options{TimeoutCommit: 100 * time.Millisecond, AppendTimeout: testscale.Timeout(3 * time.Second)}})
	n1 := c.gws[0]
	hospA := n1.register("hosp-a", auth.KindHospital)
	c.gws[1].register("hosp-b", auth.KindHospital)
	c.syncAll(t)
	upload := map[string]any{"patient": "pat-1", "category": "labs", "content_type": "application/fhir+json", "content": json.RawMessage(labFHIR)}
	grant := map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "categories": []string{"labs"}, "purposes": []string{"TREAT"}}
	recKey := []string{api.HeaderIdempotencyKey, `"upload-r"`}
	grantKey := []string{api.HeaderIdempotencyKey, `"grant-r"`}
	unknown := func(what string, status int, body []byte, prefix string) string {
		t.Helper()
		e := decode[apiError](t, body)
		if status != http.StatusServiceUnavailable || e.Outcome != "unknown" || !strings.HasPrefix(e.Location, prefix) {
			t.Fatalf("%s without quorum: %d %s", what, status, body)
		}
		return strings.TrimPrefix(e.Location, prefix)
	}

	c.net.StopNode(2)
	c.net.StopNode(3)
	status, body := n1.do("POST", "/v1/records", n1.token(hospA, ""), upload, recKey...)
	recID := unknown("upload", status, body, "/v1/records/")
	status, body = n1.do("POST", "/v1/consents", n1.patientToken("pat-1"), grant, grantKey...)
	consentID := unknown("grant", status, body, "/v1/consents/")
	if got := n1.node.Kept(); got != 2 {
		t.Fatalf("%d envelopes kept for a retry, want 2", got)
	}

	// The gateway restarts while the quorum is lost; it settles kept
	// envelopes after each commit, as serve does.
	n1 = c.restart(t, 0)
	settleCtx, stopSettle := context.WithCancel(t.Context())
	settleDone := make(chan struct{})
	go func() { defer close(settleDone); n1.settleKept(settleCtx, consortiumLogger(0)) }()
	t.Cleanup(func() { stopSettle(); <-settleDone })
	if got := n1.node.Unsettled(); got != 2 {
		t.Fatalf("after the restart the node has %d envelopes for a retry, want 2", got)
	}
	atok, ptok := n1.token(hospA, ""), n1.patientToken("pat-1")
	status, body = n1.do("POST", "/v1/records", atok, upload, recKey...)
	if id := unknown("upload repeated after the restart", status, body, "/v1/records/"); id != recID {
		t.Fatalf("upload repeated: record %s, first attempt %s", id, recID)
	}
	status, body = n1.do("POST", "/v1/consents", ptok, grant, grantKey...)
	if id := unknown("grant repeated after the restart", status, body, "/v1/consents/"); id != consentID {
		t.Fatalf("grant repeated: consent %s, first attempt %s", id, consentID)
	}

	// The quorum is back: what waits in the mempool commits.
	c.net.StartNode(2)
	waitCommitted(t, c.net.Log(0), func() bool {
		return len(entriesFor(n1, ledger.TypeRecordRegistered, recID)) >= 1 &&
			len(entriesFor(n1, ledger.TypeConsentGranted, consentID)) >= 1
	})
	// The repeats answer with the writes' results.
	status, body = n1.do("POST", "/v1/records", atok, upload, recKey...)
	if status != http.StatusCreated {
		t.Fatalf("upload repeated once the quorum is back: %d %s", status, body)
	}
	status, body = n1.do("POST", "/v1/consents", ptok, grant, grantKey...)
	if status != http.StatusCreated {
		t.Fatalf("grant repeated once the quorum is back: %d %s", status, body)
	}
	// A later write commits after every transaction submitted before it
	// (the mempool is reaped in order): a second copy of either entry
	// would be in the log by then.
	marker := map[string]any{"patient": "pat-2", "category": "labs", "content_type": "application/fhir+json", "content": json.RawMessage(labFHIR)}
	if status, body := n1.do("POST", "/v1/records", atok, marker); status != http.StatusCreated {
		t.Fatalf("a later upload: %d %s", status, body)
	}
	if n := len(entriesFor(n1, ledger.TypeRecordRegistered, recID)); n != 1 {
		t.Errorf("%d registrations of %s, want 1", n, recID)
	}
	if n := len(entriesFor(n1, ledger.TypeConsentGranted, consentID)); n != 1 {
		t.Errorf("%d grants of %s, want 1", n, consentID)
	}
	// The repeats found the writes committed and appended nothing; the
	// kept envelopes are settled from the log after a commit, and their
	// rows deleted.
	keeper, err := unsettledstore.Open(t.Context(), n1.db)
	if err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(testscale.Timeout(time.Minute))
	defer deadline.Stop()
	for {
		rows, err := keeper.Kept(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if n1.node.Kept() == 0 && len(rows) == 0 {
			break
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("still kept once committed: Kept() = %d, %d rows", n1.node.Kept(), len(rows))
		}
	}
}
