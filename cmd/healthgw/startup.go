package main

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger"
)

// boundKey is one key of the key set a database belongs to. The database
// records, for each, a public identifier; a gateway started with a key
// file that does not match refuses to start, naming the key. Adding a key
// to the set is adding one entry to boundKeys; the code that uses the key
// reads it from startupKeys.path(rel) (see docs/design/startup-keys.md).
type boundKey struct {
	// id names the key in the database. Never change it: databases
	// record it.
	id string
	// name is how messages call the key.
	name string
	// rel is its file under the data directory.
	rel string
	// uses reports whether a gateway with this configuration uses the
	// key (nil: always). A key not in use is neither checked nor made.
	uses func(serveConfig) bool
	// generate writes a new key to path: a file in a temporary directory
	// (mode 0600); it may write companion files beside it (path + a
	// suffix), which are installed with it.
	generate func(path string, p keyParams) error
	// identify returns what the database records of the key in path: a
	// public value (a verifier key, a key ID, a keyed hash), never the
	// secret; an error for a file that holds no such key.
	identify func(path string) (string, error)
	// show is how an identifier appears in messages (nil: as it is).
	show func(id string) string
	// addLater says that nothing stored depends on the key (it signs only
	// short-lived values), so a database bound before the key joined the
	// set gets a new one when the file is missing. Without it, such a
	// database refuses to start until the file is restored.
	addLater bool
}

// keyParams are the settings a new key is made with.
type keyParams struct {
	checkpointKeyName string // the name (and so the log origin) of a new checkpoint key
}

// boundKeys is the key set, in the order keys are checked and named.
var boundKeys = []boundKey{
	{
		id: database.KeyCheckpoint, name: "checkpoint key", rel: checkpointKeyFile,
		generate: func(path string, p keyParams) error {
			_, _, err := ledger.LoadOrCreateCheckpointKey(path, p.checkpointKeyName) // also writes path.pub
			return err
		},
		identify: checkpointVerifierKey,
		show:     func(id string) string { return "verifier key " + id },
	},
	{
		id: database.KeyPseudonym, name: "pseudonym secret", rel: pseudonymKeyFile,
		generate: newSecretFile(ledger.PseudonymKeySize),
		identify: func(path string) (string, error) {
			b, err := readSecret(path, ledger.PseudonymKeySize)
			if err != nil {
				return "", err
			}
			return pseudonymMAC(b), nil
		},
		show: func(id string) string { return "HMAC " + id[:min(16, len(id))] + "…" },
	},
	{
		id: database.KeyAccessToken, name: "access-token key", rel: auth.SigningKeyFile,
		generate: func(path string, _ keyParams) error {
			_, err := auth.LoadOrCreateSigningKey(path)
			return err
		},
		identify: jwkKeyID,
		show:     func(id string) string { return "key ID " + id },
	},
	{
		id: "challenge", name: "challenge key", rel: challengeKeyFile,
		generate: newSecretFile(ed25519.SeedSize),
		identify: func(path string) (string, error) {
			seed, err := readSecret(path, ed25519.SeedSize)
			if err != nil {
				return "", err
			}
			return base64.RawURLEncoding.EncodeToString(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)), nil
		},
		show:     func(id string) string { return "public key " + id },
		addLater: true, // challenges live minutes
	},
	{
		// The gateway's node key signs every entry it writes (a
		// consortium member signs with its comet home's gateway key).
		id: "gateway", name: "gateway node key", rel: gatewayKeyFile,
		uses:     func(c serveConfig) bool { return c.Ledger != "comet" },
		generate: newSecretFile(ed25519.SeedSize),
		identify: func(path string) (string, error) {
			seed, err := readSecret(path, ed25519.SeedSize)
			if err != nil {
				return "", err
			}
			return base64.RawURLEncoding.EncodeToString(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)), nil
		},
		show: func(id string) string { return "public key " + id },
	},
	{
		// Entry openings are sealed to the gateway's sealing key.
		id: "seal", name: "ledger sealing key", rel: sealKeyFile,
		generate: newSecretFile(32),
		identify: func(path string) (string, error) {
			seed, err := readSecret(path, 32)
			if err != nil {
				return "", err
			}
			k, err := ecdh.X25519().NewPrivateKey(seed)
			if err != nil {
				return "", fmt.Errorf("%s: %w", path, err)
			}
			return base64.RawURLEncoding.EncodeToString(k.PublicKey().Bytes()), nil
		},
		show: func(id string) string { return "public key " + id },
	},
	{
		id: "dev-idp", name: "development IdP key", rel: auth.DevIdPKeyFile,
		uses: func(c serveConfig) bool { return c.DevIdP },
		generate: func(path string, _ keyParams) error {
			_, err := auth.LoadOrCreateDevIdP(path)
			return err
		},
		identify: jwkKeyID,
		show:     func(id string) string { return "key ID " + id },
		addLater: true, // development patient tokens live an hour at most
	},
}

