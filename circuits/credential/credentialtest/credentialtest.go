// Package credentialtest provides fixtures for tests of the statements: a
// deterministic issuer, holder and credential, and the adversarial
// variants every statement test checks.
package credentialtest

import (
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/healthgw/healthgw/circuits/credential"
)

// Fixture is a consistent set of test values.
type Fixture struct {
	Issuer      *credential.IssuerKey
	OtherIssuer *credential.IssuerKey
	Secret      credential.Secret
	OtherSecret credential.Secret
	Credential  *credential.Credential // issued by Issuer to Secret
	Date        credential.Day         // a day on which Credential is valid
	Scope       string
	Nonce       []byte
}

// Attributes returns the attributes of Fixture.Credential, in text form.
func Attributes() map[string]string {
	return map[string]string{
		"birth_date":  "1990-04-01",
		"sex":         "female",
		"hba1c":       "7.2",
		"ldl":         "130",
		"bmi":         "31.4",
		"diagnosis":   "E11.9",
		"systolic_bp": "128",
		// last_visit absent
	}
}

// Expiry and Date of the fixture credential.
const (
	Expiry = "2027-12-31"
	Date   = "2026-03-01"
)

// New returns a fixture drawn from a deterministic source seeded with seed.
func New(t testing.TB, seed uint64) *Fixture {
	t.Helper()
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), 'h', 'g', 'w'})
	f := &Fixture{Scope: "verifier-acme/eligibility", Nonce: []byte("nonce-0123456789")}
	var err error
	if f.Issuer, err = credential.GenerateIssuerKey(r); err != nil {
		t.Fatal(err)
	}
	if f.OtherIssuer, err = credential.GenerateIssuerKey(r); err != nil {
		t.Fatal(err)
	}
	if f.Secret, err = credential.NewSecret(r); err != nil {
		t.Fatal(err)
	}
	if f.OtherSecret, err = credential.NewSecret(r); err != nil {
		t.Fatal(err)
	}
	attrs, err := credential.PatientV1.Parse(Attributes())
	if err != nil {
		t.Fatal(err)
	}
	f.Credential = f.Issue(t, f.Issuer, attrs, Expiry)
	if f.Date, err = credential.ParseDay(Date); err != nil {
		t.Fatal(err)
	}
	return f
}

