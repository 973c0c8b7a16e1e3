// Package registrystore keeps the organisation registry in the
// relational database (gorm, SQLite or PostgreSQL): the projection of the
// ledger's org.registered entries. Store answers lookups (auth.OrgSource)
// and, being a ledger.Applier, can be dropped and rebuilt from the log
// with the same result. The types are package registry's.
package registrystore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/registry"
)

// ProjectionName is the registry's name as a ledger.Applier.
const ProjectionName = "registry"

// orgRow is one registered organisation, as of its org.registered entry
// (an org is registered once: the ledger refuses a second registration).
type orgRow struct {
	ID      string `gorm:"primaryKey;size:63"`
	Name    string `gorm:"size:200;not null"`
	Kind    string `gorm:"size:16;not null"`
	Scopes  string `gorm:"size:1024;not null"` // space-separated
	JWKS    string `gorm:"type:text;not null"`
	JWKSURL string `gorm:"column:jwks_url;size:2048;not null"`
	// LedgerIndex and EntryTime (Unix nanoseconds) identify the entry.
	LedgerIndex uint64 `gorm:"not null"`
	EntryTime   int64  `gorm:"not null"`
	// KeysIndex is the index of the entry that set the current keys (the
	// org.registered, or the last org.keys_rotated applied); 0 in rows
	// written before it was kept, which means LedgerIndex.
	KeysIndex uint64 `gorm:"not null;default:0"`
}

func (orgRow) TableName() string { return "registry_orgs" }

// cursor is the projection's cursor.
var cursor = database.NewCursor("registry_cursor", ProjectionName)

// Options configures a Store.
type Options struct {
	// Logger receives notes about entries the projection skips.
	Logger *slog.Logger
	// Keys checks the inline JWK Set of each registered organisation
	// (default auth.CheckOrgJWKS).
	Keys registry.KeyCheck
}

// Store is the organisation registry.
type Store struct {
	db   *gorm.DB
	log  *slog.Logger
	keys registry.KeyCheck
}

var (
	_ ledger.Applier = (*Store)(nil)
	_ auth.OrgSource = (*Store)(nil)
)

// Open migrates the registry's tables and returns the store.
func Open(ctx context.Context, db *gorm.DB, opts Options) (*Store, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if err := db.WithContext(ctx).AutoMigrate(&orgRow{}); err != nil {
		return nil, fmt.Errorf("migrate registry: %w", err)
	}
	if err := cursor.Migrate(ctx, db); err != nil {
		return nil, err
	}
	if opts.Keys == nil {
		opts.Keys = auth.CheckOrgJWKS
	}
	return &Store{db: db, log: opts.Logger, keys: opts.Keys}, nil
}

// Name implements ledger.Applier.
func (s *Store) Name() string { return ProjectionName }

// Next implements ledger.Applier.
func (s *Store) Next(ctx context.Context) (uint64, error) {
	return cursor.Next(ctx, s.db)
}

// Apply implements ledger.Applier: in one transaction it applies the
// org.registered entries among entries and advances the cursor. An org is
// registered once (the ledger's registry refuses a second registration of
// an ID, see ledger.Authority); should an entry register an ID again, the
// first registration stands, as it does for the ledger. Entries already
// applied (first below the cursor) are skipped; a gap is an error. An
// org.registered entry whose organisation does not validate is skipped
// (deterministically, so a rebuild skips it too) and logged.
func (s *Store) Apply(ctx context.Context, first uint64, entries []ledger.Entry) error {
	return database.Apply(ctx, s.db, cursor, first, entries, func(tx *gorm.DB, first uint64, entries []ledger.Entry) error {
		for i, e := range entries {
			if err := s.apply(ctx, tx, first+uint64(i), e); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) apply(ctx context.Context, tx *gorm.DB, index uint64, e ledger.Entry) error {
	if e.Body == nil {
		// An entry this gateway cannot open (registrations travel in
		// clear, so no log it reads has one without a body).
		return nil
	}
	if e.Type == ledger.TypeOrgKeysRotated {
		return s.rotate(ctx, tx, index, e)
	}
	if e.Type != ledger.TypeOrgRegistered {
		return nil
	}
	body, ok := e.Body.(*ledger.OrgRegistered)
	if !ok {
		return fmt.Errorf("registry: entry %d: body %T", index, e.Body)
	}
	// An org is registered once (the ledger refuses a second
	// registration); should one be there, the first stands.
	var n int64
	if err := tx.Model(&orgRow{}).Where("id = ?", body.ID).Count(&n).Error; err != nil {
		return fmt.Errorf("registry: entry %d: %w", index, err)
	}
	if n > 0 {
		s.log.LogAttrs(ctx, slog.LevelWarn, "registry: skipping a second org.registered for an org",
			slog.Uint64("index", index), slog.String("org", body.ID))
		return nil
	}
	o := registry.FromBody(body)
	if err := o.Validate(s.keys); err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "registry: skipping invalid org.registered entry",
			slog.Uint64("index", index), slog.String("org", body.ID), slog.String("err", err.Error()))
		return nil
	}
	row := toRow(o, index, e.Time)
	if err := tx.Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "id"}},
		DoNothing: true,
	}).Create(&row).Error; err != nil {
		return fmt.Errorf("registry: entry %d: %w", index, err)
	}
	return nil
}

