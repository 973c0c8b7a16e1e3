package access_test

import (
	"errors"
	"testing"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/consent/consentstore"
	"github.com/healthgw/healthgw/consent/passkeytest"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
)

// Patient-signed changes over the real consent projection: unsigned
// changes work until the patient registers a passkey and are refused
// after (nothing appended); a signed change whose assertion does not
// verify is refused before anything is appended; a valid one is appended
// with its attestation and projected as signed.
func TestSignedChanges(t *testing.T) {
	ctx := t.Context()
	w := newWorld(t, consent.Policy{})
	store, err := consentstore.Open(ctx, databasetest.SQLite(t))
	if err != nil {
		t.Fatal(err)
	}
	follower := ledger.NewFollower(w.log.MemLog, store)
	svc := access.New(access.Config{
		Vault: w.vault, Grants: store, Orgs: testOrgs, Justifications: w.justs, Log: w.log, Sync: follower,
		Preparer: w.log.Node(), Passkeys: store,
	})
	p := pseudonym("pat-1")
	labs := consent.Grant{Grantee: consent.Grantee{Org: "hosp-b"}, Effect: consent.Permit, Actions: []consent.Action{consent.ActionRead},
		Categories: []string{"labs"}, Purposes: []consent.Purpose{consent.PurposeTreatment}}
	size := func() uint64 {
		t.Helper()
		n, err := w.log.Size(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	before, _, err := svc.Grant(ctx, p, labs)
	if err != nil {
		t.Fatalf("unsigned grant before a passkey: %v", err)
	}
	if before.Signed {
		t.Errorf("unsigned grant marked signed")
	}
	a, err := passkeytest.New("localhost", "http://localhost:8080")
	if err != nil {
		t.Fatal(err)
	}
	pk, err := a.Passkey(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RegisterPasskey(ctx, p, pk); err != nil {
		t.Fatalf("RegisterPasskey: %v", err)
	}

	n := size()
	if _, _, err := svc.Grant(ctx, p, labs); !errors.Is(err, access.ErrSignatureRequired) {
		t.Errorf("unsigned grant after a passkey: %v, want ErrSignatureRequired", err)
	}
	if _, _, err := svc.Revoke(ctx, p, before.ID); !errors.Is(err, access.ErrSignatureRequired) {
		t.Errorf("unsigned revocation after a passkey: %v, want ErrSignatureRequired", err)
	}
	pc, err := svc.PrepareGrant(ctx, p, labs)
	if err != nil {
		t.Fatalf("PrepareGrant: %v", err)
	}
	wrong, err := a.Assert([]byte("another challenge"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CommitSigned(ctx, pc, wrong); !errors.Is(err, access.ErrSignatureRefused) {
		t.Errorf("CommitSigned with a wrong challenge: %v, want ErrSignatureRefused", err)
	}
	other, err := passkeytest.New("localhost", "http://localhost:8080")
	if err != nil {
		t.Fatal(err)
	}
	att, err := other.AssertEntry(pc.Challenge())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CommitSigned(ctx, pc, att); !errors.Is(err, access.ErrSignatureRefused) {
		t.Errorf("CommitSigned by an unregistered passkey: %v, want ErrSignatureRefused", err)
	}
	if got := size(); got != n {
		t.Fatalf("refused changes appended: log %d -> %d", n, got)
	}

	att, err = a.AssertEntry(pc.Challenge())
	if err != nil {
		t.Fatal(err)
	}
	g, rc, err := svc.CommitSigned(ctx, pc, att)
	if err != nil {
		t.Fatalf("CommitSigned: %v", err)
	}
	if !g.Signed || g.GrantedIndex != rc.Index {
		t.Errorf("signed grant: %+v at %d", g, rc.Index)
	}
	es, err := w.log.Read(ctx, rc.Index, rc.Index+1)
	if err != nil {
		t.Fatal(err)
	}
	if len(es[0].Attestations) != 1 || es[0].Attestations[0] != att {
		t.Errorf("entry attestations %+v", es[0].Attestations)
	}

	rp, err := svc.PrepareRevoke(ctx, p, before.ID)
	if err != nil {
		t.Fatalf("PrepareRevoke: %v", err)
	}
	att, err = a.AssertEntry(rp.Challenge())
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := svc.CommitSigned(ctx, rp, att)
	if err != nil || !r.Revoked {
		t.Fatalf("signed revocation: %+v, %v", r, err)
	}
	// A second passkey: only with the first one's signature.
	b, err := passkeytest.New("localhost", "http://localhost:8080")
	if err != nil {
		t.Fatal(err)
	}
	pkB, err := b.Passkey(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RegisterPasskey(ctx, p, pkB); !errors.Is(err, access.ErrSignatureRequired) {
		t.Errorf("unsigned second passkey: %v, want ErrSignatureRequired", err)
	}
	pp, err := svc.PreparePasskey(ctx, p, pkB)
	if err != nil {
		t.Fatal(err)
	}
	att, err = b.AssertEntry(pp.Challenge()) // the new key cannot vouch for itself
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CommitSigned(ctx, pp, att); !errors.Is(err, access.ErrSignatureRefused) {
		t.Errorf("second passkey signed by itself: %v, want ErrSignatureRefused", err)
	}
	att, err = a.AssertEntry(pp.Challenge())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.CommitSigned(ctx, pp, att); err != nil {
		t.Fatalf("second passkey signed by the first: %v", err)
	}
	if ks, err := store.Passkeys(ctx, p); err != nil || len(ks) != 2 {
		t.Errorf("passkeys: %+v, %v", ks, err)
	}
	if _, err := svc.PrepareRevoke(ctx, pseudonym("pat-2"), g.ID); err == nil {
		t.Errorf("another patient prepared the revocation of pat-1's grant")
	}
}
