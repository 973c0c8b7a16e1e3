package recordstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/records"
)

// row is one record in the "records" table.
type row struct {
	ID               string    `gorm:"primaryKey;size:36"`
	Holder           string    `gorm:"size:63;not null;index:idx_records_holder_key,priority:1"`
	Patient          string    `gorm:"size:80;not null;index:idx_records_patient"`
	Category         string    `gorm:"size:32;not null"`
	ResourceType     string    `gorm:"size:64;not null"`
	ContentType      string    `gorm:"size:255;not null"`
	Size             int64     `gorm:"not null"`
	Format           int       `gorm:"not null"`
	WrappedKey       []byte    // NULL once shredded
	KeyVersion       int       `gorm:"not null;index:idx_records_holder_key,priority:2"`
	Commitment       string    `gorm:"size:64;not null"`
	LedgerIndex      *uint64   // NULL while pending
	Pending          bool      `gorm:"not null;index:idx_records_pending,priority:1"`
	CreatedAt        time.Time `gorm:"not null;index:idx_records_pending,priority:2"`
	Shredded         bool      `gorm:"not null"`
	ShreddedAt       *time.Time
	ShredLedgerIndex *uint64
	// Pieces is the number of rows of record_pieces the ciphertext is
	// kept in (a streamed record), 0 when it is kept in Ciphertext.
	Pieces int `gorm:"not null;default:0"`
	// Ciphertext is the last column, and must stay last: SQLite stores a
	// row's columns in table order and a large value on a chain of
	// overflow pages, so reading a column stored after the ciphertext
	// walks the whole chain. A read decides on the metadata (Meta) before
	// it may load the content, and that must not cost more for a large
	// record than for a small one (see contentLast).
	Ciphertext []byte // NULL once shredded
}

func (row) TableName() string { return "records" }

// pieceRow is one piece of a streamed record's sealed content, in the
// "record_pieces" table: the envelope is the pieces of a record in Seq
// order, back to back.
type pieceRow struct {
	RecordID string `gorm:"primaryKey;size:36"`
	Seq      int    `gorm:"primaryKey;autoIncrement:false"`
	Data     []byte `gorm:"not null"`
}

func (pieceRow) TableName() string { return "record_pieces" }

// metaColumns are every column but the sealed content (the ciphertext
// and the wrapped key): what a read decides on. Their sizes do not depend
// on the record's content.
var metaColumns = []string{
	"id", "holder", "patient", "category", "resource_type", "content_type", "size", "format",
	"key_version", "commitment", "ledger_index", "pending", "created_at",
	"shredded", "shredded_at", "shred_ledger_index", "pieces",
}

// metaSQL is what Meta reads: metaColumns of the row of id, or of the
// decoy row when there is none (see get), scanned straight into a row by
// scanMeta (no gorm statement building or reflection: this is on every
// read, missing and denied ones included).
var metaSQL = database.NewStatement(`SELECT "` + strings.Join(metaColumns, `", "`) + `" FROM "records"` +
	` WHERE id = COALESCE((SELECT id FROM records WHERE id = ?), ?) LIMIT 1`)

// scanMeta scans a row of metaSQL into r, in metaColumns' order.
func scanMeta(sc interface{ Scan(...any) error }, r *row) error {
	return sc.Scan(&r.ID, &r.Holder, &r.Patient, &r.Category, &r.ResourceType, &r.ContentType, &r.Size, &r.Format,
		&r.KeyVersion, &r.Commitment, &r.LedgerIndex, &r.Pending, &r.CreatedAt,
		&r.Shredded, &r.ShreddedAt, &r.ShredLedgerIndex, &r.Pieces)
}

// contentSQL is what Content reads: the sealed content and the columns
// that say how to open it, read together so that a rewrap between a
// read's decision and its content load cannot pair a wrapped key with
// another key version. It is scanned straight into the result (no row
// struct: this is on every permitted read).
var contentSQL = database.NewStatement(`SELECT format, key_version, pieces, wrapped_key, ciphertext FROM "records" WHERE id = ? AND pending = ? AND shredded = ?`)

