package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/client"
	"github.com/healthgw/healthgw/ledger"
)

// TestLedgerTellsNobody is must-show 1 of "A ledger that tells nobody more
// than they may know". Over a log with records in sensitive categories,
// grants and reads for three patients it plays:
//   - the public: the checkpoint and the tiles, no credentials;
//   - a member hospital that is party to nothing (hosp-c, with a token);
//   - the regulator and a patient, who may know.
//
// Neither the public nor hosp-c can recover any patient's categories,
// record IDs, grantees or readers, nor link two entries to one patient;
// the regulator and the patient can, and every body they are served is
// checked against the public tree.
func TestLedgerTellsNobody(t *testing.T) {
	w := newWorld(t)
	ctok := w.token(w.register("hosp-c", auth.KindHospital), "")
	patients := []string{"pat-1", "pat-2", "pat-3"}
	cats := []string{"mental-health", "sexual-health", "substance-use"}
	var secrets []string // what the public and hosp-c must not learn
	recs := map[string]string{}
	for i, p := range patients {
		r := w.putRecord(w.atok, p, cats[i], "application/fhir+json", json.RawMessage(labFHIR))
		recs[p] = r.ID
		secrets = append(secrets, r.ID, p, w.pseud.Pseudonym(p))
	}
	secrets = append(secrets, cats...)
	secrets = append(secrets, "hosp-a", "hosp-b", "TREAT")
	ptoks := map[string]string{"pat-1": w.ptok, "pat-2": w.qtok, "pat-3": w.patientToken("pat-3")}
	for i, p := range patients[:2] {
		cr := w.grant(ptoks[p], map[string]any{"grantee": map[string]string{"org": "hosp-b"}, "categories": []string{cats[i]}, "purposes": []string{"TREAT"}})
		secrets = append(secrets, cr.Consent.ID)
	}
	for _, p := range patients {
		status, body := w.do("GET", "/v1/records/"+recs[p]+"?purpose=TREAT", w.btok, nil)
		want := http.StatusOK
		if p == "pat-3" {
			want = http.StatusNotFound // no grant
		}
		if status != want {
			t.Fatalf("hosp-b reads %s's record: %d %s, want %d", p, status, body, want)
		}
	}
	w.verifyLedger() // the public tree verifies, and the checkpoint covers every entry
	size := w.size()
	v, err := ledger.ParseVerifierKey(w.vkey)
	if err != nil {
		t.Fatal(err)
	}

	// The public: checkpoint and tiles.
	status, cp := w.do("GET", "/ledger/checkpoint", "", nil)
	if status != http.StatusOK {
		t.Fatalf("checkpoint: %d", status)
	}
	status, bundle := w.do("GET", fmt.Sprintf("/ledger/tile/entries/000.p/%d", size), "", nil)
	if status != http.StatusOK {
		t.Fatalf("entry bundle: %d %s", status, bundle)
	}
	leaves := splitBundle(t, bundle)
	if uint64(len(leaves)) != size {
		t.Fatalf("bundle holds %d entries, the log %d", len(leaves), size)
	}
	seen := map[string]bool{}
	for i, b := range leaves {
		l, err := ledger.DecodeLeaf(b)
		if err != nil {
			t.Fatalf("public entry %d is not a v2 leaf: %v", i, err)
		}
		// A leaf is {v, type, time, seal}: the seal is unique to the
		// entry, so nothing in the public log is shared by two entries
		// except their kind and version.
		if seen[l.Seal.String()] {
			t.Errorf("two public entries share the seal %s", l.Seal)
		}
		seen[l.Seal.String()] = true
	}
	for _, s := range secrets {
		if bytes.Contains(bundle, []byte(s)) || bytes.Contains(cp, []byte(s)) {
			t.Errorf("the public log reveals %q", s)
		}
	}

	// A member hospital that is not a party: leaf and proof, no body.
	bodies := func(token string) map[uint64]ledger.Statement {
		out := map[uint64]ledger.Statement{}
		for i := range size {
			status, b := w.do("GET", fmt.Sprintf("/v1/ledger/entries/%d", i), token, nil)
			if status != http.StatusOK {
				t.Fatalf("entry %d: %d %s", i, status, b)
			}
			var p client.EntryProof
			if err := json.Unmarshal(b, &p); err != nil {
				t.Fatal(err)
			}
			st, err := client.VerifyEntry(p, v, "")
			switch {
			case len(p.Opening) == 0:
				if err == nil || !bytes.Equal(p.Entry, leaves[i]) {
					t.Errorf("entry %d without a body: %v, or not the public leaf", i, err)
				}
			case err != nil:
				t.Errorf("entry %d: its body does not check against the public tree: %v", i, err)
			default:
				out[i] = st
			}
			if token == ctok {
				for _, s := range secrets {
					if bytes.Contains(b, []byte(s)) {
						t.Errorf("hosp-c is served %q in entry %d", s, i)
					}
				}
			}
		}
		return out
	}
	for i, st := range bodies(ctok) {
		// Only its own registration names hosp-c.
		if o, ok := st.Body.(*ledger.OrgRegisteredV2); !ok || o.ID != "hosp-c" {
			t.Errorf("hosp-c, party to nothing, is served the body of entry %d (%s)", i, st.Type)
		}
	}

	// The regulator: every body, each checked against the tree; it
	// recovers categories, record IDs, grantees and readers.
	reg := bodies(w.rtok)
	if uint64(len(reg)) != size {
		t.Errorf("the regulator is served %d of %d bodies", len(reg), size)
	}
	all := statementText(t, reg)
	for _, s := range append(append([]string{}, cats...), recs["pat-1"], recs["pat-2"], recs["pat-3"], "hosp-b") {
		if !strings.Contains(all, s) {
			t.Errorf("the regulator cannot recover %q from the bodies", s)
		}
	}
	// ... and links a patient's entries: the audit names the patient.
	ev := w.events("/v1/audit/events?decision=permit", w.rtok)
	linked := 0
	for _, e := range ev.Events {
		if e.Patient == w.pseud.Pseudonym("pat-1") {
			linked++
		}
	}
	if linked == 0 {
		t.Errorf("the regulator cannot link pat-1's reads: %+v", ev.Events)
	}

	// The patient: the bodies about them, none about anyone else.
	mine := statementText(t, bodies(w.ptok))
	if !strings.Contains(mine, recs["pat-1"]) || !strings.Contains(mine, "mental-health") {
		t.Errorf("pat-1 cannot recover their own record and grant")
	}
	for _, s := range []string{recs["pat-2"], recs["pat-3"], "sexual-health", "substance-use"} {
		if strings.Contains(mine, s) {
			t.Errorf("pat-1 is served %q of another patient", s)
		}
	}
}

// splitBundle splits a tlog-tiles entry bundle: per entry a 2-byte
// big-endian length and the bytes.
func splitBundle(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			t.Fatal("truncated bundle")
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			t.Fatal("truncated bundle entry")
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out
}

// statementText is the JSON of every statement's body, for searching.
func statementText(t *testing.T, sts map[uint64]ledger.Statement) string {
	t.Helper()
	var sb strings.Builder
	for _, st := range sts {
		b, err := json.Marshal(st.Body)
		if err != nil {
			t.Fatal(err)
		}
		sb.Write(b)
	}
	return sb.String()
}
