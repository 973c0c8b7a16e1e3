package zkstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/circuits/eligibility"
	"github.com/healthgw/healthgw/circuits/zkstore"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
)

var t0 = time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)

// Issuer keys of the test entries (32 bytes, hex) and their key IDs.
var (
	keyA, keyB = strings.Repeat("0a", 32), strings.Repeat("0b", 32)
	k1, k2     = keyID(keyA), keyID(keyB)
)

func keyID(pub string) string {
	id, err := ledger.IssuerKeyID(pub)
	if err != nil {
		panic(err)
	}
	return id
}

// entries are what the gateway's node reads back of a log (ledgertest.MemLog)
// holding the issuers' org registrations (0, 1), issuer k1 (2), an
// unrelated org registration (3), two registrations of one circuit
// version (4, 5), issuer k2 (6), the verifier's registration (7), five
// proof verifications (8-12), and an entry sealed to other gateways, read
// without a body (13).
func entries(t *testing.T) []ledger.Entry {
	t.Helper()
	log := &ledgertest.MemLog{Clock: func() time.Time { return t0 }}
	for _, body := range []any{
		&ledger.OrgRegistered{ID: "hosp-a", Name: "A", Kind: "hospital"},
		&ledger.OrgRegistered{ID: "hosp-b", Name: "B", Kind: "hospital"},
		&ledger.IssuerRegistered{Issuer: "hosp-a", KeyID: k1, PublicKey: keyA},
		&ledger.OrgRegistered{ID: "hosp-x", Name: "X", Kind: "hospital"},
		&ledger.CircuitRegistered{Statement: "age", Version: 1, VKHash: strings.Repeat("1", 64), Setup: "dev"},
		&ledger.CircuitRegistered{Statement: "age", Version: 1, VKHash: strings.Repeat("2", 64), Setup: "ceremony"},
		&ledger.IssuerRegistered{Issuer: "hosp-b", KeyID: k2, PublicKey: keyB},
		&ledger.OrgRegistered{ID: "ins-v", Name: "V", Kind: "verifier"},
		// Verifications (8-12): one valid, one refused after using its
		// challenge, and refusals that never reached theirs (not
		// outcomes).
		proofVerified("ins-v", "ch-ok", true, ""),
		proofVerified("ins-v", "ch-bad", false, "proof.invalid"),
		proofVerified("ins-v", "ch-ok", false, "challenge.used"),
		proofVerified("ins-v", "ch-none", false, "challenge.unknown"),
		proofVerified("ins-v", "ch-late", false, "challenge.expired"),
	} {
		org := "gateway"
		switch b := body.(type) {
		case *ledger.IssuerRegistered:
			org = b.Issuer
		case *ledger.ProofVerified:
			org = b.Verifier
		}
		e, err := ledger.NewEntry(org, body)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := log.Append(t.Context(), e); err != nil {
			t.Fatalf("append %T: %v", body, err)
		}
	}
	es, err := log.Decoded()
	if err != nil {
		t.Fatal(err)
	}
	return append(es, ledger.Entry{Type: ledger.TypeIssuerRegistered, Version: ledger.CurrentVersion, Org: "hosp-z", Author: "gw-elsewhere", Time: t0})
}

func proofVerified(verifier, challenge string, valid bool, reason string) *ledger.ProofVerified {
	proven := valid
	b := &ledger.ProofVerified{Verifier: verifier, Statement: "age", Params: map[string]string{"cutoff": "2008-05-06"},
		Valid: valid, Reason: reason, Challenge: challenge, Proven: &proven}
	if valid {
		b.Issuer, b.Nullifier = "hosp-a", "0a0b"
	} else {
		b.ClaimedIssuer, b.ClaimedNullifier = "hosp-z", "0c0d"
	}
	return b
}