// Store is the gorm records store.
type Store struct {
	db     *gorm.DB
	sqlite bool
}

var (
	_ records.Store       = (*Store)(nil)
	_ records.RewrapStore = (*Store)(nil)
	_ records.PieceStore  = (*Store)(nil)
)

// New migrates the schema and returns a Store.
func New(ctx context.Context, db *gorm.DB) (*Store, error) {
	m := db.WithContext(ctx).Migrator()
	newIndex := !m.HasTable(&holderRow{}) || !m.HasTable(&registeredRow{})
	if err := db.WithContext(ctx).AutoMigrate(&row{}, &pieceRow{}, &holderRow{}, &registeredRow{}); err != nil {
		return nil, fmt.Errorf("recordstore: migrate: %w", err)
	}
	sqlite := database.DialectFor(db) == database.SQLite
	if sqlite {
		if err := contentLast(ctx, db); err != nil {
			return nil, err
		}
	}
	if err := cursor.Migrate(ctx, db); err != nil {
		return nil, fmt.Errorf("recordstore: %w", err)
	}
	if err := ensureDecoy(ctx, db); err != nil {
		return nil, err
	}
	if newIndex {
		// The holders or registrations index is new to this database:
		// follow the log again from the start to fill it (the records
		// settle nothing twice).
		if err := cursor.Reset(ctx, db, func(*gorm.DB) error { return nil }); err != nil {
			return nil, fmt.Errorf("recordstore: %w", err)
		}
	}
	return &Store{db: db, sqlite: sqlite}, nil
}

// contentLast rebuilds a SQLite records table whose ciphertext column is
// not the last one (tables created before it was moved there) with the
// columns in row's order, in one transaction. On SQLite a row's columns
// are stored in table order, and a value larger than a page goes to a
// linked chain of overflow pages: reading any column stored after it
// (the metadata a read decides on) walks that chain, which for a 1 MiB
// record is some 250 page reads, and for a record that does not exist
// (the decoy row) none; a caller could tell the size of a record it may
// not read from the latency of its 404. The rebuild runs with
// secure_delete on, so that the freed pages of the old table keep no
// copy of a ciphertext, and the write-ahead log is truncated after it as
// after a shred. (PostgreSQL stores large values out of line, TOAST, and
// needs nothing of this.)
func contentLast(ctx context.Context, db *gorm.DB) error {
	cols, err := tableColumns(db.WithContext(ctx), "records")
	if err != nil {
		return fmt.Errorf("recordstore: columns of records: %w", err)
	}
	if len(cols) == 0 || cols[len(cols)-1] == "ciphertext" {
		return nil
	}
	err = db.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		if err := conn.Exec("PRAGMA secure_delete = ON").Error; err != nil {
			return fmt.Errorf("secure_delete: %w", err)
		}
		err := conn.Transaction(func(tx *gorm.DB) error {
			if err := tx.Exec(`ALTER TABLE records RENAME TO records_rebuild`).Error; err != nil {
				return err
			}
			// The old table's indexes keep their names, which the new
			// table's must have.
			var idx []string
			if err := tx.Raw(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records_rebuild' AND sql IS NOT NULL`).Scan(&idx).Error; err != nil {
				return err
			}
			for _, name := range idx {
				if err := tx.Exec(`DROP INDEX "` + strings.ReplaceAll(name, `"`, `""`) + `"`).Error; err != nil {
					return err
				}
			}
			if err := tx.Migrator().CreateTable(&row{}); err != nil {
				return err
			}
			// Every column of the new table that the old one has.
			now, err := tableColumns(tx, "records")
			if err != nil {
				return err
			}
			var quoted []string
			for _, c := range now {
				if slices.Contains(cols, c) {
					quoted = append(quoted, `"`+strings.ReplaceAll(c, `"`, `""`)+`"`)
				}
			}
			list := strings.Join(quoted, ", ")
			if err := tx.Exec(`INSERT INTO records (` + list + `) SELECT ` + list + ` FROM records_rebuild`).Error; err != nil {
				return err
			}
			return tx.Exec(`DROP TABLE records_rebuild`).Error
		})
		if err != nil {
			return err
		}
		return conn.Exec("PRAGMA wal_checkpoint(TRUNCATE)").Error
	})
	if err != nil {
		return fmt.Errorf("recordstore: move the ciphertext column last: %w", err)
	}
	return nil
}

