package main

import (
	"context"
	"crypto/ecdh"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/gormlog"
	"github.com/healthgw/healthgw/ledger/verify"
)

// exitVerifyFailed is the exit status of a verification that found the
// log tampered with (as opposed to 1: the check could not be done).
const exitVerifyFailed = 2

// ledgerHTTPTimeout bounds one HTTP request of the regulator tools.
const ledgerHTTPTimeout = time.Minute

func cmdLedger(ctx context.Context, e *env, args []string) error {
	return dispatch(ctx, e, "healthgw ledger", []command{
		{"verify", "verify the whole ledger over HTTP (--url, with a regulator's --token: every body) or in a database (--db, with --data: every body)", cmdLedgerVerify},
		{"checkpoint", "print the latest signed checkpoint (--url or --db)", cmdLedgerCheckpoint},
		{"keygen", "generate a checkpoint signing key and its verifier key", cmdLedgerKeygen},
	}, args)
}

// tilesURL returns the tlog-tiles root of a gateway at base.
func tilesURL(base string) string {
	return strings.TrimSuffix(base, "/") + "/ledger/"
}

func cmdLedgerVerify(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "ledger verify")
	url := fs.String("url", "", "gateway base URL; the log is read from URL/ledger/ (tlog-tiles)")
	dsn := fs.String("db", "", "verify a database directly instead (SQLite path or postgres:// URL)")
	trusted := fs.String("trusted", "", "file holding a signed checkpoint you already trust")
	key := fs.String("key", "", "the gateway's checkpoint verifier key: a file, or the key text itself (required with --url)")
	origin := fs.String("origin", "", "expected checkpoint origin line (default: the trusted checkpoint's, else any)")
	token := fs.String("token", "", "with --url: a regulator's access token (a file, or the token itself): check every entry's body through the API too")
	data := fs.String("data", "", "with --db: the gateway's data directory, whose keys/seal.key and keys/pseudonym.key open and check every body")
	sealKey := fs.String("seal-key", "", "with --db: the sealing key file (default: DATA/"+sealKeyFile+")")
	pseudonymKey := fs.String("pseudonym-key", "", "with --db: the pseudonym secret file (default: DATA/"+pseudonymKeyFile+")")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	var witnesses listFlag
	fs.Var(&witnesses, "witness", "a witness's cosignature verifier key (file or key text); repeatable")
	threshold := fs.Int("witness-threshold", -1, "valid witness cosignatures the latest checkpoint must carry (default: every --witness)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	var o verify.Options
	o.Origin = *origin
	for _, w := range witnesses {
		v, err := loadWitnessVerifier(w)
		if err != nil {
			return err
		}
		o.Witnesses = append(o.Witnesses, v)
	}
	o.WitnessThreshold = *threshold
	if *threshold < 0 {
		o.WitnessThreshold = len(o.Witnesses)
	}
	if o.WitnessThreshold > len(o.Witnesses) {
		return fmt.Errorf("ledger verify: --witness-threshold %d exceeds the %d --witness keys given", o.WitnessThreshold, len(o.Witnesses))
	}
	if *key != "" {
		v, err := loadVerifier(*key)
		if err != nil {
			return err
		}
		o.Verifier = v
	}
	if *trusted != "" {
		b, err := os.ReadFile(*trusted)
		if err != nil {
			return fmt.Errorf("trusted checkpoint: %w", err)
		}
		o.Trusted = b
	}
	if !*quiet {
		o.Progress = progress(e.stderr)
	}
	start := time.Now()
	var res *verify.Result
	var err error
	switch {
	case *url != "":
		if o.Verifier == nil {
			return errors.New("ledger verify: --key is required with --url")
		}
		if *data != "" || *sealKey != "" || *pseudonymKey != "" {
			return errors.New("ledger verify: --data, --seal-key and --pseudonym-key go with --db; over --url a regulator's --token reads the bodies")
		}
		client := &http.Client{Timeout: ledgerHTTPTimeout}
		if *token != "" {
			tok, err := loadToken(*token)
			if err != nil {
				return err
			}
			o.Envelopes = true
			o.Bodies = &verify.APIBodies{Base: strings.TrimSuffix(*url, "/"), Token: tok, Client: client}
		} else {
			fmt.Fprintln(e.stderr, "note: public verification (no --token): the tree, entry kinds and times only; no entry signature or body is checked")
		}
		fmt.Fprintf(e.stderr, "verifying %s\n", tilesURL(*url))
		res, err = verify.Remote(ctx, tilesURL(*url), client, o)
	case *dsn != "":
		if len(o.Witnesses) > 0 {
			return errors.New("ledger verify: --witness needs --url: cosignatures are served with the checkpoint, not stored in the database")
		}
		if *token != "" {
			return errors.New("ledger verify: --token goes with --url")
		}
		if o.Keys, err = loadBodyKeys(*data, *sealKey, *pseudonymKey); err != nil {
			return err
		}
		o.Envelopes = true
		var l *gormlog.Log
		var closeDB func()
		l, closeDB, err = openLedgerDB(ctx, *dsn)
		if err != nil {
			return err
		}
		defer closeDB()
		if o.Verifier == nil {
			fmt.Fprintln(e.stderr, "warning: no --key: NO checkpoint signature is checked; only the tree's internal consistency is, and entry signatures only against the node keys the database itself registers (pass the gateway's checkpoint verifier key with --key)")
		}
		if o.Keys.SealKey == nil {
			fmt.Fprintln(e.stderr, "warning: no --data or --seal-key: sealed bodies are NOT opened or checked; entry headers, signatures and authorship are")
		} else if o.Keys.Pseudonyms == nil {
			fmt.Fprintln(e.stderr, "warning: no pseudonym secret: the patients bodies refer to are NOT checked")
		}
		fmt.Fprintln(e.stderr, "verifying database")
		res, err = verify.Local(ctx, l, o)
	default:
		return errors.New("ledger verify: give --url or --db")
	}
	var f *verify.Failure
	if errors.As(err, &f) {
		return exitError{code: exitVerifyFailed, err: explainKeyError(err, "--key", *key)}
	}
	if err != nil {
		return err
	}
	printResult(e.stdout, res, o.Verifier, time.Since(start))
	return nil
}

