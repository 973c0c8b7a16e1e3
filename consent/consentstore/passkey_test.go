package consentstore_test

import (
	"context"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/consent/consentstore"
	"github.com/healthgw/healthgw/consent/passkeytest"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
)

// appendSigned appends an entry of org with the attestations sign returns
// for its commitment (none when sign is nil).
func (l *memLog) appendSigned(t testing.TB, org string, body any, sign func(ledger.Digest) []ledger.Attestation) uint64 {
	t.Helper()
	e, err := ledger.NewEntry(org, body)
	if err != nil {
		t.Fatal(err)
	}
	n := l.Node()
	p, err := n.Prepare(e)
	if err != nil {
		t.Fatal(err)
	}
	var atts []ledger.Attestation
	if sign != nil {
		atts = sign(p.Commitment())
	}
	i, err := n.AppendPrepared(context.Background(), p, atts)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func assertBy(t testing.TB, a *passkeytest.Authenticator) func(ledger.Digest) []ledger.Attestation {
	return func(c ledger.Digest) []ledger.Attestation {
		att, err := a.AssertEntry(c)
		if err != nil {
			t.Fatal(err)
		}
		return []ledger.Attestation{att}
	}
}

// The passkey rule: before a patient registers a passkey, consent changes
// count and are marked unsigned; after, only those with a valid assertion
// by a registered passkey over the entry's commitment count (marked
// signed); the others are ignored, whoever wrote them.
func TestPasskeyRule(t *testing.T) {
	const origin = "http://localhost:8080"
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		l := newMemLog(t)
		p, p2 := patients[0], patients[1]
		nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		grant := func(id, patient string) *ledger.ConsentGranted {
			return &ledger.ConsentGranted{ConsentID: id, Patient: patient, Grantee: ledger.Grantee{Org: "hospital-b"},
				Decision: "permit", Actions: []string{"read"}, Purposes: []string{"TREAT"},
				NotBefore: nb, NotAfter: nb.AddDate(1, 0, 0)}
		}
		revoke := func(id, patient string) *ledger.ConsentRevoked {
			return &ledger.ConsentRevoked{ConsentID: id, Patient: patient}
		}
		a, err := passkeytest.New("localhost", origin)
		if err != nil {
			t.Fatal(err)
		}
		impostor, err := a.Impostor()
		if err != nil {
			t.Fatal(err)
		}
		other, err := passkeytest.New("localhost", origin)
		if err != nil {
			t.Fatal(err)
		}
		elsewhere, err := a.Impostor()
		if err != nil {
			t.Fatal(err)
		}
		*elsewhere = *a // a's key and credential, asserting at another origin
		elsewhere.Origin = "http://evil.localhost:8080"
		absent := *a // a's key, user presence flag cleared
		absent.Flags = 0
		reg, err := a.Passkey(p)
		if err != nil {
			t.Fatal(err)
		}
		org := ledger.PatientOrg(p)

		l.appendSigned(t, org, grant("cns_before", p), nil) // unsigned, before any passkey: counts
		l.appendSigned(t, org, reg.LedgerBody(), nil)
		l.appendSigned(t, org, grant("cns_signed", p), assertBy(t, a))
		l.appendSigned(t, org, grant("cns_unsigned", p), nil)
		l.appendSigned(t, org, grant("cns_wrong_challenge", p), func(ledger.Digest) []ledger.Attestation {
			return assertBy(t, a)(ledger.Digest{1, 2, 3})
		})
		l.appendSigned(t, org, grant("cns_wrong_key", p), assertBy(t, impostor))
		l.appendSigned(t, org, grant("cns_unregistered_key", p), assertBy(t, other))
		l.appendSigned(t, org, grant("cns_wrong_origin", p), assertBy(t, elsewhere))
		l.appendSigned(t, org, grant("cns_not_present", p), assertBy(t, &absent))
		l.appendSigned(t, org, revoke("cns_signed", p), nil)                         // unsigned: ignored
		l.appendSigned(t, org, revoke("cns_before", p), assertBy(t, impostor))       // forged: ignored
		revokedAt := l.appendSigned(t, org, revoke("cns_before", p), assertBy(t, a)) // counts
		// A second patient without a passkey; a's credential ID cannot be
		// registered again (for them or anyone).
		reg2 := reg
		reg2.Patient = p2
		l.appendSigned(t, ledger.PatientOrg(p2), reg2.LedgerBody(), nil)
		l.appendSigned(t, ledger.PatientOrg(p2), grant("cns_p2", p2), nil)
		// A further passkey for p: ignored unless an existing one signs it.
		b, err := passkeytest.New("localhost", origin)
		if err != nil {
			t.Fatal(err)
		}
		regB, err := b.Passkey(p)
		if err != nil {
			t.Fatal(err)
		}
		l.appendSigned(t, org, regB.LedgerBody(), nil)               // the operator's key: ignored
		l.appendSigned(t, org, grant("cns_by_b", p), assertBy(t, b)) // so its signature counts for nothing
		c, err := passkeytest.New("localhost", origin)
		if err != nil {
			t.Fatal(err)
		}
		regC, err := c.Passkey(p)
		if err != nil {
			t.Fatal(err)
		}
		l.appendSigned(t, org, regC.LedgerBody(), assertBy(t, a)) // vouched for by a
		l.appendSigned(t, org, grant("cns_by_c", p), assertBy(t, c))

		s := newStore(t, db)
		sync := func() {
			t.Helper()
			size, err := l.Size(ctx)
			if err != nil {
				t.Fatal(err)
			}
			next, err := s.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			// Apply in small batches, so that some rules see passkeys
			// from the database and others from the batch.
			for next < size {
				end := min(next+3, size)
				es, err := l.Read(ctx, next, end)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Apply(ctx, next, es); err != nil {
					t.Fatal(err)
				}
				next = end
			}
		}
		check := func() {
			t.Helper()
			want := map[string]struct{ signed, revoked bool }{
				"cns_before": {false, true},
				"cns_signed": {true, false},
				"cns_p2":     {false, false},
				"cns_by_c":   {true, false},
			}
			gs, err := s.GrantsForPatient(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			gs2, err := s.GrantsForPatient(ctx, p2)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]consent.Grant{}
			for _, g := range append(gs, gs2...) {
				got[g.ID] = g
			}
			for id, w := range want {
				g, ok := got[id]
				if !ok {
					t.Errorf("grant %s missing", id)
					continue
				}
				if g.Signed != w.signed || g.Revoked != w.revoked {
					t.Errorf("grant %s: signed %v revoked %v, want signed %v revoked %v", id, g.Signed, g.Revoked, w.signed, w.revoked)
				}
				delete(got, id)
			}
			for id := range got {
				t.Errorf("grant %s counts; it must be ignored", id)
			}
			if g, err := s.Grant(ctx, "cns_before"); err != nil || g.RevokedIndex != revokedAt {
				t.Errorf("cns_before revoked at %d (%v), want %d", g.RevokedIndex, err, revokedAt)
			}
			ks, err := s.Passkeys(ctx, p)
			if err != nil || len(ks) != 2 || ks[0].CredentialID != a.CredentialID() || ks[1].CredentialID != c.CredentialID() {
				t.Errorf("passkeys of p: %+v, %v", ks, err)
			}
			if ks, err := s.Passkeys(ctx, p2); err != nil || len(ks) != 0 {
				t.Errorf("passkeys of p2: %+v, %v (a credential is registered once)", ks, err)
			}
		}
		sync()
		check()
		// The rule is a function of the log: a rebuild gives the same.
		if err := s.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		sync()
		check()
		_ = consentstore.Name
	})
}
