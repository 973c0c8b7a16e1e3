package gormlog_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/database/databasetest"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/gormlog"
	"github.com/healthgw/healthgw/ledger/ledgertest"
)

// BenchmarkAppend measures durable appends through a gateway node (each
// entry translated, signed with the node key and sealed, then
// acknowledged only after its group commit) on SQLite with 1, 16 and 256
// concurrent appenders.
func BenchmarkAppend(b *testing.B) {
	for _, appenders := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("sqlite/appenders=%d", appenders), func(b *testing.B) {
			s, _ := testKeys(b)
			db, err := database.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer database.Close(db)
			_, l := openNode(b, db, gormlog.Options{Signer: s}, ledgertest.Identity("gw-bench"))
			defer l.Close()
			e := ledgertest.Entry(0)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for range appenders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if _, err := l.Append(context.Background(), e); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/entry")
		})
	}
}

// BenchmarkAppendSync is a gateway's write path on SQLite: each appender
// appends, then brings a projection up to its entry (Follower.Sync, as a
// handler does before it answers), with 1 and 64 concurrent appenders.
func BenchmarkAppendSync(b *testing.B) {
	for _, appenders := range []int{1, 64} {
		b.Run(fmt.Sprintf("sqlite/appenders=%d", appenders), func(b *testing.B) {
			s, _ := testKeys(b)
			db, err := database.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer database.Close(db)
			_, l := openNode(b, db, gormlog.Options{Signer: s}, ledgertest.Identity("gw-bench"))
			defer l.Close()
			f := ledger.NewFollower(l, &cursorApplier{})
			e := ledgertest.Entry(0)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for range appenders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						idx, err := l.Append(context.Background(), e)
						if err != nil {
							b.Error(err)
							return
						}
						if err := f.Sync(context.Background(), idx+1); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/entry")
		})
	}
}

// cursorApplier is a projection that only keeps its cursor.
type cursorApplier struct {
	mu   sync.Mutex
	next uint64
}

func (c *cursorApplier) Name() string { return "cursor" }

func (c *cursorApplier) Next(context.Context) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next, nil
}

func (c *cursorApplier) Apply(_ context.Context, first uint64, entries []ledger.Entry) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next = first + uint64(len(entries))
	return nil
}

// cpuTime returns the CPU time the process has used (user and system):
// on a shared machine, CPU per entry varies less than entries per second.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAppendPostgres is BenchmarkAppend on PostgreSQL (skipped
// without HEALTHGW_TEST_POSTGRES).
func BenchmarkAppendPostgres(b *testing.B) {
	dsn := os.Getenv(databasetest.EnvPostgres)
	if dsn == "" {
		b.Skip(databasetest.EnvPostgres + " not set")
	}
	for _, appenders := range []int{16, 256} {
		b.Run(fmt.Sprintf("appenders=%d", appenders), func(b *testing.B) {
			s, _ := testKeys(b)
			db, err := database.Open(context.Background(), dsn)
			if err != nil {
				b.Fatal(err)
			}
			defer database.Close(db)
			for _, tbl := range []string{"ledger_entries", "ledger_head", "ledger_checkpoints"} {
				db.Exec("DROP TABLE IF EXISTS " + tbl)
			}
			_, l := openNode(b, db, gormlog.Options{Signer: s}, ledgertest.Identity("gw-bench"))
			defer l.Close()
			e := ledgertest.Entry(0)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start, cpu0 := time.Now(), cpuTime()
			for range appenders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if _, err := l.Append(context.Background(), e); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/entry")
		})
	}
}

// benchEnvelopes returns n distinct signed envelopes of ledgertest's
// entries, to be reused under many leaves (benchmarks of the tree, which
// do not open entries).
func benchEnvelopes(n int) ([]ledger.Envelope, error) {
	id := ledgertest.Identity("gw-bench")
	envs := make([]ledger.Envelope, n)
	for i := range envs {
		var err error
		if envs[i], err = ledgertest.SignEnvelope(id, ledgertest.Entry(i)); err != nil {
			return nil, err
		}
	}
	return envs, nil
}

// benchLeaves returns the leaves and envelopes of entries [lo, hi): the
// envelopes of envs in turn, each under its own leaf time.
func benchLeaves(envs []ledger.Envelope, lo, hi int) ([][]byte, []ledger.Envelope, error) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	leaves := make([][]byte, 0, hi-lo)
	out := make([]ledger.Envelope, 0, hi-lo)
	for i := lo; i < hi; i++ {
		env := envs[i%len(envs)]
		leaf, err := ledger.NewLeafFor(env.Header, t0.Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			return nil, nil, err
		}
		leaves = append(leaves, leaf)
		out = append(out, env)
	}
	return leaves, out, nil
}

// bigLogSize is the size of the log proofs are benchmarked on.
const bigLogSize = 1 << 20

var (
	bigOnce sync.Once
	bigPath string
	bigErr  error
)

