package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
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

// ledgerFixture is a database holding a 600-entry log with checkpoints at
// 0, 300 and 600, and the 600 checkpoint saved as the trusted one.
type ledgerFixture struct {
	dsn     string
	db      *gorm.DB
	keys    ledgerKeys
	trusted string // file
}

func fillLog(t *testing.T, db *gorm.DB, s note.Signer, first int, sizes ...int) {
	t.Helper()
	l, err := gormlog.Open(t.Context(), db, gormlog.Options{Signer: s, CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	node, err := ledger.OpenNode(t.Context(), l, ledgertest.Identity("gw-test"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, size := range sizes {
		var wg sync.WaitGroup
		for i := n; i < size; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := node.Append(t.Context(), ledgertest.Entry(first+i)); err != nil {
					t.Errorf("append: %v", err)
				}
			}()
		}
		wg.Wait()
		if _, err := l.WaitCheckpoint(t.Context(), uint64(size)); err != nil {
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
	fillLog(t, db, f.keys.signer, 0, 300, 600)
	f.trusted = f.saveCheckpoint(t, 600)
	return f
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

// serve serves the (possibly tampered) database over tlog-tiles.
func (f *ledgerFixture) serve(t *testing.T) string {
	t.Helper()
	l, err := gormlog.OpenReadOnly(t.Context(), f.db, gormlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ledger/", tiles.New(l, tiles.Options{Prefix: "/ledger"}))
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
	return b[0]
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

func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(t.Context(), args, func(string) string { return "" }, &out, &errb)
	return out.String(), errb.String(), err
}

func TestLedgerVerifyClean(t *testing.T) {
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		f := newLedgerFixture(t, dsn)
		url := f.serve(t)
		for _, args := range [][]string{
			{"--url", url, "--key", f.keys.vkeyFile, "--trusted", f.trusted},
			{"--url", url, "--key", f.keys.vkeyFile, "--origin", ledgerTestOrigin},
			{"--db", dsn, "--key", f.keys.vkeyFile, "--trusted", f.trusted},
			{"--db", dsn, "--key", f.keys.skeyFile},
			{"--db", dsn},
		} {
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
// could and checks that `healthgw ledger verify` names what is wrong.
func TestLedgerVerifyTamper(t *testing.T) {
	type want struct {
		kind  verify.Kind
		index int64 // -2: any failure (exit status 2) will do
	}
	// shift moves rows (data and hashes) above idx down by one.
	shift := func(t *testing.T, f *ledgerFixture, idx int) {
		f.exec(t, "DELETE FROM ledger_entries WHERE idx = ?", idx)
		f.exec(t, "UPDATE ledger_entries SET idx = -idx WHERE idx > ?", idx)
		f.exec(t, "UPDATE ledger_entries SET idx = -idx - 1 WHERE idx < 0")
	}
	swapRows := func(t *testing.T, f *ledgerFixture, i, j int) {
		di, dj := f.column(t, "data", i), f.column(t, "data", j)
		hi, hj := f.column(t, "hashes", i), f.column(t, "hashes", j)
		f.exec(t, "UPDATE ledger_entries SET data = ?, hashes = ? WHERE idx = ?", dj, hj, i)
		f.exec(t, "UPDATE ledger_entries SET data = ?, hashes = ? WHERE idx = ?", di, hi, j)
	}
	tests := []struct {
		name   string
		tamper func(t *testing.T, f *ledgerFixture)
		// trusted, if set, returns the trusted checkpoint file to use.
		trusted func(t *testing.T, f *ledgerFixture) string
		url, db want
	}{
		{
			name: "entry bytes edited",
			tamper: func(t *testing.T, f *ledgerFixture) {
				data := f.column(t, "data", 17)
				edited := bytes.Replace(data, []byte(`"org-`), []byte(`"orh-`), 1)
				if bytes.Equal(edited, data) {
					t.Fatal("nothing to edit")
				}
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
			name: "two entries swapped",
			tamper: func(t *testing.T, f *ledgerFixture) {
				a, b := f.column(t, "data", 10), f.column(t, "data", 11)
				f.exec(t, "UPDATE ledger_entries SET data = ? WHERE idx = ?", b, 10)
				f.exec(t, "UPDATE ledger_entries SET data = ? WHERE idx = ?", a, 11)
			},
			url: want{verify.KindEntry, 10},
			db:  want{verify.KindHash, 10},
		},
		{
			name: "two entries swapped with their hashes",
			tamper: func(t *testing.T, f *ledgerFixture) {
				a, b := f.column(t, "data", 20), f.column(t, "data", 21)
				ha, hb := f.column(t, "hashes", 20), f.column(t, "hashes", 21)
				// Row 21's hashes hold the leaf and the parent of 20 and 21.
				hb2 := append(bytes.Clone(ha[:32]), hb[32:]...)
				f.exec(t, "UPDATE ledger_entries SET data = ?, hashes = ? WHERE idx = ?", b, hb[:32], 20)
				f.exec(t, "UPDATE ledger_entries SET data = ?, hashes = ? WHERE idx = ?", a, hb2, 21)
			},
			url: want{verify.KindRoot, 0},
			db:  want{verify.KindEntry, 20},
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
				fillLog(t, forkDB, f.keys.signer, 1000, 300)
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
	}
	databasetest.EachDSN(t, func(t *testing.T, dsn string) {
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if strings.HasPrefix(dsn, "postgres") {
					// A fresh schema per case.
					dsn = databasetest.PostgresDSN(t)
				} else {
					dsn = databasetest.SQLiteDSN(t)
				}
				f := newLedgerFixture(t, dsn)
				tc.tamper(t, f)
				trusted := f.trusted
				if tc.trusted != nil {
					trusted = tc.trusted(t, f)
				}
				url := f.serve(t)
				for _, mode := range []struct {
					name string
					args []string
					want want
				}{
					{"url", []string{"--url", url}, tc.url},
					{"db", []string{"--db", dsn}, tc.db},
				} {
					args := append([]string{"ledger", "verify", "--key", f.keys.vkeyFile, "--trusted", trusted, "--quiet"}, mode.args...)
					stdout, _, err := runCLI(t, args...)
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
