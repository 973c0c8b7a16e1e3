package consentstore

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger"
)

// Name is the projection's name (its cursor's key).
const Name = "consent"

// ErrGap is returned by Apply when entries start beyond the projection's
// next index: applying them would skip entries.
var ErrGap = database.ErrGap

// cursor is the projection's cursor.
var cursor = database.NewCursor("consent_projection_cursors", Name)

// insertBatch bounds the rows of one INSERT statement.
const insertBatch = 100

// Store is the consent projection in a gorm database. It is safe for
// concurrent use, including by several processes sharing the database.
type Store struct {
	db *gorm.DB
}

var _ ledger.Applier = (*Store)(nil)

// Open migrates the projection's tables in db and returns the Store.
func Open(ctx context.Context, db *gorm.DB) (*Store, error) {
	tx := db.WithContext(ctx)
	if err := tx.AutoMigrate(&grantRow{}, &eventRow{}, &passkeyRow{}); err != nil {
		return nil, fmt.Errorf("migrate consent projection: %w", err)
	}
	if err := migrateScopes(ctx, db); err != nil {
		return nil, err
	}
	if err := cursor.Migrate(ctx, db); err != nil {
		return nil, err
	}
	return &Store{db: db}, nil
}

// Name implements ledger.Applier.
func (s *Store) Name() string { return Name }

// Next implements ledger.Applier: the index of the first entry not yet
// applied.
func (s *Store) Next(ctx context.Context) (uint64, error) {
	return cursor.Next(ctx, s.db)
}

// Apply implements ledger.Applier. Entries before the cursor (applied
// already, by this or another process) are skipped; entries starting beyond
// it are refused with ErrGap. The rows and the cursor advance commit
// together or not at all.
func (s *Store) Apply(ctx context.Context, first uint64, entries []ledger.Entry) error {
	return database.Apply(ctx, s.db, cursor, first, entries, applyBatch)
}

// revocation is a pending update of an existing grant.
type revocation struct {
	id    string
	index uint64
	at    *int64
}

// applyBatch projects entries (entries[i] at index first+i) inside tx.
func applyBatch(tx *gorm.DB, first uint64, entries []ledger.Entry) error {
	existing, err := existingGrants(tx, entries)
	if err != nil {
		return err
	}
	keys, err := existingPasskeys(tx, entries)
	if err != nil {
		return err
	}
	var (
		newGrants   []grantRow
		fresh       = map[string]int{} // consent ID -> position in newGrants
		revokes     []revocation
		events      []eventRow
		newPasskeys []passkeyRow
		newScopes   []scopeRow
	)
	for i, e := range entries {
		index := first + uint64(i)
		switch b := e.Body.(type) {
		case *ledger.PasskeyRegistered:
			if _, ok := keys.byID[b.CredentialID]; ok {
				continue
			}
			// A further passkey must be vouched for by one the patient
			// has: otherwise whoever can append in the patient's name
			// could add a key of their own and sign with it.
			if _, ok := checkSigned(keys.of[b.Patient], index, e); !ok {
				continue
			}
			p := consent.PasskeyFromLedger(index, b)
			keys.add(p)
			newPasskeys = append(newPasskeys, passkeyToRow(p))
		case *ledger.ConsentGranted:
			if _, ok := existing[b.ConsentID]; ok {
				continue
			}
			if _, ok := fresh[b.ConsentID]; ok {
				continue
			}
			signed, ok := checkSigned(keys.of[b.Patient], index, e)
			if !ok {
				continue
			}
			g := consent.FromLedger(index, e.Time, b)
			g.Signed = signed
			fresh[b.ConsentID] = len(newGrants)
			newGrants = append(newGrants, grantToRow(g))
			newScopes = append(newScopes, scopeRows(g)...)
		case *ledger.ConsentRevoked:
			if _, ok := checkSigned(keys.of[b.Patient], index, e); !ok {
				continue
			}
			at := toNanos(e.Time)
			if j, ok := fresh[b.ConsentID]; ok {
				g := &newGrants[j]
				if g.Patient == b.Patient && !g.Revoked {
					g.Revoked, g.RevokedIndex, g.RevokedAt = true, &index, at
				}
				continue
			}
			if g, ok := existing[b.ConsentID]; ok && g.Patient == b.Patient && !g.Revoked {
				g.Revoked = true
				revokes = append(revokes, revocation{id: b.ConsentID, index: index, at: at})
			}
		case *ledger.AccessDecided:
			events = append(events, eventToRow(consent.AccessEventFromLedger(index, e.Time, b)))
		}
	}
	if len(newPasskeys) > 0 {
		if err := tx.CreateInBatches(newPasskeys, insertBatch).Error; err != nil {
			return fmt.Errorf("insert passkeys: %w", err)
		}
	}
	if len(newGrants) > 0 {
		if err := tx.CreateInBatches(newGrants, insertBatch).Error; err != nil {
			return fmt.Errorf("insert grants: %w", err)
		}
		if err := insertScopes(tx, newScopes); err != nil {
			return err
		}
	}
	for _, r := range revokes {
		err := tx.Model(&grantRow{}).Where("id = ?", r.id).
			Updates(map[string]any{"revoked": true, "revoked_index": r.index, "revoked_at": r.at}).Error
		if err != nil {
			return fmt.Errorf("revoke grant %s: %w", r.id, err)
		}
	}
	if err := insertEvents(tx, events); err != nil {
		return fmt.Errorf("insert access events: %w", err)
	}
	return nil
}

