package ledger_test

import (
	"errors"
	"testing"

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
