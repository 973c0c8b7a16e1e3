package comet_test

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/comet"
	"github.com/healthgw/healthgw/ledger/comet/comettest"
)

// BenchmarkCometVsKVStore runs healthgw's comet backend and CometBFT's
// own kvstore example application side by side in one process: four
// validators each, the same CometBFT configuration (comettest's, with
// 100 ms timeout_commit; the same mempool and block settings from the
// same comet.InitHomes homes), the same number of concurrent submitters
// spread over the four nodes, and transactions of the same size. Every
// submission counts only once it is committed on the node it was
// submitted to (comet.Log.AppendEnvelope; for the kvstore,
// broadcast_tx_sync and a wait on that node's committed blocks). Rounds
// alternate healthgw, kvstore, healthgw, …, so that the machine's load
// falls on both alike, and the result is the median ratio of the
// healthgw round to the kvstore round after it, with the smallest and
// largest:
//
//	PEER comet-vs-kvstore-<N>submitters <healthgw>/s <kvstore>/s ratio <median> [<min>, <max>]
//
// (the rates are each network's median). BENCH_ROUNDS (default 3),
// BENCH_SECONDS (default 10) and BENCH_SUBMITTERS (default "64,256")
// set the rounds, their length and the submitter counts. Run it with
// `make bench-peers-comet`. The healthgw envelopes (consent grants,
// sealed to one key) are made before each round, so the round measures
// the backend: signing the transaction, CheckTx, consensus, the
// application and the commit.
func BenchmarkCometVsKVStore(b *testing.B) {
	rounds := envInt(b, "BENCH_ROUNDS", 3)
	seconds := envInt(b, "BENCH_SECONDS", 10)
	var counts []int
	for _, f := range strings.Split(cmp.Or(os.Getenv("BENCH_SUBMITTERS"), "64,256"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("BENCH_SUBMITTERS: %q is not a positive number", f)
		}
		counts = append(counts, n)
	}
	length := time.Duration(seconds) * time.Second
	opts := comettest.Options{TimeoutCommit: 100 * time.Millisecond, AppendTimeout: 2 * time.Minute}
	hg := comettest.NewNetwork(b, 4, opts)
	kv := comettest.NewKVStoreNetwork(b, 4, opts)
	gws := make([]comet.TestGateway, hg.Len())
	for i := range gws {
		gws[i] = comet.GatewayOfHome(b, hg.Node(i).Home)
	}
	sample, _, err := comet.SignTx(comettest.ChainID, gws[0].ID, gws[0].Key, comet.ConsentEnvelope(b, gws[0], "sample"))
	if err != nil {
		b.Fatal(err)
	}
	txSize := len(sample)
	b.Logf("transaction size %d bytes, %d rounds of %v", txSize, rounds, length)

	// Warm up: the first block of each network needs every peer
	// connected; one commit through every node.
	for i := range hg.Len() {
		if _, err := hg.Log(i).AppendEnvelope(b.Context(), comet.ConsentEnvelope(b, gws[i], fmt.Sprintf("warm-%d", i))); err != nil {
			b.Fatal(err)
		}
		if err := kv.Submit(b.Context(), i, kvTx(fmt.Sprintf("warm-%d", i), txSize)); err != nil {
			b.Fatal(err)
		}
	}

	var envSeq atomic.Int64
	// The envelopes a round may use, made before it: enough for
	// 1,500 commits a second (above what either network reaches on two
	// cores), and grown to twice what a round used. An envelope made
	// during the round (sealing it to every gateway and signing it)
	// costs the submitter more CPU than the backend spends on it, and
	// was counted against healthgw: with the former 400 a second, the
	// first 256-submitter round made up to half of its envelopes
	// inline. Such envelopes are counted, and logged.
	pool := 1500 * seconds
	for _, n := range counts {
		b.Run(fmt.Sprintf("submitters=%d", n), func(b *testing.B) {
			var ratios, hgRates, kvRates []float64
			for r := range rounds {
				envs := makeEnvelopes(b, gws, &envSeq, pool)
				next := make([]atomic.Int64, hg.Len())
				var inline atomic.Int64
				h0 := hg.Log(0).Status().Height
				hgr := runRound(b, n, length, func(ctx context.Context, w int) error {
					node := w % hg.Len()
					var env ledger.Envelope
					if k := next[node].Add(1) - 1; k < int64(len(envs[node])) {
						env = envs[node][k]
					} else {
						inline.Add(1)
						env = comet.ConsentEnvelope(b, gws[node], fmt.Sprintf("bench-%d", envSeq.Add(1)))
					}
					_, err := hg.Log(node).AppendEnvelope(ctx, env)
					return err
				})
				hgBlocks := hg.Log(0).Status().Height - h0
				var used int64
				for i := range next {
					used += next[i].Load()
				}
				if used*2 > int64(pool) {
					pool = int(used * 2)
				}
				var kvSeq atomic.Int64
				k0 := kv.Height(0)
				kvr := runRound(b, n, length, func(ctx context.Context, w int) error {
					return kv.Submit(ctx, w%kv.Len(), kvTx(fmt.Sprintf("r%d-%d-%d", r, n, kvSeq.Add(1)), txSize))
				})
				kvBlocks := kv.Height(0) - k0
				if hgr.failed > 0 || kvr.failed > 0 {
					b.Fatalf("round %d: %d healthgw and %d kvstore submissions failed (first: %v; %v)", r+1, hgr.failed, kvr.failed, hgr.firstErr, kvr.firstErr)
				}
				ratio := hgr.rate / kvr.rate
				b.Logf("round %d: healthgw %.0f/s (p50 %v, p99 %v, %d blocks, %v CPU per tx, %d envelopes made during the round), kvstore %.0f/s (p50 %v, p99 %v, %d blocks, %v CPU per tx): ratio %.2f",
					r+1, hgr.rate, hgr.p50, hgr.p99, hgBlocks, hgr.cpuPerTx(), inline.Load(), kvr.rate, kvr.p50, kvr.p99, kvBlocks, kvr.cpuPerTx(), ratio)
				ratios = append(ratios, ratio)
				hgRates = append(hgRates, hgr.rate)
				kvRates = append(kvRates, kvr.rate)
			}
			med := median(ratios)
			b.ReportMetric(med, "ratio")
			b.ReportMetric(median(hgRates), "healthgw-tx/s")
			b.ReportMetric(median(kvRates), "kvstore-tx/s")
			fmt.Printf("PEER comet-vs-kvstore-%dsubmitters %.0f/s %.0f/s ratio %.2f [%.2f, %.2f]\n",
				n, median(hgRates), median(kvRates), med, slices.Min(ratios), slices.Max(ratios))
		})
	}
}

