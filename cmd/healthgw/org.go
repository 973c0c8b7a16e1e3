package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/lestrrat-go/jwx/v3/jwk"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/comet"
	"github.com/healthgw/healthgw/ledger/gormlog"
	"github.com/healthgw/healthgw/registry"
	"github.com/healthgw/healthgw/registry/registrystore"
)

func cmdOrg(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, "healthgw org", []command{
		{"add", "register an organisation and its public keys", cmdOrgAdd},
		{"list", "list registered organisations", cmdOrgList},
		{"keygen", "create a demo client's private keys and register its public keys", cmdOrgKeygen},
		{"rotate", "replace a registered organisation's public keys", cmdOrgRotate},
	}, args)
}

// storeFlags are the flags of commands that open the database and the
// ledger.
type storeFlags struct {
	db        string
	data      string
	cometHome string
	create    bool
}

func (s *storeFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.data, "data", "data", "data directory (database, keys)")
	fs.StringVar(&s.db, "db", "", "database: a SQLite path or postgres://… (default <data>/healthgw.db)")
	fs.StringVar(&s.cometHome, "comet-home", "", "consortium: append through this running node's CometBFT RPC (the gateway's --comet-home) instead of the embedded ledger")
	fs.BoolVar(&s.create, "create", false, "create the database (and its keys) if --data holds none; without it the command needs a gateway's existing database")
}

// registrar is where org add and keygen append: the embedded ledger (and
// the local registry projection), or a consortium node.
type registrar struct {
	app   registry.Appender
	sync  registry.Syncer
	close func() error
}

// noSync is the Syncer for a consortium append: the entry is committed by
// consensus; every gateway's follower projects it.
type noSync struct{}

func (noSync) Sync(context.Context, uint64) error { return nil }

func openRegistrar(ctx context.Context, sf storeFlags) (*registrar, error) {
	if sf.cometHome != "" {
		r, err := comet.OpenRemote(sf.cometHome)
		if err != nil {
			return nil, fmt.Errorf("consortium node: %w", err)
		}
		return &registrar{app: r, sync: noSync{}, close: func() error { return nil }}, nil
	}
	st, err := openOrgStores(ctx, sf, false)
	if err != nil {
		return nil, err
	}
	return &registrar{app: st.log, sync: st.follow, close: st.Close}, nil
}

func (s *storeFlags) dsn() string {
	if s.db != "" {
		return s.db
	}
	return filepath.Join(s.data, "healthgw.db")
}

// cliLedger is what the org commands need from the ledger: append entries
// and read them back into the registry projection.
type cliLedger = ledger.Log

// checkpointKeyFile is the checkpoint signer key under the data
// directory. The CLI must sign with the same key as `serve`: its
// checkpoints go into the same log.
const checkpointKeyFile = "keys/checkpoint.key"