// tableColumns returns the names of a SQLite table's columns, in order.
func tableColumns(db *gorm.DB, table string) ([]string, error) {
	var cols []string
	err := db.Raw("SELECT name FROM pragma_table_info(?) ORDER BY cid", table).Scan(&cols).Error
	return cols, err
}

func toRow(s records.Stored) row {
	r := row{
		ID:           s.ID,
		Holder:       s.Holder,
		Patient:      s.Patient,
		Category:     string(s.Category),
		ResourceType: s.ResourceType,
		ContentType:  s.ContentType,
		Size:         s.Size,
		Format:       s.Format,
		Pieces:       s.Pieces,
		Ciphertext:   s.Ciphertext,
		WrappedKey:   s.WrappedKey,
		KeyVersion:   s.KeyVersion,
		Commitment:   s.Commitment,
		Pending:      s.Pending,
		CreatedAt:    s.CreatedAt.UTC(),
		Shredded:     s.Shredded,
	}
	if !s.Pending {
		idx := s.LedgerIndex
		r.LedgerIndex = &idx
	}
	if s.Shredded {
		t := s.ShreddedAt.UTC()
		r.ShreddedAt = &t
	}
	if s.ShredLogged {
		idx := s.ShredIndex
		r.ShredLedgerIndex = &idx
	}
	return r
}

func fromRow(r row) records.Stored {
	s := records.Stored{
		Record: records.Record{
			ID:           r.ID,
			Holder:       r.Holder,
			Patient:      r.Patient,
			Category:     records.Category(r.Category),
			ResourceType: r.ResourceType,
			ContentType:  r.ContentType,
			Size:         r.Size,
			Commitment:   r.Commitment,
			KeyVersion:   r.KeyVersion,
			CreatedAt:    r.CreatedAt.UTC(),
			Shredded:     r.Shredded,
		},
		Format:     r.Format,
		Pieces:     r.Pieces,
		Ciphertext: r.Ciphertext,
		WrappedKey: r.WrappedKey,
		Pending:    r.Pending,
	}
	if r.LedgerIndex != nil {
		s.LedgerIndex = *r.LedgerIndex
	}
	if r.ShreddedAt != nil {
		s.ShreddedAt = r.ShreddedAt.UTC()
	}
	if r.ShredLedgerIndex != nil {
		s.ShredLogged = true
		s.ShredIndex = *r.ShredLedgerIndex
	}
	return s
}

// write runs fn, a write to the records table. On SQLite it runs on one
// connection with secure_delete on, so that no write leaves a copy of a
// row's old content in free space: an update that moves a row (a record
// published at a ledger index that takes more bytes than the pending
// row's, a rewrap) frees the old cell and its overflow pages, and without
// secure_delete those keep the ciphertext and the wrapped key until the
// pages are reused, where a shred's zeroing cannot reach them.
func (s *Store) write(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if !s.sqlite {
		return fn(s.db.WithContext(ctx))
	}
	return s.db.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		if err := conn.Exec("PRAGMA secure_delete = ON").Error; err != nil {
			return fmt.Errorf("recordstore: secure_delete: %w", err)
		}
		return fn(conn)
	})
}

// Create implements records.Store.
func (s *Store) Create(ctx context.Context, st records.Stored) error {
	r := toRow(st)
	if err := s.write(ctx, func(tx *gorm.DB) error { return tx.Create(&r).Error }); err != nil {
		return fmt.Errorf("recordstore: create: %w", err)
	}
	return nil
}

