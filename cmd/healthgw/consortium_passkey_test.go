package main

import (
	"testing"
	"time"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/consent/passkeytest"
	"github.com/healthgw/healthgw/ledger"
)

// TestConsortiumForgedConsent (issue 14, member misbehaviour): once a
// patient has a passkey, a consent change in their name by another
// member's gateway (or by the patient's own), without the patient's
// signature, counts at no node; the patient's signed grant counts at
// every node, marked signed.
func TestConsortiumForgedConsent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a two-validator network")
	}
	ctx := t.Context()
	c := newConsortium(t, 2)
	a, b := c.gws[0], c.gws[1]
	a.register("hosp-a", auth.KindHospital)
	b.register("hosp-b", auth.KindHospital)
	c.syncAll(t)

	ps := a.pseud.Pseudonym("pat-1")
	key, err := passkeytest.New("localhost", "http://localhost:8080")
	if err != nil {
		t.Fatal(err)
	}
	pk, err := key.Passkey(ps)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.access.RegisterPasskey(ctx, ps, pk); err != nil {
		t.Fatalf("register the passkey at A: %v", err)
	}
	labs := consent.Grant{Grantee: consent.Grantee{Org: "hosp-b"}, Effect: consent.Permit, Actions: []consent.Action{consent.ActionRead},
		Categories: []string{"labs"}, Purposes: []consent.Purpose{consent.PurposeTreatment}}
	pc, err := a.access.PrepareGrant(ctx, ps, labs)
	if err != nil {
		t.Fatal(err)
	}
	att, err := key.AssertEntry(pc.Challenge())
	if err != nil {
		t.Fatal(err)
	}
	signed, _, err := a.access.CommitSigned(ctx, pc, att)
	if err != nil {
		t.Fatalf("signed grant at A: %v", err)
	}

	// B's gateway forges a grant in the patient's name and a revocation
	// of the signed grant: the ledger takes them (their bodies are sealed;
	// the consortium cannot see whose consent they are), every node's
	// projection ignores them.
	now := time.Now().UTC().Truncate(time.Second)
	forged := consent.NewID()
	for _, body := range []any{
		&ledger.ConsentGranted{ConsentID: forged, Patient: ps, Grantee: ledger.Grantee{Org: "hosp-b"}, Decision: "permit",
			Actions: []string{"read"}, Purposes: []string{"TREAT"}, NotBefore: now, NotAfter: now.Add(time.Hour)},
		&ledger.ConsentRevoked{ConsentID: signed.ID, Patient: ps},
	} {
		e, err := ledger.NewEntry(ledger.PatientOrg(ps), body)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.node.Append(ctx, e); err != nil {
			t.Fatalf("B appends: %v", err)
		}
	}
	c.syncAll(t)
	for i, g := range c.gws {
		if _, err := g.consent.Grant(ctx, forged); err == nil {
			t.Errorf("node %d: the forged grant counts", i)
		}
		got, err := g.consent.Grant(ctx, signed.ID)
		if err != nil || !got.Signed || got.Revoked {
			t.Errorf("node %d: signed grant %+v, %v; want signed, not revoked", i, got, err)
		}
		if ks, err := g.consent.Passkeys(ctx, ps); err != nil || len(ks) != 1 {
			t.Errorf("node %d: passkeys %+v, %v", i, ks, err)
		}
	}
}