func (k boundKey) describe(id string) string {
	if k.show == nil {
		return id
	}
	return k.show(id)
}

func newSecretFile(n int) func(string, keyParams) error {
	return func(path string, _ keyParams) error {
		_, _, err := loadOrCreateSecret(path, n)
		return err
	}
}

// readSecret reads an n-byte secret file; it creates nothing.
func readSecret(path string, n int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) != n {
		return nil, fmt.Errorf("%s: want %d bytes, have %d", path, n, len(b))
	}
	return b, nil
}

func checkpointVerifierKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	skey := strings.TrimSpace(string(b))
	if _, err := note.NewSigner(skey); err != nil {
		return "", fmt.Errorf("%s: %w: %v", path, ledger.ErrBadKey, err)
	}
	vkey, err := ledger.VerifierKey(skey)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return vkey, nil
}

func jwkKeyID(path string) (string, error) {
	k, err := auth.ReadPrivateKey(path)
	if err != nil {
		return "", err
	}
	kid, _ := k.KeyID()
	return kid, nil
}

// pseudonymMAC identifies a pseudonym secret without revealing it: an
// HMAC-SHA256 of a fixed label keyed with the secret.
func pseudonymMAC(secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("healthgw key set v1: pseudonym secret"))
	return hex.EncodeToString(m.Sum(nil))
}

// KeySetError says which key does not belong to the database, where it is
// expected, and what the database expects; Found is empty for a missing
// key file.
type KeySetError struct {
	Key      string // "checkpoint key", "pseudonym secret", …
	Path     string // where the key file is expected
	Database string // the database (a path, or a redacted URL)
	Expected string // what the database records (key ID, verifier key or HMAC)
	Found    string // what the file holds, in the same form
	Reason   string // set instead of Expected/Found for refusals of other kinds
}

func (e *KeySetError) Error() string {
	switch {
	case e.Reason != "":
		return fmt.Sprintf("refusing to start: %s %s: %s", e.Key, e.Path, e.Reason)
	case e.Found == "":
		return fmt.Sprintf("refusing to start: the %s is missing: the database %s expects it at %s (%s); restore that file, or point --data at the directory this database was created with",
			e.Key, e.Database, e.Path, e.Expected)
	default:
		return fmt.Sprintf("refusing to start: the %s at %s does not belong to the database %s: the database expects %s, the file holds %s; point --data at the directory this database was created with (or --db at this key set's database)",
			e.Key, e.Path, e.Database, e.Expected, e.Found)
	}
}

// gatewayKeys are the loaded keys of the set.
type gatewayKeys struct {
	sign      *auth.SigningKey
	signer    note.Signer
	vkey      string // checkpoint verifier key text
	secret    []byte // pseudonym secret
	challenge ed25519.PrivateKey
	devIdP    *auth.DevIdP // nil unless the configuration uses it
}

// keySetOptions say what openKeySet may do besides checking.
type keySetOptions struct {
	// cfg decides which keys are in use (boundKey.uses).
	cfg serveConfig
	// create: a new database (no key set, no data) gets a new key set.
	create bool
	// complete: keys in use that a bound database does not record yet
	// are recorded (adopted) when present, or made when missing and
	// boundKey.addLater. serve completes; one-shot commands only check.
	complete bool
}

// startupKeys is the outcome of openKeySet: the keys, checked against
// the database, and what the start made (to install or undo).
type startupKeys struct {
	*gatewayKeys
	db       *gorm.DB
	dataDir  string
	progress io.Writer

	tmp       string     // temporary directory holding generated keys ("")
	generated []boundKey // keys made by this start, installed by commit
	added     database.KeySet
	newDB     bool     // the key set was bound to a new database
	before    []string // its tables before (the key-set tables at most)
	installed []string // files commit linked into place
	madeDirs  []string // directories this start created, outermost first
	committed bool
}

