// Package zkstore keeps the gateway's zero-knowledge state in gorm: the
// projection of issuer.registered and circuit.registered ledger entries
// (which issuer keys and verifying keys are the registered ones) and of
// the proof.verified entries that used up a challenge (what became of
// it), and the verifiers' single-use proof challenges. The types are package
// eligibility's; the rows here are this package's alone.
package zkstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/healthgw/healthgw/circuits/eligibility"
	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger"
)

// Name is the projection's name (its cursor's key).
const Name = "zk"

// ErrGap reports entries that start beyond the projection cursor.
var ErrGap = database.ErrGap

// cursor is the projection's cursor (table kept from earlier versions).
var cursor = database.NewCursor("zk_projection_cursor", Name)

type issuerRow struct {
	KeyID       string `gorm:"primaryKey;size:64"`
	Org         string `gorm:"size:64;index;not null"`
	PublicKey   string `gorm:"size:128;not null"`
	LedgerIndex uint64 `gorm:"not null"`
}

func (issuerRow) TableName() string { return "zk_issuers" }

type circuitRow struct {
	Statement   string `gorm:"primaryKey;size:32"`
	Version     int    `gorm:"primaryKey"`
	VKHash      string `gorm:"size:64;not null"`
	Setup       string `gorm:"size:16;not null"`
	LedgerIndex uint64 `gorm:"not null"`
	TimeNanos   int64  `gorm:"not null"`
}

func (circuitRow) TableName() string { return "zk_circuits" }

type challengeRow struct {
	ID        string `gorm:"primaryKey;size:64"`
	Verifier  string `gorm:"size:64;index;not null"`
	Statement string `gorm:"size:32;not null"`
	Params    string `gorm:"not null"`
	Nonce     []byte `gorm:"not null"`
	Scope     string `gorm:"size:128;not null"`
	Date      uint64 `gorm:"not null"`
	CreatedAt int64  `gorm:"not null"`
	ExpiresAt int64  `gorm:"not null;index"`
	UsedAt    *int64
}

func (challengeRow) TableName() string { return "zk_challenges" }

// outcomeRow is the proof.verified entry that used up a verifier's
// challenge: of those there is at most one per challenge (using one is
// atomic), so the first applied is kept.
type outcomeRow struct {
	Verifier    string `gorm:"primaryKey;size:64"`
	Challenge   string `gorm:"primaryKey;size:64"`
	Statement   string `gorm:"size:32;not null"`
	Valid       bool   `gorm:"not null"`
	Reason      string `gorm:"size:64;not null"`
	Issuer      string `gorm:"size:64;not null"`
	Nullifier   string `gorm:"size:128;not null"`
	LedgerIndex uint64 `gorm:"not null"`
	TimeNanos   int64  `gorm:"not null"`
}

func (outcomeRow) TableName() string { return "zk_proof_outcomes" }

// Store is the zero-knowledge state. It is safe for concurrent use,
// including by several processes sharing the database.
type Store struct {
	db *gorm.DB
}

var (
	_ ledger.Applier    = (*Store)(nil)
	_ eligibility.Store = (*Store)(nil)
)

