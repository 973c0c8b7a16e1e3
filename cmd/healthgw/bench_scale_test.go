package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/auth/authtest"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
)

// appendAll appends the entries n(i) for i in [0, count) with 256 appenders
// (the ledger group-commits them) and brings the projections up to date.
func appendAll(b *testing.B, g *testGateway, count int, n func(i int) ledger.Entry) {
	b.Helper()
	ctx := context.Background()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		fail error
	)
	next := make(chan int)
	for range 256 {
		wg.Go(func() {
			for i := range next {
				if _, err := g.ledger.Append(ctx, n(i)); err != nil {
					mu.Lock()
					fail = err
					mu.Unlock()
				}
			}
		})
	}
	for i := range count {
		next <- i
	}
	close(next)
	wg.Wait()
	if fail != nil {
		b.Fatal(fail)
	}
	if err := g.follower.SyncAll(ctx); err != nil {
		b.Fatal(err)
	}
}

// gatedReadSetup is a gateway with hosp-a's lab record of pat-1 and
// pat-1's grant to hosp-b that permits reading it.
type gatedReadSetup struct {
	g       *testGateway
	b       *authtest.Org // hosp-b, the reader
	btok    string
	url     string
	patient string // pat-1's pseudonym
}

func newGatedReadSetup(b *testing.B) *gatedReadSetup {
	g := newTestGateway(b, noRateLimits)
	atok := g.token(g.register("hosp-a", auth.KindHospital), "")
	hospB := g.register("hosp-b", auth.KindHospital)
	btok := g.token(hospB, "")
	rec := g.putRecord(atok, "pat-1", "labs", "application/fhir+json", json.RawMessage(labFHIR))
	if status, body := g.do("POST", "/v1/consents", g.patientToken("pat-1"), map[string]any{
		"grantee": map[string]string{"org": "hosp-b"}, "categories": []string{"labs"}, "purposes": []string{"TREAT"},
	}); status != http.StatusCreated {
		b.Fatalf("grant: %d %s", status, body)
	}
	return &gatedReadSetup{g: g, b: hospB, btok: btok, url: g.url + "/v1/records/" + rec.ID + "?purpose=TREAT", patient: g.pseud.Pseudonym("pat-1")}
}

// run measures the gated read with 64 concurrent clients, with a fresh
// token (building a large ledger outlasts a token's lifetime).
func (s *gatedReadSetup) run(b *testing.B) {
	s.btok = s.g.token(s.b, "")
	c := benchClient()
	benchGet(b, c, s.url, s.btok, http.StatusOK)
	parallelism64(b)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			benchGet(b, c, s.url, s.btok, http.StatusOK)
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reads/s")
}

// otherGrant is the i-th of the extra grants of BenchmarkGatedReadGrants:
// all name the reader, none covers the record read. A third are for other
// records, a third for another category, a third for that category and
// revoked again (what the bench command's consent operations leave).
func otherGrant(patient string, i int) (consent.Grant, bool) {
	start := time.Now().Add(-time.Hour)
	g := consent.Grant{
		ID: consent.NewID(), Patient: patient, Grantee: consent.Grantee{Org: "hosp-b"}, Effect: consent.Permit,
		Actions: []consent.Action{consent.ActionRead}, Purposes: []consent.Purpose{consent.PurposeTreatment},
		NotBefore: start, NotAfter: start.AddDate(1, 0, 0),
	}
	switch i % 3 {
	case 0:
		g.Categories, g.RecordIDs = []string{"labs"}, []string{uuid.NewString()}
	default:
		g.Categories = []string{"vitals"}
	}
	return g, i%3 == 2
}

