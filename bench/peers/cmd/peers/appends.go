package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
	"golang.org/x/mod/sumdb/note"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/gormlog"
	"github.com/healthgw/healthgw/ledger/ledgertest"
)

// tesseraBatchAge is the Tessera batch age of the peer: 10 ms, so that one
// appender is not held for Tessera's default age.
const tesseraBatchAge = 10 * time.Millisecond

// appendResult is one side's round: completed appends a second and the
// process's CPU time (user + system) per append over the same window.
type appendResult struct {
	rate float64
	cpu  time.Duration
}

// runAppenders calls op from appenders goroutines until d has passed and
// returns the completed operations per second (the clock stops when the
// last in-flight operation returns) and the process CPU per operation.
func runAppenders(ctx context.Context, appenders int, d time.Duration, op func(ctx context.Context, i int64) error) (appendResult, error) {
	var done, next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, appenders)
	cpu0 := selfCPU()
	start := time.Now()
	deadline := start.Add(d)
	for range appenders {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				if err := op(ctx, next.Add(1)); err != nil {
					errc <- err
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	cpu := selfCPU() - cpu0
	close(errc)
	if err := <-errc; err != nil {
		return appendResult{}, err
	}
	n := done.Load()
	if n == 0 {
		return appendResult{}, errors.New("no append completed")
	}
	return appendResult{rate: float64(n) / el.Seconds(), cpu: cpu / time.Duration(n)}, nil
}

// selfCPU is the CPU time (user + system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// healthgwAppends measures durable appends through a gateway's embedded
// ledger (ledger.Node over gormlog, real node, seal and checkpoint keys):
// each entry translated, signed and sealed, acknowledged after its group
// commit. dsn is a fresh SQLite file, or PostgreSQL (a throwaway
// schema).
func healthgwAppends(ctx context.Context, dsn string, appenders int, d time.Duration) (appendResult, error) {
	if isPostgres(dsn) {
		schemaDSN, drop, err := throwawaySchema(ctx, dsn)
		if err != nil {
			return appendResult{}, err
		}
		defer drop()
		dsn = schemaDSN
	}
	db, err := database.Open(ctx, dsn)
	if err != nil {
		return appendResult{}, err
	}
	defer database.Close(db)
	skey, _, err := ledger.GenerateCheckpointKey("bench.healthgw.test/ledger")
	if err != nil {
		return appendResult{}, err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return appendResult{}, err
	}
	st, err := gormlog.Open(ctx, db, gormlog.Options{Signer: signer})
	if err != nil {
		return appendResult{}, fmt.Errorf("open gormlog: %w", err)
	}
	n, err := ledger.OpenNode(ctx, st, ledgertest.Identity("gw-bench"))
	if err != nil {
		_ = st.Close()
		return appendResult{}, fmt.Errorf("open node: %w", err)
	}
	defer n.Close()
	entries := make([]ledger.Entry, 64)
	for i := range entries {
		entries[i] = ledgertest.Entry(4 * i) // access decisions of the gateway's org
	}
	return runAppenders(ctx, appenders, d, func(ctx context.Context, i int64) error {
		_, err := n.Append(ctx, entries[i%int64(len(entries))])
		return err
	})
}

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// throwawaySchema creates a fresh schema in the PostgreSQL database of
// dsn (the database others' tests share: nothing of theirs is touched)
// and returns a DSN selecting it and a function dropping it.
func throwawaySchema(ctx context.Context, dsn string) (string, func(), error) {
	admin, err := database.Open(ctx, dsn)
	if err != nil {
		return "", nil, err
	}
	schema := "bench_peers_" + strings.ToLower(rand.Text()[:12])
	if err := admin.WithContext(ctx).Exec("CREATE SCHEMA " + schema).Error; err != nil {
		database.Close(admin)
		return "", nil, fmt.Errorf("create schema: %w", err)
	}
	drop := func() {
		_ = admin.Exec("DROP SCHEMA " + schema + " CASCADE").Error
		database.Close(admin)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		drop()
		return "", nil, fmt.Errorf("parse HEALTHGW_TEST_POSTGRES: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), drop, nil
}

// tesseraAppends measures durable appends to Tessera's POSIX driver in a
// fresh directory: each appender waits for its entry's index future,
// which resolves once the entry's batch is sequenced and written to disk
// (the driver fsyncs). The entries are the bytes of the same access
// decisions healthgw appends.
func tesseraAppends(ctx context.Context, dir string, appenders int, d time.Duration) (appendResult, error) {
	path, err := os.MkdirTemp(dir, "tessera-")
	if err != nil {
		return appendResult{}, err
	}
	defer os.RemoveAll(path)
	// Tessera's background loops (integration, checkpoints, stats) live
	// as long as the context given to NewAppender: end them with the
	// round, before its directory goes.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	skey, _, err := note.GenerateKey(rand.Reader, "bench.tessera.test")
	if err != nil {
		return appendResult{}, err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return appendResult{}, err
	}
	drv, err := posix.New(ctx, posix.Config{Path: filepath.Join(path, "log")})
	if err != nil {
		return appendResult{}, err
	}
	opts := tessera.NewAppendOptions().WithCheckpointSigner(signer).
		WithBatching(tessera.DefaultBatchMaxSize, tesseraBatchAge).
		WithCheckpointInterval(time.Second)
	app, shutdown, _, err := tessera.NewAppender(ctx, drv, opts)
	if err != nil {
		return appendResult{}, fmt.Errorf("tessera appender: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = shutdown(sctx)
	}()
	entries := make([][]byte, 64)
	for i := range entries {
		if entries[i], err = ledger.Encode(ledgertest.Entry(4 * i)); err != nil {
			return appendResult{}, err
		}
	}
	return runAppenders(ctx, appenders, d, func(ctx context.Context, i int64) error {
		for {
			_, err := app.Add(ctx, tessera.NewEntry(entries[i%int64(len(entries))]))()
			if errors.Is(err, tessera.ErrPushback) {
				// Tessera asks the caller to come back: the attempt is
				// not counted, and the appender tries again.
				time.Sleep(time.Millisecond)
				continue
			}
			return err
		}
	})
}