// openLedger opens the embedded ledger over db for a one-shot command:
// read-only for listing, else with the gateway's checkpoint key, checked
// against the key set the database belongs to (made, with the database,
// only when create is set).
func openLedger(ctx context.Context, db *gorm.DB, dsn, dataDir string, readOnly, create bool) (cliLedger, error) {
	if readOnly {
		// Listing reads the registry entries, which are in clear: no
		// keys are needed.
		st, err := gormlog.OpenReadOnly(ctx, db, gormlog.Options{})
		if err != nil {
			return nil, err
		}
		n, err := ledger.OpenNode(ctx, st, ledger.Identity{ReadOnly: true})
		if err != nil {
			return nil, errors.Join(err, st.Close())
		}
		return n, nil
	}
	cfg := defaultServeConfig()
	cfg.DataDir = dataDir
	if err := cfg.finish(); err != nil {
		return nil, err
	}
	cfg.DevIdP = false // one-shot commands do not use the development IdP's key
	keys, err := openKeySet(ctx, db, dsn, dataDir, keySetOptions{cfg: cfg, create: create}, io.Discard)
	if err != nil {
		return nil, err
	}
	st, err := gormlog.Open(ctx, db, gormlog.Options{Signer: keys.signer, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, errors.Join(err, keys.rollback(context.WithoutCancel(ctx)))
	}
	var n *ledger.Node
	id, err := loadIdentity(keys.path, cfg.BaseURL, keys.secret, st)
	if err == nil {
		n, err = ledger.OpenNode(ctx, st, id)
	}
	if err == nil {
		err = keys.commit()
	}
	if err != nil {
		return nil, errors.Join(err, st.Close(), keys.rollback(context.WithoutCancel(ctx)))
	}
	return n, nil
}

// openCLIDatabase opens the database a command works on: an existing one,
// or with --create a new one.
func openCLIDatabase(ctx context.Context, dsn string, create bool) (*gorm.DB, error) {
	if create {
		return database.Open(ctx, dsn)
	}
	return database.OpenExisting(ctx, dsn)
}

// orgStores is the database, the ledger and the registry projection, kept
// in sync by a follower.
type orgStores struct {
	db     *gorm.DB
	log    cliLedger
	reg    *registrystore.Store
	follow *ledger.Follower
}

func openOrgStores(ctx context.Context, sf storeFlags, readOnly bool) (*orgStores, error) {
	db, err := openCLIDatabase(ctx, sf.dsn(), sf.create && !readOnly)
	if err != nil {
		return nil, err
	}
	log, err := openLedger(ctx, db, sf.dsn(), sf.data, readOnly, sf.create)
	if err != nil {
		_ = database.Close(db)
		return nil, fmt.Errorf("open ledger: %w", err)
	}
	reg, err := registrystore.Open(ctx, db, registrystore.Options{})
	if err != nil {
		_ = log.Close()
		_ = database.Close(db)
		return nil, err
	}
	return &orgStores{db: db, log: log, reg: reg, follow: ledger.NewFollower(log, reg)}, nil
}

func (s *orgStores) Close() error {
	return errors.Join(s.log.Close(), database.Close(s.db))
}

// scopesFlag parses a comma- or space-separated scope list.
func scopesFlag(s string) ([]auth.Scope, error) {
	return auth.ParseScopes(strings.ReplaceAll(s, ",", " "))
}

func cmdOrgAdd(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "org add")
	var sf storeFlags
	sf.register(fs)
	id := fs.String("id", "", "organisation ID (2-63 of a-z, 0-9, '-')")
	name := fs.String("name", "", "display name (default the ID)")
	kind := fs.String("kind", string(auth.KindHospital), "hospital, verifier or regulator")
	jwks := fs.String("jwks", "", "public JWK Set: a file, or an http(s) URL serving it")
	scopes := fs.String("scopes", "", "scopes, comma-separated (default all of the kind's; see docs/scopes.md)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	o, err := orgFromFlags(*id, *name, *kind, *scopes)
	if err != nil {
		return err
	}
	switch {
	case *jwks == "":
		return errors.New("org add: --jwks is required")
	case strings.HasPrefix(*jwks, "https://") || strings.HasPrefix(*jwks, "http://"):
		o.JWKSURL = *jwks
	default:
		b, err := os.ReadFile(*jwks)
		if err != nil {
			return fmt.Errorf("org add: %w", err)
		}
		o.JWKS = string(b)
	}
	r, err := openRegistrar(ctx, sf)
	if err != nil {
		return err
	}
	defer r.close()
	return orgAdd(ctx, e, r.app, r.sync, o)
}

func cmdOrgRotate(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "org rotate")
	var sf storeFlags
	sf.register(fs)
	id := fs.String("id", "", "organisation ID")
	jwks := fs.String("jwks", "", "the new public JWK Set: a file, or an http(s) URL serving it")
	keyFile := fs.String("key", "", "the organisation's current private signing key (a JWK file, as `org keygen` writes it): it signs the rotation")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *id == "" {
		return errors.New("org rotate: --id is required")
	}
	if *keyFile == "" {
		return errors.New("org rotate: --key is required: the organisation's current private signing key signs the rotation (every gateway refuses an unsigned one)")
	}
	var set, url string
	switch {
	case *jwks == "":
		return errors.New("org rotate: --jwks is required")
	case strings.HasPrefix(*jwks, "https://") || strings.HasPrefix(*jwks, "http://"):
		url = *jwks
	default:
		b, err := os.ReadFile(*jwks)
		if err != nil {
			return fmt.Errorf("org rotate: %w", err)
		}
		set = string(b)
	}
	key, err := auth.ReadPrivateKey(*keyFile)
	if err != nil {
		return fmt.Errorf("org rotate: --key: %w", err)
	}
	var current registry.Registration
	var app registry.Appender
	var sync registry.Syncer
	if sf.cometHome != "" {
		// The org's current keys as the gateway on --data projects them
		// from the replicated ledger; the node checks them again.
		if current, err = projectedRegistration(ctx, sf, *id); err != nil {
			return fmt.Errorf("org rotate: %w", err)
		}
		r, err := openRegistrar(ctx, sf)
		if err != nil {
			return err
		}
		defer r.close()
		app, sync = r.app, r.sync
	} else {
		st, err := openOrgStores(ctx, sf, false)
		if err != nil {
			return err
		}
		defer st.Close()
		if err := st.follow.SyncAll(ctx); err != nil {
			return fmt.Errorf("org rotate: %w", err)
		}
		if current, err = st.reg.Registration(ctx, *id); err != nil {
			return fmt.Errorf("org rotate: %w", err)
		}
		app, sync = st.log, st.follow
	}
	idx, err := registry.Rotate(ctx, app, sync, auth.CheckOrgJWKS, current, key, set, url)
	if errors.Is(err, registry.ErrWrongKey) {
		return fmt.Errorf("org rotate: --key %s is not one of %s's current signing keys (the keys registered at ledger index %d); nothing was appended", *keyFile, *id, current.KeysIndex)
	}
	if err != nil {
		return fmt.Errorf("org rotate: %w", err)
	}
	fmt.Fprintf(e.stdout, "rotated the keys of %s at ledger index %d\n", *id, idx)
	return nil
}

