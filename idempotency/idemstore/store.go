// Package idemstore keeps idempotency keys (package idempotency) in a
// gorm database, SQLite or PostgreSQL, in the table "idempotency_keys".
// Every replica of a gateway that shares the database shares the keys: an
// attempt's lease is taken with a compare-and-set on the key's row, so two
// replicas never run the same key at once.
//
// A key is stored as the SHA-256 of the client's value, under its
// principal's scope; with it the request's fingerprint, the ID its first
// attempt fixed and, once done, the response to replay. Responses of
// writes carry no PHI (IDs, commitments, ledger indices and receipts).
//
// The table is not a projection of the ledger and is never reset with
// the projections.
package idemstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/healthgw/healthgw/idempotency"
)

// row is one key.
type row struct {
	Scope       string `gorm:"primaryKey;size:128"`
	KeyHash     string `gorm:"primaryKey;size:64"`
	Operation   string `gorm:"size:64;not null"`
	Fingerprint string `gorm:"size:64;not null"`
	ResourceID  string `gorm:"size:64;not null"`
	Done        bool   `gorm:"not null;index:idx_idempotency_done,priority:1"`
	Attempts    int    `gorm:"not null"`
	LeaseOwner  string `gorm:"size:32;not null"`
	LeaseUntil  int64  `gorm:"not null"` // Unix nanoseconds; 0: no attempt running
	Status      int    `gorm:"not null"`
	ContentType string `gorm:"size:255;not null"`
	Location    string `gorm:"size:512;not null"`
	Body        []byte
	FirstAt     int64 `gorm:"not null"`                                       // Unix nanoseconds
	DoneAt      int64 `gorm:"not null;index:idx_idempotency_done,priority:2"` // Unix nanoseconds; 0 while pending
}

func (row) TableName() string { return "idempotency_keys" }