// BenchmarkGatedReadGrants measures the consent-gated read (as
// BenchmarkConsentGatedRead) when the patient has 0, 100 or 1,000 more
// grants naming the reader, for other records and categories: the read
// decides on the grants that can match, so its cost should not grow with
// them.
func BenchmarkGatedReadGrants(b *testing.B) {
	for _, extra := range []int{0, 100, 1000} {
		b.Run("extra="+strconv.Itoa(extra), func(b *testing.B) {
			s := newGatedReadSetup(b)
			org := "patient:" + s.patient
			var grants, revokes []ledger.Entry
			for i := range extra {
				g, revoke := otherGrant(s.patient, i)
				e, err := ledger.NewEntry(org, g.LedgerBody())
				if err != nil {
					b.Fatal(err)
				}
				grants = append(grants, e)
				if revoke {
					r, err := ledger.NewEntry(org, g.RevocationBody())
					if err != nil {
						b.Fatal(err)
					}
					revokes = append(revokes, r)
				}
			}
			appendAll(b, s.g, len(grants), func(i int) ledger.Entry { return grants[i] })
			appendAll(b, s.g, len(revokes), func(i int) ledger.Entry { return revokes[i] })
			if n, err := s.g.consent.GrantsFor(context.Background(), s.patient, "hosp-b", auth.KindHospital); err != nil || len(n) != extra+1 {
				b.Fatalf("grants naming the reader: %d, %v; want %d", len(n), err, extra+1)
			}
			s.run(b)
		})
	}
}

// runFor measures the gated read with 64 concurrent clients for d, in
// one call of the benchmark function: for a setup too costly to build
// again for each b.N the framework tries (the 1M-entry ledger). Run it
// with -benchtime 1x; the figure is reads/s (ns/op is the window).
func (s *gatedReadSetup) runFor(b *testing.B, d time.Duration) {
	s.btok = s.g.token(s.b, "")
	c := benchClient()
	benchGet(b, c, s.url, s.btok, http.StatusOK)
	var (
		reads atomic.Int64
		fail  atomic.Value
		wg    sync.WaitGroup
	)
	b.ResetTimer()
	cpu0 := processCPU(b)
	start := time.Now()
	deadline := start.Add(d)
	for range 64 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if err := getStatus(c, s.url, s.btok, http.StatusOK); err != nil {
					fail.CompareAndSwap(nil, err)
					return
				}
				reads.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU(b) - cpu0
	b.StopTimer()
	if err, _ := fail.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(reads.Load())/elapsed.Seconds(), "reads/s")
	// CPU per read (gateway and clients: one process) moves less than the
	// rate with the machine's other load.
	b.ReportMetric(float64(cpu.Microseconds())/float64(max(1, reads.Load())), "cpu-µs/read")
}

// processCPU is this process's user and system CPU time so far.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// readWindow is how long BenchmarkGatedReadLedgerSize reads at each size
// (HEALTHGW_BENCH_READ_SECONDS, default 5).
func readWindow(b *testing.B) time.Duration {
	d := 5 * time.Second
	if v := os.Getenv("HEALTHGW_BENCH_READ_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("HEALTHGW_BENCH_READ_SECONDS=%q", v)
		}
		d = time.Duration(n) * time.Second
	}
	return d
}

// BenchmarkGatedReadLedgerSize measures the consent-gated read on a
// ledger of about 1,000 and 1,000,000 entries (access.decided entries of
// other reads, appended through the gateway's node as reads append
// them), reading for a fixed window at each size (runFor). The large
// ledger takes minutes to build (it is built afresh each run, not
// cached): it is skipped in -short. Run it with -benchtime 1x:
//
//	go test -run '^$' -bench BenchmarkGatedReadLedgerSize -benchtime 1x -timeout 120m ./cmd/healthgw/
func BenchmarkGatedReadLedgerSize(b *testing.B) {
	for _, size := range []int{1_000, 1_000_000} {
		b.Run(fmt.Sprintf("entries=%d", size), func(b *testing.B) {
			if size > 10_000 && testing.Short() {
				b.Skip("the 1M-entry ledger is not built in -short")
			}
			s := newGatedReadSetup(b)
			have := int(s.g.size())
			body := &ledger.AccessDecided{Requester: "hosp-b", RecordID: uuid.NewString(), Patient: s.patient,
				Category: "labs", Purpose: string(consent.PurposeTreatment), Decision: string(consent.Deny),
				Reason: string(consent.ReasonDenyNoGrant), RequestID: uuid.NewString()}
			appendAll(b, s.g, max(0, size-have), func(int) ledger.Entry {
				one := *body // each entry its own body: the node may annotate it
				e, err := ledger.NewEntry("hosp-a", &one)
				if err != nil {
					b.Fatal(err)
				}
				return e
			})
			s.runFor(b, readWindow(b))
		})
	}
}
