package authstore

import (
	"context"

	"fmt"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/database"
)

// DefaultPurgeInterval is how often Claim also deletes expired entries.
const DefaultPurgeInterval = time.Minute

// jtiRow is one used client assertion: (issuer, jti) until ExpiresAt
// (Unix seconds, an integer so that both databases compare it alike).
type jtiRow struct {
	Issuer    string `gorm:"primaryKey;size:63"`
	JTI       string `gorm:"column:jti;primaryKey;size:255"`
	ExpiresAt int64  `gorm:"not null;index"`
}

func (jtiRow) TableName() string { return "auth_jti_replay" }

// revokedRow is one revoked access token: its jti until ExpiresAt (Unix
// seconds), when the token would fail its exp check anyway.
type revokedRow struct {
	JTI       string `gorm:"column:jti;primaryKey;size:255"`
	ExpiresAt int64  `gorm:"not null;index"`
}

func (revokedRow) TableName() string { return "auth_revoked_tokens" }

// Options configures a Store. Zero values take the defaults.
type Options struct {
	// Now is the clock (default time.Now).
	Now func() time.Time
	// PurgeInterval is how often Claim purges expired entries (default
	// DefaultPurgeInterval; negative: never, call Purge yourself).
	PurgeInterval time.Duration
}

// DefaultRevocationRefresh is how often Watch reloads the revocation list,
// so that revocations recorded by other processes sharing the database
// (replicas) take effect here too.
const DefaultRevocationRefresh = time.Second

// Store is the jti replay cache.
type Store struct {
	db    *gorm.DB
	opts  Options
	mu    sync.Mutex
	purge time.Time // last purge

	// revoked mirrors the unexpired rows of the revocation list (jti →
	// expiry, Unix seconds): Revoked answers from memory, so checking a
	// token costs no statement on the request path. Refresh and Purge drop
	// expired entries, so it holds at most the tokens revoked within the
	// longest token lifetime.
	revMu   sync.RWMutex
	revoked map[string]int64
}

var (
	_ auth.ReplayCache = (*Store)(nil)
	_ auth.Revocations = (*Store)(nil)
)