// Open migrates the tables and returns the store.
func Open(ctx context.Context, db *gorm.DB) (*Store, error) {
	tx := db.WithContext(ctx)
	if err := tx.AutoMigrate(&issuerRow{}, &circuitRow{}, &challengeRow{}, &outcomeRow{}); err != nil {
		return nil, fmt.Errorf("migrate zk store: %w", err)
	}
	if err := cursor.Migrate(ctx, db); err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// Name implements ledger.Applier.
func (s *Store) Name() string { return Name }

// Next implements ledger.Applier.
func (s *Store) Next(ctx context.Context) (uint64, error) {
	return cursor.Next(ctx, s.db)
}

// Apply implements ledger.Applier: issuer.registered,
// circuit.registered and proof.verified entries are applied with the
// cursor advance in one transaction. A later registration of a statement
// version replaces the earlier one (a new setup); an issuer key ID is
// registered once (the ledger refuses it again, see ledger.Authority) and
// the first registration stands; of proof.verified only those whose
// reason used up the challenge count, the first one kept. Entries without
// a body (sealed to other gateways) are skipped.
func (s *Store) Apply(ctx context.Context, first uint64, entries []ledger.Entry) error {
	return database.Apply(ctx, s.db, cursor, first, entries, applyBatch)
}

func applyBatch(tx *gorm.DB, first uint64, entries []ledger.Entry) error {
	for i, e := range entries {
		idx := first + uint64(i)
		switch b := e.Body.(type) {
		case *ledger.IssuerRegistered:
			row := issuerRow{KeyID: b.KeyID, Org: b.Issuer, PublicKey: b.PublicKey, LedgerIndex: idx}
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
				return fmt.Errorf("apply issuer %d: %w", idx, err)
			}
		case *ledger.CircuitRegistered:
			row := circuitRow{Statement: b.Statement, Version: b.Version, VKHash: b.VKHash, Setup: b.Setup, LedgerIndex: idx, TimeNanos: e.Time.UnixNano()}
			if err := tx.Clauses(clause.OnConflict{UpdateAll: true}).Create(&row).Error; err != nil {
				return fmt.Errorf("apply circuit %d: %w", idx, err)
			}
		case *ledger.ProofVerified:
			reason := eligibility.Reason(b.Reason)
			if !reason.UsesChallenge() || b.Challenge == "" {
				continue
			}
			row := outcomeRow{Verifier: b.Verifier, Challenge: b.Challenge, Statement: b.Statement, Valid: b.Valid, Reason: b.Reason,
				LedgerIndex: idx, TimeNanos: e.Time.UnixNano()}
			if b.Valid {
				row.Issuer, row.Nullifier = b.Issuer, b.Nullifier
			}
			if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
				return fmt.Errorf("apply proof verification %d: %w", idx, err)
			}
		}
	}
	return nil
}

// Issuer returns the registered issuer key with that key ID.
func (s *Store) Issuer(ctx context.Context, keyID string) (eligibility.Issuer, error) {
	var r issuerRow
	err := s.db.WithContext(ctx).Take(&r, "key_id = ?", keyID).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return eligibility.Issuer{}, eligibility.ErrNotFound
	}
	if err != nil {
		return eligibility.Issuer{}, fmt.Errorf("zkstore: issuer: %w", err)
	}
	return eligibility.Issuer{Org: r.Org, KeyID: r.KeyID, PublicKey: r.PublicKey, LedgerIndex: r.LedgerIndex}, nil
}

// Circuits lists the registered circuits, latest registration of each
// statement version.
func (s *Store) Circuits(ctx context.Context) ([]eligibility.Circuit, error) {
	var rows []circuitRow
	if err := s.db.WithContext(ctx).Order("statement, version").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("zkstore: circuits: %w", err)
	}
	out := make([]eligibility.Circuit, 0, len(rows))
	for _, r := range rows {
		out = append(out, eligibility.Circuit{Statement: r.Statement, Version: r.Version, VKHash: r.VKHash, Setup: r.Setup, LedgerIndex: r.LedgerIndex, Time: time.Unix(0, r.TimeNanos).UTC()})
	}
	return out, nil
}

// CreateChallenge stores a new challenge.
func (s *Store) CreateChallenge(ctx context.Context, c eligibility.Challenge) error {
	params, err := json.Marshal(c.Params)
	if err != nil {
		return err
	}
	row := challengeRow{
		ID: c.ID, Verifier: c.Verifier, Statement: c.Statement, Params: string(params), Nonce: c.Nonce,
		Scope: c.Scope, Date: c.Date, CreatedAt: c.CreatedAt.UnixNano(), ExpiresAt: c.ExpiresAt.UnixNano(),
	}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return fmt.Errorf("zkstore: create challenge: %w", err)
	}
	return nil
}

