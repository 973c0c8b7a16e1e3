package eligibility

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/internal/atomicfile"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/registry"
)

// GatewayAuthor is the author of the circuit.registered entries a gateway
// makes.
const GatewayAuthor = "gateway"

// CircuitLister lists the registered circuits (zkstore.Store).
type CircuitLister interface {
	Circuits(ctx context.Context) ([]Circuit, error)
}

// KeyDir is a Groth16 key directory (see circuits.WriteKeys). It loads the
// directory when it is there, and registers its circuits on the ledger
// (circuit.registered) the first time. It is safe for concurrent use.
type KeyDir struct {
	dir    string
	log    ledger.Appender
	sync   Syncer
	store  CircuitLister
	logger *slog.Logger

	mu sync.Mutex
	v  *circuits.Verifier
}

var _ Keys = (*KeyDir)(nil)

// NewKeyDir returns the key directory dir; registrations are appended to
// log and read back from store, which sync brings up to date.
func NewKeyDir(dir string, log ledger.Appender, sync Syncer, store CircuitLister, logger *slog.Logger) *KeyDir {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &KeyDir{dir: dir, log: log, sync: sync, store: store, logger: logger}
}

// Verifier returns the loaded keys, loading (and registering) them on
// first use; an error wrapping ErrNotReady while the directory has none.
func (k *KeyDir) Verifier(ctx context.Context) (Verifier, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.v != nil {
		return k.v, nil
	}
	if _, err := circuits.ReadManifest(k.dir); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNotReady, k.dir, err)
	}
	v, err := circuits.LoadVerifier(k.dir)
	if err != nil {
		return nil, fmt.Errorf("%w: load %s: %v", ErrNotReady, k.dir, err)
	}
	if err := RegisterCircuits(ctx, k.log, k.sync, k.store, v.Circuits()); err != nil {
		return nil, err
	}
	k.v = v
	for _, c := range v.Circuits() {
		k.logger.Info("zero-knowledge statement loaded", slog.String("statement", string(c.Statement)), slog.Int("version", c.Version),
			slog.String("vk_sha256", c.VKHash), slog.String("setup", c.Setup))
	}
	return v, nil
}

// ProvingKeyPath implements Keys.
func (k *KeyDir) ProvingKeyPath(s circuits.Statement) string {
	return circuits.ProvingKeyPath(k.dir, s)
}

// DevSetup creates development keys when the directory has none. It says
// loudly on progress that they are for development only.
func (k *KeyDir) DevSetup(ctx context.Context, progress io.Writer) error {
	if _, err := circuits.ReadManifest(k.dir); err == nil {
		return nil
	}
	fmt.Fprintf(progress, "no zero-knowledge keys in %s: running a DEVELOPMENT setup (see the banner when it ends)\n", k.dir)
	_, err := circuits.SetupDevKeys(ctx, k.dir, circuits.Statements(), progress)
	return err
}

// RegisterCircuits appends circuit.registered for every statement of
// infos whose verifying key is not the registered one yet, and waits
// until the projection shows each registration.
func RegisterCircuits(ctx context.Context, log ledger.Appender, sync Syncer, store CircuitLister, infos []circuits.CircuitInfo) error {
	if err := sync.SyncAll(ctx); err != nil {
		return err
	}
	have, err := store.Circuits(ctx)
	if err != nil {
		return err
	}
	for _, info := range infos {
		registered := false
		for _, r := range have {
			registered = registered || (r.Statement == string(info.Statement) && r.Version == info.Version && r.VKHash == info.VKHash)
		}
		if registered {
			continue
		}
		e, err := ledger.NewEntry(GatewayAuthor, &ledger.CircuitRegistered{Statement: string(info.Statement), Version: info.Version, VKHash: info.VKHash, Setup: info.Setup})
		if err != nil {
			return err
		}
		idx, err := log.Append(ctx, e)
		if err != nil {
			return fmt.Errorf("register circuit %s: %w", info.Statement, err)
		}
		if err := sync.Sync(ctx, idx+1); err != nil {
			return err
		}
	}
	return nil
}

// IssuerLookup finds a registered issuer key (zkstore.Store).
type IssuerLookup interface {
	Issuer(ctx context.Context, keyID string) (Issuer, error)
}

// IssuerKeys keeps each hospital's credential issuer key in
// <dir>/<org>.pem (0600) and registers its public half on the ledger
// (issuer.registered) before the first credential is issued. It is safe
// for concurrent use, and processes sharing dir agree on one key per org.
type IssuerKeys struct {
	dir   string
	log   ledger.Appender
	sync  Syncer
	store IssuerLookup
	mu    sync.Mutex
}

var _ IssuerKeySource = (*IssuerKeys)(nil)

// NewIssuerKeys returns the issuer keys kept in dir.
func NewIssuerKeys(dir string, log ledger.Appender, sync Syncer, store IssuerLookup) *IssuerKeys {
	return &IssuerKeys{dir: dir, log: log, sync: sync, store: store}
}

// Key returns org's issuer key, creating and registering it on first use.
func (k *IssuerKeys) Key(ctx context.Context, org string) (*credential.IssuerKey, error) {
	if !registry.IDPattern.MatchString(org) {
		return nil, fmt.Errorf("issuer key: bad organisation ID")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	path := filepath.Join(k.dir, org+".pem")
	b, _, err := atomicfile.LoadOrCreate(path, func() ([]byte, error) {
		key, err := credential.GenerateIssuerKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return key.MarshalPEM(), nil
	})
	if err != nil {
		return nil, fmt.Errorf("issuer key: %w", err)
	}
	key, err := credential.ParseIssuerKey(b)
	if err != nil {
		return nil, fmt.Errorf("issuer key %s: %w", path, err)
	}
	if err := RegisterIssuer(ctx, k.log, k.sync, k.store, org, key.Public()); err != nil {
		return nil, err
	}
	return key, nil
}

// RegisterIssuer appends issuer.registered for org's public key unless it
// is the registered one already, and waits until the projection shows it.
func RegisterIssuer(ctx context.Context, log ledger.Appender, sync Syncer, store IssuerLookup, org string, pub credential.PublicKey) error {
	if err := sync.SyncAll(ctx); err != nil {
		return err
	}
	if r, err := store.Issuer(ctx, pub.ID()); err == nil && r.Org == org && r.PublicKey == pub.String() {
		return nil
	}
	e, err := ledger.NewEntry(org, &ledger.IssuerRegistered{Issuer: org, KeyID: pub.ID(), PublicKey: pub.String()})
	if err != nil {
		return err
	}
	idx, err := log.Append(ctx, e)
	if err != nil {
		return fmt.Errorf("register issuer %s: %w", org, err)
	}
	return sync.Sync(ctx, idx+1)
}
