package ledger

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var testTime = time.Date(2026, 3, 4, 5, 6, 7, 89, time.UTC)

// sampleEntries returns one entry of every type, with every field set.
func sampleEntries() []Entry {
	nb := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	bodies := []any{
		&OrgRegistered{ID: "org-a", Name: "Hospital A", Kind: "hospital", Scopes: []string{"records.write"}, JWKS: `{"keys":[]}`, JWKSURL: "https://a.example/jwks"},
		&ConsentGranted{ConsentID: "c1", Patient: "ps_ab", Grantee: Grantee{Org: "org-b", Kind: "hospital"}, Decision: "permit",
			Actions: []string{"read"}, Categories: []string{"lab"}, RecordIDs: []string{"r1"}, ResourceTypes: []string{"Observation"},
			Purposes: []string{"TREAT"}, NotBefore: nb, NotAfter: nb.AddDate(1, 0, 0)},
		&ConsentRevoked{ConsentID: "c1", Patient: "ps_ab"},
		&RecordRegistered{RecordID: "r1", Holder: "org-a", Patient: "ps_ab", Category: "lab", ResourceType: "Observation", Commitment: strings.Repeat("ab", 32)},
		&RecordShredded{RecordID: "r1", Holder: "org-a", Patient: "ps_ab"},
		&AccessDecided{Requester: "org-b", RecordID: "r1", Patient: "ps_ab", Category: "lab", Purpose: "ETREAT", Decision: "permit",
			Reason: "break_glass", GrantID: "c1", BreakGlass: true, JustificationHash: strings.Repeat("cd", 32), RequestID: "req-1"},
		&IssuerRegistered{Issuer: "org-a", KeyID: "k1", PublicKey: "00ff"},
		&CircuitRegistered{Statement: "age_over", Version: 1, VKHash: strings.Repeat("ef", 32), Setup: "ceremony"},
		&ProofVerified{Verifier: "org-v", Statement: "age_over", Params: map[string]string{"min": "18", "a": "<&>"}, Issuer: "org-a",
			Nullifier: "n1", Valid: false, Reason: "expired", Challenge: "ch1"},
	}
	out := make([]Entry, len(bodies))
	for i, b := range bodies {
		e, err := NewEntry("org-a", b)
		if err != nil {
			panic(err)
		}
		e.Time = testTime
		out[i] = e
	}
	return out
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	for _, e := range sampleEntries() {
		t.Run(string(e.Type), func(t *testing.T) {
			b, err := Encode(e)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			if diff := cmp.Diff(e, got); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s", diff)
			}
			again, err := Encode(got)
			if err != nil {
				t.Fatalf("re-Encode: %v", err)
			}
			if string(again) != string(b) {
				t.Errorf("re-encoding differs:\n got %s\nwant %s", again, b)
			}
		})
	}
}