// openKeySet checks the keys in dataDir against the key set the database
// db (named dsn) belongs to, and loads them. It never writes anything when
// it refuses.
//
// A database that records no key set and holds no data is new: with
// opts.create the keys it lacks are generated into a temporary directory
// under dataDir and the key set is bound to the database, as the first
// thing written to it. The keys are linked into <data>/keys only by commit,
// once the whole start-up has succeeded; rollback (on failure) removes
// them, and drops what the start wrote to the new database, so a failed
// start leaves nothing behind. A database that holds data but records no
// key set (made before key sets were recorded) adopts the keys present,
// and refuses if a key other than an addLater one is missing.
func openKeySet(ctx context.Context, db *gorm.DB, dsn, dataDir string, opts keySetOptions, progress io.Writer) (_ *startupKeys, err error) {
	dbName := dbDisplayName(dsn)
	recorded, bound, err := database.ReadKeySet(ctx, db)
	if err != nil {
		return nil, err
	}
	s := &startupKeys{db: db, dataDir: dataDir, progress: progress}
	defer func() {
		if err != nil {
			err = errors.Join(err, s.rollback(context.WithoutCancel(ctx)))
		}
	}()
	var inUse, adopt, generate []boundKey
	found := map[string]string{} // id → identifier of the file present
	for _, k := range boundKeys {
		if k.uses != nil && !k.uses(opts.cfg) {
			continue
		}
		inUse = append(inUse, k)
		path := filepath.Join(dataDir, k.rel)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", k.name, err)
		}
		id, err := k.identify(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k.name, err)
		}
		found[k.id] = id
	}
	// Every key the database records must be present and the same.
	if bound {
		for _, k := range inUse {
			want, ok := recorded[k.id]
			if !ok {
				continue
			}
			path := filepath.Join(dataDir, k.rel)
			got, present := found[k.id]
			switch {
			case !present:
				return nil, &KeySetError{Key: k.name, Path: path, Database: dbName, Expected: k.describe(want)}
			case got != want:
				return nil, &KeySetError{Key: k.name, Path: path, Database: dbName, Expected: k.describe(want), Found: k.describe(got)}
			}
		}
	}
	var hasState bool
	if !bound {
		if hasState, err = database.HasState(ctx, db); err != nil {
			return nil, err
		}
	}
	fresh := !bound && !hasState
	for _, k := range inUse {
		if _, ok := recorded[k.id]; ok {
			continue
		}
		path := filepath.Join(dataDir, k.rel)
		_, present := found[k.id]
		switch {
		case fresh && !opts.create && !present:
			return nil, &KeySetError{Key: k.name, Path: path, Database: dbName, Reason: "missing (a new key set is made only together with a new database)"}
		case fresh && present:
			adopt = append(adopt, k)
		case fresh:
			generate = append(generate, k)
		case !opts.complete && !bound && !present && !k.addLater:
			return nil, &KeySetError{Key: k.name, Path: path, Database: dbName,
				Reason: fmt.Sprintf("missing, and the database %s already holds data: a new key would orphan it; restore the key from backup", dbName)}
		case !opts.complete:
			// A one-shot command checks what is recorded; serve records the rest.
		case present:
			adopt = append(adopt, k)
		case k.addLater:
			generate = append(generate, k)
		default:
			reason := fmt.Sprintf("missing, and the database %s already holds data: a new key would orphan it; restore the key from backup", dbName)
			if bound {
				reason = fmt.Sprintf("missing, and the database %s, which holds data, does not record it (it was bound before this key joined the key set): restore the file the data was written with", dbName)
			}
			return nil, &KeySetError{Key: k.name, Path: path, Database: dbName, Reason: reason}
		}
	}
	if len(generate) > 0 {
		if err := s.generate(generate, keyParams{checkpointKeyName: checkpointKeyName(opts.cfg)}, found); err != nil {
			return nil, err
		}
	}
	add := database.KeySet{}
	for _, k := range slices.Concat(adopt, generate) {
		add[k.id] = found[k.id]
	}
	if len(add) > 0 {
		if fresh {
			if s.before, err = database.Tables(ctx, db); err != nil {
				return nil, err
			}
			err = database.BindKeySet(ctx, db, add)
			if err == nil {
				s.newDB = true
			}
		} else {
			err = database.AddKeys(ctx, db, add)
		}
		switch {
		case errors.Is(err, database.ErrKeySetExists):
			// Another gateway bound the database first: its keys must be
			// these (checked below); ours are not recorded.
		case err != nil:
			return nil, fmt.Errorf("record the key set in the database %s: %w", dbName, err)
		default:
			s.added = add
		}
		// What is recorded now (also by a concurrent start) must be ours.
		if recorded, _, err = database.ReadKeySet(ctx, db); err != nil {
			return nil, err
		}
		for _, k := range inUse {
			if want, ok := recorded[k.id]; ok && want != found[k.id] {
				return nil, &KeySetError{Key: k.name, Path: filepath.Join(dataDir, k.rel), Database: dbName, Expected: k.describe(want), Found: k.describe(found[k.id])}
			}
		}
	}
	if s.gatewayKeys, err = s.load(opts.cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// generate makes keys in a temporary directory under the data directory
// (on the file system they are linked into) and records their
// identifiers in found.
func (s *startupKeys) generate(keys []boundKey, p keyParams, found map[string]string) error {
	if err := s.mkdir(s.dataDir); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(s.dataDir, ".keys-new-")
	if err != nil {
		return fmt.Errorf("create keys: %w", err)
	}
	s.tmp = tmp
	for _, k := range keys {
		path := filepath.Join(tmp, k.rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("create keys: %w", err)
		}
		if err := k.generate(path, p); err != nil {
			return fmt.Errorf("%s: %w", k.name, err)
		}
		id, err := k.identify(path)
		if err != nil {
			return fmt.Errorf("%s: %w", k.name, err)
		}
		found[k.id] = id
		s.generated = append(s.generated, k)
	}
	return nil
}

// path is where the key file rel is now: in the temporary directory
// until commit for a key this start made, else under the data directory.
func (s *startupKeys) path(rel string) string {
	if !s.committed && s.tmp != "" {
		for _, k := range s.generated {
			if k.rel == rel {
				return filepath.Join(s.tmp, rel)
			}
		}
	}
	return filepath.Join(s.dataDir, rel)
}

// load reads the keys in use from where they are now; it creates nothing.
func (s *startupKeys) load(cfg serveConfig) (*gatewayKeys, error) {
	var k gatewayKeys
	cpPath := s.path(checkpointKeyFile)
	vkey, err := checkpointVerifierKey(cpPath)
	if err != nil {
		return nil, fmt.Errorf("checkpoint key: %w", err)
	}
	b, err := os.ReadFile(cpPath)
	if err != nil {
		return nil, fmt.Errorf("checkpoint key: %w", err)
	}
	if k.signer, err = note.NewSigner(strings.TrimSpace(string(b))); err != nil {
		return nil, fmt.Errorf("checkpoint key %s: %w: %v", cpPath, ledger.ErrBadKey, err)
	}
	k.vkey = vkey
	if k.secret, err = readSecret(s.path(pseudonymKeyFile), ledger.PseudonymKeySize); err != nil {
		return nil, fmt.Errorf("pseudonym secret: %w", err)
	}
	sigPath := s.path(auth.SigningKeyFile)
	if _, err := os.Stat(sigPath); err != nil {
		return nil, fmt.Errorf("access-token key: %w", err)
	}
	if k.sign, err = auth.LoadOrCreateSigningKey(sigPath); err != nil { // it exists: this only loads
		return nil, fmt.Errorf("access-token key: %w", err)
	}
	if seed, err := readSecret(s.path(challengeKeyFile), ed25519.SeedSize); err == nil {
		k.challenge = ed25519.NewKeyFromSeed(seed)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("challenge key: %w", err)
	}
	if cfg.DevIdP {
		p := s.path(auth.DevIdPKeyFile)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("development IdP key: %w", err)
		}
		if k.devIdP, err = auth.LoadOrCreateDevIdP(p); err != nil { // it exists: this only loads
			return nil, fmt.Errorf("development IdP key: %w", err)
		}
	}
	return &k, nil
}