// eventColumns are the columns insertEvents writes, in eventArgs' order.
var eventColumns = []string{
	"ledger_index", "entry_time", "requester", "record_id", "patient", "category", "purpose", "decision",
	"reason", "grant_id", "break_glass", "justification_hash", "justification_commitment", "request_id",
	"client_request_id",
}

// eventArgs appends r's values in eventColumns' order.
func eventArgs(args []any, r *eventRow) []any {
	return append(args, r.LedgerIndex, r.EntryTime, r.Requester, r.RecordID, r.Patient, r.Category, r.Purpose,
		r.Decision, r.Reason, r.GrantID, r.BreakGlass, r.JustificationHash, r.JustificationCommitment,
		r.RequestID, r.ClientRequestID)
}

// Rows of one INSERT of access events. PostgreSQL takes large
// statements in one round trip (256 rows of 15 columns are 3,840
// parameters; its limit is 65,535). The SQLite driver binds each of a
// statement's parameters by scanning all of them (quadratic in the
// parameters: gorm's 100-row batches spent most of the catch-up there),
// so SQLite gets statements of 16 rows.
const (
	maxEventsPerInsertPostgres = 256
	maxEventsPerInsertSQLite   = 16
)

// insertEvents inserts access events with multi-row INSERT statements
// built directly (gorm's CreateInBatches reflects over every row and
// column; access events are most of what a catch-up writes). Statements
// have a power of two rows, so that prepared statements are few and
// reused (PrepareStmt).
func insertEvents(tx *gorm.DB, rows []eventRow) error {
	limit := maxEventsPerInsertSQLite
	if database.DialectFor(tx) == database.Postgres {
		limit = maxEventsPerInsertPostgres
	}
	args := make([]any, 0, min(len(rows), limit)*len(eventColumns))
	for len(rows) > 0 {
		n := limit
		for n > len(rows) {
			n /= 2
		}
		args = args[:0]
		for i := range rows[:n] {
			args = eventArgs(args, &rows[i])
		}
		if err := tx.Exec(eventInsertSQL(n), args...).Error; err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// eventInsertSQLs caches the INSERT statement of each row count (powers
// of two).
var eventInsertSQLs sync.Map // int -> string

func eventInsertSQL(n int) string {
	if s, ok := eventInsertSQLs.Load(n); ok {
		return s.(string)
	}
	var b strings.Builder
	b.WriteString("INSERT INTO consent_access_events (")
	b.WriteString(strings.Join(eventColumns, ", "))
	b.WriteString(") VALUES ")
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(eventColumns)), ", ") + ")"
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	s, _ := eventInsertSQLs.LoadOrStore(n, b.String())
	return s.(string)
}

// checkSigned applies the passkey rule to entry e at index (a consent
// change or a further passkey registration), about
// a patient whose registered passkeys are keys: with no passkey the entry
// counts, unsigned; with one, it counts only with a valid assertion by a
// passkey over its commitment (signed), and is otherwise ignored (ok
// false) and logged.
func checkSigned(keys []consent.Passkey, index uint64, e ledger.Entry) (signed, ok bool) {
	if len(keys) == 0 {
		return false, true
	}
	if _, err := consent.VerifyAssertion(keys, e.Attestations, e.Commitment); err != nil {
		// No patient data: the index, the type and go-webauthn's
		// generic reason.
		slog.Warn("consent projection: ignored an entry without a valid passkey assertion",
			"index", index, "type", string(e.Type), "author", e.Author, "error", err)
		return false, false
	}
	return true, true
}

// passkeys is the passkeys Apply knows of: by credential ID and by
// patient.
type passkeys struct {
	byID map[string]consent.Passkey
	of   map[string][]consent.Passkey
}

func (k *passkeys) add(p consent.Passkey) {
	k.byID[p.CredentialID] = p
	k.of[p.Patient] = append(k.of[p.Patient], p)
}