// loadToken reads an access token given as a file path or as the token
// itself.
func loadToken(arg string) (string, error) {
	if b, err := os.ReadFile(arg); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("token: %w", err)
	}
	if strings.ContainsAny(arg, "/"+string(os.PathSeparator)) { // tokens are base64url: a path
		return "", fmt.Errorf("token: %s: no such file", arg)
	}
	return arg, nil
}

// loadBodyKeys loads the keys that open and check entry bodies: the
// sealing key and the pseudonym secret, from the given files or the data
// directory. None given: no keys.
func loadBodyKeys(data, sealPath, pseudonymPath string) (verify.Keys, error) {
	if data != "" {
		if sealPath == "" {
			sealPath = filepath.Join(data, sealKeyFile)
		}
		if pseudonymPath == "" {
			pseudonymPath = filepath.Join(data, pseudonymKeyFile)
		}
	}
	var k verify.Keys
	if sealPath != "" {
		b, err := os.ReadFile(sealPath)
		if err != nil {
			return verify.Keys{}, fmt.Errorf("sealing key: %w", err)
		}
		if k.SealKey, err = ecdh.X25519().NewPrivateKey(b); err != nil {
			return verify.Keys{}, fmt.Errorf("sealing key %s: want a %d-byte X25519 key, have %d bytes", sealPath, 32, len(b))
		}
	}
	if pseudonymPath != "" {
		b, err := os.ReadFile(pseudonymPath)
		if err != nil {
			return verify.Keys{}, fmt.Errorf("pseudonym secret: %w", err)
		}
		if k.Pseudonyms, err = ledger.NewPseudonymizer(b); err != nil {
			return verify.Keys{}, fmt.Errorf("pseudonym secret %s: %w", pseudonymPath, err)
		}
	}
	return k, nil
}

func printResult(w io.Writer, r *verify.Result, v note.Verifier, took time.Duration) {
	c := r.Checkpoint
	fmt.Fprintf(w, "ledger OK: %d entries verified in %s\n", r.Entries, took.Round(time.Millisecond))
	fmt.Fprintf(w, "  origin      %s\n", c.Origin)
	fmt.Fprintf(w, "  checkpoint  size %d, root %s\n", c.Size, base64.StdEncoding.EncodeToString(c.Hash[:]))
	if r.Signed {
		fmt.Fprintf(w, "  signed by   %s+%08x\n", v.Name(), v.KeyHash())
	} else {
		fmt.Fprintf(w, "  signatures  NOT checked (no --key)\n")
	}
	if r.Trusted != nil {
		fmt.Fprintf(w, "  consistent  with the trusted checkpoint of size %d\n", r.Trusted.Size)
	}
	if r.Cosigned > 0 {
		fmt.Fprintf(w, "  witnessed   %d valid witness cosignatures\n", r.Cosigned)
	}
	if r.Checkpoints > 0 {
		fmt.Fprintf(w, "  stored      %d checkpoints checked\n", r.Checkpoints)
	}
	if !r.Envelopes {
		fmt.Fprintf(w, "  entries     tree only: NO entry signature or body checked (public verification; a regulator's --token checks them)\n")
	} else {
		fmt.Fprintf(w, "  entries     %d signatures and authorship checked against the registry as of each index\n", r.EntrySignatures)
		if r.Unopened > 0 {
			fmt.Fprintf(w, "  bodies      %d opened and checked; %d sealed bodies NOT checked (no sealing key: --data or --seal-key)\n", r.Opened, r.Unopened)
		} else {
			fmt.Fprintf(w, "  bodies      %d opened and checked against their signed commitments\n", r.Opened)
		}
		if r.Subjects > 0 {
			fmt.Fprintf(w, "  patients    %d checked against the bodies' patient references\n", r.Subjects)
		}
	}
	types := make([]string, 0, len(r.Types))
	for t := range r.Types {
		types = append(types, string(t))
	}
	slices.Sort(types)
	for _, t := range types {
		fmt.Fprintf(w, "  %-20s %d\n", t, r.Types[ledger.Type(t)])
	}
}

