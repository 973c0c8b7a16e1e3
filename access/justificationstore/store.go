// Package justificationstore keeps the openings of break-glass
// justification commitments: for each commitment an access.decided entry
// carries, the salt and the reason. It is the only place the reason is
// kept; the ledger holds only the commitment (ledger.JustificationCommitment)
// and the API shows the reason to regulators only (access.Queries).
//
// The table is not a projection of the ledger: it cannot be rebuilt from
// the entries and is never reset with the projections.
package justificationstore

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/healthgw/healthgw/ledger"
)

// openingRow is one opening, keyed by the commitment it opens (which is
// unique: the salt is fresh per entry).
type openingRow struct {
	Commitment string `gorm:"primaryKey;size:64"`
	Salt       []byte `gorm:"not null"`
	Reason     string `gorm:"not null"`
}

func (openingRow) TableName() string { return "breakglass_justifications" }

// Store is the openings table. It is safe for concurrent use.
type Store struct{ db *gorm.DB }

// Open migrates the table and returns the store.
func Open(ctx context.Context, db *gorm.DB) (*Store, error) {
	if err := db.WithContext(ctx).AutoMigrate(&openingRow{}); err != nil {
		return nil, fmt.Errorf("migrate break-glass justifications: %w", err)
	}
	return &Store{db: db}, nil
}

// Put stores the opening of j under its commitment. Storing the same
// opening again is a no-op.
func (s *Store) Put(ctx context.Context, j ledger.Justification) error {
	c := ledger.JustificationCommitment(j.Salt, j.Reason)
	row := openingRow{Commitment: c.String(), Salt: j.Salt[:], Reason: j.Reason}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error
	if err != nil {
		return fmt.Errorf("store break-glass justification: %w", err)
	}
	return nil
}

// Openings returns the openings of the given commitments (hex) that the
// store has, each checked against its commitment.
func (s *Store) Openings(ctx context.Context, commitments []string) (map[string]ledger.Justification, error) {
	out := map[string]ledger.Justification{}
	if len(commitments) == 0 {
		return out, nil
	}
	var rows []openingRow
	if err := s.db.WithContext(ctx).Where("commitment IN ?", commitments).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("load break-glass justifications: %w", err)
	}
	for _, r := range rows {
		var j ledger.Justification
		if len(r.Salt) != len(j.Salt) {
			return nil, errors.New("justificationstore: stored salt has the wrong length")
		}
		copy(j.Salt[:], r.Salt)
		j.Reason = r.Reason
		if ledger.JustificationCommitment(j.Salt, j.Reason).String() != r.Commitment {
			return nil, fmt.Errorf("justificationstore: the opening stored for %s does not open it", r.Commitment)
		}
		out[r.Commitment] = j
	}
	return out, nil
}