// Publish implements records.Store.
func (s *Store) Publish(ctx context.Context, id string, ledgerIndex uint64) (uint64, error) {
	var affected int64
	err := s.write(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&row{}).
			Where("id = ? AND pending = ?", id, true).
			Updates(map[string]any{"pending": false, "ledger_index": ledgerIndex})
		affected = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return 0, fmt.Errorf("recordstore: publish: %w", err)
	}
	if affected == 1 {
		return ledgerIndex, nil
	}
	// Published already (by the registrations projection)?
	var r row
	err = s.db.WithContext(ctx).Select("ledger_index").Where("id = ? AND pending = ?", id, false).Take(&r).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return 0, fmt.Errorf("recordstore: publish: %w", records.ErrNotFound)
	case err != nil:
		return 0, fmt.Errorf("recordstore: publish: %w", err)
	case r.LedgerIndex == nil:
		return 0, fmt.Errorf("recordstore: publish: record %s is visible without a ledger index", id)
	}
	return *r.LedgerIndex, nil
}

// CountPending implements records.Store.
func (s *Store) CountPending(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&row{}).Where("pending = ?", true).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("recordstore: count pending: %w", err)
	}
	return n, nil
}

// DeletePending implements records.Store.
func (s *Store) DeletePending(ctx context.Context, id string) error {
	var affected int64
	err := s.write(ctx, func(db *gorm.DB) error {
		return db.Transaction(func(tx *gorm.DB) error {
			res := tx.Where("id = ? AND pending = ?", id, true).Delete(&row{})
			if affected = res.RowsAffected; res.Error != nil || affected == 0 {
				return res.Error
			}
			return tx.Where("record_id = ?", id).Delete(&pieceRow{}).Error
		})
	})
	if err != nil {
		return fmt.Errorf("recordstore: delete pending: %w", err)
	}
	if affected == 0 {
		return fmt.Errorf("recordstore: delete pending: %w", records.ErrNotFound)
	}
	return nil
}

// DeletePendingBefore implements records.Store.
func (s *Store) DeletePendingBefore(ctx context.Context, t time.Time) (int64, error) {
	var affected int64
	err := s.write(ctx, func(db *gorm.DB) error {
		return db.Transaction(func(tx *gorm.DB) error {
			err := tx.Where("record_id IN (SELECT id FROM records WHERE pending = ? AND created_at < ?)", true, t.UTC()).
				Delete(&pieceRow{}).Error
			if err != nil {
				return err
			}
			res := tx.Where("pending = ? AND created_at < ?", true, t.UTC()).Delete(&row{})
			affected = res.RowsAffected
			return res.Error
		})
	})
	if err != nil {
		return 0, fmt.Errorf("recordstore: delete stale pending: %w", err)
	}
	return affected, nil
}

// DecoyID is the ID of the decoy row (ensureDecoy): the nil UUID, which
// no record gets (records have version-4 UUIDs).
const DecoyID = "00000000-0000-0000-0000-000000000000"

// decoyPatient is the decoy row's patient: of a pseudonym's form and no
// patient's (access's placeholder for reads of missing records).
const decoyPatient = "ps_0000000000000000000000000000000000000000000000000000000000000000"

// ensureDecoy inserts, once, the decoy row Meta reads when the record
// asked for does not exist, so that a read of a missing record loads
// and scans a row as a read of an existing one does. It is shredded
// with its shred logged (so no listing, read, rewrap, pending sweep or
// shred log ever takes it) and belongs to no holder.
func ensureDecoy(ctx context.Context, db *gorm.DB) error {
	zero := uint64(0)
	at := time.Unix(0, 0).UTC()
	r := row{ID: DecoyID, Patient: decoyPatient, Format: records.FormatVersion, Commitment: strings.Repeat("0", 64),
		LedgerIndex: &zero, CreatedAt: at, Shredded: true, ShreddedAt: &at, ShredLedgerIndex: &zero}
	if err := db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&r).Error; err != nil {
		return fmt.Errorf("recordstore: decoy row: %w", err)
	}
	return nil
}

// Meta implements records.Store.
func (s *Store) Meta(ctx context.Context, id string) (records.Stored, error) {
	return s.get(ctx, id, true)
}