// Options configure a Store. Zero values take the defaults.
type Options struct {
	// Lease: see idempotency.DefaultLease.
	Lease time.Duration
	// Retention: see idempotency.DefaultRetention.
	Retention time.Duration
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Store is the keys table. It is safe for concurrent use, also by several
// processes sharing the database.
type Store struct {
	db   *gorm.DB
	opts Options
}

// Open migrates the table and returns the store.
func Open(ctx context.Context, db *gorm.DB, opts Options) (*Store, error) {
	if opts.Lease <= 0 {
		opts.Lease = idempotency.DefaultLease
	}
	if opts.Retention <= 0 {
		opts.Retention = idempotency.DefaultRetention
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := db.WithContext(ctx).AutoMigrate(&row{}); err != nil {
		return nil, fmt.Errorf("migrate idempotency keys: %w", err)
	}
	return &Store{db: db, opts: opts}, nil
}

// Retention returns how long done keys are kept.
func (s *Store) Retention() time.Duration { return s.opts.Retention }

func (s *Store) now() time.Time { return s.opts.Now().UTC() }

func newLease() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("idempotency lease: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// maxBeginRounds bounds Begin's compare-and-set loop (another attempt
// changing the row between the read and the update).
const maxBeginRounds = 4

// Begin starts an attempt of r: for a new key it stores the key
// (pending, leased to this attempt, with the ID r.NewID fixes); for a
// done key it returns the stored response (Claim.Replay); for a pending
// key whose lease has ended it takes the lease (a retry, Claim.Retry).
// ErrMismatch if the key was used for another request;
// *idempotency.InProgressError if another attempt holds the lease.
func (s *Store) Begin(ctx context.Context, r idempotency.Request) (idempotency.Claim, error) {
	if !idempotency.ValidKey(r.Key) || r.Scope == "" || r.Operation == "" {
		return idempotency.Claim{}, errors.New("idempotency: begin: scope, operation and a valid key are required")
	}
	lease, err := newLease()
	if err != nil {
		return idempotency.Claim{}, err
	}
	keyHash, fp := idempotency.HashKey(r.Key), hex.EncodeToString(r.Fingerprint[:])
	leaseFor := max(s.opts.Lease, r.Lease)
	db := s.db.WithContext(ctx)
	for range maxBeginRounds {
		now := s.now()
		until := now.Add(leaseFor)
		fresh := row{
			Scope: r.Scope, KeyHash: keyHash, Operation: r.Operation, Fingerprint: fp,
			Attempts: 1, LeaseOwner: lease, LeaseUntil: until.UnixNano(), FirstAt: now.UnixNano(),
		}
		if r.NewID != nil {
			fresh.ResourceID = r.NewID()
		}
		res := db.Clauses(clause.OnConflict{DoNothing: true}).Create(&fresh)
		if res.Error != nil {
			return idempotency.Claim{}, fmt.Errorf("idempotency: store key: %w", res.Error)
		}
		if res.RowsAffected == 1 {
			return idempotency.Claim{Scope: r.Scope, KeyHash: keyHash, ResourceID: fresh.ResourceID, Attempt: 1, Started: now, Until: until, For: leaseFor, Lease: lease}, nil
		}
		var cur row
		err := db.Where("scope = ? AND key_hash = ?", r.Scope, keyHash).Take(&cur).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			continue // forgotten or purged meanwhile: store it again
		}
		if err != nil {
			return idempotency.Claim{}, fmt.Errorf("idempotency: load key: %w", err)
		}
		if cur.Operation != r.Operation || cur.Fingerprint != fp {
			return idempotency.Claim{}, idempotency.ErrMismatch
		}
		claim := idempotency.Claim{Scope: r.Scope, KeyHash: keyHash, ResourceID: cur.ResourceID, Started: time.Unix(0, cur.FirstAt).UTC()}
		if cur.Done {
			claim.Attempt = cur.Attempts
			claim.Replay = &idempotency.Response{Status: cur.Status, ContentType: cur.ContentType, Location: cur.Location, Body: cur.Body}
			return claim, nil
		}
		if cur.LeaseUntil > now.UnixNano() {
			return idempotency.Claim{}, &idempotency.InProgressError{RetryAfter: time.Duration(cur.LeaseUntil - now.UnixNano())}
		}
		res = db.Model(&row{}).
			Where("scope = ? AND key_hash = ? AND done = ? AND lease_owner = ? AND lease_until = ?", r.Scope, keyHash, false, cur.LeaseOwner, cur.LeaseUntil).
			Updates(map[string]any{"lease_owner": lease, "lease_until": until.UnixNano(), "attempts": gorm.Expr("attempts + 1")})
		if res.Error != nil {
			return idempotency.Claim{}, fmt.Errorf("idempotency: take lease: %w", res.Error)
		}
		if res.RowsAffected == 1 {
			claim.Attempt, claim.Until, claim.For, claim.Lease = cur.Attempts+1, until, leaseFor, lease
			return claim, nil
		}
		// Another attempt took the lease or finished: look again.
	}
	return idempotency.Claim{}, &idempotency.InProgressError{RetryAfter: time.Second}
}

// ErrLeaseLost: the attempt's lease ended and another attempt took the
// key (or it was forgotten); the other attempt settles it.
var ErrLeaseLost = errors.New("idempotency: lease lost to another attempt")

// leased selects c's key while c's attempt holds it.
func (s *Store) leased(ctx context.Context, c idempotency.Claim) *gorm.DB {
	return s.db.WithContext(ctx).Model(&row{}).
		Where("scope = ? AND key_hash = ? AND done = ? AND lease_owner = ?", c.Scope, c.KeyHash, false, c.Lease)
}

func settled(res *gorm.DB, what string) error {
	if res.Error != nil {
		return fmt.Errorf("idempotency: %s: %w", what, res.Error)
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("idempotency: %s: %w", what, ErrLeaseLost)
	}
	return nil
}

// Complete stores the write's result: every later attempt gets it back.
func (s *Store) Complete(ctx context.Context, c idempotency.Claim, r idempotency.Response) error {
	body := r.Body
	if body == nil {
		body = []byte{}
	}
	return settled(s.leased(ctx, c).Updates(map[string]any{
		"done": true, "status": r.Status, "content_type": r.ContentType, "location": r.Location, "body": body,
		"done_at": s.now().UnixNano(), "lease_owner": "", "lease_until": 0,
	}), "complete")
}

// Release ends the attempt without a known outcome: the key stays pending
// (with its ID) and the next attempt is a retry.
func (s *Store) Release(ctx context.Context, c idempotency.Claim) error {
	return settled(s.leased(ctx, c).Updates(map[string]any{"lease_owner": "", "lease_until": 0}), "release")
}

// Forget deletes the key of an attempt that failed without effect (bad
// input), so that the client may use it again for a corrected request.
func (s *Store) Forget(ctx context.Context, c idempotency.Claim) error {
	res := s.db.WithContext(ctx).
		Where("scope = ? AND key_hash = ? AND done = ? AND lease_owner = ?", c.Scope, c.KeyHash, false, c.Lease).
		Delete(&row{})
	return settled(res, "forget")
}

// Purge deletes the keys that have been done since before t and returns
// how many. Pending keys are never purged: their outcome is unknown.
func (s *Store) Purge(ctx context.Context, t time.Time) (int64, error) {
	res := s.db.WithContext(ctx).Where("done = ? AND done_at < ?", true, t.UTC().UnixNano()).Delete(&row{})
	if res.Error != nil {
		return 0, fmt.Errorf("idempotency: purge: %w", res.Error)
	}
	return res.RowsAffected, nil
}

// PurgeExpired purges the keys done for longer than the retention.
func (s *Store) PurgeExpired(ctx context.Context) (int64, error) {
	return s.Purge(ctx, s.now().Add(-s.opts.Retention))
}

// Pending counts the keys whose outcome is not known yet (for operators).
func (s *Store) Pending(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.WithContext(ctx).Model(&row{}).Where("done = ?", false).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("idempotency: count pending: %w", err)
	}
	return n, nil
}