// makeEnvelopes returns per node count/len(gws) fresh consent envelopes
// authored by its gateway, made in parallel.
func makeEnvelopes(b *testing.B, gws []comet.TestGateway, seq *atomic.Int64, count int) [][]ledger.Envelope {
	b.Helper()
	out := make([][]ledger.Envelope, len(gws))
	var wg sync.WaitGroup
	for i := range gws {
		out[i] = make([]ledger.Envelope, count/len(gws)+1)
		wg.Go(func() {
			for k := range out[i] {
				out[i][k] = comet.ConsentEnvelope(b, gws[i], fmt.Sprintf("bench-%d", seq.Add(1)))
			}
		})
	}
	wg.Wait()
	return out
}

// kvTx returns the kvstore transaction "<key>=xxx…" of size bytes.
func kvTx(key string, size int) []byte {
	tx := []byte(key + "=")
	for len(tx) < size {
		tx = append(tx, 'x')
	}
	return tx
}

// roundResult is one network's round.
type roundResult struct {
	committed int64
	rate      float64
	p50, p99  time.Duration
	failed    int64
	firstErr  error
	// cpu is the CPU time (user and system) the whole process used
	// during the round, the submitters' included.
	cpu time.Duration
}

// cpuPerTx is r's CPU time per committed transaction.
func (r roundResult) cpuPerTx() time.Duration {
	if r.committed == 0 {
		return 0
	}
	return (r.cpu / time.Duration(r.committed)).Round(time.Microsecond)
}

// runRound runs n submitters for d, each submitting (and waiting for its
// commit) one after the other; a submission counts if it was committed
// within d. It returns once every submission in flight at the end has
// returned.
func runRound(b *testing.B, n int, d time.Duration, submit func(ctx context.Context, w int) error) roundResult {
	b.Helper()
	ctx := b.Context()
	var (
		mu  sync.Mutex
		lat []time.Duration
		res roundResult
		wg  sync.WaitGroup
	)
	cpu0 := cpuTime(b)
	start := time.Now()
	end := start.Add(d)
	for w := range n {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(end) {
				t0 := time.Now()
				err := submit(ctx, w)
				t1 := time.Now()
				if err != nil {
					mu.Lock()
					res.failed++
					if res.firstErr == nil {
						res.firstErr = err
					}
					mu.Unlock()
					return
				}
				if t1.Before(end) {
					mine = append(mine, t1.Sub(t0))
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	res.cpu = cpuTime(b) - cpu0
	res.committed = int64(len(lat))
	res.rate = float64(len(lat)) / d.Seconds()
	if len(lat) > 0 {
		slices.Sort(lat)
		res.p50 = lat[len(lat)/2].Round(time.Millisecond)
		res.p99 = lat[len(lat)*99/100].Round(time.Millisecond)
	}
	return res
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func envInt(b *testing.B, name string, def int) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