// Load returns the whole row of id, ciphertext and wrapped key included,
// whatever its state: for operators' tools and tests that inspect what is
// stored. Reads do not use it (the vault decides on Meta and loads the
// content with Content after a permit).
func (s *Store) Load(ctx context.Context, id string) (records.Stored, error) {
	return s.get(ctx, id, false)
}

// get loads the row of id. The query always finds exactly one row: the
// record's, or the decoy row when there is none. It probes the primary
// key index for id and then reads the row of id, or of DecoyID if the
// probe found nothing: one probe, one index lookup and one row read
// either way (an earlier form, id IN (id, decoy) ordered by which
// matched, read and sorted two rows for an existing record and one for a
// missing one). The row found is converted the same way in both cases,
// so that a missing record costs what an existing one does: a read the
// caller may not make must not tell the two apart by its latency. (With
// meta, metaSQL reads metaColumns only, and the work does not depend on
// the record's size either.)
func (s *Store) get(ctx context.Context, id string, meta bool) (records.Stored, error) {
	if id == DecoyID {
		return records.Stored{}, records.ErrNotFound
	}
	var (
		r   row
		err error
	)
	if meta {
		err = scanMeta(metaSQL.QueryRow(ctx, s.db, id, DecoyID), &r)
		if errors.Is(err, sql.ErrNoRows) {
			err = gorm.ErrRecordNotFound
		}
	} else {
		err = s.db.WithContext(ctx).Where("id = COALESCE((SELECT id FROM records WHERE id = ?), ?)", id, DecoyID).Take(&r).Error
	}
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return records.Stored{}, records.ErrNotFound
	}
	if err != nil {
		return records.Stored{}, fmt.Errorf("recordstore: get: %w", err)
	}
	st := fromRow(r) // the decoy row's too
	if r.ID != id {
		return records.Stored{}, records.ErrNotFound
	}
	if !meta && r.Pieces > 0 {
		// Load: the envelope whole, from its pieces.
		var pieces []pieceRow
		if err := s.db.WithContext(ctx).Where("record_id = ?", id).Order("seq").Find(&pieces).Error; err != nil {
			return records.Stored{}, fmt.Errorf("recordstore: get pieces: %w", err)
		}
		st.Ciphertext = nil
		for _, p := range pieces {
			st.Ciphertext = append(st.Ciphertext, p.Data...)
		}
	}
	return st, nil
}

// Content implements records.Store: the sealed content of a visible,
// unshredded record, by primary key, and no other column of the row.
func (s *Store) Content(ctx context.Context, id string) (records.SealedContent, error) {
	var sc records.SealedContent
	err := contentSQL.QueryRow(ctx, s.db, id, false, false).
		Scan(&sc.Format, &sc.KeyVersion, &sc.Pieces, &sc.WrappedKey, &sc.Ciphertext)
	if errors.Is(err, sql.ErrNoRows) {
		return records.SealedContent{}, fmt.Errorf("recordstore: content: %w", records.ErrNotFound)
	}
	if err != nil {
		return records.SealedContent{}, fmt.Errorf("recordstore: content: %w", err)
	}
	return sc, nil
}

// ListByPatient implements records.Store.
func (s *Store) ListByPatient(ctx context.Context, patient string) ([]records.Record, error) {
	var rows []row
	err := s.db.WithContext(ctx).Select(metaColumns).
		Where("patient = ? AND pending = ? AND shredded = ?", patient, false, false).
		Order("created_at, id").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("recordstore: list: %w", err)
	}
	out := make([]records.Record, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r).Record
	}
	return out, nil
}

