package eligibility_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"

	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/eligibility"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
)

// memStore is an in-memory eligibility.Store with the same single-use and
// expiry semantics as zkstore. The fail fields inject storage errors.
type memStore struct {
	mu         sync.Mutex
	issuers    map[string]eligibility.Issuer
	circuits   []eligibility.Circuit
	challenges map[string]eligibility.Challenge

	failUse      error
	failIssuer   error
	failCircuits error

	// log, when set, is what Outcome projects (as zkstore does).
	log *fakeLog
}

var _ eligibility.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{issuers: map[string]eligibility.Issuer{}, challenges: map[string]eligibility.Challenge{}}
}

func (s *memStore) Issuer(_ context.Context, keyID string) (eligibility.Issuer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failIssuer != nil {
		return eligibility.Issuer{}, s.failIssuer
	}
	iss, ok := s.issuers[keyID]
	if !ok {
		return eligibility.Issuer{}, eligibility.ErrNotFound
	}
	return iss, nil
}

func (s *memStore) Circuits(context.Context) ([]eligibility.Circuit, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failCircuits != nil {
		return nil, s.failCircuits
	}
	return append([]eligibility.Circuit(nil), s.circuits...), nil
}

func (s *memStore) CreateChallenge(_ context.Context, c eligibility.Challenge) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.challenges[c.ID]; ok {
		return errors.New("duplicate challenge")
	}
	s.challenges[c.ID] = c
	return nil
}

func (s *memStore) UseChallenge(_ context.Context, id, verifier string, now time.Time) (eligibility.Challenge, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failUse != nil {
		return eligibility.Challenge{}, s.failUse
	}
	c, ok := s.challenges[id]
	switch {
	case !ok || c.Verifier != verifier:
		return eligibility.Challenge{}, eligibility.ErrNotFound
	case !c.UsedAt.IsZero():
		return c, eligibility.ErrChallengeUsed
	case !now.Before(c.ExpiresAt):
		return c, eligibility.ErrChallengeExpired
	}
	c.UsedAt = now
	s.challenges[id] = c
	return c, nil
}

func (s *memStore) Challenge(_ context.Context, id, verifier string) (eligibility.Challenge, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.challenges[id]
	if !ok || c.Verifier != verifier {
		return eligibility.Challenge{}, eligibility.ErrNotFound
	}
	return c, nil
}

// Outcome projects the log's proof.verified entries as zkstore does: the
// first whose reason used up the challenge.
func (s *memStore) Outcome(_ context.Context, verifier, id string) (eligibility.Outcome, error) {
	if s.log == nil {
		return eligibility.Outcome{}, eligibility.ErrNotFound
	}
	s.log.mu.Lock()
	defer s.log.mu.Unlock()
	for i, e := range s.log.entries {
		b, ok := e.Body.(*ledger.ProofVerified)
		if !ok || b.Verifier != verifier || b.Challenge != id || !eligibility.Reason(b.Reason).UsesChallenge() {
			continue
		}
		o := eligibility.Outcome{Verifier: verifier, Challenge: id, Statement: b.Statement, Valid: b.Valid,
			Reason: eligibility.Reason(b.Reason), LedgerIndex: uint64(i), Time: e.Time}
		if b.Valid {
			o.Issuer, o.Nullifier = b.Issuer, b.Nullifier
		}
		return o, nil
	}
	return eligibility.Outcome{}, eligibility.ErrNotFound
}

// fakeVerifier is an eligibility.Verifier with function fields.
type fakeVerifier struct {
	circuits func() []circuits.CircuitInfo
	verify   func(s circuits.Statement, pub circuits.Public, proof []byte) error
}

func (v fakeVerifier) Circuits() []circuits.CircuitInfo { return v.circuits() }
func (v fakeVerifier) Verify(s circuits.Statement, pub circuits.Public, proof []byte) error {
	return v.verify(s, pub, proof)
}

// fakeKeys is an eligibility.Keys with function fields.
type fakeKeys struct {
	verifier func(ctx context.Context) (eligibility.Verifier, error)
	pkPath   func(s circuits.Statement) string
}

func (k fakeKeys) Verifier(ctx context.Context) (eligibility.Verifier, error) { return k.verifier(ctx) }
func (k fakeKeys) ProvingKeyPath(s circuits.Statement) string                 { return k.pkPath(s) }

// fakeLog is a ledger.Appender that keeps the entries, numbered from 0
// in the order appended. Each goes through a gateway's node
// (ledgertest.MemLog: translated to v2, checked, signed, sealed) and is
// kept as the node reads it back, so an entry the ledger would refuse
// fails the append; the orgs the entries are for are registered on the
// node first, behind the numbering's back.
type fakeLog struct {
	mu      sync.Mutex
	entries []ledger.Entry
	fail    error

	node ledgertest.MemLog
	orgs map[string]bool
}

func (l *fakeLog) Append(ctx context.Context, e ledger.Entry) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return 0, l.fail
	}
	if e.Org != ledger.OrgGateway && !l.orgs[e.Org] {
		reg, err := ledger.NewEntry(ledger.OrgGateway, &ledger.OrgRegistered{ID: e.Org, Name: e.Org, Kind: "hospital"})
		if err != nil {
			return 0, err
		}
		if _, err := l.node.Append(ctx, reg); err != nil {
			return 0, err
		}
		if l.orgs == nil {
			l.orgs = map[string]bool{}
		}
		l.orgs[e.Org] = true
	}
	idx, err := l.node.Append(ctx, e)
	if err != nil {
		return 0, err
	}
	back, err := l.node.Read(ctx, idx, idx+1)
	if err != nil {
		return 0, err
	}
	l.entries = append(l.entries, back[0])
	return uint64(len(l.entries) - 1), nil
}

func (l *fakeLog) proofs() []*ledger.ProofVerified {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*ledger.ProofVerified
	for _, e := range l.entries {
		if b, ok := e.Body.(*ledger.ProofVerified); ok {
			out = append(out, b)
		}
	}
	return out
}

// fakeSync is an eligibility.Syncer that counts its calls.
type fakeSync struct {
	mu    sync.Mutex
	calls int
	fail  error
}

func (s *fakeSync) Sync(context.Context, uint64) error { return s.SyncAll(context.Background()) }
func (s *fakeSync) SyncAll(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return s.fail
}

// emptyGroth16 is a well-formed Groth16 proof (all points at infinity):
// it parses, and only a verifier can say it is not valid.
func emptyGroth16(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	if _, err := groth16.NewProof(ecc.BN254).WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func newIssuer(t testing.TB) *credential.IssuerKey {
	t.Helper()
	k, err := credential.GenerateIssuerKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
