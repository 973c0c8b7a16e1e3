package consentstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/consent/consentstore"
	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
)

// benchDBs opens a fresh SQLite database, and a throwaway PostgreSQL schema
// when HEALTHGW_TEST_POSTGRES is set (databasetest takes *testing.T only).
func benchDBs(b *testing.B) map[string]*gorm.DB {
	b.Helper()
	ctx := context.Background()
	open := func(dsn string) *gorm.DB {
		db, err := database.Open(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = database.Close(db) })
		return db
	}
	dbs := map[string]*gorm.DB{"sqlite": open(filepath.Join(b.TempDir(), "bench.db"))}
	if base := os.Getenv(databasetest.EnvPostgres); base != "" {
		admin := open(base)
		var r [6]byte
		_, _ = rand.Read(r[:])
		schema := "b_" + hex.EncodeToString(r[:])
		if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
		u, err := url.Parse(base)
		if err != nil {
			b.Fatal(err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		dbs["postgres"] = open(u.String())
	}
	return dbs
}

// loadGrants projects n grants of patients[0] and n/10 of patients[1].
func loadGrants(b *testing.B, s *consentstore.Store, n int) {
	b.Helper()
	ctx := context.Background()
	var entries []ledger.Entry
	next := uint64(0)
	flush := func() {
		if err := s.Apply(ctx, next, entries); err != nil {
			b.Fatal(err)
		}
		next += uint64(len(entries))
		entries = entries[:0]
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range n + n/10 {
		p := patients[0]
		if i >= n {
			p = patients[1]
		}
		g := testGrant(i, p, consent.Grantee{Org: fmt.Sprintf("hospital-%d", i%50)})
		g.Categories = []string{"lab", "imaging"}
		g.NotBefore, g.NotAfter = start, start.AddDate(2, 0, 0)
		e, err := ledger.NewEntry("patient:"+p, g.LedgerBody())
		if err != nil {
			b.Fatal(err)
		}
		e.Time = start.Add(time.Duration(i) * time.Millisecond)
		entries = append(entries, e)
		if len(entries) == 1000 {
			flush()
		}
	}
	flush()
}

// BenchmarkGrantsForPatient loads the 10,000 grants of one patient from the
// projection, and then decides one request on them (the read path).
func BenchmarkGrantsForPatient(b *testing.B) {
	const n = 10000
	for name, db := range benchDBs(b) {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			s, err := consentstore.Open(ctx, db)
			if err != nil {
				b.Fatal(err)
			}
			loadGrants(b, s, n)
			b.Run("load", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					gs, err := s.GrantsForPatient(ctx, patients[0])
					if err != nil || len(gs) != n {
						b.Fatalf("GrantsForPatient: %d grants, %v", len(gs), err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/op")
			})
			req := consent.Request{
				Requester: "hospital-7", RequesterKind: auth.KindHospital, RecordID: "rec-1",
				Patient: patients[0], Category: "lab", Purpose: consent.PurposeTreatment,
			}
			now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
			b.Run("load+decide", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					gs, err := s.GrantsForPatient(ctx, patients[0])
					if err != nil {
						b.Fatal(err)
					}
					if d := consent.Decide(req, gs, now, consent.DefaultPolicy()); !d.Permitted() {
						b.Fatalf("Decide: %+v", d)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/op")
			})
			// The read path as the API should run it: only the grants
			// naming the requester or its kind (here 200 of the 10,000).
			b.Run("grants-for+decide", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					gs, err := s.GrantsFor(ctx, patients[0], req.Requester, req.RequesterKind)
					if err != nil || len(gs) != n/50 {
						b.Fatalf("GrantsFor: %d grants, %v", len(gs), err)
					}
					if d := consent.Decide(req, gs, now, consent.DefaultPolicy()); !d.Permitted() {
						b.Fatalf("Decide: %+v", d)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/op")
			})
		})
	}
}

// accessEntries returns n access.decided entries from index first, about
// the patients in turn.
func accessEntries(b *testing.B, n int) []ledger.Entry {
	b.Helper()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]ledger.Entry, n)
	for i := range out {
		req := consent.Request{Requester: fmt.Sprintf("hospital-%d", i%7), RecordID: fmt.Sprintf("rec-%d", i%1000),
			Patient: patients[i%len(patients)], Category: "labs", Purpose: consent.Purpose("TREAT")}
		body := consent.Decision{Effect: consent.Permit, Reason: consent.ReasonPermitGrant, GrantID: "cns_1"}.LedgerBody(req, fmt.Sprintf("req-%d", i))
		e, err := ledger.NewEntry("hospital-a", body)
		if err != nil {
			b.Fatal(err)
		}
		e.Time = start.Add(time.Duration(i) * time.Millisecond)
		out[i] = e
	}
	return out
}

