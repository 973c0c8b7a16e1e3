package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/consent"
	"github.com/healthgw/healthgw/ledger"
)

// auditBenchEntries is how many access decisions the audit benchmarks
// append: HEALTHGW_BENCH_AUDIT_ENTRIES (1000000 for the issue's
// measure), 50,000 by default.
func auditBenchEntries(b *testing.B) int {
	n := 50_000
	if v := os.Getenv("HEALTHGW_BENCH_AUDIT_ENTRIES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("HEALTHGW_BENCH_AUDIT_ENTRIES=%q", v)
		}
	}
	return n
}

// appendDecisions appends n access.decided entries by org with 256
// appenders, as the read path does.
func appendDecisions(b testing.TB, g *testGateway, org string, n int) {
	b.Helper()
	patient := g.pseud.Pseudonym("pat-1")
	var (
		next atomic.Int64
		wg   sync.WaitGroup
		fail atomic.Pointer[error]
	)
	for range 256 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) || fail.Load() != nil {
					return
				}
				req := consent.Request{Requester: org, RecordID: fmt.Sprintf("rec-%d", i%1000), Patient: patient, Category: "labs", Purpose: consent.Purpose("TREAT")}
				body := consent.Decision{Effect: consent.Permit, Reason: consent.ReasonPermitHolder}.LedgerBody(req, fmt.Sprintf("req-%d", i))
				e, err := ledger.NewEntry(org, body)
				if err == nil {
					_, err = g.ledger.Append(context.Background(), e)
				}
				if err != nil {
					fail.Store(&err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := fail.Load(); err != nil {
		b.Fatalf("append: %v", *err)
	}
}

// BenchmarkAuditCatchUp measures how fast the projections catch up with
// a backlog of access decisions (none applied while they were
// appended): entries/s, to compare with the append rate. Run with
// -benchtime 1x; HEALTHGW_BENCH_AUDIT_ENTRIES sets the backlog.
func BenchmarkAuditCatchUp(b *testing.B) {
	n := auditBenchEntries(b)
	for b.Loop() {
		b.StopTimer()
		g := newTestGateway(b, noRateLimits)
		g.register("hosp-a", auth.KindHospital)
		start := time.Now()
		appendDecisions(b, g, "hosp-a", n)
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "appends/s")
		size := g.size()
		b.StartTimer()
		start = time.Now()
		if err := g.follower.Sync(b.Context(), size); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "applied/s")
	}
}

// BenchmarkAuditFirstQuery measures the first regulator audit query after
// n appends made while the gateway follows its log in the background (as
// serve does): ms until the answer, and whether it was complete (200) or
// "catching up" (503). Run with -benchtime 1x;
// HEALTHGW_BENCH_AUDIT_ENTRIES=1000000 is the measure.
func BenchmarkAuditFirstQuery(b *testing.B) {
	n := auditBenchEntries(b)
	for b.Loop() {
		b.StopTimer()
		g := newTestGateway(b, noRateLimits)
		g.register("hosp-a", auth.KindHospital)
		rtok := g.token(g.register("reg-x", auth.KindRegulator), "")
		ctx, stop := context.WithCancel(b.Context())
		done := make(chan struct{})
		go func() { defer close(done); g.follower.Run(ctx, 0, g.log) }()
		start := time.Now()
		appendDecisions(b, g, "hosp-a", n)
		b.ReportMetric(float64(n)/time.Since(start).Seconds(), "appends/s")
		b.StartTimer()
		start = time.Now()
		status, body := g.do("GET", "/v1/audit/events?limit=20", rtok, nil)
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "first-query-ms")
		b.StopTimer()
		b.ReportMetric(float64(status), "status")
		if status != http.StatusOK && status != http.StatusServiceUnavailable {
			b.Fatalf("audit query: %d %s", status, body)
		}
		stop()
		<-done
		b.StartTimer()
	}
}

// BenchmarkAuditFirstQueryBacklog measures the first regulator audit
// query after n appends that no follower applied (a gateway restarted
// behind its log, or a follower that stalled): the query answers at once
// (503 catching_up when n exceeds --audit-max-lag, without waiting for
// the backlog), then the background follower catches up and the query
// answers in full. Reports the first answer's ms and status, and the ms
// until a complete answer. Run with -benchtime 1x.
func BenchmarkAuditFirstQueryBacklog(b *testing.B) {
	n := auditBenchEntries(b)
	for b.Loop() {
		b.StopTimer()
		g := newTestGateway(b, noRateLimits)
		g.register("hosp-a", auth.KindHospital)
		rtok := g.token(g.register("reg-x", auth.KindRegulator), "")
		appendDecisions(b, g, "hosp-a", n)
		b.StartTimer()
		start := time.Now()
		status, body := g.do("GET", "/v1/audit/events?limit=20", rtok, nil)
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "first-query-ms")
		b.ReportMetric(float64(status), "status")
		if status != http.StatusOK && status != http.StatusServiceUnavailable {
			b.Fatalf("audit query: %d %s", status, body)
		}
		ctx, stop := context.WithCancel(b.Context())
		done := make(chan struct{})
		go func() { defer close(done); g.follower.Run(ctx, 0, g.log) }()
		retry := time.NewTicker(100 * time.Millisecond) // a client honouring Retry-After, faster
		for status != http.StatusOK {
			<-retry.C
			status, body = g.do("GET", "/v1/audit/events?limit=20", rtok, nil)
			if status != http.StatusOK && status != http.StatusServiceUnavailable {
				b.Fatalf("audit query: %d %s", status, body)
			}
		}
		retry.Stop()
		b.ReportMetric(float64(time.Since(start).Milliseconds()), "complete-ms")
		stop()
		<-done
	}
}
