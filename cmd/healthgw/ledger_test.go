package main

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/gormlog"
	"github.com/healthgw/healthgw/ledger/ledgertest"
	"github.com/healthgw/healthgw/ledger/tiles"
	"github.com/healthgw/healthgw/ledger/verify"
)

const ledgerTestOrigin = "healthgw.test/ledger"

// ledgerKeys writes a checkpoint key pair into dir.
type ledgerKeys struct {
	signer   note.Signer
	skeyFile string
	vkeyFile string
}

func newLedgerKeys(t *testing.T) ledgerKeys {
	t.Helper()
	path := filepath.Join(t.TempDir(), "checkpoint.key")
	s, _, err := ledger.LoadOrCreateCheckpointKey(path, ledgerTestOrigin)
	if err != nil {
		t.Fatal(err)
	}
	return ledgerKeys{signer: s, skeyFile: path, vkeyFile: path + ledger.VerifierKeySuffix}
}

// testGatewayKeys writes a gateway's sealing key and pseudonym secret
// into a data directory (as keys/seal.key and keys/pseudonym.key) and
// returns the directory and the gateway identity with a fresh node key.
func testGatewayKeys(t *testing.T) (string, ledger.Identity) {
	t.Helper()
	dir := t.TempDir()
	id := ledgertest.Identity("gw-test")
	if err := os.MkdirAll(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, ledger.PseudonymKeySize)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	var err error
	if id.Pseudonyms, err = ledger.NewPseudonymizer(secret); err != nil {
		t.Fatal(err)
	}
	for path, b := range map[string][]byte{sealKeyFile: id.SealKey.Bytes(), pseudonymKeyFile: secret} {
		if err := os.WriteFile(filepath.Join(dir, path), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir, id
}

// ledgerFixture is a database holding a 600-entry gateway log (entry 0
// registers the gateway, entry 1 org-a) with checkpoints at 1, 300 and
// 600, the 600 checkpoint saved as the trusted one, and the gateway's
// data directory with its sealing key and pseudonym secret.
type ledgerFixture struct {
	dsn     string
	db      *gorm.DB
	keys    ledgerKeys
	data    string
	id      ledger.Identity
	trusted string // file
}

func fillLog(t *testing.T, db *gorm.DB, s note.Signer, id ledger.Identity, first int, sizes ...int) {
	t.Helper()
	st, err := gormlog.Open(t.Context(), db, gormlog.Options{Signer: s, CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	l, err := ledger.OpenNode(t.Context(), st, id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(t.Context(), ledgertest.OrgEntry(ledgertest.Org)); err != nil {
		t.Fatal(err)
	}
	n := 2
	for _, size := range sizes {
		var wg sync.WaitGroup
		for i := n; i < size; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := l.Append(t.Context(), ledgertest.Entry(first+i)); err != nil {
					t.Errorf("append: %v", err)
				}
			}()
		}
		wg.Wait()
		if _, err := st.WaitCheckpoint(t.Context(), uint64(size)); err != nil {
			t.Fatal(err)
		}
		n = size
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func newLedgerFixture(t *testing.T, dsn string) *ledgerFixture {
	t.Helper()
	db, err := database.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = database.Close(db) })
	f := &ledgerFixture{dsn: dsn, db: db, keys: newLedgerKeys(t)}
	f.data, f.id = testGatewayKeys(t)
	fillLog(t, db, f.keys.signer, f.id, 0, 300, 600)
	f.trusted = f.saveCheckpoint(t, 600)
	return f
}

// clone copies f's database into a fresh one (a SQLite file in
// t.TempDir, or a throwaway PostgreSQL schema) and returns a fixture over
// the copy that shares f's keys, data directory and trusted checkpoint:
// filling the 600-entry log is what a fixture costs, so tests that each
// tamper with their own log build it once and copy it.
func (f *ledgerFixture) clone(t *testing.T) *ledgerFixture {
	t.Helper()
	var dsn string
	if database.DialectOf(f.dsn) == database.Postgres {
		dsn = databasetest.PostgresDSN(t)
		from, to := pgSchema(t, f.dsn), pgSchema(t, dsn)
		var tables []string
		if err := f.db.Raw("SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_type = 'BASE TABLE'", from).Scan(&tables).Error; err != nil || len(tables) == 0 {
			t.Fatalf("list tables of %s: %v (%d tables)", from, err, len(tables))
		}
		for _, tbl := range tables {
			src, dst := from+"."+tbl, to+"."+tbl
			f.exec(t, "CREATE TABLE "+dst+" (LIKE "+src+" INCLUDING ALL)")
			f.exec(t, "INSERT INTO "+dst+" SELECT * FROM "+src)
		}
	} else {
		dsn = databasetest.SQLiteDSN(t)
		f.exec(t, "VACUUM INTO ?", dsn) // a consistent copy of the open database
	}
	db, err := database.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = database.Close(db) })
	c := *f
	c.dsn, c.db = dsn, db
	return &c
}

// pgSchema is the schema a databasetest.PostgresDSN selects.
func pgSchema(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	s := u.Query().Get("search_path")
	if s == "" || strings.ContainsAny(s, `,."' `) {
		t.Fatalf("DSN selects no single schema: %q", s)
	}
	return s
}

func (f *ledgerFixture) saveCheckpoint(t *testing.T, size uint64) string {
	t.Helper()
	l, err := gormlog.OpenReadOnly(t.Context(), f.db, gormlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := l.CheckpointAt(t.Context(), size)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "trusted.checkpoint")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// regulatorToken is the token the fixture's regulator API accepts.
const regulatorToken = "regulator-token"

// serve serves the (possibly tampered) database over tlog-tiles and, as
// the gateway's API does for a regulator, each entry's receipt with its
// header and opening (GET /v1/ledger/entries/{i}, read from the database
// and opened with the gateway's sealing key, without the subject).
func (f *ledgerFixture) serve(t *testing.T) string {
	t.Helper()
	l, err := gormlog.OpenReadOnly(t.Context(), f.db, gormlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ledger/", tiles.New(l, tiles.Options{Prefix: "/ledger"}))
	mux.HandleFunc("GET /v1/ledger/entries/{index}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+regulatorToken {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		i, err := strconv.ParseUint(r.PathValue("index"), 10, 64)
		if err != nil {
			http.Error(w, "bad index", http.StatusBadRequest)
			return
		}
		leaves, err := l.Entries(r.Context(), i, i+1)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		envs, err := l.Envelopes(r.Context(), i, i+1)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		opening := envs[0].Clear
		if envs[0].Sealed != nil {
			o, err := ledger.OpenSealed(envs[0].Sealed, f.id.SealKey)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			if opening, err = ledger.EncodeOpening(o.WithoutSubject()); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"index": i, "entry": json.RawMessage(leaves[0]), "header": envs[0].Header, "opening": opening,
		})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func (f *ledgerFixture) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if err := f.db.Exec(sql, args...).Error; err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (f *ledgerFixture) column(t *testing.T, col string, idx int) []byte {
	t.Helper()
	var b [][]byte
	if err := f.db.Raw("SELECT "+col+" FROM ledger_entries WHERE idx = ?", idx).Scan(&b).Error; err != nil || len(b) != 1 {
		t.Fatalf("read %s of %d: %v", col, idx, err)
	}
	return append([]byte{}, b[0]...) // an empty column is not NULL
}

// editHash flips a bit of the stored hash at position level of row idx.
func (f *ledgerFixture) editHash(t *testing.T, idx, level int) {
	t.Helper()
	h := f.column(t, "hashes", idx)
	if len(h) < (level+1)*32 {
		t.Fatalf("row %d holds %d hashes", idx, len(h)/32)
	}
	h = bytes.Clone(h)
	h[level*32+5] ^= 0x40
	f.exec(t, "UPDATE ledger_entries SET hashes = ? WHERE idx = ?", h, idx)
}

// forgeAppend appends env as the next entry, as a forger with write
// access to the database but no node key can: the leaf the store would
// make, the tree hashes recomputed from the stored ones, the head's size.
func (f *ledgerFixture) forgeAppend(t *testing.T, env ledger.Envelope) int {
	t.Helper()
	ro, err := gormlog.OpenReadOnly(t.Context(), f.db, gormlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := ro.Size(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ledger.NewLeafFor(env.Header, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	hs, err := tlog.StoredHashes(int64(n), leaf, ro)
	if err != nil {
		t.Fatal(err)
	}
	var blob []byte
	for _, h := range hs {
		blob = append(blob, h[:]...)
	}
	f.exec(t, "INSERT INTO ledger_entries (idx, data, hashes, env_header, env_sealed, env_clear) VALUES (?,?,?,?,?,?)",
		int64(n), leaf, blob, env.Header, append([]byte{}, env.Sealed...), append([]byte{}, env.Clear...))
	f.exec(t, "UPDATE ledger_head SET size = ?", int64(n+1))
	return int(n)
}

// signCheckpoint stores a checkpoint over the whole stored log signed
// with the gateway's key, as a gateway that signs what it did not check
// would.
func (f *ledgerFixture) signCheckpoint(t *testing.T) {
	t.Helper()
	ro, err := gormlog.OpenReadOnly(t.Context(), f.db, gormlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := ro.Size(t.Context())
	root, err := ledger.TreeHash(t.Context(), ro, n)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ledger.SignCheckpoint(ledger.Checkpoint{Origin: ledgerTestOrigin, Size: n, Hash: root}, f.keys.signer)
	if err != nil {
		t.Fatal(err)
	}
	f.exec(t, "INSERT INTO ledger_checkpoints (size, note, created_at) VALUES (?,?,?)", int64(n), raw, time.Now().UTC())
}

// forged signs e as a forger: with the fixture gateway's ID but another
// node key (or, with gateway set, as another gateway), sealed to the
// fixture gateway's sealing key.
func (f *ledgerFixture) forged(t *testing.T, gateway string, e ledger.Entry) ledger.Envelope {
	t.Helper()
	if gateway == "" {
		gateway = f.id.Gateway
	}
	forger := ledgertest.Identity(gateway)
	forger.Pseudonyms = f.id.Pseudonyms // the patient references are right: only the key is not
	env, err := ledgertest.SignEnvelope(forger, e, f.id.SealKey.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(t.Context(), args, func(string) string { return "" }, &out, &errb)
	return out.String(), errb.String(), err
}

func TestLedgerVerifyClean(t *testing.T) {
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		t.Parallel() // each database its own log, server and files
		f := newLedgerFixture(t, dsn)
		url := f.serve(t)
		tokenFile := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tokenFile, []byte(regulatorToken+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		const (
			public  = "tree only: NO entry signature or body checked"
			signed  = "600 signatures and authorship checked"
			opened  = "bodies      600 opened and checked"
			sealed  = "sealed bodies NOT checked"
			patient = "patients    "
		)
		for _, tc := range []struct {
			args      []string
			want      []string
			notWant   []string
			stderrHas []string
		}{
			{[]string{"--url", url, "--key", f.keys.vkeyFile, "--trusted", f.trusted}, []string{public}, []string{signed}, []string{"public verification"}},
			{[]string{"--url", url, "--key", f.keys.vkeyFile, "--origin", ledgerTestOrigin}, []string{public}, nil, nil},
			{[]string{"--url", url, "--key", f.keys.vkeyFile, "--token", tokenFile}, []string{signed, opened}, []string{public, patient}, nil},
			{[]string{"--url", url, "--key", f.keys.vkeyFile, "--token", regulatorToken, "--trusted", f.trusted}, []string{signed, opened}, nil, nil},
			{[]string{"--db", dsn, "--key", f.keys.vkeyFile, "--trusted", f.trusted}, []string{signed, sealed}, []string{public}, []string{"sealed bodies are NOT opened"}},
			{[]string{"--db", dsn, "--key", f.keys.skeyFile, "--data", f.data}, []string{signed, opened, patient + "598 checked"}, []string{sealed}, nil},
			{[]string{"--db", dsn, "--key", f.keys.vkeyFile, "--seal-key", filepath.Join(f.data, sealKeyFile)}, []string{signed, opened}, []string{patient}, []string{"patients bodies refer to are NOT checked"}},
			{[]string{"--db", dsn}, []string{signed, sealed}, nil, []string{"NO checkpoint signature is checked", "sealed bodies are NOT opened"}},
		} {
			args := tc.args
			stdout, stderr, err := runCLI(t, append([]string{"ledger", "verify"}, args...)...)
			if err != nil {
				t.Fatalf("verify %v: %v\n%s", args, err, stderr)
			}
			if !strings.Contains(stdout, "ledger OK: 600 entries verified") {
				t.Errorf("verify %v: stdout %q", args, stdout)
			}
			if !strings.Contains(stderr, "verified 600/600 entries") {
				t.Errorf("verify %v: no progress on stderr: %q", args, stderr)
			}
			if unsigned := !slices.Contains(args, "--key"); unsigned != strings.Contains(stdout, "signatures  NOT checked") ||
				unsigned != strings.Contains(stderr, "NO checkpoint signature is checked") {
				t.Errorf("verify %v: does not say whether signatures were checked:\n%s\n%s", args, stdout, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("verify %v: stdout lacks %q:\n%s", args, w, stdout)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(stdout, w) {
					t.Errorf("verify %v: stdout says %q:\n%s", args, w, stdout)
				}
			}
			for _, w := range tc.stderrHas {
				if !strings.Contains(stderr, w) {
					t.Errorf("verify %v: stderr lacks %q:\n%s", args, w, stderr)
				}
			}
		}
		// Usage errors: exit status 1, not 2.
		for _, args := range [][]string{
			{"--url", url, "--key", f.keys.vkeyFile, "--data", f.data},
			{"--db", dsn, "--token", regulatorToken},
			{"--url", url, "--key", f.keys.vkeyFile, "--token", "wrong-token"},
			{"--db", dsn, "--data", t.TempDir()},
		} {
			_, _, err := runCLI(t, append([]string{"ledger", "verify", "--quiet"}, args...)...)
			var ex exitError
			if err == nil || (errors.As(err, &ex) && ex.code == exitVerifyFailed) {
				t.Errorf("verify %v: %v, want a could-not-check error (exit 1)", args, err)
			}
		}
		// Checkpoints via the CLI: the printed note is the latest one.
		for _, src := range [][]string{{"--url", url}, {"--db", dsn}} {
			stdout, _, err := runCLI(t, append([]string{"ledger", "checkpoint", "--key", f.keys.vkeyFile}, src...)...)
			if err != nil {
				t.Fatalf("checkpoint %v: %v", src, err)
			}
			want, _ := os.ReadFile(f.trusted)
			if stdout != string(want) {
				t.Errorf("checkpoint %v printed %q, want %q", src, stdout, want)
			}
		}
	})
}

// TestLedgerVerifyTamper edits the stored log in the ways an operator
// could and checks that `healthgw ledger verify` names what is wrong:
// the public verification (--url) what the tree shows, the regulator's
// (--db, and --url with a token) also forged and misattributed entries
// and swapped envelopes, and with the gateway's keys (--data) bodies.
func TestLedgerVerifyTamper(t *testing.T) {
	type want struct {
		kind  verify.Kind
		index int64 // -2: any failure (exit status 2) will do; -3: no failure
	}
	clean := want{"", -3}
	// shift moves rows (all columns) above idx down by one.
	shift := func(t *testing.T, f *ledgerFixture, idx int) {
		f.exec(t, "DELETE FROM ledger_entries WHERE idx = ?", idx)
		f.exec(t, "UPDATE ledger_entries SET idx = -idx WHERE idx > ?", idx)
		f.exec(t, "UPDATE ledger_entries SET idx = -idx - 1 WHERE idx < 0")
	}
	cols := []string{"data", "hashes", "env_header", "env_sealed", "env_clear"}
	swapRows := func(t *testing.T, f *ledgerFixture, i, j int) {
		for _, c := range cols {
			ci, cj := f.column(t, c, i), f.column(t, c, j)
			f.exec(t, "UPDATE ledger_entries SET "+c+" = ? WHERE idx = ?", cj, i)
			f.exec(t, "UPDATE ledger_entries SET "+c+" = ? WHERE idx = ?", ci, j)
		}
	}
	tests := []struct {
		name   string
		tamper func(t *testing.T, f *ledgerFixture)
		// trusted, if set, returns the trusted checkpoint file to use.
		trusted func(t *testing.T, f *ledgerFixture) string
		url, db want
		// token (--url with a regulator's token) and keys (--db with
		// --data): default url and db.
		token, keys *want
	}{
		{
			name: "leaf bytes edited",
			tamper: func(t *testing.T, f *ledgerFixture) {
				data := f.column(t, "data", 17)
				i := bytes.Index(data, []byte(`"seal":"`)) + len(`"seal":"`)
				edited := bytes.Clone(data)
				edited[i] = "10"[min(1, int(edited[i]-'0'))] // another hex digit
				f.exec(t, "UPDATE ledger_entries SET data = ? WHERE idx = ?", edited, 17)
			},
			url: want{verify.KindEntry, 17},
			db:  want{verify.KindHash, 17},
		},
		{
			name:   "leaf hash edited",
			tamper: func(t *testing.T, f *ledgerFixture) { f.editHash(t, 42, 0) },
			url:    want{verify.KindHash, 42},
			db:     want{verify.KindHash, 42},
		},
		{
			// Tree level 8 hashes are what level-1 tiles serve.
			name:   "interior hash edited",
			tamper: func(t *testing.T, f *ledgerFixture) { f.editHash(t, 511, 8) },
			url:    want{verify.KindRoot, 0}, // no tile authenticates
			db:     want{verify.KindHash, 511},
		},
		{
			name: "last entries deleted",
			tamper: func(t *testing.T, f *ledgerFixture) {
				f.exec(t, "DELETE FROM ledger_entries WHERE idx >= ?", 550)
				f.exec(t, "UPDATE ledger_head SET size = ?", 550)
				f.exec(t, "DELETE FROM ledger_checkpoints WHERE size > ?", 550)
			},
			url: want{verify.KindMissing, 300}, // the log now claims 300
			db:  want{verify.KindMissing, 550},
		},
		{
			name: "last entries deleted, checkpoints kept",
			tamper: func(t *testing.T, f *ledgerFixture) {
				f.exec(t, "DELETE FROM ledger_entries WHERE idx >= ?", 550)
			},
			url: want{verify.KindMissing, 550},
			db:  want{verify.KindMissing, 550},
		},
		{
			name: "two leaves swapped",
			tamper: func(t *testing.T, f *ledgerFixture) {
				a, b := f.column(t, "data", 10), f.column(t, "data", 11)
				f.exec(t, "UPDATE ledger_entries SET data = ? WHERE idx = ?", b, 10)
				f.exec(t, "UPDATE ledger_entries SET data = ? WHERE idx = ?", a, 11)
			},
			url: want{verify.KindEntry, 10},
			db:  want{verify.KindHash, 10},
		},
		{
			name: "two leaves swapped with their hashes",
			tamper: func(t *testing.T, f *ledgerFixture) {
				a, b := f.column(t, "data", 20), f.column(t, "data", 21)
				ha, hb := f.column(t, "hashes", 20), f.column(t, "hashes", 21)
				// Row 21's hashes hold the leaf and the parent of 20 and 21.
				hb2 := append(bytes.Clone(ha[:32]), hb[32:]...)
				f.exec(t, "UPDATE ledger_entries SET data = ?, hashes = ? WHERE idx = ?", b, hb[:32], 20)
				f.exec(t, "UPDATE ledger_entries SET data = ?, hashes = ? WHERE idx = ?", a, hb2, 21)
			},
			url: want{verify.KindRoot, 0},
			db:  want{verify.KindEnvelope, 20}, // the leaf no longer seals the row's header
		},
		{
			name:   "middle row deleted, later rows shifted down, head kept",
			tamper: func(t *testing.T, f *ledgerFixture) { shift(t, f, 100) },
			url:    want{"", -2},
			db:     want{verify.KindHash, 100},
		},
		{
			name: "middle row deleted, later rows shifted down, head shrunk",
			tamper: func(t *testing.T, f *ledgerFixture) {
				shift(t, f, 101)
				f.exec(t, "UPDATE ledger_head SET size = ?", 599)
			},
			url: want{"", -2},
			db:  want{verify.KindHash, 101},
		},
		{
			name:   "two whole rows swapped",
			tamper: func(t *testing.T, f *ledgerFixture) { swapRows(t, f, 40, 44) },
			url:    want{"", -2},
			db:     want{verify.KindEntry, 40},
		},
		{
			name: "every checkpoint deleted",
			tamper: func(t *testing.T, f *ledgerFixture) {
				f.exec(t, "DELETE FROM ledger_checkpoints")
			},
			url: want{verify.KindMissing, -1},
			db:  want{verify.KindMissing, -1},
		},
		{
			name:   "trusted checkpoint of another origin signed with the same key",
			tamper: func(t *testing.T, f *ledgerFixture) {},
			trusted: func(t *testing.T, f *ledgerFixture) string {
				l, err := gormlog.OpenReadOnly(t.Context(), f.db, gormlog.Options{})
				if err != nil {
					t.Fatal(err)
				}
				root, err := ledger.TreeHash(t.Context(), l, 300)
				if err != nil {
					t.Fatal(err)
				}
				raw, err := ledger.SignCheckpoint(ledger.Checkpoint{Origin: "other.example/ledger", Size: 300, Hash: root}, f.keys.signer)
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(t.TempDir(), "other.checkpoint")
				if err := os.WriteFile(path, raw, 0o644); err != nil {
					t.Fatal(err)
				}
				return path
			},
			url: want{verify.KindSignature, -1},
			db:  want{verify.KindSignature, -1},
		},
		{
			name: "forged checkpoint",
			tamper: func(t *testing.T, f *ledgerFixture) {
				var notes [][]byte
				f.db.Raw("SELECT note FROM ledger_checkpoints WHERE size = 600").Scan(&notes)
				forged := bytes.Replace(notes[0], []byte("\n600\n"), []byte("\n599\n"), 1)
				f.exec(t, "UPDATE ledger_checkpoints SET note = ? WHERE size = 600", forged)
			},
			url: want{verify.KindSignature, -1},
			db:  want{verify.KindSignature, -1},
		},
		{
			name: "checkpoint signed by another key",
			tamper: func(t *testing.T, f *ledgerFixture) {
				other := newLedgerKeys(t) // same origin, another key
				l, err := gormlog.OpenReadOnly(t.Context(), f.db, gormlog.Options{})
				if err != nil {
					t.Fatal(err)
				}
				root, err := ledger.TreeHash(t.Context(), l, 600)
				if err != nil {
					t.Fatal(err)
				}
				raw, err := ledger.SignCheckpoint(ledger.Checkpoint{Origin: ledgerTestOrigin, Size: 600, Hash: root}, other.signer)
				if err != nil {
					t.Fatal(err)
				}
				f.exec(t, "UPDATE ledger_checkpoints SET note = ? WHERE size = 600", raw)
			},
			url: want{verify.KindSignature, -1},
			db:  want{verify.KindSignature, -1},
		},
		{
			name:   "fork: trusted checkpoint from another history",
			tamper: func(t *testing.T, f *ledgerFixture) {},
			trusted: func(t *testing.T, f *ledgerFixture) string {
				// The same key signed a different log of 300 entries.
				forkDB := databasetest.SQLite(t)
				fillLog(t, forkDB, f.keys.signer, f.id, 1000, 300)
				l, err := gormlog.OpenReadOnly(t.Context(), forkDB, gormlog.Options{})
				if err != nil {
					t.Fatal(err)
				}
				raw, err := l.CheckpointAt(t.Context(), 300)
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(t.TempDir(), "fork.checkpoint")
				if err := os.WriteFile(path, raw, 0o644); err != nil {
					t.Fatal(err)
				}
				return path
			},
			url: want{verify.KindConsistency, -1},
			db:  want{verify.KindConsistency, -1},
		},
		{
			// Beyond the last checkpoint: the public cannot see it, the
			// gateway refuses to start on it (gormlog's tests).
			name: "forged entry appended with recomputed hashes",
			tamper: func(t *testing.T, f *ledgerFixture) {
				f.forgeAppend(t, f.forged(t, "", ledgertest.Entry(1000)))
			},
			url: clean,
			db:  want{verify.KindEntrySignature, 600},
		},
		{
			// As a gateway that signs what it did not check would: the
			// tree is then sound, only the regulator sees the forgery.
			name: "forged entry appended and signed into a checkpoint",
			tamper: func(t *testing.T, f *ledgerFixture) {
				f.forgeAppend(t, f.forged(t, "", ledgertest.Entry(1000)))
				f.signCheckpoint(t)
			},
			url:   clean,
			token: &want{verify.KindEntrySignature, 600},
			db:    want{verify.KindEntrySignature, 600},
		},
		{
			name: "entry for an org by a gateway that is not its home",
			tamper: func(t *testing.T, f *ledgerFixture) {
				f.forgeAppend(t, f.forged(t, "gw-other", ledgertest.Entry(1000))) // org-a's access decision
				f.signCheckpoint(t)
			},
			url:   clean,
			token: &want{verify.KindAuthorship, 600},
			db:    want{verify.KindAuthorship, 600},
		},
		{
			name: "header swapped under an existing leaf",
			tamper: func(t *testing.T, f *ledgerFixture) {
				for _, c := range []string{"env_header", "env_sealed"} {
					a, b := f.column(t, c, 30), f.column(t, c, 31)
					f.exec(t, "UPDATE ledger_entries SET "+c+" = ? WHERE idx = ?", b, 30)
					f.exec(t, "UPDATE ledger_entries SET "+c+" = ? WHERE idx = ?", a, 31)
				}
			},
			url:   clean,
			token: &want{verify.KindEnvelope, 30},
			db:    want{verify.KindEnvelope, 30},
		},
		{
			name: "sealed opening swapped under an existing header",
			tamper: func(t *testing.T, f *ledgerFixture) {
				f.exec(t, "UPDATE ledger_entries SET env_sealed = ? WHERE idx = ?", f.column(t, "env_sealed", 51), 50)
			},
			url:   clean,
			token: &want{verify.KindBody, 50},    // the API opened it: another entry's statement
			db:    want{verify.KindEnvelope, 50}, // bound to another commitment: seen without a key
		},
		{
			name: "opening resealed naming another patient",
			tamper: func(t *testing.T, f *ledgerFixture) {
				sealed, hb := f.column(t, "env_sealed", 70), f.column(t, "env_header", 70)
				o, err := ledger.OpenSealed(sealed, f.id.SealKey)
				if err != nil {
					t.Fatal(err)
				}
				o.Subject = ledgertest.Pseudonym(9)
				h, err := ledger.DecodeHeader(hb)
				if err != nil {
					t.Fatal(err)
				}
				resealed, err := ledger.SealOpening(o, h, []*ecdh.PublicKey{f.id.SealKey.PublicKey()})
				if err != nil {
					t.Fatal(err)
				}
				f.exec(t, "UPDATE ledger_entries SET env_sealed = ? WHERE idx = ?", resealed, 70)
			},
			url:  clean,
			db:   clean, // without the keys the body is not opened
			keys: &want{verify.KindBody, 70},
		},
	}
	// The cases are independent (each its own copy of the log and its
	// own server) and mostly wait on the database: they run in parallel.
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		t.Parallel()
		orig := newLedgerFixture(t, dsn)
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				// A fresh copy of the log (file or schema) per case.
				f := orig.clone(t)
				dsn := f.dsn
				tc.tamper(t, f)
				trusted := f.trusted
				if tc.trusted != nil {
					trusted = tc.trusted(t, f)
				}
				url := f.serve(t)
				token, keys := tc.url, tc.db
				if tc.token != nil {
					token = *tc.token
				}
				if tc.keys != nil {
					keys = *tc.keys
				}
				for _, mode := range []struct {
					name string
					args []string
					want want
				}{
					{"url", []string{"--url", url}, tc.url},
					{"url+token", []string{"--url", url, "--token", regulatorToken}, token},
					{"db", []string{"--db", dsn}, tc.db},
					{"db+keys", []string{"--db", dsn, "--data", f.data}, keys},
				} {
					args := append([]string{"ledger", "verify", "--key", f.keys.vkeyFile, "--trusted", trusted, "--quiet"}, mode.args...)
					stdout, _, err := runCLI(t, args...)
					if mode.want.index == -3 {
						if err != nil {
							t.Errorf("%s: verify = %v, want no failure (this tamper is not visible to it)", mode.name, err)
						}
						continue
					}
					var ex exitError
					if !errors.As(err, &ex) || ex.code != exitVerifyFailed {
						t.Fatalf("%s: verify returned %v (stdout %q), want exit status %d", mode.name, err, stdout, exitVerifyFailed)
					}
					var fl *verify.Failure
					if !errors.As(err, &fl) {
						t.Fatalf("%s: %v is not a *verify.Failure", mode.name, err)
					}
					if mode.want.index != -2 && (fl.Kind != mode.want.kind || fl.Index != mode.want.index) {
						t.Errorf("%s: failure %s at index %d, want %s at %d\n%v", mode.name, fl.Kind, fl.Index, mode.want.kind, mode.want.index, err)
					}
					if fl.Index >= 0 && !strings.Contains(err.Error(), "entry "+strconv.FormatInt(fl.Index, 10)+":") {
						t.Errorf("%s: message does not name the index: %v", mode.name, err)
					}
				}
			})
		}
	})
}

// TestServeRefusesForgedEntry: an entry appended to the gateway's
// database by someone without its node key (hashes and head recomputed,
// so the tree extends the last checkpoint) stops the gateway from
// starting, naming the entry, every time (the refused start signs
// nothing); `ledger verify --db` names it too.
func TestServeRefusesForgedEntry(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	g, err := openTestGatewayCfg(t, dir, "127.0.0.1:18080", nil)
	if err != nil {
		t.Fatal(err)
	}
	gw := g.node.Gateway()
	registerTestOrg(t, g, "hosp-a")
	if err := g.close(); err != nil {
		t.Fatal(err)
	}
	dsn := filepath.Join(dir, "healthgw.db")
	db, err := database.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	f := &ledgerFixture{db: db}
	forger := ledgertest.Identity(gw) // the gateway's ID, another node key
	env, err := ledgertest.SignEnvelope(forger, ledgertest.OrgEntry("hosp-forged"))
	if err != nil {
		t.Fatal(err)
	}
	index := f.forgeAppend(t, env)
	var before int64
	db.Raw("SELECT count(*) FROM ledger_checkpoints").Scan(&before)
	_ = database.Close(db)
	for start := range 2 {
		_, err = openTestGatewayCfg(t, dir, "127.0.0.1:18081", nil)
		var ve *ledger.VerifyError
		if !errors.As(err, &ve) || ve.Index != uint64(index) || !errors.Is(err, ledger.ErrBadEntrySignature) ||
			!strings.Contains(err.Error(), fmt.Sprintf("entry %d:", index)) {
			t.Fatalf("start %d on a forged log: %v, want a refusal naming entry %d (bad signature)", start, err, index)
		}
	}
	db, err = database.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	var after int64
	db.Raw("SELECT count(*) FROM ledger_checkpoints").Scan(&after)
	_ = database.Close(db)
	if after != before {
		t.Errorf("the refused starts signed %d checkpoints", after-before)
	}
	_, _, err = runCLI(t, "ledger", "verify", "--quiet", "--db", dsn, "--key", filepath.Join(dir, checkpointKeyFile), "--data", dir)
	var fl *verify.Failure
	if !errors.As(err, &fl) || fl.Kind != verify.KindEntrySignature || fl.Index != int64(index) {
		t.Errorf("ledger verify --db = %v, want an entry-signature failure at %d", err, index)
	}
}
