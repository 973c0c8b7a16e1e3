package main

import (
	"bytes"
	"crypto/ecdh"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	"github.com/transparency-dev/tessera/api/layout"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/internal/testscale"
	"github.com/healthgw/healthgw/ledger"
)

// TestConsortiumPrivacy (issue 12 #2): over four hospitals, a member that
// is not a party to an entry cannot read its body, with its keys or from
// its own database; the parties' members and the regulator's can.
//
// Gateway A (hospital-1) is the patients' custodian (the default: the
// first member). Hospital B holds a record of a patient at gateway B; the
// patient grants hospital C (homed at B too, where it reads) at A; C reads
// the record at B (permitted and logged); the patient revokes at A. The
// regulator is homed at gateway C. Hospital D, homed at gateway D, holds a
// record of another patient. Routing (consortium/routing): every entry
// about the first patient is sealed to A (custodian), B (holder, grantee's
// and requester's home) and C (regulator's home), never to D; hospital D's
// record to D, A and C, never to B. Every sealed opening has the padded
// bucket of slots (8), whatever its number of parties.
//
// What each member checks:
//
//   - with its sealing key (ledger.Node.Open): it opens exactly the
//     entries it is a party to, and ledger.ErrNotRecipient for the others
//     (D's node reads them with a nil body); the registry entries travel
//     in clear and every member reads them;
//   - D's database (every goleveldb database under its data directory: the
//     ledger application's, CometBFT's block and state stores; and every
//     other file, the consensus WAL; every base64 or base64url run
//     decoded, two layers deep, since the ledger keeps transactions as
//     JSON with their envelopes in base64): no patient ID, pseudonym,
//     record ID, consent ID, request ID or record content of the first
//     patient's entries is in any byte, and no sealed envelope there opens
//     with D's key. What D does learn is what the consortium must check
//     deterministically: each entry's type, author gateway and org
//     (headers: the holder org of a record, "patient" for a consent), its
//     time (leaves), the (padded) number of sealed recipient slots, and
//     the registry entries in clear (gateways, organisations, issuers,
//     circuits). The scan finds the clear registry entries (so it would
//     find the others).
//   - The public tiles (served by every gateway without credentials)
//     carry leaves only: {"v","type","time","seal"}, nothing else.
func TestConsortiumPrivacy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a four-validator network")
	}
	const (
		patient  = "patient-privacy-probe-7f3a9c"
		patient2 = "patient-privacy-other-41c0"
		value    = "privacy-probe-HbA1c-9.87"
		orgName  = "Registry Probe Hospital 5e1d"
	)
	c := newConsortium(t, 4)
	a, b, cc, d := c.gws[0], c.gws[1], c.gws[2], c.gws[3]
	if a.custodian != a.node.Gateway() || d.custodian != a.node.Gateway() {
		t.Fatalf("custodians %q and %q, want gateway A (%s)", a.custodian, d.custodian, a.node.Gateway())
	}
	hospB := b.registerNamed("hosp-b", orgName, auth.KindHospital)
	// C reads at B, so it is homed there (see TestConsortiumGateways).
	hospC := b.register("hosp-c", auth.KindHospital)
	cc.register("reg-r", auth.KindRegulator)
	hospD := d.register("hosp-d", auth.KindHospital)
	c.syncAll(t)

	content := json.RawMessage(`{"resourceType":"Observation","status":"final","code":{"text":"` + value + `"}}`)
	rec := b.putRecord(b.token(hospB, ""), patient, "labs", "application/fhir+json", content)
	recD := d.putRecord(d.token(hospD, ""), patient2, "labs", "application/fhir+json", json.RawMessage(labFHIR))
	c.syncAll(t)
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
	// The revocation at the custodian, which knows the grant (a member
	// that is not a party to it does not: see the routing rules).
	if status, body := a.do("POST", "/v1/consents/"+gr.Consent.ID+"/revoke", a.patientToken(patient), nil); status != http.StatusOK {
		t.Fatalf("revoke at A: %d %s", status, body)
	}
	c.syncAll(t)
	size := d.size()
	c.net.WaitSize(size, testscale.Timeout(30*time.Second))
	pseudonym := d.pseud.Pseudonym(patient)

	// Who opens what, with its sealing key.
	seed, err := readSecret(filepath.Join(d.cfg.DataDir, sealKeyFile), 32)
	if err != nil {
		t.Fatal(err)
	}
	dSeal, err := ecdh.X25519().NewPrivateKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	gwA, gwD := a.node.Gateway(), d.node.Gateway()
	envs, err := c.net.Log(3).Envelopes(t.Context(), 0, size)
	if err != nil {
		t.Fatal(err)
	}
	var aboutPatient []string // the bodies of the first patient's entries, as A opens them
	sealed := map[string]int{}
	for i := range size {
		h, err := ledger.DecodeHeader(envs[i].Header)
		if err != nil {
			t.Fatal(err)
		}
		if len(envs[i].Sealed) == 0 {
			for gi, g := range c.gws {
				if _, err := g.node.Open(t.Context(), i); err != nil {
					t.Errorf("gateway %d cannot open registry entry %d (%s), which travels in clear: %v", gi, i, h.Type, err)
				}
			}
			continue
		}
		sealed[string(h.Type)]++
		if n := sealedSlots(t, envs[i].Sealed); n != ledger.RecipientSlots {
			t.Errorf("entry %d (%s by %s) has %d recipient slots, want the bucket %d", i, h.Type, h.Author, n, ledger.RecipientSlots)
		}
		// Hospital D's record and its entries are D's; every other
		// sealed entry is about the first patient.
		parties := map[int]bool{0: true, 1: true, 2: true}
		if h.Author == gwD {
			parties = map[int]bool{0: true, 2: true, 3: true}
		}
		for gi, g := range c.gws {
			o, err := g.node.Open(t.Context(), i)
			switch {
			case parties[gi] && err != nil:
				t.Errorf("gateway %d, a party, cannot open entry %d (%s by %s): %v", gi, i, h.Type, h.Author, err)
			case !parties[gi] && !errors.Is(err, ledger.ErrNotRecipient):
				t.Errorf("gateway %d, not a party, opens entry %d (%s by %s): %v", gi, i, h.Type, h.Author, err)
			case gi == 0 && err == nil && h.Author != gwD:
				raw, _ := json.Marshal(o.Entry.Body)
				aboutPatient = append(aboutPatient, string(raw))
			}
		}
		if h.Author != gwD && h.Author != gwA && h.Author != b.node.Gateway() {
			t.Errorf("entry %d (%s) authored by %s, want A or B", i, h.Type, h.Author)
		}
		// From D's own database, with D's key: nothing of it opens.
		if _, err := ledger.OpenSealed(envs[i].Sealed, dSeal); parties[3] != (err == nil) {
			t.Errorf("entry %d (%s by %s) in D's database: OpenSealed with D's key = %v", i, h.Type, h.Author, err)
		}
	}
	for _, typ := range []ledger.Type{ledger.TypeRecordRegistered, ledger.TypeConsentGranted, ledger.TypeAccessDecided, ledger.TypeConsentRevoked} {
		if sealed[string(typ)] == 0 {
			t.Errorf("no sealed %s entry: the test did not exercise it (%v)", typ, sealed)
		}
	}
	// D's node reads the first patient's entries without a body.
	es, err := d.node.Read(t.Context(), 0, size)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range es {
		if e.Body != nil && len(envs[i].Sealed) > 0 && e.Author != gwD {
			t.Errorf("gateway D reads the body of entry %d (%s by %s)", i, e.Type, e.Author)
		}
	}
	// The parties' openings do hold what D must not see (so the absences
	// below are not for want of content).
	all := strings.Join(aboutPatient, "\n")
	for what, needle := range map[string]string{"record ID": rec.ID, "pseudonym": pseudonym, "consent ID": gr.Consent.ID, "request ID": requestID} {
		if !strings.Contains(all, needle) {
			t.Errorf("gateway A did not open the %s (%s) in any entry", what, needle)
		}
	}
	if strings.Contains(all, recD.ID) {
		t.Errorf("hospital D's record is among the first patient's entries")
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
	t.Logf("scanned %d values and decodings of gateway D's node (log size %d); sealed entries by type %v", len(stored), size, sealed)
}

// sealedSlots is the number of recipient slots of a sealed opening (a
// flattened JWE has one).
func sealedSlots(t *testing.T, sealed []byte) int {
	t.Helper()
	var w struct {
		Recipients []json.RawMessage `json:"recipients"`
	}
	if err := json.Unmarshal(sealed, &w); err != nil {
		t.Fatalf("sealed opening: %v", err)
	}
	return max(len(w.Recipients), 1)
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
