package credential_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
	"github.com/consensys/gnark/frontend"
	stdposeidon2 "github.com/consensys/gnark/std/hash/poseidon2"
	"github.com/consensys/gnark/test"
	"github.com/google/go-cmp/cmp"

	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/credential/credentialtest"
)

func TestIssueVerify(t *testing.T) {
	f := credentialtest.New(t, 1)
	c := f.Credential
	if err := c.Verify(); err != nil {
		t.Fatalf("fresh credential: %v", err)
	}
	if err := c.Check(f.Secret, f.Date); err != nil {
		t.Fatalf("Check: %v", err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"expired", c.Check(f.Secret, c.Expiry+1), credential.ErrExpired},
		{"other secret", c.Check(f.OtherSecret, f.Date), credential.ErrHolder},
		{"other issuer", func() error { d := *c; d.Issuer = f.OtherIssuer.Public(); return d.Verify() }(), credential.ErrSignature},
		{"attribute changed", func() error { d := *c; d.Attributes[0]--; return d.Verify() }(), credential.ErrSignature},
		{"expiry changed", func() error { d := *c; d.Expiry++; return d.Verify() }(), credential.ErrSignature},
		{"holder changed", func() error { d := *c; d.Holder = f.OtherSecret.Commitment(); return d.Verify() }(), credential.ErrSignature},
		{"zero holder", func() error {
			_, err := credential.Issue(f.Issuer, credential.Element{}, credential.PatientV1, c.Attributes, c.Expiry)
			return err
		}(), credential.ErrElement},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.want) {
				t.Fatalf("error = %v, want %v", tc.err, tc.want)
			}
		})
	}
}

// TestNativeHashes recomputes the commitments with gnark-crypto's Poseidon2
// directly, then checks the circuit's hasher gives the same values.
func TestNativeHashes(t *testing.T) {
	f := credentialtest.New(t, 2)
	secret := f.Secret.Element()
	scope := credential.ScopeElement(f.Scope)

	md := func(xs ...credential.Element) credential.Element {
		h := poseidon2.NewMerkleDamgardHasher()
		for _, x := range xs {
			b := x.Bytes()
			h.Write(b[:])
		}
		var e credential.Element
		e.SetBytes(h.Sum(nil))
		return e
	}
	u := func(v uint64) credential.Element {
		var e credential.Element
		e.SetUint64(v)
		return e
	}
	holder := md(u(credential.TagHolder), secret)
	if got := f.Secret.Commitment(); !got.Equal(&holder) {
		t.Fatal("holder commitment differs from gnark-crypto's Poseidon2")
	}
	nullifier := md(u(credential.TagNullifier), secret, scope)
	if got := f.Secret.Nullifier(scope); !got.Equal(&nullifier) {
		t.Fatal("nullifier differs from gnark-crypto's Poseidon2")
	}
	// The packed words, written out: three 64-bit fields per word, least
	// significant first; the last field is expiry + schema·2³².
	a := f.Credential.Attributes
	word := func(f0, f1, f2 uint64) credential.Element {
		w := new(big.Int).SetUint64(f2)
		w.Lsh(w, 64).Add(w, new(big.Int).SetUint64(f1))
		w.Lsh(w, 64).Add(w, new(big.Int).SetUint64(f0))
		var e credential.Element
		e.SetBigInt(w)
		return e
	}
	ws := []credential.Element{
		word(a[0], a[1], a[2]),
		word(a[3], a[4], a[5]),
		word(a[6], a[7], uint64(f.Credential.Expiry)+credential.PatientV1.ID<<32),
	}
	if got := f.Credential.Words(); !cmp.Equal(got[:], ws) {
		t.Fatal("packed words differ from the documented layout")
	}
	xs := append([]credential.Element{u(credential.TagCredential), holder}, ws...)
	msg := md(xs...)
	if got := f.Credential.Message(); !got.Equal(&msg) {
		t.Fatal("credential message differs from gnark-crypto's Poseidon2")
	}

	// In-circuit: std/hash/poseidon2 gives the same digests.
	for _, tc := range []struct {
		name string
		in   []credential.Element
		want credential.Element
	}{
		{"holder", []credential.Element{u(credential.TagHolder), secret}, holder},
		{"nullifier", []credential.Element{u(credential.TagNullifier), secret, scope}, nullifier},
		{"message", xs, msg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &hashCircuit{In: make([]frontend.Variable, len(tc.in))}
			w := &hashCircuit{In: make([]frontend.Variable, len(tc.in)), Out: credential.BigInt(tc.want)}
			for i := range tc.in {
				w.In[i] = credential.BigInt(tc.in[i])
			}
			if err := test.IsSolved(c, w, ecc.BN254.ScalarField()); err != nil {
				t.Fatalf("circuit hash differs: %v", err)
			}
			w.Out = 1
			if err := test.IsSolved(c, w, ecc.BN254.ScalarField()); err == nil {
				t.Fatal("circuit accepts a wrong digest")
			}
		})
	}
}

type hashCircuit struct {
	In  []frontend.Variable
	Out frontend.Variable `gnark:",public"`
}

