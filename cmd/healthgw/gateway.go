package main

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"golang.org/x/mod/sumdb/note"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/access"
	"github.com/healthgw/healthgw/access/justificationstore"
	"github.com/healthgw/healthgw/api"
	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authstore"
	"github.com/healthgw/healthgw/circuits"
	"github.com/healthgw/healthgw/circuits/eligibility"
	"github.com/healthgw/healthgw/circuits/zkstore"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/consent/consentstore"
	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/idempotency/idemstore"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/comet"
	"github.com/healthgw/healthgw/ledger/gormlog"
	"github.com/healthgw/healthgw/ledger/tiles"
	"github.com/healthgw/healthgw/ledger/unsettledstore"
	"github.com/healthgw/healthgw/ledger/witness"
	"github.com/healthgw/healthgw/ratelimit"
	"github.com/healthgw/healthgw/records"
	"github.com/healthgw/healthgw/records/recordstore"
	"github.com/healthgw/healthgw/registry/registrystore"
	"github.com/healthgw/healthgw/web"
)

// pseudonymKeyFile holds the ledger secret behind patient pseudonyms,
// under the data directory. Every consortium node must share it.
const pseudonymKeyFile = "keys/pseudonym.key"

// challengeKeyFile holds the Ed25519 seed of the key that signs
// zero-knowledge proof challenges, under the data directory.
const challengeKeyFile = "keys/challenge.key"

// backend is a ledger backend (a ledger.Store) as the gateway uses it;
// the gateway's ledger is a ledger.Node over it.
type backend interface {
	ledger.Store
}

// gatewayKeyFile and sealKeyFile hold the gateway's node key (Ed25519
// seed: it signs every entry the gateway writes) and its sealing key
// (X25519: entry openings are sealed to it), under the data directory. In
// a consortium the node key is the comet home's gateway key instead.
const (
	gatewayKeyFile = "keys/gateway.key"
	sealKeyFile    = "keys/seal.key"
)

// gateway is every component of a running gateway, wired. serve builds one;
// tests build several.
type gateway struct {
	cfg      serveConfig
	log      *slog.Logger
	db       *gorm.DB
	store    backend    // the ledger backend
	ledger   ledger.Log // the gateway's node over store
	node     *ledger.Node
	follower *ledger.Follower
	registry *registrystore.Store
	consent  *consentstore.Store
	records  *recordstore.Store // the records and their registrations' projection
	vault    *records.Vault
	zkstore  *zkstore.Store
	zkKeys   *eligibility.KeyDir
	zk       *eligibility.Service // the eligibility use case (API and patient app)
	pseud    *ledger.Pseudonymizer
	signKey  *auth.SigningKey
	// challengeKey signs zero-knowledge proof challenges.
	challengeKey ed25519.PrivateKey
	devIdP       *auth.DevIdP
	vkey         string // checkpoint verifier key (note text)
	access       *access.Service
	queries      *access.Queries
	api          *api.Server
	// The patient app and console, the development IdP's OIDC provider
	// (web.go), and the one handler serving them and the API.
	web        *web.Server
	devOIDC    *auth.DevOIDC
	devSecrets [2]string
	handler    http.Handler
	clock      clock
	limits     *ratelimit.Limiter
	closers    []func() error // run in reverse order by close
	failed     bool           // open failed: close undoes what it made
	// witnesses submits checkpoints to the configured witnesses (nil:
	// none); serve runs it.
	witnesses *witness.Submitter
	// custodian is a consortium's patient custodian gateway (--custodian).
	custodian string
}

// clock is the gateway's clock: time.Now unless a test moves it. The API
// and the consent-gated use cases read the same one.
type clock struct {
	now atomic.Pointer[func() time.Time]
}