// Shred implements records.Store. On SQLite the update runs on one
// connection with secure_delete on (the old cell content and freed
// overflow pages are zeroed), and the write-ahead log is then checkpointed
// and truncated so that it holds no copy of the old pages.
func (s *Store) Shred(ctx context.Context, id string, at time.Time) error {
	update := func(tx *gorm.DB) error {
		res := tx.Model(&row{}).
			Where("id = ? AND pending = ? AND shredded = ?", id, false, false).
			Updates(map[string]any{
				"shredded":    true,
				"shredded_at": at.UTC(),
				"ciphertext":  gorm.Expr("NULL"),
				"wrapped_key": gorm.Expr("NULL"),
			})
		if res.Error != nil {
			return fmt.Errorf("recordstore: shred: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return fmt.Errorf("recordstore: shred: %w", records.ErrNotFound)
		}
		if err := tx.Where("record_id = ?", id).Delete(&pieceRow{}).Error; err != nil {
			return fmt.Errorf("recordstore: shred: pieces: %w", err)
		}
		return nil
	}
	if !s.sqlite {
		return s.db.WithContext(ctx).Transaction(update)
	}
	return s.write(ctx, func(conn *gorm.DB) error {
		if err := conn.Transaction(update); err != nil {
			return err
		}
		// Best effort: a concurrent reader can keep old frames in the WAL
		// until the next checkpoint.
		if err := conn.Exec("PRAGMA wal_checkpoint(TRUNCATE)").Error; err != nil {
			return fmt.Errorf("recordstore: shred: checkpoint: %w", err)
		}
		return nil
	})
}

// LogShred implements records.Store.
func (s *Store) LogShred(ctx context.Context, id string, ledgerIndex uint64) error {
	res := s.db.WithContext(ctx).Model(&row{}).
		Where("id = ? AND shredded = ?", id, true).
		Update("shred_ledger_index", ledgerIndex)
	if res.Error != nil {
		return fmt.Errorf("recordstore: log shred: %w", res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("recordstore: log shred: %w", records.ErrNotFound)
	}
	return nil
}

// UnloggedShreds implements records.Store.
func (s *Store) UnloggedShreds(ctx context.Context) ([]records.Stored, error) {
	var rows []row
	err := s.db.WithContext(ctx).Select(metaColumns).
		Where("shredded = ? AND shred_ledger_index IS NULL", true).
		Order("shredded_at, id").Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("recordstore: unlogged shreds: %w", err)
	}
	out := make([]records.Stored, len(rows))
	for i, r := range rows {
		out[i] = fromRow(r)
	}
	return out, nil
}

// KeyVersions implements records.RewrapStore.
func (s *Store) KeyVersions(ctx context.Context, holder string) (map[int]int64, error) {
	var counts []struct {
		KeyVersion int
		N          int64
	}
	err := s.db.WithContext(ctx).Model(&row{}).
		Select("key_version, COUNT(*) AS n").
		Where("holder = ? AND shredded = ?", holder, false).
		Group("key_version").Scan(&counts).Error
	if err != nil {
		return nil, fmt.Errorf("recordstore: key versions: %w", err)
	}
	out := make(map[int]int64, len(counts))
	for _, c := range counts {
		out[c.KeyVersion] = c.N
	}
	return out, nil
}

// WrappedKeys implements records.RewrapStore.
func (s *Store) WrappedKeys(ctx context.Context, holder string, except int, after string, limit int) ([]records.WrappedKey, error) {
	var rows []row
	err := s.db.WithContext(ctx).Select("id", "format", "key_version", "wrapped_key").
		Where("holder = ? AND shredded = ? AND key_version <> ? AND id > ?", holder, false, except, after).
		Order(clause.OrderByColumn{Column: clause.Column{Name: "id"}}).
		Limit(limit).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("recordstore: wrapped keys: %w", err)
	}
	out := make([]records.WrappedKey, len(rows))
	for i, r := range rows {
		out[i] = records.WrappedKey{ID: r.ID, Format: r.Format, KeyVersion: r.KeyVersion, Wrapped: r.WrappedKey}
	}
	return out, nil
}

// Rewrap implements records.RewrapStore.
func (s *Store) Rewrap(ctx context.Context, rs []records.Rewrapped) (int, error) {
	n := 0
	err := s.write(ctx, func(db *gorm.DB) error {
		return db.Transaction(func(tx *gorm.DB) error {
			return rewrap(tx, rs, &n)
		})
	})
	if err != nil {
		return 0, fmt.Errorf("recordstore: rewrap: %w", err)
	}
	return n, nil
}

