package recordstore

import (
	"context"
	"fmt"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger"
)

// Name is the name of the store's registrations projection (its cursor's
// key).
const Name = "records"

// cursor is the registrations projection's cursor.
var cursor = database.NewCursor("records_projection_cursors", Name)

var _ ledger.Applier = (*Store)(nil)

// Name implements ledger.Applier.
func (s *Store) Name() string { return Name }

// Next implements ledger.Applier: the index of the first entry the
// registrations projection has not applied.
func (s *Store) Next(ctx context.Context) (uint64, error) {
	return cursor.Next(ctx, s.db)
}

// Apply implements ledger.Applier: the store follows the log to settle
// what its own writes left open. A record.registered entry that names a
// pending record of this store (same ID, holder and commitment) publishes
// it at the entry's index: its registration was committed, perhaps long
// after the append that submitted it failed. A record.shredded entry of a
// shredded record whose shredding is not known logged records the entry's
// index. Later registrations of a record published already (a
// re-submission that was committed twice) change nothing. Every
// registration, whoever holds the record, also goes into the holders and
// registrations indexes (Holders, Registered). Entries before the cursor
// are skipped; the rows and the cursor commit together.
func (s *Store) Apply(ctx context.Context, first uint64, entries []ledger.Entry) error {
	return database.Apply(ctx, s.db, cursor, first, entries, applyBatch)
}

// registered is one record.registered entry of a batch.
type registered struct {
	index uint64
	body  *ledger.RecordRegistered
}

func applyBatch(tx *gorm.DB, first uint64, entries []ledger.Entry) error {
	var (
		regs   []registered
		shreds = map[string]uint64{} // record ID -> first record.shredded index
		ids    []string
	)
	for i, e := range entries {
		switch b := e.Body.(type) {
		case *ledger.RecordRegistered:
			regs = append(regs, registered{index: first + uint64(i), body: b})
			ids = append(ids, b.RecordID)
		case *ledger.RecordShredded:
			if _, ok := shreds[b.RecordID]; !ok {
				shreds[b.RecordID] = first + uint64(i)
				ids = append(ids, b.RecordID)
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if err := noteHolders(tx, regs); err != nil {
		return err
	}
	if err := noteRegistered(tx, first, entries); err != nil {
		return err
	}
	open, err := unsettled(tx, ids)
	if err != nil {
		return err
	}
	if len(open) > 0 && database.DialectFor(tx) == database.SQLite {
		// Publishing moves a row: leave no copy of its ciphertext and
		// wrapped key behind (see Store.write).
		if err := tx.Exec("PRAGMA secure_delete = ON").Error; err != nil {
			return fmt.Errorf("recordstore: secure_delete: %w", err)
		}
	}
	for _, r := range regs {
		o, ok := open[r.body.RecordID]
		if !ok || !o.Pending || o.Holder != r.body.Holder || o.Commitment != r.body.Commitment {
			continue
		}
		err := tx.Model(&row{}).Where("id = ? AND pending = ?", o.ID, true).
			Updates(map[string]any{"pending": false, "ledger_index": r.index}).Error
		if err != nil {
			return fmt.Errorf("recordstore: publish %s: %w", o.ID, err)
		}
		o.Pending = false // a second registration in the batch is a no-op
	}
	for id, idx := range shreds {
		o, ok := open[id]
		if !ok || !o.Shredded || o.ShredLedgerIndex != nil {
			continue
		}
		err := tx.Model(&row{}).Where("id = ? AND shredded = ? AND shred_ledger_index IS NULL", id, true).
			Update("shred_ledger_index", idx).Error
		if err != nil {
			return fmt.Errorf("recordstore: note shredding of %s: %w", id, err)
		}
	}
	return nil
}

// unsettled loads the rows among ids that an entry may settle: pending,
// or shredded without a known record.shredded index.
func unsettled(tx *gorm.DB, ids []string) (map[string]*row, error) {
	out := map[string]*row{}
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		var rows []row
		err := tx.Select("id", "holder", "commitment", "pending", "shredded", "shred_ledger_index").
			Where("id IN ? AND (pending = ? OR (shredded = ? AND shred_ledger_index IS NULL))", chunk, true, true).
			Find(&rows).Error
		if err != nil {
			return nil, fmt.Errorf("recordstore: load unsettled records: %w", err)
		}
		for i := range rows {
			out[rows[i].ID] = &rows[i]
		}
	}
	return out, nil
}

// holderRow is one (patient, holder) pair of the holders index: the
// patient (pseudonym) has a record registered by the holder org, in an
// entry this gateway opened (in a consortium, the patient's custodian
// opens every registration of the patient's records).
type holderRow struct {
	Patient string `gorm:"primaryKey;size:80"`
	Holder  string `gorm:"primaryKey;size:63"`
}

func (holderRow) TableName() string { return "record_holders" }

func noteHolders(tx *gorm.DB, regs []registered) error {
	seen := map[holderRow]bool{}
	var rows []holderRow
	for _, r := range regs {
		h := holderRow{Patient: r.body.Patient, Holder: r.body.Holder}
		if !seen[h] {
			seen[h] = true
			rows = append(rows, h)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	if err := tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, 200).Error; err != nil {
		return fmt.Errorf("recordstore: note holders: %w", err)
	}
	return nil
}

// Holders returns the orgs that registered a record of patient (a
// pseudonym) in the entries this gateway opened, sorted: the holders a
// consent of the patient is sealed to (cmd/healthgw's consortium routing).
// A holder stays listed once its records are shredded.
func (s *Store) Holders(ctx context.Context, patient string) ([]string, error) {
	var out []string
	err := s.db.WithContext(ctx).Model(&holderRow{}).Where("patient = ?", patient).Order("holder").Pluck("holder", &out).Error
	if err != nil {
		return nil, fmt.Errorf("recordstore: holders: %w", err)
	}
	return out, nil
}

// Reset rewinds the registrations projection's cursor to 0 and empties
// the holders and registrations indexes (the records themselves are not a projection and
// stay); following the log again settles nothing twice.
func (s *Store) Reset(ctx context.Context) error {
	return cursor.Reset(ctx, s.db, func(tx *gorm.DB) error {
		if err := tx.Where("1 = 1").Delete(&holderRow{}).Error; err != nil {
			return err
		}
		return tx.Where("1 = 1").Delete(&registeredRow{}).Error
	})
}