// outcomes are the outcomes of every challenge the entries name.
func outcomes(ctx context.Context, s *zkstore.Store) (map[string]eligibility.Outcome, error) {
	out := map[string]eligibility.Outcome{}
	for _, id := range []string{"ch-ok", "ch-bad", "ch-none", "ch-late"} {
		o, err := s.Outcome(ctx, "ins-v", id)
		if errors.Is(err, eligibility.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[id] = o
	}
	return out, nil
}

// TestOutcomes: the projection keeps, per challenge, the verification
// that used it up — valid with the proven issuer and nullifier, or refused
// without the claimed ones — and not the refusals that never reached a
// challenge; another verifier's challenge has none.
func TestOutcomes(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		s, err := zkstore.Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(ctx, 0, entries(t)); err != nil {
			t.Fatal(err)
		}
		got, err := outcomes(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]eligibility.Outcome{
			"ch-ok":  {Verifier: "ins-v", Challenge: "ch-ok", Statement: "age", Valid: true, Issuer: "hosp-a", Nullifier: "0a0b", LedgerIndex: 8, Time: t0},
			"ch-bad": {Verifier: "ins-v", Challenge: "ch-bad", Statement: "age", Reason: eligibility.ReasonInvalid, LedgerIndex: 9, Time: t0},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("outcomes (-want +got):\n%s", diff)
		}
		if _, err := s.Outcome(ctx, "ins-w", "ch-ok"); !errors.Is(err, eligibility.ErrNotFound) {
			t.Errorf("another verifier's outcome: %v, want ErrNotFound", err)
		}
	})
}

func TestProjection(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		s, err := zkstore.Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		es := entries(t)
		if err := s.Apply(ctx, 0, es[:3]); err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(ctx, 5, es[:1]); !errors.Is(err, zkstore.ErrGap) {
			t.Errorf("apply past the cursor: %v, want ErrGap", err)
		}
		if err := s.Apply(ctx, 0, es); err != nil { // overlaps what is applied
			t.Fatal(err)
		}
		iss, err := s.Issuer(ctx, k2)
		if err != nil || iss.Org != "hosp-b" || iss.PublicKey != keyB || iss.LedgerIndex != 6 {
			t.Errorf("issuer k2 = %+v, %v", iss, err)
		}
		if _, err := s.Issuer(ctx, "nope"); !errors.Is(err, eligibility.ErrNotFound) {
			t.Errorf("unknown issuer: %v", err)
		}
		live, err := s.Circuits(ctx)
		if err != nil || len(live) != 1 || live[0].VKHash != strings.Repeat("2", 64) || live[0].LedgerIndex != 5 {
			t.Fatalf("circuits = %+v, %v (the later registration wins)", live, err)
		}
		// A key ID is registered once (the ledger refuses it again): a
		// second registration fed to the projection does not replace it.
		again := es[6]
		again.Body = &ledger.IssuerRegistered{Issuer: "hosp-a", KeyID: k2, PublicKey: keyB}
		if err := s.Apply(ctx, uint64(len(es)), []ledger.Entry{again}); err != nil {
			t.Fatal(err)
		}
		if iss, err := s.Issuer(ctx, k2); err != nil || iss.Org != "hosp-b" || iss.LedgerIndex != 6 {
			t.Errorf("issuer k2 after a second registration = %+v, %v; want the first", iss, err)
		}
		if err := s.Reset(ctx); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.Next(ctx); n != 0 {
			t.Fatalf("cursor after reset: %d", n)
		}
		if err := s.Apply(ctx, 0, es); err != nil {
			t.Fatal(err)
		}
		rebuilt, _ := s.Circuits(ctx)
		if diff := cmp.Diff(live, rebuilt); diff != "" {
			t.Errorf("rebuilt differs (-live +rebuilt):\n%s", diff)
		}
	})
}

