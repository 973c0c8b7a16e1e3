package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/tiles"
)

func TestLedgerCheckpoint(t *testing.T) {
	ts := newTestServer(t)
	if rec := ts.do("GET", "/v1/ledger/checkpoint", "", nil); rec.Code != http.StatusUnauthorized {
		t.Errorf("anonymous: %d", rec.Code)
	}
	rec := ts.do("GET", "/v1/ledger/checkpoint", "pat-1", nil)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/plain; charset=utf-8" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("checkpoint: %d %v", rec.Code, rec.Header())
	}
	v, err := ledger.ParseVerifierKey(ts.ledger.vkey)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := ledger.OpenCheckpoint(rec.Body.Bytes(), v, "api.test/log")
	if err != nil || cp.Size != 5 {
		t.Errorf("served checkpoint %+v does not verify: %v", cp, err)
	}
	ts.ledger.checkpoint = func() ([]byte, error) { return nil, ledger.ErrUnavailable }
	rec = ts.do("GET", "/v1/ledger/checkpoint", "pat-1", nil)
	if e := errorOf(t, rec); rec.Code != http.StatusServiceUnavailable || e.Error != "unavailable" {
		t.Errorf("checkpoint while the ledger is down: %d %+v", rec.Code, e)
	}
}

func TestLedgerEntry(t *testing.T) {
	ts := newTestServer(t)
	v, err := ledger.ParseVerifierKey(ts.ledger.vkey)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []string{"", "3", "5"} {
		path := "/v1/ledger/entries/2"
		if size != "" {
			path += "?tree_size=" + size
		}
		rec := ts.do("GET", path, "hosp-a", nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		p := decodeBody[EntryProof](t, rec)
		want := uint64(5)
		if size != "" {
			want, _ = strconv.ParseUint(size, 10, 64)
		}
		if p.Index != 2 || p.TreeSize != want || p.LeafHash != tlog.RecordHash(p.Entry) || p.Checkpoint == "" {
			t.Errorf("%s: %+v", path, p)
		}
		root, err := ledger.TreeHash(t.Context(), ts.ledger, want)
		if err != nil {
			t.Fatal(err)
		}
		if p.RootHash != root {
			t.Errorf("%s: root %v, want %v", path, p.RootHash, root)
		}
		if err := tlog.CheckRecord(p.Proof, int64(p.TreeSize), p.RootHash, int64(p.Index), p.LeafHash); err != nil {
			t.Errorf("%s: inclusion proof: %v", path, err)
		}
		cp, err := ledger.OpenCheckpoint([]byte(p.Checkpoint), v, "")
		if err != nil || cp.Size != 5 {
			t.Errorf("%s: checkpoint %+v: %v", path, cp, err)
		}
	}
	for _, tt := range []struct {
		path   string
		status int
		code   string
	}{
		{"/v1/ledger/entries/5", http.StatusNotFound, "not_found"},
		{"/v1/ledger/entries/2?tree_size=9", http.StatusNotFound, "not_found"},
		{"/v1/ledger/entries/3?tree_size=2", http.StatusBadRequest, "invalid_request"},
		{"/v1/ledger/entries/-1", http.StatusBadRequest, "invalid_request"},
		{"/v1/ledger/entries/x", http.StatusBadRequest, "invalid_request"},
		{"/v1/ledger/entries/1?tree_size=big", http.StatusBadRequest, "invalid_request"},
	} {
		rec := ts.do("GET", tt.path, "hosp-a", nil)
		if e := errorOf(t, rec); rec.Code != tt.status || e.Error != tt.code {
			t.Errorf("%s: %d %+v, want %d %s", tt.path, rec.Code, e, tt.status, tt.code)
		}
	}
	ts.ledger.sizeErr = errors.New("database is locked")
	rec := ts.do("GET", "/v1/ledger/entries/1", "hosp-a", nil)
	if e := errorOf(t, rec); rec.Code != http.StatusInternalServerError || e.Message != "Internal error." {
		t.Errorf("storage failure: %d %+v", rec.Code, e)
	}
}

func TestLedgerConsistency(t *testing.T) {
	ts := newTestServer(t)
	for _, path := range []string{"/v1/ledger/proofs/consistency?from=2&to=5", "/v1/ledger/proofs/consistency?from=3", "/v1/ledger/proofs/consistency?from=5&to=5"} {
		rec := ts.do("GET", path, "reg-x", nil)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		p := decodeBody[ConsistencyProof](t, rec)
		if p.To != 5 || p.Proof == nil {
			t.Errorf("%s: %+v", path, p)
		}
		if err := tlog.CheckTree(p.Proof, int64(p.To), p.ToRoot, int64(p.From), p.FromRoot); err != nil {
			t.Errorf("%s: proof does not check: %v", path, err)
		}
	}
	for _, tt := range []struct {
		query  string
		status int
	}{
		{"", http.StatusBadRequest},
		{"from=0", http.StatusBadRequest},
		{"from=4&to=2", http.StatusBadRequest},
		{"from=1&to=x", http.StatusBadRequest},
		{"from=1&to=9", http.StatusNotFound},
	} {
		rec := ts.do("GET", "/v1/ledger/proofs/consistency?"+tt.query, "reg-x", nil)
		if rec.Code != tt.status {
			t.Errorf("%q: %d %s, want %d", tt.query, rec.Code, rec.Body, tt.status)
		}
	}
}

func TestLedgerTiles(t *testing.T) {
	ts := newTestServer(t)
	rec := ts.do("GET", "/ledger/tile/0/000", "", nil)
	if rec.Code != http.StatusOK || rec.Body.String() != "tile /tile/0/000" {
		t.Errorf("tiles: %d %q", rec.Code, rec.Body)
	}
	if rec := ts.do("HEAD", "/ledger/checkpoint", "", nil); rec.Code != http.StatusOK {
		t.Errorf("HEAD tiles: %d", rec.Code)
	}
}

// TestLedgerUnavailable: a ledger that cannot serve its checkpoint makes
// every proof route a 503, with no detail.
func TestLedgerUnavailable(t *testing.T) {
	ts := newTestServer(t)
	ts.ledger.checkpoint = func() ([]byte, error) { return nil, errors.Join(ledger.ErrUnavailable, errors.New("pq: gone")) }
	for _, path := range []string{"/v1/ledger/entries/1", "/v1/ledger/entries/1?tree_size=3", "/v1/ledger/proofs/consistency?from=1&to=3"} {
		rec := ts.do("GET", path, "hosp-a", nil)
		if e := errorOf(t, rec); rec.Code != http.StatusServiceUnavailable || e.Error != "unavailable" || strings.Contains(rec.Body.String(), "pq:") {
			t.Errorf("%s: %d %+v", path, rec.Code, e)
		}
	}
}

// TestCatchUp: the query routes' catch-up syncs the projections to the
// ledger's size, and reports either failing.
func TestCatchUp(t *testing.T) {
	ts := newTestServer(t)
	sync := &fakeSync{}
	ts.projections = sync
	if err := ts.catchUp(t.Context()); err != nil || len(sync.calls) != 1 || sync.calls[0] != 5 {
		t.Errorf("catchUp: %v, synced to %v", err, sync.calls)
	}
	sync.sync = func(uint64) error { return errors.New("broken") }
	if err := ts.catchUp(t.Context()); err == nil {
		t.Error("a failing sync was not reported")
	}
	ts.ledger.sizeErr = errors.New("locked")
	if err := ts.catchUp(t.Context()); err == nil {
		t.Error("a failing size was not reported")
	}
}

// TestLedgerEntryBodies: GET /v1/ledger/entries/{i} serves the leaf and
// its proof to every authenticated caller, and the entry's header and
// opening only to the callers entitled to the body: the parties the entry
// names (holder, grantee, requester, issuer, verifier, the registered
// org), the patient it is about, and regulators. Every body served
// verifies against the public tree (client.VerifyEntry, and
// ledger.CheckEntry against the leaf as the tiles hold it) and never
// carries the patient's pseudonym; a non-entitled caller's answer has no
// trace of a body, and is the answer for an entry sealed to other
// gateways.
func TestLedgerEntryBodies(t *testing.T) {
	ts := newTestServer(t)
	l := ts.ledger
	verifierReg := l.add(t, "gateway", &ledger.OrgRegistered{ID: "ins-v", Name: "Insurer V", Kind: "verifier"})
	proof := l.add(t, "ins-v", &ledger.ProofVerified{Verifier: "ins-v", Statement: "age", Params: map[string]string{"cutoff": "2008-01-01"},
		Challenge: "ch-1", Valid: true, Issuer: "hosp-a", Nullifier: strings.Repeat("1", 64)})
	j, err := ledger.NewJustification("unconscious in ED, need labs & meds <now>")
	if err != nil {
		t.Fatal(err)
	}
	ts.openings[j.Commitment().String()] = j
	glass := l.add(t, "hosp-a", &ledger.AccessDecided{Requester: "hosp-b", RecordID: recID, Patient: "ps_pat-1", Category: "labs", Purpose: "ETREAT",
		Decision: "permit", Reason: "permit.break-glass", BreakGlass: true, JustificationCommitment: j.Commitment().String(), RequestID: "r2"})
	sealed := l.add(t, "hosp-a", &ledger.RecordShredded{RecordID: recID, Holder: "hosp-a", Patient: "ps_pat-1"})
	l.sealedElsewhere = map[uint64]bool{sealed: true}
	v, err := ledger.ParseVerifierKey(l.vkey)
	if err != nil {
		t.Fatal(err)
	}

	// entitled lists, per entry, the callers who see its body; every
	// other token sees the leaf and the proof only.
	tokens := []string{"hosp-a", "hosp-b", "noscope", "ins-v", "reg-x", "pat-1", "pat-2"}
	entitled := map[uint64][]string{
		entryOrgA:   {"hosp-a", "reg-x"},                    // the org registered
		entryRecord: {"hosp-a", "pat-1", "reg-x"},           // holder, patient
		entryGrant:  {"hosp-b", "pat-1", "reg-x"},           // grantee, patient
		entryAccess: {"hosp-a", "hosp-b", "pat-1", "reg-x"}, // holder (decider), requester, patient
		entryIssuer: {"hosp-a", "reg-x"},                    // issuer
		verifierReg: {"ins-v", "reg-x"},
		proof:       {"ins-v", "reg-x"}, // verifier
		glass:       {"hosp-a", "hosp-b", "pat-1", "reg-x"},
		sealed:      nil, // this gateway cannot open it
	}
	leaves := tileLeaves(t, l)
	for index, who := range entitled {
		leaf := leaves[index] // the leaf as the public tiles serve it
		for _, tok := range tokens {
			rec := ts.do("GET", "/v1/ledger/entries/"+strconv.FormatUint(index, 10), tok, nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("entry %d as %s: %d %s", index, tok, rec.Code, rec.Body)
			}
			p := decodeBody[EntryProof](t, rec)
			if string(p.Entry) != string(leaf) {
				t.Errorf("entry %d as %s: leaf %s, want %s", index, tok, p.Entry, leaf)
			}
			if !slices.Contains(who, tok) {
				if p.Header != nil || p.Opening != nil || strings.Contains(rec.Body.String(), `"header"`) || strings.Contains(rec.Body.String(), `"opening"`) {
					t.Errorf("entry %d: %s, not entitled, got a body: %s", index, tok, rec.Body)
				}
				if _, err := client.VerifyEntry(p, v, "api.test/log"); !errors.Is(err, client.ErrNoBody) {
					t.Errorf("entry %d as %s: the leaf and proof do not verify: %v", index, tok, err)
				}
				continue
			}
			st, err := client.VerifyEntry(p, v, "api.test/log")
			if err != nil {
				t.Errorf("entry %d as %s: the body does not verify: %v", index, tok, err)
				continue
			}
			// The same check against the leaf as the public tree holds it.
			o, err := ledger.DecodeOpening(p.Opening)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ledger.CheckEntry(index, leaf, p.Header, nil, &o); err != nil {
				t.Errorf("entry %d as %s: CheckEntry against the tiles' leaf: %v", index, tok, err)
			}
			if o.Subject != "" || strings.Contains(string(p.Opening), "ps_pat-1") {
				t.Errorf("entry %d as %s: the opening names the patient's pseudonym: %s", index, tok, p.Opening)
			}
			if got, err := ledger.DecodeLeaf(leaf); err != nil || got.Type != st.Type {
				t.Errorf("entry %d as %s: statement of type %s for a %s leaf (%v)", index, tok, st.Type, got.Type, err)
			}
			// Break-glass reasons are the regulators' only.
			if (o.Justification != nil) != (index == glass && tok == "reg-x") {
				t.Errorf("entry %d as %s: justification %+v", index, tok, o.Justification)
			}
			if o.Justification != nil && o.Justification.Reason != j.Reason {
				t.Errorf("regulator's justification %q, want %q", o.Justification.Reason, j.Reason)
			}
		}
	}

	// The canonical bytes reach the client as they are: an org name with
	// "&" and "<" is not rewritten (its commitment would no longer hold).
	rec := ts.do("GET", "/v1/ledger/entries/0", "hosp-a", nil)
	if !strings.Contains(rec.Body.String(), "Hospital A & Co <main>") {
		t.Errorf("the opening was re-encoded: %s", rec.Body)
	}
}

// tileLeaves returns the log's leaves as the public C2SP tlog-tiles API
// serves them (one partial entry bundle: the test log is small).
func tileLeaves(t *testing.T, l *fakeLedger) [][]byte {
	t.Helper()
	n, err := l.Size(t.Context())
	if err != nil || n == 0 || n >= 256 {
		t.Fatalf("size %d, %v", n, err)
	}
	rec := httptest.NewRecorder()
	tiles.New(l, tiles.Options{}).ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), "GET", "/tile/entries/000.p/"+strconv.FormatUint(n, 10), nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("entry bundle: %d %s", rec.Code, rec.Body)
	}
	b := rec.Body.Bytes()
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			t.Fatal("truncated entry bundle")
		}
		m := int(b[0])<<8 | int(b[1])
		if len(b) < 2+m {
			t.Fatal("truncated entry bundle")
		}
		out = append(out, b[2:2+m])
		b = b[2+m:]
	}
	if uint64(len(out)) != n {
		t.Fatalf("entry bundle of %d entries, want %d", len(out), n)
	}
	return out
}
