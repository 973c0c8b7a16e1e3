package metrics

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fakeLedger struct {
	size, cp uint64
	err      error
}

func (f *fakeLedger) Size(context.Context) (uint64, error) { return f.size, f.err }
func (f *fakeLedger) Checkpoint(context.Context) ([]byte, error) {
	return []byte{byte(f.cp)}, f.err
}

func TestLedgerCollector(t *testing.T) {
	l := &fakeLedger{size: 5, cp: 5}
	c := NewLedgerCollector(l, func(b []byte) (uint64, error) { return uint64(b[0]), nil })
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.SetClock(func() time.Time { return now })
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	check := func(want string) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "healthgw_ledger_entries", "healthgw_ledger_checkpoint_size", "healthgw_ledger_checkpoint_age_seconds", "healthgw_ledger_up"); err != nil {
			t.Error(err)
		}
	}
	const head = `# HELP healthgw_ledger_checkpoint_age_seconds Seconds the latest signed checkpoint has been behind the ledger (0 when it covers every entry; scrape resolution).
# TYPE healthgw_ledger_checkpoint_age_seconds gauge
healthgw_ledger_checkpoint_age_seconds %s
# HELP healthgw_ledger_checkpoint_size Tree size of the latest signed checkpoint.
# TYPE healthgw_ledger_checkpoint_size gauge
healthgw_ledger_checkpoint_size %s
# HELP healthgw_ledger_entries Entries in the ledger.
# TYPE healthgw_ledger_entries gauge
healthgw_ledger_entries %s
# HELP healthgw_ledger_up 1 if the ledger answered the last scrape.
# TYPE healthgw_ledger_up gauge
healthgw_ledger_up 1
`
	f := func(age, cp, n string) string { return sprintf(head, age, cp, n) }
	check(f("0", "5", "5"))
	now = now.Add(time.Hour) // idle: still current
	check(f("0", "5", "5"))
	l.size = 7 // behind
	check(f("0", "5", "7"))
	now = now.Add(3 * time.Second)
	check(f("3", "5", "7"))
	l.cp = 7
	check(f("0", "7", "7"))
	l.err = errors.New("down")
	if err := testutil.GatherAndCompare(reg, strings.NewReader("# HELP healthgw_ledger_up 1 if the ledger answered the last scrape.\n# TYPE healthgw_ledger_up gauge\nhealthgw_ledger_up 0\n"), "healthgw_ledger_up"); err != nil {
		t.Error(err)
	}
}

func sprintf(format string, args ...string) string {
	for _, a := range args {
		format = strings.Replace(format, "%s", a, 1)
	}
	return format
}

func TestGatewayCollectors(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := New(reg)
	g.ObserveAppend(2*time.Millisecond, nil)
	g.ObserveAppend(time.Millisecond, errors.New("x"))
	g.Decisions.WithLabelValues("permit", "consent").Inc()
	if n := testutil.CollectAndCount(g.AppendLatency); n != 2 {
		t.Errorf("append latency series %d, want 2", n)
	}
	if v := testutil.ToFloat64(g.Decisions.WithLabelValues("permit", "consent")); v != 1 {
		t.Errorf("decisions %v", v)
	}
}
