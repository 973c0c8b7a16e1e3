// Package idempotency makes state-changing requests safe to repeat. A
// client names each logical write with an idempotency key (the
// Idempotency-Key header of draft-ietf-httpapi-idempotency-key-header);
// the first attempt under a key fixes the IDs of what the write creates
// (a record ID, a consent ID), and every later attempt under the same key
// re-makes the same logical write, so the use cases can recognise it on
// the ledger instead of appending a second one.
//
// A key belongs to one authenticated principal (its Scope) and to one
// request: the same key with another request is ErrMismatch. Its state is
// a small machine:
//
//   - pending, leased: an attempt is running (another one is
//     ErrInProgress until the lease ends, see InProgressError);
//   - pending, free: an attempt ended without a known outcome (a 503: the
//     entry may still be committed). The next attempt is a retry
//     (Claim.Retry): it must look for the first attempt's effect before it
//     writes anything;
//   - done: the write's result is stored and every later attempt gets it
//     back (Claim.Replay) without running again.
//
// A key is removed only when its attempt failed without effect (bad input,
// Store.Forget) or when it has been done for longer than the retention
// (Store.Purge): a key whose outcome is unknown is never purged.
//
// idempotency/idemstore keeps keys in a gorm database (SQLite or
// PostgreSQL), shared by every replica of a gateway.
package idempotency

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Defaults of a key store (see idemstore.Options).
const (
	// DefaultLease is how long one attempt holds its key. The attempt's
	// work is bounded by it (see Claim.Until); a crashed attempt's key is
	// free again after it.
	DefaultLease = 2 * time.Minute
	// DefaultRetention is how long a done key is remembered (and its
	// result replayed) after the write completed.
	DefaultRetention = 24 * time.Hour
)

// MaxKeyLength bounds a client's key.
const MaxKeyLength = 255

// Errors of Store.Begin.
var (
	// ErrMismatch: the key was used before for another request (another
	// operation, path or body).
	ErrMismatch = errors.New("idempotency: key used for another request")
	// ErrInProgress: another attempt under the key is running.
	ErrInProgress = errors.New("idempotency: an attempt with this key is in progress")
)

// InProgressError is ErrInProgress with the time until the running
// attempt's lease ends.
type InProgressError struct {
	RetryAfter time.Duration
}

func (e *InProgressError) Error() string {
	return fmt.Sprintf("%v (lease ends in %s)", ErrInProgress, e.RetryAfter.Round(time.Second))
}

// Unwrap returns ErrInProgress.
func (e *InProgressError) Unwrap() error { return ErrInProgress }

// Request is one attempt of a keyed write.
type Request struct {
	// Scope is the principal the key belongs to ("org:hosp-a",
	// "patient:<pseudonym>"): keys of different principals never meet.
	Scope string
	// Key is the client's key as sent. Only its SHA-256 is stored.
	Key string
	// Operation names the route ("POST /v1/records").
	Operation string
	// Fingerprint identifies the request (see Fingerprint).
	Fingerprint [sha256.Size]byte
	// NewID returns the ID the write creates, fixed by its first attempt
	// (nil: the write creates nothing with an ID of its own, such as a
	// revocation of a consent named in the path).
	NewID func() string
	// Lease is how long this attempt's lease lasts, for a write that
	// may take longer than the store's lease (a streamed upload); a
	// shorter one, or 0, is the store's. A retry cannot start before the
	// lease ends unless the attempt settles first.
	Lease time.Duration
}

// Response is a done write's result, replayed to later attempts.
type Response struct {
	Status      int
	ContentType string
	Location    string
	Body        []byte
}

// Claim is an attempt's hold on its key.
type Claim struct {
	Scope   string
	KeyHash string // hex SHA-256 of the key
	// ResourceID is the ID the first attempt fixed (Request.NewID).
	ResourceID string
	// Attempt counts the attempts under the key, this one included (1 for
	// the first).
	Attempt int
	// Started is when the first attempt began.
	Started time.Time
	// Until is when this attempt's lease ends (by the store's clock),
	// and For how long it lasts: the attempt must be done by then.
	Until time.Time
	For   time.Duration
	// Replay, when set, is the result of the key's completed write: the
	// caller answers with it and does nothing else (there is no lease).
	Replay *Response
	// Lease identifies this attempt's lease (Complete, Release and
	// Forget act only while it holds).
	Lease string
}

// Retry reports whether an earlier attempt under the key ended without a
// known outcome: its write may have taken effect, and this attempt must
// find out before it writes.
func (c Claim) Retry() bool { return c.Attempt > 1 }

// HashKey returns the hex SHA-256 of a client's key, as stored.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// Fingerprint returns the fingerprint of a request: SHA-256 over its
// method, path, query and body, each length-prefixed, so that the same key
// with another request (another route, another consent's path, another
// body) is told apart. Bodies are compared byte for byte: a retry sends
// the same bytes.
func Fingerprint(method, path, query string, body []byte) [sha256.Size]byte {
	h := sha256.New()
	for _, part := range [][]byte{[]byte("healthgw idempotency v1"), []byte(method), []byte(path), []byte(query), body} {
		var n [8]byte
		l := uint64(len(part))
		for i := range n {
			n[i] = byte(l >> (56 - 8*i))
		}
		h.Write(n[:])
		h.Write(part)
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// ValidKey reports whether key is acceptable: 1 to MaxKeyLength printable
// ASCII characters (what a Structured Fields string can carry).
func ValidKey(key string) bool {
	if key == "" || len(key) > MaxKeyLength {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return false
		}
	}
	return true
}