// bigLog returns a SQLite file holding a bigLogSize-entry log, built once
// and cached under os.TempDir (the name carries a format version).
func bigLog(b *testing.B) *gormlog.Log {
	bigOnce.Do(func() {
		bigPath = filepath.Join(os.TempDir(), fmt.Sprintf("healthgw-ledger-bench-%d-v2.db", bigLogSize))
		if _, err := os.Stat(bigPath); err == nil {
			return
		} else if !errors.Is(err, fs.ErrNotExist) {
			bigErr = err
			return
		}
		bigErr = buildBigLog(bigPath)
	})
	if bigErr != nil {
		b.Fatal(bigErr)
	}
	db, err := database.Open(context.Background(), bigPath)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { database.Close(db) })
	l, err := gormlog.OpenReadOnly(context.Background(), db, gormlog.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return l
}

func buildBigLog(path string) error {
	ctx := context.Background()
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	defer os.Remove(tmp)
	db, err := database.Open(ctx, tmp)
	if err != nil {
		return err
	}
	skey, _, err := ledger.GenerateCheckpointKey("bench.example/ledger")
	if err != nil {
		return err
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		return err
	}
	l, err := gormlog.Open(ctx, db, gormlog.Options{Signer: s, CheckpointInterval: time.Hour})
	if err != nil {
		return err
	}
	const chunk = 1 << 16
	envs, err := benchEnvelopes(64)
	if err != nil {
		return err
	}
	for lo := 0; lo < bigLogSize; lo += chunk {
		leaves, es, err := benchLeaves(envs, lo, lo+chunk)
		if err != nil {
			return err
		}
		if err := l.BulkLoad(ctx, leaves, es, 8192); err != nil {
			return err
		}
	}
	if err := l.Close(); err != nil { // publishes the checkpoint
		return err
	}
	if err := db.Exec("PRAGMA wal_checkpoint(TRUNCATE)").Error; err != nil {
		return err
	}
	if err := database.Close(db); err != nil {
		return err
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(tmp + suffix)
	}
	return os.Rename(tmp, path)
}

// BenchmarkInclusionProof measures proving a random entry in a 2^20-entry
// log (SQLite), including reading the hashes.
func BenchmarkInclusionProof(b *testing.B) {
	l := bigLog(b)
	ctx := context.Background()
	hr := l.HashReader(ctx)
	rng := rand.New(rand.NewPCG(1, 2))
	b.ResetTimer()
	for b.Loop() {
		if _, err := ledger.InclusionProof(ctx, hr, rng.Uint64N(bigLogSize), bigLogSize); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConsistencyProof measures a consistency proof from a random
// older size to the full 2^20-entry log.
func BenchmarkConsistencyProof(b *testing.B) {
	l := bigLog(b)
	ctx := context.Background()
	hr := l.HashReader(ctx)
	rng := rand.New(rand.NewPCG(3, 4))
	b.ResetTimer()
	for b.Loop() {
		if _, err := ledger.ConsistencyProof(ctx, hr, 1+rng.Uint64N(bigLogSize-1), bigLogSize); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenCheck measures Open's start-up check (a full replay of the
// stored log against its checkpoints) on a 65536-entry SQLite log.
func BenchmarkOpenCheck(b *testing.B) {
	const n = 1 << 16
	ctx := context.Background()
	s, v := testKeys(b)
	db, err := database.Open(ctx, filepath.Join(b.TempDir(), "open.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer database.Close(db)
	l, err := gormlog.Open(ctx, db, gormlog.Options{Signer: s, CheckpointInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	envs, err := benchEnvelopes(64)
	if err != nil {
		b.Fatal(err)
	}
	leaves, es, err := benchLeaves(envs, 0, n)
	if err != nil {
		b.Fatal(err)
	}
	if err := l.BulkLoad(ctx, leaves, es, 8192); err != nil {
		b.Fatal(err)
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		l, err := gormlog.Open(ctx, db, gormlog.Options{Signer: s, Verifier: v, CheckpointInterval: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		if err := l.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkOpenNode measures the node's part of a gateway's start over a
// 65536-entry SQLite log its checkpoint covers: every entry's leaf and
// header decoded, the seal checked, the registry applied (the store's
// own check, BenchmarkOpenCheck, is not included).
func BenchmarkOpenNode(b *testing.B) {
	const n = 1 << 16
	ctx := context.Background()
	s, _ := testKeys(b)
	db, err := database.Open(ctx, filepath.Join(b.TempDir(), "node.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer database.Close(db)
	st, err := gormlog.Open(ctx, db, gormlog.Options{Signer: s, CheckpointInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	envs, err := benchEnvelopes(64)
	if err != nil {
		b.Fatal(err)
	}
	leaves, es, err := benchLeaves(envs, 0, n)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.BulkLoad(ctx, leaves, es, 8192); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil { // publishes the checkpoint over all of it
		b.Fatal(err)
	}
	ro, err := gormlog.OpenReadOnly(ctx, db, gormlog.Options{})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := ledger.OpenNode(ctx, ro, ledger.Identity{ReadOnly: true}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