// Now returns the current time.
func (c *clock) Now() time.Time {
	if f := c.now.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// set replaces the clock (tests).
func (c *clock) set(now func() time.Time) { c.now.Store(&now) }

// openGateway opens the database, keys, ledger and projections, and builds
// the API. On error everything opened so far is closed again.
func openGateway(ctx context.Context, cfg serveConfig, logger *slog.Logger, e *env) (*gateway, error) {
	return openGatewayOn(ctx, cfg, logger, e, nil)
}

// openGatewayOn is openGateway on an already running ledger backend (nil:
// open the configured one). The caller keeps ownership of l: closing the
// gateway does not close it.
func openGatewayOn(ctx context.Context, cfg serveConfig, logger *slog.Logger, e *env, l backend) (*gateway, error) {
	g := &gateway{cfg: cfg, log: logger, store: l}
	if err := g.open(ctx, e); err != nil {
		return nil, errors.Join(err, g.close())
	}
	return g, nil
}

func (g *gateway) open(ctx context.Context, e *env) (err error) {
	cfg, logger, progress := g.cfg, g.log, e.stderr
	// A failed start undoes what it made (g.failed): close runs
	// the undo steps once open has returned the error.
	defer func() {
		if err != nil {
			g.failed = true
		}
	}()

	// Storage first (unless the caller opened it: then it keeps
	// ownership): keys are made only together with a new database.
	if g.db == nil {
		undo := newFileUndo(cfg)
		if g.db, err = database.Open(ctx, cfg.DB); err != nil {
			return err
		}
		g.closers = append(g.closers, func() error {
			err := database.Close(g.db)
			if g.failed {
				undo.run()
			}
			return err
		})
	}

	// Keys: checked against the key set the database belongs to, or
	// generated with a new database (startup.go), and installed only once
	// the whole start has succeeded. 0600, never logged.
	keys, err := openKeySet(ctx, g.db, cfg.DB, cfg.DataDir, keySetOptions{cfg: cfg, create: true, complete: true}, progress)
	if err != nil {
		return err
	}
	g.closers = append(g.closers, func() error {
		if g.failed { // after everything opened later has closed
			return keys.rollback(context.WithoutCancel(ctx))
		}
		return nil
	})
	if err := checkKEKs(ctx, g.db, cfg.DB, cfg.DataDir, newKeystore(e, cfg.DataDir, false)); err != nil {
		return err
	}
	g.signKey, g.vkey = keys.sign, keys.vkey
	signer, vkey := keys.signer, keys.vkey
	if g.pseud, err = ledger.NewPseudonymizer(keys.secret); err != nil {
		return err
	}
	if keys.challenge == nil {
		return errors.New("challenge key: not loaded") // serve completes the key set: a bug
	}
	g.challengeKey = keys.challenge
	g.devIdP = keys.devIdP

	// Ledger: the backend, and the gateway's node over it (it signs,
	// seals and checks entries; at open it checks every entry beyond the
	// last checkpoint and registers the gateway as entry 0 of a new log).
	if g.store == nil {
		if g.store, err = openBackend(ctx, cfg, g.db, signer, logger); err != nil {
			return err
		}
		g.closers = append(g.closers, g.store.Close)
	}
	id, err := loadIdentity(keys.path, g.cfg.BaseURL, keys.secret, g.store)
	if err != nil {
		return err
	}
	if cfg.Ledger == "comet" {
		// A consortium seals each entry to its parties only (routing.go).
		if g.custodian, err = custodianOf(cfg, g.store); err != nil {
			return err
		}
		id.Recipients = g.route
	}
	if g.node, err = openNode(ctx, g.store, id, logger); err != nil {
		return fmt.Errorf("open ledger: %w", err)
	}
	if err := g.keepUnsettled(ctx, cfg.CometUnsettled, logger); err != nil {
		return err
	}
	g.ledger = g.node

	// Projections.
	if g.registry, err = registrystore.Open(ctx, g.db, registrystore.Options{Logger: logger}); err != nil {
		return err
	}
	if g.consent, err = consentstore.Open(ctx, g.db); err != nil {
		return err
	}
	if g.zkstore, err = zkstore.Open(ctx, g.db); err != nil {
		return err
	}
	// The record store follows the log too: it publishes a pending
	// record once its registration commits, however late.
	recStore, err := recordstore.New(ctx, g.db)
	if err != nil {
		return err
	}
	g.records = recStore
	g.follower = ledger.NewFollower(g.ledger, g.registry, g.consent, g.zkstore, recStore)
	if err := g.follower.SyncAll(ctx); err != nil {
		return fmt.Errorf("catch up projections: %w", err)
	}

	// Authentication.
	replay, err := authstore.Open(ctx, g.db, authstore.Options{})
	if err != nil {
		return err
	}
	if cfg.RevocationRefresh >= 0 { // revocations by other replicas sharing the database
		watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() {
			defer close(done)
			replay.Watch(watchCtx, cfg.RevocationRefresh, func(err error) {
				logger.Warn("revocation list not refreshed", slog.String("err", err.Error()))
			})
		}()
		g.closers = append(g.closers, func() error { stopWatch(); <-done; return nil })
	}
	acfg := auth.Config{Issuer: cfg.BaseURL, Logger: logger, AllowInsecureJWKSURL: cfg.HTTPJWKS, Revocations: replay}
	exch, err := auth.NewExchanger(acfg, g.signKey, g.registry, replay)
	if err != nil {
		return err
	}
	var idps []auth.PatientIdP
	if cfg.PatientIss != "" {
		idp, err := auth.LoadPatientIdP(cfg.PatientIss, cfg.PatientJWKS, cfg.BaseURL)
		if err != nil {
			return err
		}
		idps = append(idps, idp)
	}
	if g.devIdP != nil {
		idps = append(idps, g.devIdP.PatientIdP(cfg.BaseURL))
		if err := g.openDevOIDC(); err != nil {
			return err
		}
		idps = append(idps, g.devOIDC.PatientIdP())
	}
	authn, err := auth.NewAuthenticator(acfg, g.signKey, idps...)
	if err != nil {
		return err
	}
	jwks, err := gatewayJWKS(g.signKey, vkey, g.challengeKey.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}

	// Idempotency keys of the state-changing routes.
	idemKeys, err := g.openIdempotency(ctx, logger)
	if err != nil {
		return err
	}

	// API.
	ops := newOperations(cfg, g.ledger, g.store)
	g.limits = ops.limits
	g.api = api.New(api.Config{BaseURL: cfg.BaseURL}, logger, authn, append(ops.opts,
		api.WithIdempotency(idemKeys),
		api.WithReadiness("database", api.CheckerFunc(func(ctx context.Context) error {
			sqlDB, err := g.db.DB()
			if err != nil {
				return err
			}
			return sqlDB.PingContext(ctx)
		})),
		api.WithReadiness("ledger", api.CheckerFunc(func(ctx context.Context) error {
			if r, ok := g.store.(interface{ Ready(context.Context) error }); ok {
				return r.Ready(ctx) // not ready once it refused to sign a fork
			}
			_, err := g.ledger.Checkpoint(ctx)
			return err
		})),
	)...)
	g.api.SetClock(g.clock.Now)
	g.api.MountAuth(exch, jwks)
	g.api.MountTokenManagement(exch, authn)
	var tilesLog tiles.Log = g.ledger
	if eps, _ := cfg.witnessEndpoints(); len(eps) > 0 {
		g.witnesses = witness.NewSubmitter(g.ledger, eps, nil, logger)
		tilesLog = witness.CosignedLog{Log: g.ledger, S: g.witnesses} // the checkpoint with its cosignatures
	}
	g.api.MountLedger(g.ledger, tiles.New(tilesLog, tiles.Options{Logger: logger}))

	// Records and consent. A pending record (its registration's outcome
	// unknown) is resolved at the head of the log; on a consortium a
	// registration may be committed long after its append failed, so
	// its pending record is never deleted.
	head, _ := g.store.(access.Head)
	g.vault = records.NewVault(recStore, newKeystore(e, cfg.DataDir, true), ops.appender(g.ledger), g.pseud, records.Options{
		MaxSize:       cfg.MaxRecord,
		MaxStreamSize: cfg.MaxStreamRecord,
		Sync:          headSync{head: head, log: g.ledger, follower: g.follower, timeout: access.DefaultHeadTimeout},
		LateCommits:   cfg.Ledger == "comet",
		Logger:        logger,
	})
	if st, err := g.vault.Recover(ctx); err != nil {
		return fmt.Errorf("recover record vault: %w", err)
	} else if st != (records.RecoverStats{}) {
		logger.Info("record vault recovered", slog.Any("stats", st))
	}
	policy, err := breakGlassPolicy(cfg.BreakGlass)
	if err != nil {
		return err
	}
	justifications, err := justificationstore.Open(ctx, g.db)
	if err != nil {
		return err
	}
	svcCfg := access.Config{
		Vault: g.vault, Grants: g.consent, Orgs: g.registry, Justifications: justifications, Log: ops.log(g.ledger), Sync: g.follower,
		Policy: policy, Now: g.clock.Now, Preparer: g.node, Passkeys: g.consent,
		// The locator's listing (at a consortium's custodian, every
		// holder's records) comes from the registrations index.
		Registrations: g.vault,
	}
	// In a consortium, reads decide at the head of the log and
	// revocations are acknowledged once the connected nodes applied them.
	if h, ok := g.store.(access.Head); ok {
		svcCfg.Head = h
	}
	if r, ok := g.store.(access.Replicator); ok {
		svcCfg.Replicate = r
	}
	g.access = access.New(svcCfg)
	g.api.MountRecords(g.vault, g.access, exch)
	if err := g.mountFederation(id, replay, logger); err != nil {
		return err
	}
	g.queries = access.NewQueries(access.QueriesConfig{Store: g.consent, Pseud: g.pseud, Log: g.ledger, Sync: g.follower, Openings: justifications, Applied: g.consent, MaxLag: cfg.AuditMaxLag})
	g.api.MountConsent(api.ConsentDeps{
		Changes: g.access,
		Queries: g.queries,
		Pseud:   g.pseud,
	})

	// Zero-knowledge eligibility.
	g.mountZK(cfg, logger, ops.appender(g.ledger))
	if err := g.openWeb(); err != nil {
		return err
	}
	// Everything opened: the new keys go into place.
	return keys.commit()
}

// loadIdentity is the gateway's ledger identity: its node key
// (keys/gateway.key, or the comet home's gateway key in a consortium),
// its sealing key (keys/seal.key) and the pseudonym secret, read through
// path (the start-up key set's: see startupKeys.path). Its gateway ID is
// the comet gateway's, or in an embedded log "gw-" and the first 8 bytes
// of the SHA-256 of its node key in hex (stable with the key).
func loadIdentity(path func(rel string) string, baseURL string, secret []byte, store ledger.Store) (ledger.Identity, error) {
	ps, err := ledger.NewPseudonymizer(secret)
	if err != nil {
		return ledger.Identity{}, err
	}
	sealSeed, err := readSecret(path(sealKeyFile), 32)
	if err != nil {
		return ledger.Identity{}, fmt.Errorf("sealing key: %w", err)
	}
	sealKey, err := ecdh.X25519().NewPrivateKey(sealSeed)
	if err != nil {
		return ledger.Identity{}, fmt.Errorf("sealing key: %w", err)
	}
	id := ledger.Identity{BaseURL: baseURL, SealKey: sealKey, Pseudonyms: ps}
	if c, ok := store.(interface{ Gateway() comet.GatewayKey }); ok && c.Gateway().ID != "" {
		id.Gateway, id.NodeKey = c.Gateway().ID, c.Gateway().PrivateKey
		return id, nil
	}
	seed, err := readSecret(path(gatewayKeyFile), ed25519.SeedSize)
	if err != nil {
		return ledger.Identity{}, fmt.Errorf("gateway node key: %w", err)
	}
	key := ed25519.NewKeyFromSeed(seed)
	sum := sha256.Sum256(key.Public().(ed25519.PublicKey))
	id.Gateway, id.NodeKey = "gw-"+hex.EncodeToString(sum[:8]), key
	return id, nil
}

// headSync brings the projections to the head of the log: the newest
// block this node knows is committed (a consortium's Head, bounded by
// timeout), or the log's size on one node.
type headSync struct {
	head     access.Head
	log      ledger.Reader
	follower *ledger.Follower
	timeout  time.Duration
}

// SyncHead implements records.Syncer.
func (h headSync) SyncHead(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	var (
		size uint64
		err  error
	)
	if h.head != nil {
		size, err = h.head.Head(ctx)
	} else {
		size, err = h.log.Size(ctx)
	}
	if err != nil {
		return err
	}
	return h.follower.Sync(ctx, size)
}

// idempotencyPurgeInterval is how often done idempotency keys older than
// their retention are deleted.
const idempotencyPurgeInterval = time.Hour

// openIdempotency opens the idempotency keys, purges the expired ones and
// keeps purging them while the gateway runs.
// keepUnsettled makes the node keep the envelopes of writes whose
// outcome is unknown in the gateway's database (ledger_unsettled), so
// that a retry after a restart submits the same bytes, and loads those
// an earlier run left (docs/design/idempotency.md). Only over a
// consortium (a store that answers repeats); the embedded log keeps
// nothing.
func (g *gateway) keepUnsettled(ctx context.Context, limit int, logger *slog.Logger) error {
	if _, ok := g.store.(ledger.RepeatAnswerer); !ok {
		return nil
	}
	keeper, err := unsettledstore.Open(ctx, g.db)
	if err != nil {
		return err
	}
	stats, err := g.node.KeepDurably(ctx, keeper, limit)
	if err != nil {
		return fmt.Errorf("open ledger: %w", err)
	}
	if stats.Committed > 0 || stats.Kept > 0 {
		logger.Info("ledger: writes whose outcome was unknown at the last stop",
			slog.Int("committed_meanwhile", stats.Committed), slog.Int("kept_for_retry", stats.Kept),
			slog.Int("limit", ledger.DefaultUnsettled))
	}
	if stats.Kept >= ledger.DefaultUnsettled {
		logger.Warn("ledger: as many writes with an unknown outcome are kept as the limit allows: new writes are refused (503) until their retries settle them",
			slog.Int("kept_for_retry", stats.Kept), slog.Int("limit", ledger.DefaultUnsettled))
	}
	return nil
}

// settleKept settles, after each commit, the kept envelopes whose
// entries are now in the log (a retry that found its write committed
// answers without appending, so nothing else removes them), until ctx
// ends. Only over a consortium; it returns at once otherwise.
func (g *gateway) settleKept(ctx context.Context, logger *slog.Logger) {
	n, ok := g.store.(interface{ Committed() <-chan struct{} })
	if _, answers := g.store.(ledger.RepeatAnswerer); !ok || !answers {
		return
	}
	for {
		ch := n.Committed()
		// Cheap with nothing kept: no I/O. It also deletes the rows of
		// envelopes settled since (ledger's batches).
		if _, err := g.node.SettleCommitted(ctx); err != nil && ctx.Err() == nil {
			logger.Warn("ledger: settle kept envelopes", slog.String("err", err.Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

func (g *gateway) openIdempotency(ctx context.Context, logger *slog.Logger) (*idemstore.Store, error) {
	keys, err := idemstore.Open(ctx, g.db, idemstore.Options{Now: g.clock.Now})
	if err != nil {
		return nil, err
	}
	purge := func(ctx context.Context) {
		if n, err := keys.PurgeExpired(ctx); err != nil {
			logger.Warn("idempotency keys not purged", slog.String("err", err.Error()))
		} else if n > 0 {
			logger.Info("purged expired idempotency keys", slog.Int64("count", n))
		}
	}
	purge(ctx)
	pctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(idempotencyPurgeInterval)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
				purge(pctx)
			}
		}
	}()
	g.closers = append(g.closers, func() error { stop(); <-done; return nil })
	return keys, nil
}

// openBackend opens the configured ledger backend.
func openBackend(ctx context.Context, cfg serveConfig, db *gorm.DB, signer note.Signer, logger *slog.Logger) (backend, error) {
	switch cfg.Ledger {
	case "gormlog":
		l, err := gormlog.Open(ctx, db, gormlog.Options{Origin: cfg.Origin, Signer: signer, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("open ledger: %w", err)
		}
		return l, nil
	case "comet":
		l, err := comet.Open(ctx, comet.Config{
			Home: cfg.CometHome, Signer: signer, Origin: cfg.Origin, Logger: logger,
			RetainBlocks: cfg.CometRetain, AppendTimeout: cfg.CometTimeout,
		})
		if err != nil {
			return nil, fmt.Errorf("open consortium ledger: %w", err)
		}
		return l, nil
	}
	return nil, fmt.Errorf("ledger backend %q is not available", cfg.Ledger)
}

// close closes everything in reverse order of opening; the ledger's Close
// flushes pending appends and publishes a final checkpoint before the
// database closes.
func (g *gateway) close() error {
	var errs []error
	for i := len(g.closers) - 1; i >= 0; i-- {
		errs = append(errs, g.closers[i]())
	}
	g.closers = nil
	return errors.Join(errs...)
}

// gatewayJWKS is the gateway's public JWK Set: the access-token key and the
// checkpoint key (as an Ed25519 OKP key whose kid is the note key's
// name+hash).
func gatewayJWKS(k *auth.SigningKey, vkey string, challenge ed25519.PublicKey) (jwk.Set, error) {
	set := jwk.NewSet()
	if err := set.AddKey(k.Public()); err != nil {
		return nil, err
	}
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, errors.New("checkpoint verifier key: malformed")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != 1 {
		return nil, errors.New("checkpoint verifier key: not an Ed25519 note key")
	}
	cp, err := jwk.Import(ed25519.PublicKey(raw[1:]))
	if err != nil {
		return nil, fmt.Errorf("checkpoint key: %w", err)
	}
	for name, v := range map[string]any{jwk.KeyIDKey: parts[0] + "+" + parts[1], jwk.KeyUsageKey: "sig", jwk.AlgorithmKey: "EdDSA"} {
		if err := cp.Set(name, v); err != nil {
			return nil, err
		}
	}
	if err := set.AddKey(cp); err != nil {
		return nil, err
	}
	ck, err := jwk.Import(challenge)
	if err != nil {
		return nil, fmt.Errorf("challenge key: %w", err)
	}
	for name, v := range map[string]any{jwk.KeyIDKey: circuits.ChallengeKeyID, jwk.KeyUsageKey: "sig", jwk.AlgorithmKey: "EdDSA"} {
		if err := ck.Set(name, v); err != nil {
			return nil, err
		}
	}
	if err := set.AddKey(ck); err != nil {
		return nil, err
	}
	return set, nil
}

// breakGlassPolicy builds the consent policy from --break-glass-kinds.
func breakGlassPolicy(kinds string) (consent.Policy, error) {
	p := consent.DefaultPolicy()
	p.BreakGlassKinds = nil
	for _, k := range strings.Split(kinds, ",") {
		if k = strings.TrimSpace(k); k == "" {
			continue
		}
		if !auth.Kind(k).Valid() {
			return p, fmt.Errorf("--break-glass-kinds: unknown kind %q", k)
		}
		p.BreakGlassKinds = append(p.BreakGlassKinds, auth.Kind(k))
	}
	return p, p.Validate()
}