// commit links the keys this start made into place (never replacing a
// file: a key another process installed meanwhile wins, and this start
// fails), makes the links durable and says what it created.
func (s *startupKeys) commit() error {
	if s.committed || s.tmp == "" {
		s.committed = true
		return nil
	}
	type link struct{ from, to string }
	var links []link
	err := filepath.WalkDir(s.tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(s.tmp, p)
		if err != nil {
			return err
		}
		links = append(links, link{p, filepath.Join(s.dataDir, rel)})
		return nil
	})
	if err != nil {
		return fmt.Errorf("install keys: %w", err)
	}
	dirs := map[string]bool{}
	for _, l := range links {
		dir := filepath.Dir(l.to)
		if err := s.mkdir(dir); err != nil {
			return err
		}
		dirs[dir] = true
		if strings.HasSuffix(l.to, ledger.VerifierKeySuffix) {
			_ = os.Remove(l.to) // a verifier key file left from an earlier key
		}
		if err := os.Link(l.from, l.to); err != nil {
			return fmt.Errorf("install key: %w", err)
		}
		s.installed = append(s.installed, l.to)
	}
	for dir := range dirs {
		if err := syncDir(dir); err != nil {
			return err
		}
	}
	s.committed = true
	_ = os.RemoveAll(s.tmp)
	s.tmp = ""
	for _, k := range s.generated {
		fmt.Fprintln(s.progress, "created", k.name, filepath.Join(s.dataDir, k.rel))
	}
	return nil
}

