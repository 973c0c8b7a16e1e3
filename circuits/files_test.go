package circuits_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential/credentialtest"
)

func TestChallengeFile(t *testing.T) {
	f := credentialtest.New(t, 10)
	for _, s := range circuits.Statements() {
		t.Run(string(s), func(t *testing.T) {
			ch := challenge(t, f, s)
			b, err := circuits.MarshalChallenge(ch)
			if err != nil {
				t.Fatal(err)
			}
			got, err := circuits.ParseChallenge(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ch.Params.Map(s), got.Params.Map(s)); diff != "" {
				t.Errorf("params (-want +got):\n%s", diff)
			}
			if got.ID != ch.ID || got.Statement != s || got.Scope != ch.Scope || got.Date != ch.Date || string(got.Nonce) != string(ch.Nonce) {
				t.Errorf("round trip: got %+v", got)
			}
		})
	}
	ch := challenge(t, f, circuits.Age)
	b, _ := circuits.MarshalChallenge(ch)
	for _, tc := range []struct{ name, from, to string }{
		{"unknown statement", `"statement": "age"`, `"statement": "height"`},
		{"no scope", `"scope": "` + ch.Scope + `"`, `"scope": ""`},
		{"bad nonce", `"nonce": "`, `"nonce": "!!`},
		{"unknown field", `"scope"`, `"x": 1, "scope"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := circuits.ParseChallenge([]byte(strings.Replace(string(b), tc.from, tc.to, 1))); !errors.Is(err, circuits.ErrFile) {
				t.Fatalf("error = %v, want ErrFile", err)
			}
		})
	}
}

func TestProofFile(t *testing.T) {
	p, _, _ := proofFor(t, circuits.Range)
	b, err := circuits.MarshalProof(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := circuits.ParseProof(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Bytes) != string(p.Bytes) || got.Statement != p.Statement || !got.Public.Nullifier.Equal(&p.Public.Nullifier) {
		t.Fatal("proof round trip differs")
	}
	for _, tc := range []struct{ name, from, to string }{
		{"public input edited", `"public_inputs": [
    "`, `"public_inputs": [
    "1`},
		{"named input edited", `"scope": "verifier-acme`, `"scope": "verifier-acmf`},
		{"version", `"version": 2`, `"version": 1`},
		{"proof truncated", `"proof": "`, `"proof": "AAAA`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edited := strings.Replace(string(b), tc.from, tc.to, 1)
			if edited == string(b) {
				t.Fatal("edit did not apply")
			}
			if _, err := circuits.ParseProof([]byte(edited)); !errors.Is(err, circuits.ErrFile) {
				t.Fatalf("error = %v, want ErrFile", err)
			}
		})
	}
}

// FuzzParseProof and FuzzParseChallenge: files from verifiers' clients and
// patient apps must never crash the parser; what is accepted re-encodes.
func FuzzParseProof(f *testing.F) {
	for _, s := range circuits.Statements() {
		p, _, _ := proofFor(f, s)
		b, err := circuits.MarshalProof(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"format":"healthgw-zk-proof/v1","statement":"age","version":1}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := circuits.ParseProof(data)
		if err != nil {
			return
		}
		if _, err := circuits.MarshalProof(p); err != nil {
			t.Fatalf("accepted proof does not marshal: %v", err)
		}
	})
}

func FuzzParseChallenge(f *testing.F) {
	fx := credentialtest.New(f, 11)
	for _, s := range circuits.Statements() {
		b, err := circuits.MarshalChallenge(challenge(f, fx, s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ch, err := circuits.ParseChallenge(data)
		if err != nil {
			return
		}
		b, err := circuits.MarshalChallenge(ch)
		if err != nil {
			t.Fatalf("accepted challenge does not marshal: %v", err)
		}
		if _, err := circuits.ParseChallenge(b); err != nil {
			t.Fatalf("re-encoded challenge rejected: %v", err)
		}
	})
}
