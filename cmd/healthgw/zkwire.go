package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/healthgw/healthgw/api"
	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/credential"
	"github.com/healthgw/healthgw/circuits/zkstore"
	"github.com/healthgw/healthgw/ledger"
)

// zkKeys loads the Groth16 key directory when it is there, and registers
// its circuits on the ledger (circuit.registered) the first time.
type zkKeys struct {
	dir    string
	log    ledger.Appender
	sync   *ledger.Follower
	store  *zkstore.Store
	logger *slog.Logger

	mu sync.Mutex
	v  *circuits.Verifier
}

var _ api.ZKKeys = (*zkKeys)(nil)

// Verifier returns the loaded keys, loading (and registering) them on first
// use; api.ErrZKNotReady while the directory has none.
func (k *zkKeys) Verifier() (*circuits.Verifier, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.v != nil {
		return k.v, nil
	}
	if _, err := circuits.ReadManifest(k.dir); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", api.ErrZKNotReady, k.dir, err)
	}
	v, err := circuits.LoadVerifier(k.dir)
	if err != nil {
		return nil, fmt.Errorf("%w: load %s: %v", api.ErrZKNotReady, k.dir, err)
	}
	ctx := context.Background()
	if err := k.register(ctx, v.Circuits()); err != nil {
		return nil, err
	}
	k.v = v
	for _, c := range v.Circuits() {
		k.logger.Info("zero-knowledge statement loaded", slog.String("statement", string(c.Statement)), slog.Int("version", c.Version),
			slog.String("vk_sha256", c.VKHash), slog.String("setup", c.Setup))
	}
	return v, nil
}

// register appends circuit.registered for every statement whose verifying
// key is not the registered one yet.
func (k *zkKeys) register(ctx context.Context, infos []circuits.CircuitInfo) error {
	if err := k.sync.SyncAll(ctx); err != nil {
		return err
	}
	have, err := k.store.Circuits(ctx)
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
		e, err := ledger.NewEntry("gateway", &ledger.CircuitRegistered{Statement: string(info.Statement), Version: info.Version, VKHash: info.VKHash, Setup: info.Setup})
		if err != nil {
			return err
		}
		idx, err := k.log.Append(ctx, e)
		if err != nil {
			return fmt.Errorf("register circuit %s: %w", info.Statement, err)
		}
		if err := k.sync.Sync(ctx, idx+1); err != nil {
			return err
		}
	}
	return nil
}

func (k *zkKeys) ProvingKeyPath(s circuits.Statement) string {
	return circuits.ProvingKeyPath(k.dir, s)
}

// devSetup creates development keys when the directory has none. It says
// loudly that they are for development only.
func (k *zkKeys) devSetup(ctx context.Context, progress io.Writer) error {
	if _, err := circuits.ReadManifest(k.dir); err == nil {
		return nil
	}
	fmt.Fprintf(progress, "no zero-knowledge keys in %s: running a DEVELOPMENT setup (see the banner when it ends)\n", k.dir)
	_, err := circuits.SetupDevKeys(ctx, k.dir, circuits.Statements(), progress)
	return err
}

// issuerKeys keeps each hospital's credential issuer key in
// <data>/keys/issuers/<org>.pem (0600) and registers its public half on
// the ledger (issuer.registered) before the first credential is issued.
type issuerKeys struct {
	dir   string
	log   ledger.Appender
	sync  *ledger.Follower
	store *zkstore.Store
	mu    sync.Mutex
}

var _ api.IssuerKeys = (*issuerKeys)(nil)

var issuerOrgPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,62}$`)

func (k *issuerKeys) Key(ctx context.Context, org string) (*credential.IssuerKey, error) {
	if !issuerOrgPattern.MatchString(org) {
		return nil, fmt.Errorf("issuer key: bad organisation ID")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	path := filepath.Join(k.dir, org+".pem")
	b, err := os.ReadFile(path)
	var key *credential.IssuerKey
	switch {
	case err == nil:
		if key, err = credential.ParseIssuerKey(b); err != nil {
			return nil, fmt.Errorf("issuer key %s: %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		if key, err = credential.GenerateIssuerKey(rand.Reader); err != nil {
			return nil, err
		}
		if err := createFileAtomic(path, key.MarshalPEM(), 0o600); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("issuer key: %w", err)
	}
	pub := key.Public()
	if err := k.sync.SyncAll(ctx); err != nil {
		return nil, err
	}
	if r, err := k.store.Issuer(ctx, pub.ID()); err == nil && r.Org == org && r.PublicKey == pub.String() {
		return key, nil
	}
	e, err := ledger.NewEntry(org, &ledger.IssuerRegistered{Issuer: org, KeyID: pub.ID(), PublicKey: pub.String()})
	if err != nil {
		return nil, err
	}
	idx, err := k.log.Append(ctx, e)
	if err != nil {
		return nil, fmt.Errorf("register issuer %s: %w", org, err)
	}
	if err := k.sync.Sync(ctx, idx+1); err != nil {
		return nil, err
	}
	return key, nil
}
