package recordstore

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/records"
)

// registeredRow is one record of the registrations index: a
// record.registered entry this gateway opened, whoever holds the record.
// In a consortium the patient's custodian opens every registration of the
// patient's records (consortium/routing), so its index lists the records
// of every holder: the consortium-wide locator answers from it
// (access.Service.Readable). It holds metadata only, as the entry does;
// the record itself stays at its holder.
type registeredRow struct {
	Holder       string `gorm:"primaryKey;size:63"`
	ID           string `gorm:"primaryKey;size:256"`
	Patient      string `gorm:"size:80;not null;index:idx_record_registrations_patient"`
	Category     string `gorm:"size:256;not null"`
	ResourceType string `gorm:"size:256;not null"`
	ContentType  string `gorm:"size:256;not null"`
	Size         int64  `gorm:"not null"`
	Commitment   string `gorm:"size:64;not null"`
	LedgerIndex  uint64 `gorm:"not null"`
	// CreatedAt is the registration's time on the ledger.
	CreatedAt time.Time `gorm:"not null"`
	Shredded  bool      `gorm:"not null"`
}

func (registeredRow) TableName() string { return "record_registrations" }

// noteRegistered adds the batch's registrations to the index (the first
// registration of a record wins: a re-submission committed twice changes
// nothing) and marks the shredded ones.
func noteRegistered(tx *gorm.DB, first uint64, entries []ledger.Entry) error {
	var rows []registeredRow
	type key struct{ holder, id string }
	var shreds []key
	for i, e := range entries {
		switch b := e.Body.(type) {
		case *ledger.RecordRegistered:
			rows = append(rows, registeredRow{
				Holder: b.Holder, ID: b.RecordID, Patient: b.Patient, Category: b.Category,
				ResourceType: b.ResourceType, ContentType: b.ContentType, Size: b.Size,
				Commitment: b.Commitment, LedgerIndex: first + uint64(i), CreatedAt: e.Time.UTC(),
			})
		case *ledger.RecordShredded:
			shreds = append(shreds, key{b.Holder, b.RecordID})
		}
	}
	if len(rows) > 0 {
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, 100).Error; err != nil {
			return fmt.Errorf("recordstore: note registrations: %w", err)
		}
	}
	for _, k := range shreds {
		err := tx.Model(&registeredRow{}).Where("holder = ? AND id = ?", k.holder, k.id).Update("shredded", true).Error
		if err != nil {
			return fmt.Errorf("recordstore: note shredding: %w", err)
		}
	}
	return nil
}

// Registered returns the records of patient (a pseudonym) whose
// registrations this gateway opened and that are not shredded, whoever
// holds them, oldest registration first. A record held here is listed as
// its registration describes it (Vault.ListByPatient has its own
// metadata); Size and ContentType are zero for registrations written
// before entries carried them.
func (s *Store) Registered(ctx context.Context, patient string) ([]records.Record, error) {
	var rows []registeredRow
	err := s.db.WithContext(ctx).Where("patient = ? AND shredded = ?", patient, false).
		Order("ledger_index").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("recordstore: registrations: %w", err)
	}
	out := make([]records.Record, len(rows))
	for i, r := range rows {
		out[i] = records.Record{
			ID: r.ID, Holder: r.Holder, Patient: r.Patient, Category: records.Category(r.Category),
			ResourceType: r.ResourceType, ContentType: r.ContentType, Size: r.Size,
			Commitment: r.Commitment, LedgerIndex: r.LedgerIndex, CreatedAt: r.CreatedAt,
		}
	}
	return out, nil
}
