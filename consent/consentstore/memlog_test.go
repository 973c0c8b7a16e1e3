package consentstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
)

// memLog is the shared in-memory log with this package's helpers. Its
// clock moves one second and a few nanoseconds per entry, so that times
// need their full precision.
type memLog struct {
	*ledgertest.MemLog
	clock time.Time // the time of the last entry
}

// Its entry 0 registers hospital-a, the holder whose gateway decides the
// logged accesses (the ledger refuses entries for unregistered orgs).
func newMemLog(t testing.TB) *memLog {
	l := &memLog{clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l.MemLog = &ledgertest.MemLog{Clock: func() time.Time {
		l.clock = l.clock.Add(time.Second + 7*time.Nanosecond)
		return l.clock
	}}
	l.append(t, "gateway", &ledger.OrgRegistered{ID: "hospital-a", Name: "Hospital A", Kind: "hospital"})
	return l
}

// append appends an entry of org and returns its index.
func (l *memLog) append(t testing.TB, org string, body any) uint64 {
	t.Helper()
	e, err := ledger.NewEntry(org, body)
	if err != nil {
		t.Fatal(err)
	}
	i, err := l.Append(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// timeOf returns the time the log gave entry i.
func (l *memLog) timeOf(t testing.TB, i uint64) time.Time {
	t.Helper()
	es, err := l.Read(context.Background(), i, i+1)
	if err != nil {
		t.Fatal(err)
	}
	return es[0].Time
}
