package credential_test

import (
	"crypto/rand"
	"testing"

	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/credential/credentialtest"
)

// The parsers below read files that come from outside (patient apps,
// issuers): they must never panic, and whatever they accept must
// re-encode to something they accept again.

func FuzzParseCredential(f *testing.F) {
	fx := credentialtest.New(f, 4)
	b, err := credential.MarshalCredential(fx.Credential)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"format":"healthgw-credential/v1"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := credential.ParseCredential(data)
		if err != nil {
			return
		}
		out, err := credential.MarshalCredential(c)
		if err != nil {
			t.Fatalf("accepted credential does not marshal: %v", err)
		}
		if _, err := credential.ParseCredential(out); err != nil {
			t.Fatalf("re-encoded credential rejected: %v", err)
		}
	})
}

func FuzzParseSecret(f *testing.F) {
	s, _ := credential.NewSecret(rand.Reader)
	b, _ := credential.MarshalSecret(s)
	f.Add(b)
	f.Add([]byte(`{"format":"healthgw-holder-secret/v1","secret":"00"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := credential.ParseSecret(data)
		if err != nil {
			return
		}
		if _, err := credential.MarshalSecret(s); err != nil {
			t.Fatalf("accepted secret does not marshal: %v", err)
		}
	})
}

func FuzzParsePublicKey(f *testing.F) {
	k, _ := credential.GenerateIssuerKey(rand.Reader)
	f.Add(k.Public().String())
	f.Add("00")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := credential.ParsePublicKey(s)
		if err != nil {
			return
		}
		q, err := credential.ParsePublicKey(p.String())
		if err != nil || !q.Equal(p) {
			t.Fatalf("accepted key does not round-trip: %v", err)
		}
	})
}

func FuzzEncodeAttribute(f *testing.F) {
	for _, s := range []string{"1990-04-01", "6.5", "E11.9", "female", "130"} {
		f.Add(uint8(0), s)
	}
	f.Fuzz(func(t *testing.T, idx uint8, text string) {
		spec := credential.PatientV1.Attributes[int(idx)%credential.NumAttributes]
		v, err := spec.Encode(text)
		if err != nil {
			return
		}
		if v == credential.Absent {
			t.Fatalf("%s: %q encodes to Absent", spec.Name, text)
		}
		back, err := spec.Encode(spec.Format(v))
		if err != nil || back != v {
			t.Fatalf("%s: %q → %d → %q → %d, %v", spec.Name, text, v, spec.Format(v), back, err)
		}
	})
}