// BenchmarkApplyAccessEvents measures the projection's catch-up on
// access decisions, in the batches a ledger.Follower applies (1024
// entries a transaction): entries/s.
func BenchmarkApplyAccessEvents(b *testing.B) {
	const batch = 1024
	entries := accessEntries(b, 64*batch)
	for name, db := range benchDBs(b) {
		b.Run(name, func(b *testing.B) {
			s, err := consentstore.Open(context.Background(), db)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			next, err := s.Next(ctx)
			if err != nil {
				b.Fatal(err)
			}
			applied := 0
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				es := entries[(i*batch)%len(entries):][:batch]
				if err := s.Apply(ctx, next, es); err != nil {
					b.Fatal(err)
				}
				next += batch
				applied += batch
			}
			b.ReportMetric(float64(applied)/b.Elapsed().Seconds(), "entries/s")
			// On a shared machine wall time says little: entries per
			// second of this process's CPU (SQLite runs in it; a
			// PostgreSQL server's CPU is not counted).
			b.ReportMetric(float64(applied)/(cpuTime()-cpu0).Seconds(), "entries/cpu-s")
		})
	}
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDecideGrants is the read path's decision on a patient with 0,
// 100 or 1,000 more grants naming the requester, for other records and
// categories (and the one grant that permits): GrantsFor loads them all,
// GrantsMatching only those that can decide.
func BenchmarkDecideGrants(b *testing.B) {
	req := consent.Request{
		Requester: "hospital-b", RequesterKind: auth.KindHospital, RecordID: "rec-1",
		Patient: patients[0], Category: "lab", ResourceType: "Observation", Purpose: consent.PurposeTreatment,
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start.AddDate(0, 6, 0)
	for name, db := range benchDBs(b) {
		for _, extra := range []int{0, 100, 1000} {
			b.Run(fmt.Sprintf("%s/extra=%d", name, extra), func(b *testing.B) {
				ctx := context.Background()
				// A fresh projection per size: the tables of one database.
				if err := db.Migrator().DropTable("consent_grants", "consent_grant_scopes", "consent_access_events", "consent_passkeys", "consent_projection_cursors"); err != nil {
					b.Fatal(err)
				}
				s, err := consentstore.Open(ctx, db)
				if err != nil {
					b.Fatal(err)
				}
				var entries []ledger.Entry
				for i := range extra + 1 {
					g := testGrant(i, patients[0], consent.Grantee{Org: "hospital-b"})
					g.NotBefore, g.NotAfter = start, start.AddDate(2, 0, 0)
					switch {
					case i == extra: // the grant that permits
						g.Categories = []string{"lab"}
					case i%2 == 0:
						g.Categories, g.RecordIDs = []string{"lab"}, []string{fmt.Sprintf("rec-other-%d", i)}
					default:
						g.Categories = []string{"vitals"}
					}
					e, err := ledger.NewEntry("patient:"+patients[0], g.LedgerBody())
					if err != nil {
						b.Fatal(err)
					}
					e.Time = start
					entries = append(entries, e)
				}
				if err := s.Apply(ctx, 0, entries); err != nil {
					b.Fatal(err)
				}
				for _, path := range []struct {
					name string
					load func() ([]consent.Grant, error)
				}{
					{"grants-for", func() ([]consent.Grant, error) {
						return s.GrantsFor(ctx, req.Patient, req.Requester, req.RequesterKind)
					}},
					{"matching", func() ([]consent.Grant, error) { return s.GrantsMatching(ctx, req) }},
				} {
					b.Run(path.name, func(b *testing.B) {
						b.ReportAllocs()
						for b.Loop() {
							gs, err := path.load()
							if err != nil {
								b.Fatal(err)
							}
							if d := consent.Decide(req, gs, now, consent.DefaultPolicy()); !d.Permitted() {
								b.Fatalf("Decide: %+v", d)
							}
						}
					})
				}
			})
		}
	}
}
