package records_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
	"github.com/healthgw/healthgw/records"
	"github.com/healthgw/healthgw/records/recordstore"
)

// memLog is the shared in-memory log (ledgertest.MemLog: set Fail to
// fail appends). Its first entries register the test holders (the
// ledger refuses records of unregistered orgs); Entries returns the
// entries after them, decoded, and At the entry at an index.
type memLog struct {
	ledgertest.MemLog
	base uint64 // the registrations
}

// testHolders are the orgs the test log registers.
var testHolders = []string{"hosp-a", "hosp-b"}

func newMemLog(t testing.TB) *memLog {
	t.Helper()
	l := &memLog{}
	for _, org := range testHolders {
		e, err := ledger.NewEntry("gateway", &ledger.OrgRegistered{ID: org, Name: org, Kind: "hospital"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(t.Context(), e); err != nil {
			t.Fatal(err)
		}
	}
	l.base = uint64(len(testHolders))
	return l
}

func (l *memLog) Entries() []ledger.Entry {
	es, err := l.Decoded()
	if err != nil {
		panic(err)
	}
	return es[l.base:]
}

// At returns the entry at index.
func (l *memLog) At(index uint64) ledger.Entry {
	es, err := l.Read(context.Background(), index, index+1)
	if err != nil {
		panic(err)
	}
	return es[0]
}

// clock is a test clock with microsecond steps (the precision both
// databases keep).
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Second)
	return c.now
}

var testPseudonymKey = bytes.Repeat([]byte{7}, ledger.PseudonymKeySize)

type fixture struct {
	db    *gorm.DB
	store *recordstore.Store
	keys  *records.Keystore
	log   *memLog
	pseud *ledger.Pseudonymizer
	clock *clock
	vault *records.Vault
}

func newFixture(t *testing.T, db *gorm.DB, opts records.Options) *fixture {
	t.Helper()
	store, err := recordstore.New(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	pseud, err := ledger.NewPseudonymizer(testPseudonymKey)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		db:    db,
		store: store,
		keys:  records.NewKeystore(records.KeystoreConfig{Dir: t.TempDir(), AutoCreate: true}),
		log:   newMemLog(t),
		pseud: pseud,
		clock: &clock{now: time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)},
	}
	if opts.Now == nil {
		opts.Now = f.clock.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	f.vault = records.NewVault(store, f.keys, f.log, pseud, opts)
	return f
}

func (f *fixture) put(t *testing.T, r records.PutRequest) records.Record {
	t.Helper()
	rec, err := f.vault.Put(t.Context(), r)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return rec
}

func (f *fixture) count(t *testing.T) int64 {
	t.Helper()
	var n int64
	if err := f.db.Table("records").Where("id <> ?", recordstore.DecoyID).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *fixture) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if err := f.db.Exec(sql, args...).Error; err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func observation(value string) records.PutRequest {
	return records.PutRequest{
		Holder:      "hosp-a",
		Patient:     "patient-123",
		Category:    records.CategoryLabs,
		ContentType: records.FHIRContentType,
		Content:     []byte(`{"resourceType":"Observation","status":"final","code":{"text":"HbA1c"},"valueQuantity":{"value":` + value + `,"unit":"%"}}`),
	}
}

// rawDump returns the database's raw bytes as an attacker who stole it
// would see them: for SQLite the database file and its write-ahead log;
// for PostgreSQL every row of the records table rendered as text (bytea
// as hex).
func rawDump(t *testing.T, db *gorm.DB) []byte {
	t.Helper()
	if database.DialectFor(db) == database.SQLite {
		var files []struct {
			Seq  int
			Name string
			File string
		}
		if err := db.Raw("PRAGMA database_list").Scan(&files).Error; err != nil {
			t.Fatal(err)
		}
		var out []byte
		for _, f := range files {
			if f.File == "" {
				continue
			}
			for _, p := range []string{f.File, f.File + "-wal"} {
				b, err := os.ReadFile(p)
				if err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				out = append(out, b...)
			}
		}
		if len(out) == 0 {
			t.Fatal("no SQLite file to scan")
		}
		return out
	}
	var rows []string
	if err := db.Raw("SELECT row_to_json(r)::text FROM records r").Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	return []byte(strings.Join(rows, "\n"))
}

// containsAny reports whether dump holds needle as raw bytes or as hex.
func containsAny(dump, needle []byte) bool {
	return bytes.Contains(dump, needle) ||
		bytes.Contains(bytes.ToLower(dump), []byte(hex.EncodeToString(needle)))
}
