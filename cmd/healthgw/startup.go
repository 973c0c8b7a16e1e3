package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger"
)

// gatewayKeys are the keys a database belongs to: the access-token key,
// the checkpoint key and the pseudonym secret. A database records which
// ones (database.KeySet) when it is created, and a gateway started with
// others refuses to start.
type gatewayKeys struct {
	sign   *auth.SigningKey
	signer note.Signer
	vkey   string // checkpoint verifier key text
	secret []byte // pseudonym secret
}

// keySet is what the database records of k: public values only.
func (k *gatewayKeys) keySet() database.KeySet {
	return database.KeySet{CheckpointKey: k.vkey, AccessTokenKID: k.sign.KeyID(), PseudonymMAC: pseudonymMAC(k.secret)}
}

// pseudonymMAC identifies a pseudonym secret without revealing it: an
// HMAC-SHA256 of a fixed label keyed with the secret.
func pseudonymMAC(secret []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("healthgw key set v1: pseudonym secret"))
	return hex.EncodeToString(m.Sum(nil))
}

// keyFile is one of the bound keys under the data directory.
type keyFile struct {
	name string // for messages: "checkpoint key", …
	rel  string // path under the data directory
}

var boundKeyFiles = []keyFile{
	{"checkpoint key", checkpointKeyFile},
	{"pseudonym secret", pseudonymKeyFile},
	{"access-token key", auth.SigningKeyFile},
}