func TestChallenges(t *testing.T) {
	databasetest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := t.Context()
		s, err := zkstore.Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		c := eligibility.Challenge{ID: "ch1", Verifier: "ins-v", Statement: "age", Params: map[string]string{"cutoff": "2008-05-06"},
			Nonce: []byte{1, 2, 3}, Scope: "ins-v", Date: 45000, CreatedAt: t0, ExpiresAt: t0.Add(5 * time.Minute)}
		if err := s.CreateChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateChallenge(ctx, c); err == nil {
			t.Error("a duplicate challenge ID was stored")
		}
		if _, err := s.UseChallenge(ctx, "ch1", "other-verifier", t0); !errors.Is(err, eligibility.ErrNotFound) {
			t.Errorf("another verifier's challenge: %v, want ErrNotFound", err)
		}
		// Concurrent uses: exactly one wins.
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, err := s.UseChallenge(ctx, "ch1", "ins-v", t0.Add(time.Minute))
				if err == nil {
					wins.Add(1)
					if diff := cmp.Diff(c.Params, got.Params); diff != "" || got.Scope != "ins-v" {
						t.Errorf("challenge read back differs: %s", diff)
					}
				} else if !errors.Is(err, eligibility.ErrChallengeUsed) {
					t.Errorf("concurrent use: %v", err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Errorf("%d concurrent uses succeeded, want 1", wins.Load())
		}
		c.ID = "ch2"
		if err := s.CreateChallenge(ctx, c); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UseChallenge(ctx, "ch2", "ins-v", t0.Add(5*time.Minute)); !errors.Is(err, eligibility.ErrChallengeExpired) {
			t.Errorf("expired challenge: %v", err)
		}
		got, err := s.Challenge(ctx, "ch1", "ins-v")
		if err != nil || got.UsedAt.IsZero() || got.ID != "ch1" || string(got.Nonce) != string(c.Nonce) {
			t.Errorf("Challenge(ch1) = %+v, %v; want it, used", got, err)
		}
		if got, err := s.Challenge(ctx, "ch2", "ins-v"); err != nil || !got.UsedAt.IsZero() {
			t.Errorf("Challenge(ch2) = %+v, %v; want it, unused", got, err)
		}
		if _, err := s.Challenge(ctx, "ch1", "other-verifier"); !errors.Is(err, eligibility.ErrNotFound) {
			t.Errorf("another verifier's Challenge: %v, want ErrNotFound", err)
		}
		if n, err := s.PurgeChallenges(ctx, t0.Add(time.Hour)); err != nil || n != 2 {
			t.Errorf("purge: %d, %v; want 2", n, err)
		}
	})
}

// zkState is the projection's queryable state.
type zkState struct {
	Issuers  map[string]eligibility.Issuer
	Circuits []eligibility.Circuit
	Outcomes map[string]eligibility.Outcome
}

func TestApplierConformance(t *testing.T) {
	databasetest.EachOpener(t, func(t *testing.T, open func(*testing.T) *gorm.DB) {
		ledgertest.ApplierSuite{
			Entries: entries(t),
			New: func(t *testing.T) ledgertest.Projection {
				db := open(t)
				s, err := zkstore.Open(t.Context(), db)
				if err != nil {
					t.Fatal(err)
				}
				return ledgertest.Projection{
					Applier: s, Reset: s.Reset,
					State: func(ctx context.Context) (any, error) {
						st := zkState{Issuers: map[string]eligibility.Issuer{}}
						for _, id := range []string{k1, k2} {
							iss, err := s.Issuer(ctx, id)
							if errors.Is(err, eligibility.ErrNotFound) {
								continue
							}
							if err != nil {
								return nil, err
							}
							st.Issuers[id] = iss
						}
						var err error
						if st.Outcomes, err = outcomes(ctx, s); err != nil {
							return nil, err
						}
						st.Circuits, err = s.Circuits(ctx)
						return st, err
					},
					FailWrites: func(n int) func() { return databasetest.FailWrites(db, n) },
				}
			},
		}.Run(t)
	})
}
