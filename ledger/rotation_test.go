package ledger_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
)

// TestRotationSignedByCurrentKey: a node appends an org.keys_rotated only
// when the org's key current at that index signs it over the new keys and
// the index of the current ones; every other rotation is refused before
// anything is appended.
func TestRotationSignedByCurrentKey(t *testing.T) {
	ctx := t.Context()
	n, err := ledger.OpenNode(ctx, &ledgertest.MemStore{}, ledgertest.Identity("gw-a"))
	if err != nil {
		t.Fatal(err)
	}
	k1, set1 := ledgertest.OrgKey("k1")
	k2, set2 := ledgertest.OrgKey("k2")
	other, otherSet := ledgertest.OrgKey("other")
	reg, err := n.Append(ctx, ledgertest.KeyedOrgEntry("org-k", set1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Append(ctx, ledgertest.KeyedOrgEntry("org-o", otherSet)); err != nil {
		t.Fatal(err)
	}
	overOther := ledgertest.RotationEntry("org-k", set1, reg, k1) // k1's signature over set1, put on set2
	forged := ledgertest.RotationEntry("org-k", set2, reg, nil)
	forged.Body.(*ledger.OrgKeysRotated).Signature = overOther.Body.(*ledger.OrgKeysRotated).Signature

	refuse := func(t *testing.T, e ledger.Entry) {
		t.Helper()
		size, _ := n.Size(ctx)
		if _, err := n.Append(ctx, e); !errors.Is(err, ledger.ErrRotationSignature) || !errors.Is(err, ledger.ErrAuthorship) {
			t.Errorf("append = %v, want ErrRotationSignature", err)
		}
		if got, _ := n.Size(ctx); got != size {
			t.Errorf("size %d after a refused rotation, want %d", got, size)
		}
	}
	for _, tc := range []struct {
		name string
		e    ledger.Entry
	}{
		{"no signature", ledgertest.RotationEntry("org-k", set2, reg, nil)},
		{"another org's key", ledgertest.RotationEntry("org-k", set2, reg, other)},
		{"the new key signing itself", ledgertest.RotationEntry("org-k", set2, reg, k2)},
		{"the current key, naming other current keys", ledgertest.RotationEntry("org-k", set2, reg+1, k1)},
		{"the current key's signature over another key set", forged},
	} {
		t.Run(tc.name, func(t *testing.T) { refuse(t, tc.e) })
	}

	first := ledgertest.RotationEntry("org-k", set2, reg, k1)
	rot, err := n.Append(ctx, first)
	if err != nil {
		t.Fatalf("rotation signed by the current key: %v", err)
	}
	if got, ok := n.Authority().OrgKeys("org-k"); !ok || got.JWKS != set2 || got.Index != rot {
		t.Errorf("org-k's keys after the rotation = %+v, want set2 of entry %d", got, rot)
	}
	t.Run("the replaced key", func(t *testing.T) { refuse(t, ledgertest.RotationEntry("org-k", set1, rot, k1)) })
	t.Run("the same rotation replayed", func(t *testing.T) { refuse(t, first) })
	// Back to k1, signed by k2: then the first rotation (k1's signature
	// over set2) would verify against the keys again, but it follows
	// entry reg, not the current keys.
	back, err := n.Append(ctx, ledgertest.RotationEntry("org-k", set1, rot, k2))
	if err != nil {
		t.Fatalf("rotation back to k1: %v", err)
	}
	t.Run("an old rotation replayed after rotating back", func(t *testing.T) { refuse(t, first) })
	if _, err := n.Append(ctx, ledgertest.RotationEntry("org-k", set2, back, k1)); err != nil {
		t.Errorf("a fresh rotation by k1: %v", err)
	}
}

// TestRotationOfURLKeys: an org whose keys are at a URL cannot be rotated
// through the ledger (no node can check a signature against them).
func TestRotationOfURLKeys(t *testing.T) {
	ctx := t.Context()
	n, err := ledger.OpenNode(ctx, &ledgertest.MemStore{}, ledgertest.Identity("gw-a"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := ledger.NewEntry("org-u", &ledger.OrgRegistered{ID: "org-u", Name: "U", Kind: "hospital", JWKSURL: "https://u.example/jwks.json"})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := n.Append(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	k, set := ledgertest.OrgKey("k")
	if _, err := n.Append(ctx, ledgertest.RotationEntry("org-u", set, reg, k)); !errors.Is(err, ledger.ErrRotationSignature) {
		t.Errorf("rotation of URL keys = %v, want ErrRotationSignature", err)
	}
}

// fuzzOrgKey is a fixed test key (not anyone's), so that every fuzz
// worker checks against the same key set.
const fuzzOrgKey = `{"alg":"ES256","crv":"P-256","d":"2ABBCl4xB1cU9auoN7JYMMFquI6TYJMpjvWyJcD4wrg","kid":"k1","kty":"EC","use":"sig","x":"HPEagwIEtJcOVYYcFe9AgIil4NMSkv9z1PKJHFFFvTI","y":"uHmZT9fUUl2KTEcWQdVMiNEQGzoOZ6FBU_JobyGG6hY"}`

// FuzzVerifyRotation: a rotation's signature and keys come from the log
// (another member's entry): VerifyRotation never panics, and accepts only
// a signature by a key of the current set over the rotation's content.
func FuzzVerifyRotation(f *testing.F) {
	k, err := jwk.ParseKey([]byte(fuzzOrgKey))
	if err != nil {
		f.Fatal(err)
	}
	pub, err := k.PublicKey()
	if err != nil {
		f.Fatal(err)
	}
	pubSet := jwk.NewSet()
	if err := pubSet.AddKey(pub); err != nil {
		f.Fatal(err)
	}
	b, err := json.Marshal(pubSet)
	if err != nil {
		f.Fatal(err)
	}
	set := string(b)
	_, set2 := ledgertest.OrgKey("k2")
	good := ledgertest.RotationEntry("org-k", set2, 3, k).Body.(*ledger.OrgKeysRotated)
	f.Add(good.Signature, set, set2, uint64(3))
	f.Add(good.Signature, set2, set2, uint64(3))
	f.Add(good.Signature, set, set, uint64(3))
	f.Add("a.b.c", `{"keys":[{"kty":"oct","k":"AAAA"}]}`, set2, uint64(0))
	f.Add("", "", "", uint64(0))
	f.Fuzz(func(t *testing.T, sig, current, jwks string, previous uint64) {
		b := &ledger.OrgKeysRotated{Org: "org-k", JWKS: jwks, Previous: previous, Signature: sig}
		err := ledger.VerifyRotation(b, current)
		if err != nil {
			if !errors.Is(err, ledger.ErrRotationSignature) {
				t.Fatalf("error %v does not wrap ErrRotationSignature", err)
			}
			return
		}
		// Accepted: only k's signature over exactly this rotation can be
		// (the fuzzer holds no other key of a set it can make verify
		// but the fixed one).
		parts := strings.Split(sig, ".")
		payload, derr := base64.RawURLEncoding.DecodeString(parts[1])
		want, _ := ledger.RotationPayload(b)
		if derr != nil || !bytes.Equal(payload, want) {
			t.Fatalf("accepted a signature over %q, want over %q", payload, want)
		}
		if _, err := jws.Verify([]byte(sig), jws.WithKey(jwa.ES256(), pub)); err != nil && current == set {
			t.Fatalf("accepted a signature k did not make: %v", err)
		}
	})
}