// progress prints to w about every 2% (and at the end).
func progress(w io.Writer) func(done, total uint64) {
	last := uint64(0)
	return func(done, total uint64) {
		step := max(total/50, 1)
		if done == total || done-last >= step {
			fmt.Fprintf(w, "  verified %d/%d entries\n", done, total)
			last = done
		}
	}
}

// openLedgerDB opens an existing database read-only as a ledger.
func openLedgerDB(ctx context.Context, dsn string) (*gormlog.Log, func(), error) {
	db, err := database.OpenExisting(ctx, dsn)
	if err != nil {
		return nil, nil, err
	}
	l, err := gormlog.OpenReadOnly(ctx, db, gormlog.Options{})
	if err != nil {
		_ = database.Close(db)
		return nil, nil, err
	}
	return l, func() { _ = database.Close(db) }, nil
}

func cmdLedgerCheckpoint(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "ledger checkpoint")
	url := fs.String("url", "", "gateway base URL (reads URL/ledger/checkpoint)")
	dsn := fs.String("db", "", "read it from a database instead")
	key := fs.String("key", "", "checkpoint verifier key (file or key text): check the signature before printing")
	origin := fs.String("origin", "", "expected origin line (with --key)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	var raw []byte
	switch {
	case *url != "":
		c := &http.Client{Timeout: ledgerHTTPTimeout}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, tilesURL(*url)+"checkpoint", nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return fmt.Errorf("fetch checkpoint: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("fetch checkpoint: HTTP %d", resp.StatusCode)
		}
		if raw, err = io.ReadAll(io.LimitReader(resp.Body, 1<<16)); err != nil {
			return fmt.Errorf("fetch checkpoint: %w", err)
		}
	case *dsn != "":
		l, closeDB, err := openLedgerDB(ctx, *dsn)
		if err != nil {
			return err
		}
		defer closeDB()
		if raw, err = l.Checkpoint(ctx); err != nil {
			return err
		}
	default:
		return errors.New("ledger checkpoint: give --url or --db")
	}
	var c ledger.Checkpoint
	var err error
	if *key != "" {
		v, lerr := loadVerifier(*key)
		if lerr != nil {
			return lerr
		}
		c, err = ledger.OpenCheckpoint(raw, v, *origin)
		if err != nil {
			return exitError{code: exitVerifyFailed, err: explainKeyError(err, "--key", *key)}
		}
	} else if c, err = ledger.ParseCheckpoint(raw); err != nil {
		return err
	}
	if _, err := e.stdout.Write(raw); err != nil {
		return err
	}
	verified := "signature not checked"
	if *key != "" {
		verified = "signature OK"
	}
	fmt.Fprintf(e.stderr, "checkpoint of %q: size %d (%s)\n", c.Origin, c.Size, verified)
	return nil
}

func cmdLedgerKeygen(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "ledger keygen")
	out := fs.String("out", "", "signer key file to create (0600); the verifier key goes to FILE"+ledger.VerifierKeySuffix)
	origin := fs.String("origin", "", "checkpoint origin line, also the key name (e.g. gateway.example.org/ledger)")
	if err := parseFlags(e, fs, args); err != nil {
		return err
	}
	if *out == "" || *origin == "" {
		return errors.New("ledger keygen: --out and --origin are required")
	}
	if _, err := os.Stat(*out); err == nil {
		return fmt.Errorf("ledger keygen: %s exists", *out)
	}
	_, vkey, err := ledger.LoadOrCreateCheckpointKey(*out, *origin)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, vkey)
	fmt.Fprintf(e.stderr, "wrote %s (secret) and %s\n", *out, *out+ledger.VerifierKeySuffix)
	return nil
}

// explainKeyError adds where the expected checkpoint key came from to a
// signature error: the flag and the file (or "key text").
func explainKeyError(err error, flag, arg string) error {
	if !errors.Is(err, ledger.ErrBadSignature) || arg == "" {
		return err
	}
	src := "given as key text"
	if _, serr := os.Stat(arg); serr == nil {
		src = "read from " + arg
	}
	return fmt.Errorf("%w (the expected key is %s %s)", err, flag, src)
}

// loadVerifier reads a checkpoint verifier key given as a file path or as
// the key text itself ("<name>+<hash>+<key>", as printed by serve).
func loadVerifier(arg string) (note.Verifier, error) {
	if _, err := os.Stat(arg); err != nil && strings.Count(arg, "+") >= 2 {
		return ledger.ParseVerifierKey(strings.TrimSpace(arg))
	}
	return ledger.LoadCheckpointVerifier(arg)
}