// rotate applies org.keys_rotated: the org's keys are replaced; an entry
// for an unknown org or with keys that do not validate is skipped and
// logged.
func (s *Store) rotate(ctx context.Context, tx *gorm.DB, index uint64, e ledger.Entry) error {
	body, ok := e.Body.(*ledger.OrgKeysRotated)
	if !ok {
		return fmt.Errorf("registry: entry %d: body %T", index, e.Body)
	}
	var row orgRow
	err := tx.Where("id = ?", body.Org).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		s.log.LogAttrs(ctx, slog.LevelWarn, "registry: skipping org.keys_rotated for an unknown org",
			slog.Uint64("index", index), slog.String("org", body.Org))
		return nil
	}
	if err != nil {
		return fmt.Errorf("registry: entry %d: %w", index, err)
	}
	o := row.org()
	o.JWKS, o.JWKSURL = body.JWKS, body.JWKSURL
	if err := registry.Org(o).Validate(s.keys); err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn, "registry: skipping invalid org.keys_rotated entry",
			slog.Uint64("index", index), slog.String("org", body.Org), slog.String("err", err.Error()))
		return nil
	}
	if err := tx.Model(&orgRow{}).Where("id = ?", body.Org).
		Updates(map[string]any{"jwks": body.JWKS, "jwks_url": body.JWKSURL, "keys_index": index}).Error; err != nil {
		return fmt.Errorf("registry: entry %d: %w", index, err)
	}
	return nil
}

// Org implements auth.OrgSource.
func (s *Store) Org(ctx context.Context, id string) (auth.Org, error) {
	var row orgRow
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return auth.Org{}, fmt.Errorf("%w: %s", auth.ErrUnknownOrg, id)
	}
	if err != nil {
		return auth.Org{}, fmt.Errorf("registry: %w", err)
	}
	return row.org(), nil
}

// List returns every registered organisation, ordered by ID.
func (s *Store) List(ctx context.Context) ([]registry.Registration, error) {
	var rows []orgRow
	if err := s.db.WithContext(ctx).Order("id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	out := make([]registry.Registration, len(rows))
	for i, r := range rows {
		out[i] = r.registration()
	}
	return out, nil
}

// Registration returns a registered organisation with the indexes of its
// registration and of its current keys.
func (s *Store) Registration(ctx context.Context, id string) (registry.Registration, error) {
	var row orgRow
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return registry.Registration{}, fmt.Errorf("%w: %s", auth.ErrUnknownOrg, id)
	}
	if err != nil {
		return registry.Registration{}, fmt.Errorf("registry: %w", err)
	}
	return row.registration(), nil
}

func (r orgRow) registration() registry.Registration {
	return registry.Registration{Org: r.org(), Index: r.LedgerIndex, KeysIndex: max(r.KeysIndex, r.LedgerIndex), Time: time.Unix(0, r.EntryTime).UTC()}
}

// Reset empties the projection (organisations and cursor) in one
// transaction; following the log again rebuilds it.
func (s *Store) Reset(ctx context.Context) error {
	return cursor.Reset(ctx, s.db, func(tx *gorm.DB) error {
		if err := tx.Where("1 = 1").Delete(&orgRow{}).Error; err != nil {
			return fmt.Errorf("registry reset: %w", err)
		}
		return nil
	})
}

func toRow(o auth.Org, index uint64, t time.Time) orgRow {
	return orgRow{
		ID: o.ID, Name: o.Name, Kind: string(o.Kind), Scopes: auth.JoinScopes(o.Scopes),
		JWKS: o.JWKS, JWKSURL: o.JWKSURL, LedgerIndex: index, EntryTime: t.UnixNano(), KeysIndex: index,
	}
}

func (r orgRow) org() auth.Org {
	var scopes []auth.Scope
	for _, f := range strings.Fields(r.Scopes) {
		scopes = append(scopes, auth.Scope(f))
	}
	return auth.Org{ID: r.ID, Name: r.Name, Kind: auth.Kind(r.Kind), Scopes: scopes, JWKS: r.JWKS, JWKSURL: r.JWKSURL}
}