func rewrap(tx *gorm.DB, rs []records.Rewrapped, n *int) error {
	for _, r := range rs {
		res := tx.Model(&row{}).
			Where("id = ? AND key_version = ? AND shredded = ?", r.ID, r.FromVersion, false).
			Updates(map[string]any{"wrapped_key": r.Wrapped, "key_version": r.ToVersion})
		if res.Error != nil {
			return res.Error
		}
		*n += int(res.RowsAffected)
	}
	return nil
}

// pieceSQL is what Piece reads: one piece of a visible, unshredded
// record.
var pieceSQL = database.NewStatement(`SELECT p.data FROM "record_pieces" p JOIN "records" r ON r.id = p.record_id` +
	` WHERE p.record_id = ? AND p.seq = ? AND r.pending = ? AND r.shredded = ?`)

// AppendPieces implements records.PieceStore. The pieces are stored
// only while their record is pending and unfinished, checked by the
// statement that stores each.
func (s *Store) AppendPieces(ctx context.Context, id string, first int, data [][]byte) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		for i, d := range data {
			res := tx.Exec(`INSERT INTO record_pieces (record_id, seq, data) SELECT ?, ?, ?`+
				` WHERE EXISTS (SELECT 1 FROM records WHERE id = ? AND pending = ? AND commitment = '')`, id, first+i, d, id, true)
			if res.Error != nil {
				return res.Error
			}
			if res.RowsAffected == 0 {
				return records.ErrNotFound
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("recordstore: append pieces %d-%d: %w", first, first+len(data)-1, err)
	}
	return nil
}

// FinishPieces implements records.PieceStore.
func (s *Store) FinishPieces(ctx context.Context, id string, size int64, commitment string, pieces int) error {
	if commitment == "" || pieces <= 0 {
		return fmt.Errorf("recordstore: finish pieces: no commitment or no pieces")
	}
	var affected int64
	err := s.write(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&row{}).
			Where("id = ? AND pending = ? AND commitment = ?", id, true, "").
			Updates(map[string]any{"size": size, "commitment": commitment, "pieces": pieces})
		affected = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return fmt.Errorf("recordstore: finish pieces: %w", err)
	}
	if affected == 0 {
		return fmt.Errorf("recordstore: finish pieces: %w", records.ErrNotFound)
	}
	return nil
}

// Piece implements records.PieceStore. The piece is copied once, from
// the driver's buffer into dst.
func (s *Store) Piece(ctx context.Context, id string, seq int, dst []byte) ([]byte, error) {
	rows, err := pieceSQL.Query(ctx, s.db, id, seq, false, false)
	if err != nil {
		return dst, fmt.Errorf("recordstore: piece %d: %w", seq, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return dst, fmt.Errorf("recordstore: piece %d: %w", seq, err)
		}
		return dst, fmt.Errorf("recordstore: piece %d: %w", seq, records.ErrNotFound)
	}
	var data sql.RawBytes
	if err := rows.Scan(&data); err != nil {
		return dst, fmt.Errorf("recordstore: piece %d: %w", seq, err)
	}
	dst = append(dst, data...)
	if err := rows.Close(); err != nil {
		return dst, fmt.Errorf("recordstore: piece %d: %w", seq, err)
	}
	return dst, nil
}

// DeleteUnfinished implements records.PieceStore. It also deletes the
// pieces of records that are gone (a piece appended as its record was
// deleted).
func (s *Store) DeleteUnfinished(ctx context.Context, before time.Time) (int64, error) {
	var affected int64
	err := s.write(ctx, func(db *gorm.DB) error {
		return db.Transaction(func(tx *gorm.DB) error {
			res := tx.Where("pending = ? AND commitment = ? AND created_at < ?", true, "", before.UTC()).Delete(&row{})
			if res.Error != nil {
				return res.Error
			}
			affected = res.RowsAffected
			return tx.Where("NOT EXISTS (SELECT 1 FROM records r WHERE r.id = record_pieces.record_id)").Delete(&pieceRow{}).Error
		})
	})
	if err != nil {
		return 0, fmt.Errorf("recordstore: delete unfinished uploads: %w", err)
	}
	return affected, nil
}
