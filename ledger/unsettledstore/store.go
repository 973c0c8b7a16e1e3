// Package unsettledstore keeps, in the gateway's own gorm database
// (SQLite or PostgreSQL), the envelopes of ledger appends whose outcome
// could be unknown, in the table "ledger_unsettled": a ledger.Node given
// the store (Node.KeepDurably) writes each envelope before it submits it
// and removes it once the append's outcome is known, so that a retry
// after a gateway restart submits the same bytes again
// (docs/design/idempotency.md).
//
// A row is an envelope as it travels to the consortium (a signed header,
// and an opening sealed to its recipients or, for registry entries, in
// clear): it holds nothing a transaction does not. The table is not a
// projection of the ledger and is never reset with the projections.
package unsettledstore

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/healthgw/healthgw/ledger"
)

// row is one kept envelope.
type row struct {
	Seal   string `gorm:"primaryKey;size:64"`                              // hex ledger.Seal of the header
	Key    string `gorm:"size:64;not null;index:idx_ledger_unsettled_key"` // hex entry key (ledger.KeptEnvelope.Key)
	Header []byte `gorm:"not null"`
	Sealed []byte
	Clear  []byte
	KeptAt int64 `gorm:"not null;index:idx_ledger_unsettled_kept"` // Unix nanoseconds
}

func (row) TableName() string { return "ledger_unsettled" }

// Store is the table. It is safe for concurrent use.
type Store struct {
	db  *gorm.DB
	now func() time.Time
}

var _ ledger.EnvelopeKeeper = (*Store)(nil)

// Open migrates the table and returns the store.
func Open(ctx context.Context, db *gorm.DB) (*Store, error) {
	if err := db.WithContext(ctx).AutoMigrate(&row{}); err != nil {
		return nil, fmt.Errorf("migrate ledger_unsettled: %w", err)
	}
	return &Store{db: db, now: time.Now}, nil
}

// Keep implements ledger.EnvelopeKeeper: one insert, committed before
// it returns; an envelope kept already stays as it is.
func (s *Store) Keep(ctx context.Context, k ledger.KeptEnvelope) error {
	seal := k.Seal()
	r := row{
		Seal: hex.EncodeToString(seal[:]), Key: hex.EncodeToString(k.Key[:]),
		Header: k.Envelope.Header, Sealed: k.Envelope.Sealed, Clear: k.Envelope.Clear,
		KeptAt: s.now().UnixNano(),
	}
	if err := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&r).Error; err != nil {
		return fmt.Errorf("unsettledstore: keep: %w", err)
	}
	return nil
}

// Settle implements ledger.EnvelopeKeeper.
func (s *Store) Settle(ctx context.Context, seals ...ledger.Digest) error {
	if len(seals) == 0 {
		return nil
	}
	hs := make([]string, len(seals))
	for i, sl := range seals {
		hs[i] = hex.EncodeToString(sl[:])
	}
	if err := s.db.WithContext(ctx).Where("seal IN ?", hs).Delete(&row{}).Error; err != nil {
		return fmt.Errorf("unsettledstore: settle: %w", err)
	}
	return nil
}

// Kept implements ledger.EnvelopeKeeper.
func (s *Store) Kept(ctx context.Context) ([]ledger.KeptEnvelope, error) {
	var rows []row
	if err := s.db.WithContext(ctx).Order("kept_at, seal").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("unsettledstore: load: %w", err)
	}
	out := make([]ledger.KeptEnvelope, 0, len(rows))
	for _, r := range rows {
		k, err := r.kept()
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// kept converts r, checking that its seal is its header's.
func (r row) kept() (ledger.KeptEnvelope, error) {
	var k ledger.KeptEnvelope
	key, err := hex.DecodeString(r.Key)
	if err != nil || len(key) != len(k.Key) {
		return k, fmt.Errorf("unsettledstore: row %s: malformed key", r.Seal)
	}
	copy(k.Key[:], key)
	k.Envelope = ledger.Envelope{Header: r.Header, Sealed: nonEmpty(r.Sealed), Clear: nonEmpty(r.Clear)}
	if seal := k.Seal(); hex.EncodeToString(seal[:]) != r.Seal {
		return k, fmt.Errorf("unsettledstore: row %s: the header's seal is %x", r.Seal, seal)
	}
	return k, nil
}

// nonEmpty is b, or nil if it is empty (a NULL or an empty blob read
// back).
func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
