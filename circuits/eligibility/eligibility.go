package eligibility

import (
	"context"
	"errors"
	"time"

	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
)

// Issuer is a registered credential issuer key (issuer.registered).
type Issuer struct {
	Org         string
	KeyID       string
	PublicKey   string // hex, compressed point
	LedgerIndex uint64
}

// Circuit is a registered statement verifying key (circuit.registered).
type Circuit struct {
	Statement   string
	Version     int
	VKHash      string
	Setup       string
	LedgerIndex uint64
	Time        time.Time
}

// Challenge is a verifier's single-use proof challenge as the gateway
// keeps it. Params is the map form of circuits.Params.
type Challenge struct {
	ID        string
	Verifier  string
	Statement string
	Params    map[string]string
	Nonce     []byte
	Scope     string
	Date      uint64 // credential.Day
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero while unused
}

// Errors of a Store.
var (
	ErrNotFound         = errors.New("eligibility: not found")
	ErrChallengeUsed    = errors.New("eligibility: challenge already used")
	ErrChallengeExpired = errors.New("eligibility: challenge expired")
)

// ErrNotReady reports that no Groth16 keys are set up yet.
var ErrNotReady = errors.New("zero-knowledge keys are not set up")

// ValidationError is a request the use case refuses; Message is written
// for the caller and safe to show.
type ValidationError struct {
	Message string
}

func (e *ValidationError) Error() string { return e.Message }

func invalid(msg string) error { return &ValidationError{Message: msg} }

// Store is the zero-knowledge state the use case reads and writes
// (zkstore.Store).
type Store interface {
	// Issuer returns the registered issuer key with that key ID, or
	// ErrNotFound.
	Issuer(ctx context.Context, keyID string) (Issuer, error)
	// Circuits lists the registered circuits, the latest registration of
	// each statement version.
	Circuits(ctx context.Context) ([]Circuit, error)
	// CreateChallenge stores a new challenge.
	CreateChallenge(ctx context.Context, c Challenge) error
	// UseChallenge marks verifier's challenge id used at now, atomically:
	// of concurrent uses exactly one succeeds. Errors: ErrNotFound,
	// ErrChallengeUsed, ErrChallengeExpired.
	UseChallenge(ctx context.Context, id, verifier string, now time.Time) (Challenge, error)
	// Challenge returns verifier's challenge id, used or not, or
	// ErrNotFound.
	Challenge(ctx context.Context, id, verifier string) (Challenge, error)
	// Outcome returns the logged verification that used up verifier's
	// challenge id (the projection of proof.verified entries whose reason
	// UsesChallenge), or ErrNotFound.
	Outcome(ctx context.Context, verifier, id string) (Outcome, error)
}

// Syncer brings the projections (registered issuers and circuits) up to
// date with the log (ledger.Follower).
type Syncer interface {
	// Sync applies every entry below size.
	Sync(ctx context.Context, size uint64) error
	// SyncAll applies every entry the log has.
	SyncAll(ctx context.Context) error
}

// Verifier verifies proofs with loaded verifying keys (*circuits.Verifier).
type Verifier interface {
	// Circuits lists the loaded statements with their key hashes.
	Circuits() []circuits.CircuitInfo
	// Verify checks a proof of s against pub.
	Verify(s circuits.Statement, pub circuits.Public, proof []byte) error
}

var _ Verifier = (*circuits.Verifier)(nil)

// Keys gives the verifying keys the gateway verifies with (KeyDir).
type Keys interface {
	// Verifier returns the loaded keys, or an error wrapping ErrNotReady
	// while none are set up.
	Verifier(ctx context.Context) (Verifier, error)
	// ProvingKeyPath is the proving key file of a statement.
	ProvingKeyPath(s circuits.Statement) string
}

// IssuerKeySource holds the credential issuer keys of the hospitals this
// gateway issues for, each registered on the ledger before first use
// (IssuerKeys).
type IssuerKeySource interface {
	Key(ctx context.Context, org string) (*credential.IssuerKey, error)
}