func (c *hashCircuit) Define(api frontend.API) error {
	h, err := stdposeidon2.New(api)
	if err != nil {
		return err
	}
	h.Write(c.In...)
	api.AssertIsEqual(h.Sum(), c.Out)
	return nil
}

func TestCredentialFile(t *testing.T) {
	f := credentialtest.New(t, 3)
	b, err := credential.MarshalCredential(f.Credential)
	if err != nil {
		t.Fatal(err)
	}
	got, err := credential.ParseCredential(b)
	if err != nil {
		t.Fatalf("parse own output: %v\n%s", err, b)
	}
	if diff := cmp.Diff(f.Credential, got, cmp.Comparer(func(a, b credential.PublicKey) bool { return a.Equal(b) })); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		name string
		edit func(string) string
	}{
		{"attribute changed", func(s string) string { return strings.Replace(s, `"ldl": "130"`, `"ldl": "131"`, 1) }},
		{"unknown field", func(s string) string { return strings.Replace(s, `"schema"`, `"extra": 1, "schema"`, 1) }},
		{"unknown attribute", func(s string) string { return strings.Replace(s, `"ldl"`, `"height"`, 1) }},
		{"absent written out", func(s string) string { return strings.Replace(s, `"ldl": "130"`, `"ldl": "18446744073709551615"`, 1) }},
		{"wrong format", func(s string) string { return strings.Replace(s, "healthgw-credential/v2", "v0", 1) }},
		{"trailing data", func(s string) string { return s + "{}" }},
		{"bad issuer", func(s string) string {
			return strings.Replace(s, f.Credential.Issuer.String(), strings.Repeat("ff", 32), 1)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := credential.ParseCredential([]byte(tc.edit(string(b)))); !errors.Is(err, credential.ErrFile) {
				t.Fatalf("error = %v, want ErrFile", err)
			}
		})
	}
}

// TestCredentialFileV1 checks that a credential in the format of circuit
// version 1 (signed over the unpacked message) is refused with a clear
// error rather than a bare signature failure.
func TestCredentialFileV1(t *testing.T) {
	f := credentialtest.New(t, 3)
	b, err := credential.MarshalCredential(f.Credential)
	if err != nil {
		t.Fatal(err)
	}
	v1 := strings.Replace(string(b), credential.CredentialFormat, "healthgw-credential/v1", 1)
	_, err = credential.ParseCredential([]byte(v1))
	if !errors.Is(err, credential.ErrFile) || !errors.Is(err, credential.ErrCredentialFormat) {
		t.Fatalf("error = %v, want ErrFile and ErrCredentialFormat", err)
	}
	if !strings.Contains(err.Error(), "reissue") {
		t.Errorf("error %q does not say what to do", err)
	}
}

func TestSecretFile(t *testing.T) {
	s, err := credential.NewSecret(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := credential.MarshalSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := credential.ParseSecret(b)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := got.Element(), s.Element(); !a.Equal(&b) {
		t.Fatal("secret round trip differs")
	}
	if strings.Contains(s.String(), credential.FormatElement(s.Element())) {
		t.Fatal("String reveals the secret")
	}
	other, _ := credential.NewSecret(rand.Reader)
	oc := other.Commitment()
	bad := bytes.Replace(b, []byte(credential.FormatElement(s.Commitment())), []byte(credential.FormatElement(oc)), 1)
	if _, err := credential.ParseSecret(bad); !errors.Is(err, credential.ErrFile) {
		t.Fatalf("mismatched holder: %v, want ErrFile", err)
	}
	zero := []byte(`{"format":"healthgw-holder-secret/v1","secret":"` + strings.Repeat("00", 32) + `"}`)
	if _, err := credential.ParseSecret(zero); !errors.Is(err, credential.ErrFile) {
		t.Fatalf("zero secret: %v, want ErrFile", err)
	}
}

func TestIssuerKeyFile(t *testing.T) {
	k, err := credential.GenerateIssuerKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	got, err := credential.ParseIssuerKey(k.MarshalPEM())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Public().Equal(k.Public()) {
		t.Fatal("issuer key round trip differs")
	}
	pub, err := credential.ParsePublicKey(k.Public().String())
	if err != nil || !pub.Equal(k.Public()) {
		t.Fatalf("public key round trip: %v", err)
	}
	for _, bad := range []string{"", "zz", strings.Repeat("00", 32), strings.Repeat("ff", 32), strings.Repeat("01", 33)} {
		if _, err := credential.ParsePublicKey(bad); !errors.Is(err, credential.ErrIssuerKey) {
			t.Errorf("ParsePublicKey(%q) = %v, want ErrIssuerKey", bad, err)
		}
	}
	if _, err := credential.ParseIssuerKey([]byte("-----BEGIN HEALTHGW ISSUER KEY-----\nAAAA\n-----END HEALTHGW ISSUER KEY-----\n")); !errors.Is(err, credential.ErrIssuerKey) {
		t.Errorf("short key: %v", err)
	}
}