// UseChallenge marks verifier's challenge id used at now, atomically: of
// concurrent uses exactly one succeeds. It returns the challenge, or
// eligibility.ErrNotFound (no such challenge for this verifier),
// eligibility.ErrChallengeUsed, or eligibility.ErrChallengeExpired (the
// challenge is returned with those two errors).
func (s *Store) UseChallenge(ctx context.Context, id, verifier string, now time.Time) (eligibility.Challenge, error) {
	db := s.db.WithContext(ctx)
	var r challengeRow
	err := db.Take(&r, "id = ? AND verifier = ?", id, verifier).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return eligibility.Challenge{}, eligibility.ErrNotFound
	}
	if err != nil {
		return eligibility.Challenge{}, fmt.Errorf("zkstore: challenge: %w", err)
	}
	c, err := r.challenge()
	if err != nil {
		return eligibility.Challenge{}, err
	}
	if r.UsedAt != nil {
		return c, eligibility.ErrChallengeUsed
	}
	if now.UnixNano() >= r.ExpiresAt {
		return c, eligibility.ErrChallengeExpired
	}
	t := now.UnixNano()
	res := db.Model(&challengeRow{}).Where("id = ? AND used_at IS NULL", id).Update("used_at", t)
	if res.Error != nil {
		return c, fmt.Errorf("zkstore: use challenge: %w", res.Error)
	}
	if res.RowsAffected != 1 {
		return c, eligibility.ErrChallengeUsed
	}
	c.UsedAt = now
	return c, nil
}

// Challenge returns verifier's challenge id, used or not.
func (s *Store) Challenge(ctx context.Context, id, verifier string) (eligibility.Challenge, error) {
	var r challengeRow
	err := s.db.WithContext(ctx).Take(&r, "id = ? AND verifier = ?", id, verifier).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return eligibility.Challenge{}, eligibility.ErrNotFound
	}
	if err != nil {
		return eligibility.Challenge{}, fmt.Errorf("zkstore: challenge: %w", err)
	}
	return r.challenge()
}

// Outcome returns the verification that used up verifier's challenge id.
func (s *Store) Outcome(ctx context.Context, verifier, id string) (eligibility.Outcome, error) {
	var r outcomeRow
	err := s.db.WithContext(ctx).Take(&r, "verifier = ? AND challenge = ?", verifier, id).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return eligibility.Outcome{}, eligibility.ErrNotFound
	}
	if err != nil {
		return eligibility.Outcome{}, fmt.Errorf("zkstore: outcome: %w", err)
	}
	return eligibility.Outcome{
		Verifier: r.Verifier, Challenge: r.Challenge, Statement: r.Statement, Valid: r.Valid, Reason: eligibility.Reason(r.Reason),
		Issuer: r.Issuer, Nullifier: r.Nullifier, LedgerIndex: r.LedgerIndex, Time: time.Unix(0, r.TimeNanos).UTC(),
	}, nil
}

// PurgeChallenges deletes challenges that expired before t.
func (s *Store) PurgeChallenges(ctx context.Context, t time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Where("expires_at < ?", t.UnixNano()).Delete(&challengeRow{})
	return res.RowsAffected, res.Error
}

// Reset empties the projection (not the challenges); the next sync
// rebuilds it from the log.
func (s *Store) Reset(ctx context.Context) error {
	return cursor.Reset(ctx, s.db, func(tx *gorm.DB) error {
		for _, m := range []any{&issuerRow{}, &circuitRow{}, &outcomeRow{}} {
			if err := tx.Session(&gorm.Session{AllowGlobalUpdate: true}).Delete(m).Error; err != nil {
				return err
			}
		}
		return nil
	})
}

func (r challengeRow) challenge() (eligibility.Challenge, error) {
	var params map[string]string
	if err := json.Unmarshal([]byte(r.Params), &params); err != nil {
		return eligibility.Challenge{}, fmt.Errorf("zkstore: challenge %s params: %w", r.ID, err)
	}
	c := eligibility.Challenge{
		ID: r.ID, Verifier: r.Verifier, Statement: r.Statement, Params: params, Nonce: r.Nonce, Scope: r.Scope,
		Date: r.Date, CreatedAt: time.Unix(0, r.CreatedAt).UTC(), ExpiresAt: time.Unix(0, r.ExpiresAt).UTC(),
	}
	if r.UsedAt != nil {
		c.UsedAt = time.Unix(0, *r.UsedAt).UTC()
	}
	return c, nil
}
