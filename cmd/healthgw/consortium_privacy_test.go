package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	dbm "github.com/cometbft/cometbft-db"
	"github.com/transparency-dev/tessera/api/layout"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/ledger"
)

// TestConsortiumPrivacy (issue 12 #2, in part): what a member learns from
// its own node's database about entries other gateways wrote, over four
// hospitals.
//
// Hospital B holds a record of a patient; the patient grants hospital C
// at gateway A; C reads the record at B (permitted and logged); the
// patient revokes at gateway D. Then gateway D's node is stopped and
// everything it stored is read: every goleveldb database under its data
// directory (the ledger application's, CometBFT's block and state stores)
// and every other file (the consensus WAL), with every base64 or
// base64url run decoded, two layers deep, since the ledger keeps
// transactions as JSON with their envelopes in base64.
//
// What is and is not private among members in this step (every entry is
// sealed to every registered gateway; step 3 of docs/design/ledger-privacy.md
// narrows the recipients to each entry's parties):
//
//   - Not private among members: with its sealing key (keys/seal.key),
//     gateway D opens every entry, its body and its subject: the record's
//     ID, category and holder, the patient's pseudonym (every member holds
//     the pseudonym secret, so it can also compute the pseudonym of any
//     patient ID it is given), the grant's grantee and purposes, who read
//     what and when. The test checks that D opens all of them.
//   - Private from D's database alone (a copy of the comet home without
//     keys/seal.key, a backup, an operator of the disk only): no patient
//     ID, pseudonym, record ID, consent ID, request ID or record content
//     is in any byte D's node stored. What it does show is what the
//     consortium must check deterministically: each entry's type, author
//     gateway and org (headers), its time (leaves), the number of sealed
//     recipient slots, and the registry entries in clear (gateways,
//     organisations, issuers, circuits). The test checks that the scan
//     finds the clear registry entries (so it would find the others).
//   - The public tiles (served by every gateway without credentials)
//     carry leaves only: {"v","type","time","seal"}, nothing else.
func TestConsortiumPrivacy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a four-validator network")
	}
	const (
		patient = "patient-privacy-probe-7f3a9c"
		value   = "privacy-probe-HbA1c-9.87"
		orgName = "Registry Probe Hospital 5e1d"
	)
	c := newConsortium(t, 4)
	a, b, d := c.gws[0], c.gws[1], c.gws[3]
	hospB := b.registerNamed("hosp-b", orgName, auth.KindHospital)
	// C reads at B, so it is homed there (see TestConsortiumGateways).
	hospC := b.register("hosp-c", auth.KindHospital)
	c.syncAll(t)

	content := json.RawMessage(`{"resourceType":"Observation","status":"final","code":{"text":"` + value + `"}}`)
	rec := b.putRecord(b.token(hospB, ""), patient, "labs", "application/fhir+json", content)
	status, body := a.do("POST", "/v1/consents", a.patientToken(patient), map[string]any{
		"grantee": map[string]string{"org": "hosp-c"}, "categories": []string{"labs"}, "purposes": []string{"TREAT"},
	})
	if status != http.StatusCreated {
		t.Fatalf("grant at A: %d %s", status, body)
	}
	var gr struct {
		Consent struct {
			ID string `json:"id"`
		} `json:"consent"`
	}
	if err := json.Unmarshal(body, &gr); err != nil || gr.Consent.ID == "" {
		t.Fatalf("grant response %s: %v", body, err)
	}
	c.syncAll(t)
	readReq, err := http.NewRequestWithContext(t.Context(), "GET", b.url+"/v1/records/"+rec.ID+"?purpose=TREAT", nil)
	if err != nil {
		t.Fatal(err)
	}
	readReq.Header.Set("Authorization", "Bearer "+b.token(hospC, ""))
	resp, err := http.DefaultClient.Do(readReq)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	requestID := resp.Header.Get("X-Request-ID")
	if resp.StatusCode != http.StatusOK || requestID == "" {
		t.Fatalf("read at B: %d (request ID %q)", resp.StatusCode, requestID)
	}
	if status, body := d.do("POST", "/v1/consents/"+gr.Consent.ID+"/revoke", d.patientToken(patient), nil); status != http.StatusOK {
		t.Fatalf("revoke at D: %d %s", status, body)
	}
	c.syncAll(t)
	size := d.size()
	pseudonym := d.pseud.Pseudonym(patient)

	// What D opens with its keys: every body, about the patient included.
	es, err := d.node.Read(t.Context(), 0, size)
	if err != nil {
		t.Fatal(err)
	}
	var opened []string
	for i, e := range es {
		if e.Body == nil {
			t.Errorf("gateway D cannot open entry %d (%s by %s): every entry is sealed to every registered gateway", i, e.Type, e.Author)
			continue
		}
		raw, _ := json.Marshal(e.Body)
		opened = append(opened, string(raw))
	}
	all := strings.Join(opened, "\n")
	for what, needle := range map[string]string{"record ID": rec.ID, "pseudonym": pseudonym, "consent ID": gr.Consent.ID, "request ID": requestID} {
		if !strings.Contains(all, needle) {
			t.Errorf("gateway D did not open the %s (%s) in any entry", what, needle)
		}
	}

	// The public tiles: leaves only.
	var tileLeaves [][]byte
	for n := uint64(0); n*layout.EntryBundleWidth < size; n++ {
		partial := uint8(0)
		if left := size - n*layout.EntryBundleWidth; left < layout.EntryBundleWidth {
			partial = uint8(left)
		}
		status, bundle := d.do("GET", "/ledger/"+layout.EntriesPath(n, partial), "", nil)
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d", layout.EntriesPath(n, partial), status)
		}
		for len(bundle) >= 2 {
			l := int(binary.BigEndian.Uint16(bundle))
			tileLeaves = append(tileLeaves, bundle[2:2+l])
			bundle = bundle[2+l:]
		}
	}
	if uint64(len(tileLeaves)) != size {
		t.Fatalf("tiles served %d leaves, log size %d", len(tileLeaves), size)
	}
	for i, leaf := range tileLeaves {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(leaf, &fields); err != nil {
			t.Fatalf("leaf %d: %v", i, err)
		}
		if keys := slices.Sorted(maps.Keys(fields)); !slices.Equal(keys, []string{"seal", "time", "type", "v"}) {
			t.Errorf("leaf %d has members %v, want only v, type, time and seal", i, keys)
		}
		if _, err := ledger.DecodeLeaf(leaf); err != nil {
			t.Errorf("leaf %d: %v", i, err)
		}
	}

	// What D's node stored, without its keys.
	c.net.StopNode(3)
	stored := storedViews(t, filepath.Join(c.net.Node(3).Home, "data"))
	stored = append(stored, tileLeaves...)
	needles := map[string]string{
		"patient ID": patient, "pseudonym": pseudonym, "record ID": rec.ID, "consent ID": gr.Consent.ID,
		"request ID": requestID, "record content": value,
	}
	for what, needle := range needles {
		for _, v := range stored {
			if bytes.Contains(v, []byte(needle)) {
				t.Errorf("the %s %q is in what gateway D's node stored: …%s…", what, needle, excerpt(v, needle))
				break
			}
		}
	}
	// The scan finds what is in clear (the registry), so the absences
	// above are not for want of looking.
	found := false
	for _, v := range stored {
		if bytes.Contains(v, []byte(orgName)) {
			found = true
			break
		}
	}
	if !found {
		t.Errorf("the scan did not find hosp-b's registered name %q, which travels in clear: it cannot be trusted", orgName)
	}
	t.Logf("scanned %d values and decodings of gateway D's node (log size %d); opened %d bodies with its key", len(stored), size, len(opened))
}