// existingPasskeys loads the stored passkeys of the patients that
// entries' consents and registrations name, and of the credential IDs
// they register.
func existingPasskeys(tx *gorm.DB, entries []ledger.Entry) (*passkeys, error) {
	k := &passkeys{byID: map[string]consent.Passkey{}, of: map[string][]consent.Passkey{}}
	patients, creds := map[string]bool{}, map[string]bool{}
	for _, e := range entries {
		switch b := e.Body.(type) {
		case *ledger.ConsentGranted:
			patients[b.Patient] = true
		case *ledger.ConsentRevoked:
			patients[b.Patient] = true
		case *ledger.PasskeyRegistered:
			creds[b.CredentialID] = true
			patients[b.Patient] = true
		}
	}
	load := func(col string, set map[string]bool) error {
		vals := make([]string, 0, len(set))
		for v := range set {
			vals = append(vals, v)
		}
		sort.Strings(vals)
		for len(vals) > 0 {
			chunk := vals[:min(len(vals), 500)]
			vals = vals[len(chunk):]
			var rows []passkeyRow
			if err := tx.Where(col+" IN ?", chunk).Order("register_index").Find(&rows).Error; err != nil {
				return fmt.Errorf("load passkeys: %w", err)
			}
			for _, r := range rows {
				if _, ok := k.byID[r.CredentialID]; !ok {
					k.add(rowToPasskey(r))
				}
			}
		}
		return nil
	}
	if err := load("patient", patients); err != nil {
		return nil, err
	}
	if err := load("credential_id", creds); err != nil {
		return nil, err
	}
	return k, nil
}

// grantState is what Apply needs to know about a stored grant.
type grantState struct {
	Patient string
	Revoked bool
}

// existingGrants loads the stored grants that entries name.
func existingGrants(tx *gorm.DB, entries []ledger.Entry) (map[string]*grantState, error) {
	var ids []string
	for _, e := range entries {
		switch b := e.Body.(type) {
		case *ledger.ConsentGranted:
			ids = append(ids, b.ConsentID)
		case *ledger.ConsentRevoked:
			ids = append(ids, b.ConsentID)
		}
	}
	out := make(map[string]*grantState, len(ids))
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		var rows []grantRow
		if err := tx.Select("id", "patient", "revoked").Where("id IN ?", chunk).Find(&rows).Error; err != nil {
			return nil, fmt.Errorf("load grants: %w", err)
		}
		for _, r := range rows {
			out[r.ID] = &grantState{Patient: r.Patient, Revoked: r.Revoked}
		}
	}
	return out, nil
}

// Reset empties the projection and rewinds its cursor to 0, in one
// transaction; the next sync rebuilds it from the whole log.
func (s *Store) Reset(ctx context.Context) error {
	return cursor.Reset(ctx, s.db, func(tx *gorm.DB) error {
		if err := tx.Where("1 = 1").Delete(&grantRow{}).Error; err != nil {
			return fmt.Errorf("delete grants: %w", err)
		}
		if err := tx.Where("1 = 1").Delete(&scopeRow{}).Error; err != nil {
			return fmt.Errorf("delete grant index: %w", err)
		}
		if err := tx.Where("1 = 1").Delete(&eventRow{}).Error; err != nil {
			return fmt.Errorf("delete access events: %w", err)
		}
		if err := tx.Where("1 = 1").Delete(&passkeyRow{}).Error; err != nil {
			return fmt.Errorf("delete passkeys: %w", err)
		}
		return nil
	})
}

// insertScopes inserts index rows. A row already there (filed by the
// migration of a concurrent process) is left as it is: rows are a pure
// function of their grant.
func insertScopes(tx *gorm.DB, rows []scopeRow) error {
	if len(rows) == 0 {
		return nil
	}
	if err := tx.Clauses(clause.OnConflict{DoNothing: true}).CreateInBatches(rows, insertBatch).Error; err != nil {
		return fmt.Errorf("insert grant index: %w", err)
	}
	return nil
}

// migrateScopes creates the grant index (scopeRow) of a database that has
// none and files every stored grant in it, in one transaction: a
// projection that has grants always has their index rows.
func migrateScopes(ctx context.Context, db *gorm.DB) error {
	return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if tx.Migrator().HasTable(&scopeRow{}) {
			return nil
		}
		if err := tx.AutoMigrate(&scopeRow{}); err != nil {
			return fmt.Errorf("migrate consent grant index: %w", err)
		}
		var after int64 = -1
		for {
			rows, err := findGrants(tx.Where("granted_index > ?", after).Order("granted_index").Limit(1000))
			if err != nil {
				return fmt.Errorf("index stored grants: %w", err)
			}
			if len(rows) == 0 {
				return nil
			}
			var scopes []scopeRow
			for _, r := range rows {
				g, err := rowToGrant(r)
				if err != nil {
					return fmt.Errorf("index stored grants: %w", err)
				}
				scopes = append(scopes, scopeRows(g)...)
			}
			if err := insertScopes(tx, scopes); err != nil {
				return err
			}
			after = int64(rows[len(rows)-1].GrantedIndex)
		}
	})
}