// KeySetError says which key does not belong to the database, where it is
// expected, and what the database expects; Found is empty for a missing
// key file.
type KeySetError struct {
	Key      string // "checkpoint key", "pseudonym secret", "access-token key"
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

// describe is how a key appears in messages.
func describeKey(name string, ks database.KeySet) string {
	switch name {
	case "checkpoint key":
		return "verifier key " + ks.CheckpointKey
	case "pseudonym secret":
		return "HMAC " + ks.PseudonymMAC[:min(16, len(ks.PseudonymMAC))] + "…"
	default:
		return "key ID " + ks.AccessTokenKID
	}
}

// openKeySet loads the keys in dataDir and checks them against the key set
// the database db (named dsn) belongs to. A database that records no key
// set and holds no data is new: the keys it lacks are generated (when
// create is true) into a temporary directory, moved into place and bound
// to the database in one step; a failure leaves neither keys nor binding
// behind. A database that holds data but records no key set (made before
// key sets were recorded) adopts the keys present, and refuses if any is
// missing. It never writes anything when it refuses.
func openKeySet(ctx context.Context, db *gorm.DB, dsn, dataDir, keyName string, create bool, progress io.Writer) (*gatewayKeys, error) {
	dbName := dbDisplayName(dsn)
	ks, bound, err := database.ReadKeySet(ctx, db)
	if err != nil {
		return nil, err
	}
	var missing []keyFile
	for _, f := range boundKeyFiles {
		if _, err := os.Stat(filepath.Join(dataDir, f.rel)); errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, f)
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if bound {
		if len(missing) > 0 {
			f := missing[0]
			return nil, &KeySetError{Key: f.name, Path: filepath.Join(dataDir, f.rel), Database: dbName, Expected: describeKey(f.name, ks)}
		}
		k, err := loadGatewayKeys(dataDir)
		if err != nil {
			return nil, err
		}
		return k, checkKeySet(ks, k.keySet(), dataDir, dbName)
	}
	if len(missing) == 0 {
		k, err := loadGatewayKeys(dataDir)
		if err != nil {
			return nil, err
		}
		if err := database.BindKeySet(ctx, db, k.keySet()); err != nil {
			return nil, bindError(ctx, db, err, k, dataDir, dbName)
		}
		return k, nil
	}
	hasState, err := database.HasState(ctx, db)
	if err != nil {
		return nil, err
	}
	f := missing[0]
	path := filepath.Join(dataDir, f.rel)
	switch {
	case hasState:
		return nil, &KeySetError{Key: f.name, Path: path, Database: dbName,
			Reason: fmt.Sprintf("missing, and the database %s already holds data: a new key would orphan it; restore the key from backup", dbName)}
	case !create:
		return nil, &KeySetError{Key: f.name, Path: path, Database: dbName, Reason: "missing (a new key set is made only together with a new database)"}
	}
	return createKeySet(ctx, db, dataDir, dbName, keyName, missing, progress)
}

// createKeySet generates the missing keys into a temporary directory under
// dataDir, links them into <data>/keys, and binds the key set to db. Any
// failure removes what this call installed.
func createKeySet(ctx context.Context, db *gorm.DB, dataDir, dbName, keyName string, missing []keyFile, progress io.Writer) (_ *gatewayKeys, err error) {
	keysDir := filepath.Join(dataDir, "keys")
	var made []string // directories and files this call created, in order
	defer func() {
		if err != nil {
			for i := len(made) - 1; i >= 0; i-- {
				_ = os.Remove(made[i])
			}
		}
	}()
	for _, d := range []string{dataDir, keysDir} {
		if _, serr := os.Stat(d); errors.Is(serr, fs.ErrNotExist) {
			if err := os.Mkdir(d, 0o700); err != nil {
				return nil, fmt.Errorf("create %s: %w", d, err)
			}
			made = append(made, d)
		}
	}
	tmp, err := os.MkdirTemp(dataDir, ".keys-new-")
	if err != nil {
		return nil, fmt.Errorf("create keys: %w", err)
	}
	defer os.RemoveAll(tmp)
	var install [][2]string // temporary file → final path
	for _, f := range missing {
		base := filepath.Base(f.rel)
		t := filepath.Join(tmp, base)
		switch f.rel {
		case checkpointKeyFile:
			if _, _, err := ledger.LoadOrCreateCheckpointKey(t, keyName); err != nil {
				return nil, err
			}
			install = append(install, [2]string{t + ledger.VerifierKeySuffix, filepath.Join(dataDir, f.rel) + ledger.VerifierKeySuffix})
		case pseudonymKeyFile:
			if _, _, err := loadOrCreateSecret(t, ledger.PseudonymKeySize); err != nil {
				return nil, err
			}
		case auth.SigningKeyFile:
			if _, err := auth.LoadOrCreateSigningKey(t); err != nil {
				return nil, fmt.Errorf("access-token key: %w", err)
			}
		}
		install = append(install, [2]string{t, filepath.Join(dataDir, f.rel)})
	}
	for _, p := range install {
		if strings.HasSuffix(p[1], ledger.VerifierKeySuffix) {
			_ = os.Remove(p[1]) // a verifier key left from an earlier key
		}
		// Link never replaces: a key another process installed meanwhile wins.
		if err := os.Link(p[0], p[1]); err != nil {
			return nil, fmt.Errorf("install key: %w", err)
		}
		made = append(made, p[1])
	}
	if err := syncDir(keysDir); err != nil {
		return nil, err
	}
	k, err := loadGatewayKeys(dataDir)
	if err != nil {
		return nil, err
	}
	if err := database.BindKeySet(ctx, db, k.keySet()); err != nil {
		return nil, bindError(ctx, db, err, k, dataDir, dbName)
	}
	for _, f := range missing {
		fmt.Fprintln(progress, "created", f.name, filepath.Join(dataDir, f.rel))
	}
	return k, nil
}

// bindError explains a failed BindKeySet: another gateway bound the
// database first (then the keys are checked against its), or the
// database refused the write.
func bindError(ctx context.Context, db *gorm.DB, err error, k *gatewayKeys, dataDir, dbName string) error {
	if errors.Is(err, database.ErrKeySetExists) {
		if ks, ok, rerr := database.ReadKeySet(ctx, db); rerr == nil && ok {
			if cerr := checkKeySet(ks, k.keySet(), dataDir, dbName); cerr != nil {
				return cerr
			}
			return nil
		}
	}
	return fmt.Errorf("record the key set in the database %s: %w", dbName, err)
}

// checkKeySet compares the database's key set with the loaded one, key by
// key.
func checkKeySet(want, got database.KeySet, dataDir, dbName string) error {
	for _, f := range boundKeyFiles {
		var w, g string
		switch f.rel {
		case checkpointKeyFile:
			w, g = want.CheckpointKey, got.CheckpointKey
		case pseudonymKeyFile:
			w, g = want.PseudonymMAC, got.PseudonymMAC
		default:
			w, g = want.AccessTokenKID, got.AccessTokenKID
		}
		if w != g {
			return &KeySetError{Key: f.name, Path: filepath.Join(dataDir, f.rel), Database: dbName,
				Expected: describeKey(f.name, want), Found: describeKey(f.name, got)}
		}
	}
	return nil
}

// loadGatewayKeys reads the bound keys from dataDir; it creates nothing.
func loadGatewayKeys(dataDir string) (*gatewayKeys, error) {
	var k gatewayKeys
	cpPath := filepath.Join(dataDir, checkpointKeyFile)
	b, err := os.ReadFile(cpPath)
	if err != nil {
		return nil, fmt.Errorf("checkpoint key: %w", err)
	}
	skey := strings.TrimSpace(string(b))
	if k.signer, err = note.NewSigner(skey); err != nil {
		return nil, fmt.Errorf("checkpoint key %s: %w: %v", cpPath, ledger.ErrBadKey, err)
	}
	if k.vkey, err = ledger.VerifierKey(skey); err != nil {
		return nil, fmt.Errorf("checkpoint key %s: %w", cpPath, err)
	}
	psPath := filepath.Join(dataDir, pseudonymKeyFile)
	if k.secret, err = os.ReadFile(psPath); err != nil {
		return nil, fmt.Errorf("pseudonym secret: %w", err)
	}
	if len(k.secret) != ledger.PseudonymKeySize {
		return nil, fmt.Errorf("pseudonym secret %s: want %d bytes, have %d", psPath, ledger.PseudonymKeySize, len(k.secret))
	}
	sigPath := auth.SigningKeyPath(dataDir)
	if _, err := os.Stat(sigPath); err != nil {
		return nil, fmt.Errorf("access-token key: %w", err)
	}
	if k.sign, err = auth.LoadOrCreateSigningKey(sigPath); err != nil { // it exists: this only loads
		return nil, fmt.Errorf("access-token key: %w", err)
	}
	return &k, nil
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