// projectedRegistration reads org id from the registry projection of the
// gateway on --data (or --db).
func projectedRegistration(ctx context.Context, sf storeFlags, id string) (registry.Registration, error) {
	db, err := database.OpenExisting(ctx, sf.dsn())
	if err != nil {
		return registry.Registration{}, fmt.Errorf("the gateway's database (--data or --db): %w", err)
	}
	defer database.Close(db)
	reg, err := registrystore.Open(ctx, db, registrystore.Options{})
	if err != nil {
		return registry.Registration{}, err
	}
	return reg.Registration(ctx, id)
}

func orgFromFlags(id, name, kind, scopes string) (auth.Org, error) {
	if id == "" {
		return auth.Org{}, errors.New("--id is required")
	}
	name = cmp.Or(name, id)
	sc, err := scopesFlag(scopes)
	if err != nil {
		return auth.Org{}, fmt.Errorf("--scopes: %w", err)
	}
	return auth.Org{ID: id, Name: name, Kind: auth.Kind(kind), Scopes: sc}, nil
}

// orgAdd registers o through the ledger and reports it.
func orgAdd(ctx context.Context, e *env, app registry.Appender, sync registry.Syncer, o auth.Org) error {
	idx, err := registry.Register(ctx, app, sync, auth.CheckOrgJWKS, o)
	if errors.Is(err, registry.ErrExists) {
		return fmt.Errorf("org add: %s is already registered (an organisation is registered once, by its home gateway); to change its keys run: healthgw org rotate --id %s --jwks FILE", o.ID, o.ID)
	}
	if err != nil {
		return fmt.Errorf("org add: %w", err)
	}
	o = registry.Normalize(o)
	fmt.Fprintf(e.stdout, "registered %s (%s) at ledger index %d, scopes: %s\n", o.ID, o.Kind, idx, auth.JoinScopes(o.Scopes))
	return nil
}

func cmdOrgList(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "org list")
	var sf storeFlags
	sf.register(fs)
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if sf.cometHome != "" {
		// A consortium node: the gateway on it projects the replicated
		// ledger into its database; list that projection.
		if _, err := os.Stat(filepath.Join(sf.cometHome, "config", "config.toml")); err != nil {
			return fmt.Errorf("org list: --comet-home %s is not a CometBFT node home: %w", sf.cometHome, err)
		}
		if _, err := comet.LoadNodeConfig(sf.cometHome); err != nil {
			return fmt.Errorf("org list: --comet-home: %w", err)
		}
		return listProjection(ctx, e, sf)
	}
	st, err := openOrgStores(ctx, sf, true)
	if errors.Is(err, ledger.ErrNotFound) {
		// No embedded ledger in this database: a consortium node's,
		// whose registry the gateway projects from the replicated ledger.
		return listProjection(ctx, e, sf)
	}
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.follow.SyncAll(ctx); err != nil {
		return fmt.Errorf("org list: %w", err)
	}
	return orgList(ctx, e, st.reg)
}

// listProjection prints the registry projection that the gateway on
// --data (or --db) serves, as it is: the gateway keeps it up to date.
func listProjection(ctx context.Context, e *env, sf storeFlags) error {
	db, err := database.OpenExisting(ctx, sf.dsn())
	if err != nil {
		return fmt.Errorf("org list: %w", err)
	}
	defer database.Close(db)
	reg, err := registrystore.Open(ctx, db, registrystore.Options{})
	if err != nil {
		return fmt.Errorf("org list: %w", err)
	}
	return orgList(ctx, e, reg)
}

// orgList prints the registry as a table.
func orgList(ctx context.Context, e *env, reg *registrystore.Store) error {
	list, err := reg.List(ctx)
	if err != nil {
		return fmt.Errorf("org list: %w", err)
	}
	return printOrgs(e, list)
}

