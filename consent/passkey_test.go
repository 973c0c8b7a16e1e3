package consent_test

import (
	"errors"
	"testing"

	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/consent/passkeytest"
	"github.com/healthgw/healthgw/ledger"
)

// VerifyAssertion against go-webauthn's checks, one failure at a time.
func TestVerifyAssertion(t *testing.T) {
	const origin = "http://localhost:8080"
	a, err := passkeytest.New("localhost", origin)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := a.Passkey("ps_x")
	if err != nil {
		t.Fatal(err)
	}
	keys := []consent.Passkey{reg}
	c := ledger.Digest{7, 7, 7}
	assert := func(a *passkeytest.Authenticator, challenge ledger.Digest) ledger.Attestation {
		t.Helper()
		att, err := a.AssertEntry(challenge)
		if err != nil {
			t.Fatal(err)
		}
		return att
	}
	good := assert(a, c)
	if k, err := consent.VerifyAssertion(keys, []ledger.Attestation{good}, c); err != nil || k.CredentialID != a.CredentialID() {
		t.Fatalf("valid assertion: %+v, %v", k, err)
	}
	otherRP := *a
	otherRP.RPID = "example.org"
	noUP := *a
	noUP.Flags = 0x04 // verified but not present
	impostor, err := a.Impostor()
	if err != nil {
		t.Fatal(err)
	}
	tampered := good
	tampered.ClientDataJSON = good.ClientDataJSON[:len(good.ClientDataJSON)-2] + "fQ"
	jws := good
	jws.Kind = ledger.AttestationJWS
	for name, tc := range map[string]struct {
		atts []ledger.Attestation
		want error
	}{
		"no attestation":       {nil, consent.ErrNoAssertion},
		"not webauthn":         {[]ledger.Attestation{jws}, consent.ErrNoAssertion},
		"wrong challenge":      {[]ledger.Attestation{assert(a, ledger.Digest{8})}, consent.ErrBadAssertion},
		"wrong RP ID":          {[]ledger.Attestation{assert(&otherRP, c)}, consent.ErrBadAssertion},
		"user not present":     {[]ledger.Attestation{assert(&noUP, c)}, consent.ErrBadAssertion},
		"wrong key":            {[]ledger.Attestation{assert(impostor, c)}, consent.ErrBadAssertion},
		"tampered client data": {[]ledger.Attestation{tampered}, consent.ErrBadAssertion},
		"bad base64":           {[]ledger.Attestation{{Kind: ledger.AttestationWebAuthn, CredentialID: a.CredentialID(), AuthenticatorData: "!!", ClientDataJSON: good.ClientDataJSON, Signature: good.Signature}}, consent.ErrBadAssertion},
	} {
		if _, err := consent.VerifyAssertion(keys, tc.atts, c); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// One valid assertion among bad ones is enough.
	if _, err := consent.VerifyAssertion(keys, []ledger.Attestation{assert(impostor, c), good}, c); err != nil {
		t.Errorf("a valid assertion after a bad one: %v", err)
	}
}

func BenchmarkVerifyAssertion(b *testing.B) {
	a, err := passkeytest.New("localhost", "http://localhost:8080")
	if err != nil {
		b.Fatal(err)
	}
	reg, err := a.Passkey("ps_x")
	if err != nil {
		b.Fatal(err)
	}
	c := ledger.Digest{1}
	att, err := a.AssertEntry(c)
	if err != nil {
		b.Fatal(err)
	}
	keys, atts := []consent.Passkey{reg}, []ledger.Attestation{att}
	for b.Loop() {
		if _, err := consent.VerifyAssertion(keys, atts, c); err != nil {
			b.Fatal(err)
		}
	}
}