func TestEncodeGolden(t *testing.T) {
	e, err := NewEntry("gateway", &ConsentRevoked{ConsentID: "c1", Patient: "ps_ab"})
	if err != nil {
		t.Fatal(err)
	}
	e.Time = time.Date(2026, 1, 2, 3, 4, 5, 6, time.FixedZone("X", 3600))
	got, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"type":"consent.revoked","v":1,"org":"gateway","time":"2026-01-02T02:04:05.000000006Z","body":{"consent_id":"c1","patient":"ps_ab"}}`
	if string(got) != want {
		t.Errorf("Encode =\n%s\nwant\n%s", got, want)
	}
}

func TestEncodeRejects(t *testing.T) {
	good := sampleEntries()[2]
	tests := []struct {
		name   string
		mutate func(e *Entry)
		want   error
	}{
		{"type mismatch", func(e *Entry) { e.Type = TypeAccessDecided }, ErrUnknownType},
		{"unknown type", func(e *Entry) { e.Type = "x.y" }, ErrUnknownType},
		{"nil body", func(e *Entry) { e.Body = nil }, ErrUnknownType},
		{"body by value", func(e *Entry) { e.Body = ConsentRevoked{} }, ErrUnknownType},
		{"version 0", func(e *Entry) { e.Version = 0 }, ErrMalformed},
		{"version 2", func(e *Entry) { e.Version = 2 }, ErrMalformed},
		{"too large", func(e *Entry) { e.Body = &ConsentRevoked{ConsentID: strings.Repeat("x", MaxEntrySize)} }, ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := good
			tc.mutate(&e)
			if _, err := Encode(e); !errors.Is(err, tc.want) {
				t.Errorf("Encode: err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	good := `{"type":"consent.revoked","v":1,"org":"gateway","time":"2026-01-02T02:04:05.000000006Z","body":{"consent_id":"c1","patient":"ps_ab"}}`
	if _, err := Decode([]byte(good)); err != nil {
		t.Fatalf("Decode(good): %v", err)
	}
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", ``, ErrMalformed},
		{"not json", `hello`, ErrMalformed},
		{"trailing data", good + `{}`, ErrMalformed},
		{"trailing newline", good + "\n", ErrNonCanonical},
		{"leading space", " " + good, ErrNonCanonical},
		{"space after colon", strings.Replace(good, `"v":1`, `"v": 1`, 1), ErrNonCanonical},
		{"field order", `{"v":1,"type":"consent.revoked","org":"gateway","time":"2026-01-02T02:04:05.000000006Z","body":{"consent_id":"c1","patient":"ps_ab"}}`, ErrNonCanonical},
		{"body field order", strings.Replace(good, `{"consent_id":"c1","patient":"ps_ab"}`, `{"patient":"ps_ab","consent_id":"c1"}`, 1), ErrNonCanonical},
		{"duplicate field", strings.Replace(good, `"v":1,`, `"v":1,"v":1,`, 1), ErrNonCanonical},
		{"unknown field", strings.Replace(good, `"v":1,`, `"v":1,"x":1,`, 1), ErrMalformed},
		{"unknown body field", strings.Replace(good, `"patient":"ps_ab"`, `"patient":"ps_ab","name":"Alice"`, 1), ErrMalformed},
		{"unknown type", strings.Replace(good, `consent.revoked`, `consent.deleted`, 1), ErrUnknownType},
		{"version 2", strings.Replace(good, `"v":1`, `"v":2`, 1), ErrMalformed},
		{"time not UTC", strings.Replace(good, `02:04:05.000000006Z`, `03:04:05.000000006+01:00`, 1), ErrMalformed},
		{"time short fraction", strings.Replace(good, `.000000006Z`, `.1Z`, 1), ErrMalformed},
		{"escaped slash", strings.Replace(good, `"c1"`, `"c\/1"`, 1), ErrNonCanonical},
		{"unicode escape", strings.Replace(good, `"c1"`, `"\u00631"`, 1), ErrNonCanonical},
		{"missing body", `{"type":"consent.revoked","v":1,"org":"gateway","time":"2026-01-02T02:04:05.000000006Z"}`, ErrMalformed},
		{"too large", `"` + strings.Repeat("x", MaxEntrySize) + `"`, ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if e, err := Decode([]byte(tc.in)); !errors.Is(err, tc.want) {
				t.Errorf("Decode: (%+v, %v), want error %v", e, err, tc.want)
			}
		})
	}
}

// FuzzDecode checks that Decode never panics and accepts only canonical
// encodings: whatever it accepts, Encode reproduces byte for byte.
func FuzzDecode(f *testing.F) {
	for _, e := range sampleEntries() {
		b, err := Encode(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"type":"consent.revoked","v":1,"org":"","time":"0001-01-01T00:00:00.000000000Z","body":{"consent_id":"","patient":""}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			return
		}
		again, err := Encode(e)
		if err != nil {
			t.Fatalf("Decode accepted %q but Encode fails: %v", b, err)
		}
		if string(again) != string(b) {
			t.Fatalf("Decode accepted a non-canonical encoding:\n in %q\nout %q", b, again)
		}
		e2, err := Decode(again)
		if err != nil {
			t.Fatalf("Decode(Encode(e)): %v", err)
		}
		if diff := cmp.Diff(e, e2); diff != "" {
			t.Fatalf("second round trip differs:\n%s", diff)
		}
	})
}
