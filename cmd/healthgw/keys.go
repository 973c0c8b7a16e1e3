package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/records"
	"github.com/healthgw/healthgw/records/recordstore"
)

// kekDir is where the record vault's key-encryption keys live under the
// data directory: <data>/keys/kek/<org>/v<N>.key.
func kekDir(dataDir string) string { return filepath.Join(dataDir, "keys", "kek") }

// newKeystore returns the record vault's key provider for a data
// directory: key files under kekDir, and HEALTHGW_KEK_<ORG>_V<N> from the
// environment.
func newKeystore(e *env, dataDir string, autoCreate bool) *records.Keystore {
	return records.NewKeystore(records.KeystoreConfig{Dir: kekDir(dataDir), Getenv: e.getenv, AutoCreate: autoCreate})
}

func cmdKeys(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, "healthgw keys", []command{
		{"init", "create an organisation's first key-encryption key (if it has none)", cmdKeysInit},
		{"rotate", "make a new key version current and re-wrap every data key under it (resumable)", cmdKeysRotate},
		{"status", "list an organisation's key versions and how many records each wraps", cmdKeysStatus},
	}, args)
}

// keysFlags are the flags every keys subcommand takes.
type keysFlags struct {
	org, data, db string
	create        bool
}

func (k *keysFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&k.org, "org", "", "organisation ID (required)")
	fs.StringVar(&k.data, "data", "data", "data directory (keys under <data>/keys/kek)")
	fs.StringVar(&k.db, "db", "", "database: a SQLite path or postgres://… (default <data>/healthgw.db)")
	fs.BoolVar(&k.create, "create", false, "keys init: create the key even if --data holds no gateway database yet")
}

func (k *keysFlags) finish() error {
	if k.org == "" {
		return errors.New("--org is required")
	}
	if k.data == "" {
		return errors.New("--data must not be empty")
	}
	if k.db == "" {
		k.db = filepath.Join(k.data, "healthgw.db")
	}
	return nil
}

func cmdKeysInit(ctx context.Context, e *env, args []string) error {
	var k keysFlags
	fs := newFlags(e, "keys init")
	k.register(fs)
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if err := k.finish(); err != nil {
		return fmt.Errorf("keys init: %w", err)
	}
	if !k.create {
		// Keys belong to a gateway's data directory: refuse a mistyped one.
		db, err := database.OpenExisting(ctx, k.db)
		if err != nil {
			return fmt.Errorf("keys init: %w", err)
		}
		_ = database.Close(db)
	}
	kek, err := newKeystore(e, k.data, true).Current(ctx, k.org)
	if err != nil {
		return fmt.Errorf("keys init: %w", err)
	}
	fmt.Fprintf(e.stdout, "%s: key-encryption key v%d is current\n", k.org, kek.Version())
	return nil
}

func cmdKeysRotate(ctx context.Context, e *env, args []string) error {
	var k keysFlags
	fs := newFlags(e, "keys rotate")
	k.register(fs)
	batch := fs.Int("batch", records.DefaultRotateBatch, "data keys re-wrapped per transaction")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if err := k.finish(); err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	if *batch < 1 {
		return errors.New("keys rotate: --batch must be at least 1")
	}
	store, closeDB, err := openRecordStore(ctx, k.db)
	if err != nil {
		return fmt.Errorf("keys rotate: %w", err)
	}
	defer closeDB()
	keys := newKeystore(e, k.data, false)
	res, err := records.Rotate(ctx, store, keys, k.org, records.RotateOptions{
		BatchSize: *batch,
		Progress: func(p records.RotateProgress) {
			fmt.Fprintf(e.stderr, "rotate %s: %d/%d data keys re-wrapped under v%d", p.Org, p.Rewrapped, p.Total, p.To)
			if p.Failed > 0 {
				fmt.Fprintf(e.stderr, " (%d failed)", p.Failed)
			}
			fmt.Fprintln(e.stderr)
		},
	})
	if res.To > 0 {
		how := "resumed: existing"
		if res.Created {
			how = "created"
		}
		fmt.Fprintf(e.stdout, "%s: %s v%d; %d data keys re-wrapped\n", k.org, how, res.To, res.Rewrapped)
		for _, id := range res.Failed {
			fmt.Fprintf(e.stderr, "rotate %s: record %s: data key does not unwrap; left as it is\n", k.org, id)
		}
	}
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("keys rotate: interrupted; run it again to resume: %w", err)
		}
		return fmt.Errorf("keys rotate: %w", err)
	}
	return nil
}

func cmdKeysStatus(ctx context.Context, e *env, args []string) error {
	var k keysFlags
	fs := newFlags(e, "keys status")
	k.register(fs)
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if err := k.finish(); err != nil {
		return fmt.Errorf("keys status: %w", err)
	}
	store, closeDB, err := openRecordStore(ctx, k.db)
	if err != nil {
		return fmt.Errorf("keys status: %w", err)
	}
	defer closeDB()
	keys := newKeystore(e, k.data, false)
	versions, err := keys.Versions(ctx, k.org)
	if err != nil {
		return fmt.Errorf("keys status: %w", err)
	}
	counts, err := store.KeyVersions(ctx, k.org)
	if err != nil {
		return fmt.Errorf("keys status: %w", err)
	}
	all := slices.Clone(versions)
	for v := range counts {
		if !slices.Contains(all, v) {
			all = append(all, v)
		}
	}
	slices.Sort(all)
	if len(all) == 0 {
		fmt.Fprintf(e.stdout, "%s: no key-encryption keys and no records\n", k.org)
		return nil
	}
	current := 0
	if len(versions) > 0 {
		current = versions[len(versions)-1]
	}
	for _, v := range all {
		note := ""
		switch {
		case !slices.Contains(versions, v):
			note = " (KEY MISSING)"
		case v == current:
			note = " (current)"
		}
		fmt.Fprintf(e.stdout, "%s v%d: %d records%s\n", k.org, v, counts[v], note)
	}
	var stale int64
	for v, n := range counts {
		if v != current {
			stale += n
		}
	}
	if stale > 0 {
		fmt.Fprintf(e.stdout, "%s: %d records are not under the current version; run healthgw keys rotate --org %s\n", k.org, stale, k.org)
	}
	return nil
}

// openRecordStore opens the database and the records store on it.
func openRecordStore(ctx context.Context, dsn string) (*recordstore.Store, func(), error) {
	db, err := database.OpenExisting(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	store, err := recordstore.New(ctx, db)
	if err != nil {
		_ = database.Close(db)
		return nil, nil, err
	}
	return store, func() { _ = database.Close(db) }, nil
}