// Open migrates the replay table and returns the store.
func Open(ctx context.Context, db *gorm.DB, opts Options) (*Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PurgeInterval == 0 {
		opts.PurgeInterval = DefaultPurgeInterval
	}
	if err := db.WithContext(ctx).AutoMigrate(&jtiRow{}, &revokedRow{}); err != nil {
		return nil, fmt.Errorf("migrate auth store: %w", err)
	}
	s := &Store{db: db, opts: opts}
	if err := s.Refresh(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Refresh reloads the revocation list from the database (the rows other
// processes wrote as well as this one's).
func (s *Store) Refresh(ctx context.Context) error {
	var rows []revokedRow
	if err := s.db.WithContext(ctx).Where("expires_at >= ?", s.opts.Now().Unix()).Find(&rows).Error; err != nil {
		return fmt.Errorf("load revocation list: %w", err)
	}
	now := s.opts.Now().Unix()
	m := make(map[string]int64, len(rows))
	for _, r := range rows {
		m[r.JTI] = r.ExpiresAt
	}
	s.revMu.Lock()
	for jti, exp := range s.revoked { // a Revoke that raced the query
		if exp >= now && exp > m[jti] { // expired ones are dropped
			m[jti] = exp
		}
	}
	s.revoked = m
	s.revMu.Unlock()
	return nil
}

// Watch calls Refresh every interval (DefaultRevocationRefresh if not
// positive) until ctx ends; errors are reported to onErr (which may be
// nil) and the last list is kept.
func (s *Store) Watch(ctx context.Context, interval time.Duration, onErr func(error)) {
	if interval <= 0 {
		interval = DefaultRevocationRefresh
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Refresh(ctx); err != nil && ctx.Err() == nil && onErr != nil {
				onErr(err)
			}
		}
	}
}

// Claim records (issuer, jti) until the given time. It returns an error
// wrapping auth.ErrReplay if the pair is recorded and not yet expired;
// an expired record is replaced. Of two concurrent claims of one pair the
// primary key lets exactly one succeed.
func (s *Store) Claim(ctx context.Context, issuer, jti string, until time.Time) error {
	now := s.opts.Now()
	s.maybePurge(ctx, now)
	db := s.db.WithContext(ctx)
	// A record whose assertion has expired no longer blocks the jti.
	if err := db.Where("issuer = ? AND jti = ? AND expires_at < ?", issuer, jti, now.Unix()).Delete(&jtiRow{}).Error; err != nil {
		return fmt.Errorf("replay cache: %w", err)
	}
	err := db.Create(&jtiRow{Issuer: issuer, JTI: jti, ExpiresAt: ceilUnix(until)}).Error
	if database.IsUniqueViolation(err) {
		return fmt.Errorf("%w: issuer %s", auth.ErrReplay, issuer)
	}
	if err != nil {
		return fmt.Errorf("replay cache: %w", err)
	}
	return nil
}

// Revoke records an access token's jti as revoked until the given time.
// Revoking it again keeps the later of the two times.
func (s *Store) Revoke(ctx context.Context, jti string, until time.Time) error {
	if jti == "" {
		return fmt.Errorf("revoke: empty jti")
	}
	s.maybePurge(ctx, s.opts.Now())
	row := revokedRow{JTI: jti, ExpiresAt: ceilUnix(until)}
	err := s.db.WithContext(ctx).Clauses(clause.OnConflict{
		Columns:   []clause.Column{{Name: "jti"}},
		DoUpdates: clause.Assignments(map[string]any{"expires_at": gorm.Expr("CASE WHEN auth_revoked_tokens.expires_at > ? THEN auth_revoked_tokens.expires_at ELSE ? END", row.ExpiresAt, row.ExpiresAt)}),
	}).Create(&row).Error
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	s.revMu.Lock()
	if row.ExpiresAt > s.revoked[jti] {
		s.revoked[jti] = row.ExpiresAt
	}
	s.revMu.Unlock()
	return nil
}

// Revoked reports whether jti is recorded as revoked and the record has
// not expired. It answers from the list in memory: revocations made
// through this store at once, those of other processes sharing the
// database after the next Refresh.
func (s *Store) Revoked(_ context.Context, jti string) (bool, error) {
	s.revMu.RLock()
	exp, ok := s.revoked[jti]
	s.revMu.RUnlock()
	return ok && exp >= s.opts.Now().Unix(), nil
}

// Purge deletes the replay and revocation records that expired before
// now and returns how many.
func (s *Store) Purge(ctx context.Context) (int64, error) {
	now := s.opts.Now().Unix()
	res := s.db.WithContext(ctx).Where("expires_at < ?", now).Delete(&jtiRow{})
	if res.Error != nil {
		return 0, fmt.Errorf("purge replay cache: %w", res.Error)
	}
	rev := s.db.WithContext(ctx).Where("expires_at < ?", now).Delete(&revokedRow{})
	if rev.Error != nil {
		return res.RowsAffected, fmt.Errorf("purge revocation list: %w", rev.Error)
	}
	s.revMu.Lock()
	for jti, exp := range s.revoked { // also without Watch, memory holds only unexpired ones
		if exp < now {
			delete(s.revoked, jti)
		}
	}
	s.revMu.Unlock()
	return res.RowsAffected + rev.RowsAffected, nil
}

// Len returns the number of records (expired or not).
func (s *Store) Len(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&jtiRow{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count replay cache: %w", err)
	}
	return n, nil
}

func (s *Store) maybePurge(ctx context.Context, now time.Time) {
	if s.opts.PurgeInterval < 0 {
		return
	}
	s.mu.Lock()
	due := now.Sub(s.purge) >= s.opts.PurgeInterval
	if due {
		s.purge = now
	}
	s.mu.Unlock()
	if due {
		// A failed purge is retried next interval; Claim does not depend on it.
		_, _ = s.Purge(ctx)
	}
}

// ceilUnix rounds t up to whole seconds, so a record never expires early.
func ceilUnix(t time.Time) int64 {
	u := t.Unix()
	if t.After(time.Unix(u, 0)) {
		u++
	}
	return u
}