// rollback undoes what this start did: the generated keys (in the
// temporary directory or linked into place), the key-set records it
// added, and, for a new database, every table the start created; then the
// directories it created, if empty. Call it before the database closes,
// after everything else that wrote to it has closed.
func (s *startupKeys) rollback(ctx context.Context) error {
	if s == nil {
		return nil
	}
	var errs []error
	if s.tmp != "" {
		errs = append(errs, os.RemoveAll(s.tmp))
		s.tmp = ""
	}
	for i := len(s.installed) - 1; i >= 0; i-- {
		if err := os.Remove(s.installed[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	s.installed = nil
	if s.newDB {
		tables, err := database.Tables(ctx, s.db)
		if err == nil {
			var drop []string
			for _, t := range tables {
				if !slices.Contains(s.before, t) {
					drop = append(drop, t)
				}
			}
			err = database.DropTables(ctx, s.db, drop)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("undo the new database: %w", err))
		}
		s.newDB = false
	}
	if s.added != nil {
		errs = append(errs, database.RemoveKeys(ctx, s.db, s.added))
		s.added = nil
	}
	for i := len(s.madeDirs) - 1; i >= 0; i-- {
		_ = os.Remove(s.madeDirs[i]) // only if empty: something else may live there now
	}
	s.madeDirs = nil
	return errors.Join(errs...)
}

// mkdir creates dir and its missing parents (0700), remembering which it
// created.
func (s *startupKeys) mkdir(dir string) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", missing[i], err)
		}
		s.madeDirs = append(s.madeDirs, missing[i])
	}
	return nil
}

// dbDisplayName names a database in messages without its password.
func dbDisplayName(dsn string) string {
	if database.DialectOf(dsn) == database.Postgres {
		if i := strings.LastIndex(dsn, "@"); i >= 0 {
			if j := strings.Index(dsn, "://"); j >= 0 && j < i {
				return dsn[:j+3] + "…" + dsn[i:]
			}
		}
		return dsn
	}
	return dsn
}

// syncDir makes new directory entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// fileUndo removes, after a failed start, the SQLite database file and
// the directories that the start created: the state before it is
// recorded by newFileUndo, before the database is opened.
type fileUndo struct {
	dbFile string   // the SQLite file, if it did not exist ("")
	dirs   []string // directories that did not exist, innermost first
}

func newFileUndo(cfg serveConfig) *fileUndo {
	u := &fileUndo{}
	if f := database.SQLiteFile(cfg.DB); f != "" {
		if _, err := os.Lstat(f); errors.Is(err, fs.ErrNotExist) {
			u.dbFile = f
		}
		for d := filepath.Dir(f); d != "." && d != filepath.Dir(d); d = filepath.Dir(d) {
			if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) {
				break
			}
			u.dirs = append(u.dirs, d)
		}
	}
	if _, err := os.Lstat(cfg.DataDir); errors.Is(err, fs.ErrNotExist) && !slices.Contains(u.dirs, cfg.DataDir) {
		u.dirs = append(u.dirs, cfg.DataDir)
	}
	return u
}

// run removes what newFileUndo found missing; directories only if they
// are empty. Call it once the database is closed.
func (u *fileUndo) run() {
	if u.dbFile != "" {
		for _, p := range []string{u.dbFile, u.dbFile + "-wal", u.dbFile + "-shm", u.dbFile + "-journal"} {
			_ = os.Remove(p)
		}
	}
	for _, d := range u.dirs {
		_ = os.Remove(d)
	}
}