// storedViews returns every value of every goleveldb database under dir
// (opened as the node does) and the bytes of every other file, each with
// the decodings of its base64 and base64url runs, two layers deep.
func storedViews(t *testing.T, dir string) [][]byte {
	t.Helper()
	var out [][]byte
	var dbDirs []string
	err := filepath.WalkDir(dir, func(path string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			if strings.HasSuffix(path, ".db") {
				dbDirs = append(dbDirs, path)
				return filepath.SkipDir
			}
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out = append(out, decodings(b, 2)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dbDirs) < 3 {
		t.Fatalf("found databases %v under %s, want the ledger's, the block store and the state", dbDirs, dir)
	}
	for _, p := range dbDirs {
		db, err := dbm.NewGoLevelDB(strings.TrimSuffix(filepath.Base(p), ".db"), filepath.Dir(p))
		if err != nil {
			t.Fatalf("open %s: %v", p, err)
		}
		it, err := db.Iterator(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		for ; it.Valid(); it.Next() {
			out = append(out, decodings(bytes.Clone(it.Key()), 2)...)
			out = append(out, decodings(bytes.Clone(it.Value()), 2)...)
		}
		it.Close()
		db.Close()
	}
	return out
}

var base64Run = regexp.MustCompile(`[A-Za-z0-9+/_-]{16,}={0,2}`)

// decodings returns b and, depth layers deep, the decodings of its runs
// of base64 or base64url text.
func decodings(b []byte, depth int) [][]byte {
	out := [][]byte{b}
	if depth == 0 {
		return out
	}
	for _, run := range base64Run.FindAll(b, -1) {
		s := strings.TrimRight(string(run), "=")
		for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
			if d, err := enc.DecodeString(s); err == nil {
				out = append(out, decodings(d, depth-1)...)
			}
		}
	}
	return out
}

// excerpt returns the bytes of v around needle, for a failure message.
func excerpt(v []byte, needle string) string {
	i := bytes.Index(v, []byte(needle))
	lo, hi := max(0, i-40), min(len(v), i+len(needle)+40)
	return string(v[lo:hi])
}