func printOrgs(e *env, list []registry.Registration) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tSCOPES\tKEYS\tINDEX\tNAME")
	for _, r := range list {
		keys := r.Org.JWKSURL
		if r.Org.JWKS != "" {
			keys = "inline"
			if ks, err := auth.ParseOrgJWKS([]byte(r.Org.JWKS)); err == nil {
				keys = fmt.Sprintf("inline (%d sig", ks.Len())
				if _, ok := ks.EncryptionKey(); ok {
					keys += ", enc"
				}
				keys += ")"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", r.Org.ID, r.Org.Kind, strings.ReplaceAll(auth.JoinScopes(r.Org.Scopes), " ", ","), keys, r.Index, r.Org.Name)
	}
	return tw.Flush()
}

func cmdOrgKeygen(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "org keygen")
	var sf storeFlags
	sf.register(fs)
	id := fs.String("id", "", "organisation ID")
	out := fs.String("out", "", "directory for the key files")
	name := fs.String("name", "", "display name (default the ID)")
	kind := fs.String("kind", string(auth.KindHospital), "hospital, verifier or regulator")
	alg := fs.String("alg", "ES384", "signing algorithm: ES256, ES384, RS384 or EdDSA")
	scopes := fs.String("scopes", "", "scopes, comma-separated (default all of the kind's)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	o, err := orgFromFlags(*id, *name, *kind, *scopes)
	if err != nil {
		return err
	}
	if *out == "" {
		return errors.New("org keygen: --out is required")
	}
	kg, err := newKeygen(o, *out, *alg)
	if err != nil {
		return err
	}
	r, err := openRegistrar(ctx, sf)
	if err != nil {
		return err
	}
	defer r.close()
	return kg.run(ctx, e, r.app, r.sync)
}

// keygen is a prepared `org keygen`: fresh keys for an org that validates.
type keygen struct {
	org                       auth.Org // with the public JWKS
	alg                       string
	sig, enc                  jwk.Key
	public                    []byte
	sigPath, encPath, pubPath string
}

// newKeygen creates a signing key (alg) and an ECDH-ES+A256KW P-256 encryption
// key for o and checks that o, with their public halves, validates and
// that none of the files exists. Nothing is written yet.
func newKeygen(o auth.Org, dir, alg string) (*keygen, error) {
	kg := &keygen{alg: alg}
	var err error
	if kg.sig, err = auth.GenerateSigningKey(alg); err != nil {
		return nil, fmt.Errorf("org keygen: %w", err)
	}
	if kg.enc, err = auth.GenerateEncryptionKey(); err != nil {
		return nil, fmt.Errorf("org keygen: %w", err)
	}
	if kg.public, err = auth.PublicJWKS(kg.sig, kg.enc); err != nil {
		return nil, fmt.Errorf("org keygen: %w", err)
	}
	o.JWKS = string(kg.public)
	if err := auth.ValidateOrg(registry.Normalize(o)); err != nil {
		return nil, fmt.Errorf("org keygen: %w", err)
	}
	kg.org = o
	kg.sigPath = filepath.Join(dir, o.ID+".jwk")
	kg.encPath = filepath.Join(dir, o.ID+".enc.jwk")
	kg.pubPath = filepath.Join(dir, o.ID+".jwks.json")
	for _, p := range []string{kg.sigPath, kg.encPath, kg.pubPath} {
		if _, err := os.Stat(p); err == nil {
			return nil, fmt.Errorf("org keygen: %s exists; not overwriting a key", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("org keygen: %w", err)
		}
	}
	return kg, nil
}

// run writes both private JWKs (0600) and the public JWK Set (0644), then
// registers the org with the public set. Existing files are never
// overwritten. If the registration is refused, the files are removed; if
// it was appended, they are kept whatever else failed.
func (kg *keygen) run(ctx context.Context, e *env, app registry.Appender, sync registry.Syncer) (err error) {
	var written []string
	defer func() {
		if err != nil && !errors.Is(err, registry.ErrNotSynced) {
			for _, p := range written {
				_ = os.Remove(p)
			}
		}
	}()
	if err := os.MkdirAll(filepath.Dir(kg.sigPath), 0o700); err != nil {
		return fmt.Errorf("org keygen: %w", err)
	}
	for _, f := range []struct {
		path string
		key  jwk.Key
	}{{kg.sigPath, kg.sig}, {kg.encPath, kg.enc}} {
		if err := auth.WritePrivateKey(f.path, f.key); err != nil {
			return fmt.Errorf("org keygen: %w", err)
		}
		written = append(written, f.path)
	}
	f, err := os.OpenFile(kg.pubPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("org keygen: %w", err)
	}
	written = append(written, kg.pubPath)
	_, werr := f.Write(append(kg.public, '\n'))
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("org keygen: %w", err)
	}
	fmt.Fprintf(e.stderr, "wrote %s (signing, %s), %s (encryption, ECDH-ES+A256KW P-256), %s (public)\n", kg.sigPath, kg.alg, kg.encPath, kg.pubPath)
	return orgAdd(ctx, e, app, sync, kg.org)
}