// Issue issues a credential to f.Secret with the given issuer, attributes
// and expiry (YYYY-MM-DD).
func (f *Fixture) Issue(t testing.TB, key *credential.IssuerKey, attrs credential.Attributes, expiry string) *credential.Credential {
	t.Helper()
	exp, err := credential.ParseDay(expiry)
	if err != nil {
		t.Fatal(err)
	}
	c, err := credential.Issue(key, f.Secret.Commitment(), credential.PatientV1, attrs, exp)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Inputs returns the common public inputs for f.Credential's holder with
// the attribute named attr.
func (f *Fixture) Inputs(t testing.TB, attr string) credential.Inputs {
	t.Helper()
	idx, err := credential.PatientV1.Index(attr)
	if err != nil {
		t.Fatal(err)
	}
	scope := credential.ScopeElement(f.Scope)
	return credential.Inputs{
		Issuer:    f.Issuer.Public(),
		Schema:    credential.PatientV1.ID,
		Attribute: idx,
		Date:      f.Date,
		Scope:     scope,
		Nonce:     credential.NonceElement(f.Nonce),
		Nullifier: f.Secret.Nullifier(scope),
	}
}

// Value returns the encoded value of attribute attr in f.Credential.
func (f *Fixture) Value(t testing.TB, attr string) uint64 {
	t.Helper()
	idx, err := credential.PatientV1.Index(attr)
	if err != nil {
		t.Fatal(err)
	}
	return f.Credential.Attributes[idx]
}

// Case is one adversarial variation of the valid assignment: a credential
// and secret for the private witness, public inputs, and an optional
// mutation of the assigned circuit values. Native is the native
// (gnark-crypto) verdict on the same variation, which must be an error.
type Case struct {
	Name       string
	Credential *credential.Credential
	Secret     credential.Secret
	Inputs     credential.Inputs
	Mutate     func(g *credential.Gadget, p *credential.Public)
	Native     error
}

// Assign sets g and p from the case.
func (c Case) Assign(t testing.TB, g *credential.Gadget, p *credential.Public) {
	t.Helper()
	if err := g.Assign(c.Credential, c.Secret); err != nil {
		t.Fatal(err)
	}
	p.Assign(c.Inputs)
	if c.Mutate != nil {
		c.Mutate(g, p)
	}
}

// Valid returns the valid case for attribute attr (Native is nil).
func (f *Fixture) Valid(t testing.TB, attr string) Case {
	t.Helper()
	return Case{Name: "valid", Credential: f.Credential, Secret: f.Secret, Inputs: f.Inputs(t, attr)}
}

// Cases returns the adversarial cases every statement must reject, for a
// proof about attribute attr: forged signatures, another issuer, expiry,
// the wrong secret, a wrong nullifier, an unbound nonce, a bad attribute
// index or schema, and a date that would wrap around the field.
func (f *Fixture) Cases(t testing.TB, attr string) []Case {
	t.Helper()
	valid := f.Valid(t, attr)
	with := func(name string, native error, edit func(c *Case)) Case {
		c := valid
		c.Name = name
		c.Native = native
		edit(&c)
		return c
	}

	// A tampered attribute: the signature no longer covers the values.
	tampered := *f.Credential
	tampered.Attributes[6]++ // systolic_bp
	// S + 1 in the signature.
	forgedS := *f.Credential
	forgedS.Signature = append([]byte(nil), f.Credential.Signature...)
	forgedS.Signature[63]++
	// S + ℓ: satisfies the verification equation, but is not reduced.
	unreduced := *f.Credential
	unreduced.Signature = append([]byte(nil), f.Credential.Signature[:32]...)
	sPlus := addOrder(new(big.Int).SetBytes(f.Credential.Signature[32:]))
	unreduced.Signature = append(unreduced.Signature, sPlus.FillBytes(make([]byte, 32))...)
	// Signed by someone else, presented under Issuer.
	byOther := f.Issue(t, f.OtherIssuer, f.Credential.Attributes, Expiry)
	byOther.Issuer = f.Issuer.Public()
	// Expired before Date.
	expired := f.Issue(t, f.Issuer, f.Credential.Attributes, "2026-02-28")

	otherScope := credential.ScopeElement("verifier-other/eligibility")
	p := credential.Element{}
	p.SetInt64(-1) // the field's largest element, p − 1

	return []Case{
		with("tampered attribute", tampered.Verify(), func(c *Case) { c.Credential = &tampered }),
		with("forged signature", forgedS.Verify(), func(c *Case) { c.Credential = &forgedS }),
		with("signature S + group order", unreduced.Verify(), func(c *Case) {
			c.Mutate = func(g *credential.Gadget, _ *credential.Public) {
				g.Signature.S = addOrder(g.Signature.S.(*big.Int))
			}
		}),
		with("signed by another issuer", byOther.Verify(), func(c *Case) { c.Credential = byOther }),
		with("another issuer's public key", nativeOtherKey(f), func(c *Case) {
			c.Inputs.Issuer = f.OtherIssuer.Public()
		}),
		with("expired credential", expired.Check(f.Secret, f.Date), func(c *Case) { c.Credential = expired }),
		with("date after expiry", f.Credential.Check(f.Secret, f.Credential.Expiry+1), func(c *Case) {
			c.Inputs.Date = f.Credential.Expiry + 1
		}),
		with("date wraps the field", credential.ErrDate, func(c *Case) {
			c.Mutate = func(_ *credential.Gadget, pub *credential.Public) { pub.Date = credential.BigInt(p) }
		}),
		with("wrong secret", f.Credential.Check(f.OtherSecret, f.Date), func(c *Case) {
			c.Secret = f.OtherSecret
			c.Inputs.Nullifier = f.OtherSecret.Nullifier(c.Inputs.Scope)
		}),
		with("wrong nullifier", errWrongNullifier, func(c *Case) {
			c.Inputs.Nullifier = f.OtherSecret.Nullifier(c.Inputs.Scope)
		}),
		with("nullifier of another scope", errWrongNullifier, func(c *Case) {
			c.Inputs.Nullifier = f.Secret.Nullifier(otherScope)
		}),
		with("zero nonce", errZeroNonce, func(c *Case) { c.Inputs.Nonce = credential.Element{} }),
		with("attribute index out of range", credential.ErrUnknownAttribute, func(c *Case) {
			c.Inputs.Attribute = credential.NumAttributes
		}),
		with("another schema", credential.ErrUnknownSchema, func(c *Case) { c.Inputs.Schema = 2 }),
		with("schema 2³² + 1", credential.ErrUnknownSchema, func(c *Case) {
			c.Mutate = func(_ *credential.Gadget, pub *credential.Public) {
				pub.Schema = new(big.Int).Add(big.NewInt(1<<credential.DayBits), pub.Schema.(*big.Int))
			}
		}),
		// Version 1 packed Schema·2³² + Expiry with Schema unchecked: the
		// field element schema' = schema + (expiry − date)·2⁻³² made an
		// expired credential's last element equal to the one with expiry
		// = date. Version 2 reads schema and expiry from the 192-bit
		// decomposition of the signed word, so schema' is refused.
		with("non-canonical schema shifting the expiry", expired.Check(f.Secret, f.Date), func(c *Case) {
			c.Credential = expired
			c.Mutate = func(_ *credential.Gadget, pub *credential.Public) {
				pub.Schema = shiftedSchema(credential.PatientV1.ID, expired.Expiry, f.Date)
			}
		}),
	}
}
