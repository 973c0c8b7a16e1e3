package gormlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger"
)

// Defaults for Options.
const (
	// DefaultCheckpointInterval is how often a checkpoint is published
	// while the log grows.
	DefaultCheckpointInterval = time.Second
	// DefaultMaxBatch bounds how many entries one write transaction holds.
	DefaultMaxBatch = 1024
	// DefaultQueueSize is the capacity of the append queue; appenders
	// beyond it wait (bounded by their context).
	DefaultQueueSize = 4096
	// DefaultCommitTimeout bounds one write transaction.
	DefaultCommitTimeout = 30 * time.Second
)

// ErrReadOnly is returned by Append on a log opened with OpenReadOnly.
var ErrReadOnly = fmt.Errorf("%w: log opened read-only", ledger.ErrUnavailable)

// ErrCorrupt is returned when the stored log is inconsistent (a missing row
// or a hashes column of the wrong length): the database was edited.
var ErrCorrupt = errors.New("gormlog: stored log is corrupt")

// Options configures a Log.
type Options struct {
	// Origin is the checkpoint origin line of a new log. Default:
	// Signer.Name(). It is stored with the log when the log is created
	// and never changes: Open refuses another (ErrOriginMismatch); leave
	// it empty to open an existing log with its stored origin.
	Origin string
	// Signer signs checkpoints (an Ed25519 note key; see
	// ledger.LoadOrCreateCheckpointKey). Required by Open.
	Signer note.Signer
	// Verifier is Signer's verifier key. Open checks the stored
	// checkpoints with it: one signed by another key is refused. Default:
	// a check that re-signs with Signer, which holds for Ed25519 note
	// keys (deterministic signatures); set it for other signers.
	Verifier note.Verifier
	// CheckpointInterval: default DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// MaxBatch: default DefaultMaxBatch.
	MaxBatch int
	// QueueSize: default DefaultQueueSize.
	QueueSize int
	// Logger: default slog.Default().
	Logger *slog.Logger
	// Genesis, if set, are the gateways of the log fixed before its first
	// entry (ledger.GenesisGateways), for tests that want no
	// gateway.registered at index 0. A gateway's embedded log has none:
	// its gateway registers itself as entry 0.
	Genesis map[string]ledger.GatewayKeys
}

// GenesisGateways implements ledger.GenesisGateways.
func (l *Log) GenesisGateways() map[string]ledger.GatewayKeys { return l.genesis }

// Log is a ledger.Store stored through gorm.
type Log struct {
	genesis  map[string]ledger.GatewayKeys
	db       *gorm.DB
	dialect  database.Dialect
	origin   string
	signer   note.Signer
	verifier note.Verifier
	interval time.Duration
	maxBatch int
	logger   *slog.Logger
	readOnly bool

	cache *hashCache

	// Append side.
	mu       sync.RWMutex // guards closed against sends on reqs
	closed   bool
	reqs     chan *appendReq
	lastTime time.Time // writer goroutine only
	frontier frontier  // writer goroutine only
	writerWG sync.WaitGroup

	// Checkpoint side.
	pubMu     sync.Mutex // serialises publish
	pubNow    chan struct{}
	stop      chan struct{}
	pubWG     sync.WaitGroup
	cpMu      sync.Mutex
	cpChanged chan struct{} // closed and replaced after each publish

	closeOnce sync.Once
	closeErr  error

	size atomic.Uint64 // largest durable size seen (monotonic)

	// fault is set once the log refused to sign a checkpoint that is not
	// consistent with its previous one (see setFault).
	fault atomic.Pointer[error]

	// vouched is the size up to which the log may sign: what its latest
	// checkpoint covered at Open, extended by its own writer's
	// contiguous appends and by the node's check (Vouch). check is the
	// node's (nil until a node is opened over the log).
	vouched atomic.Uint64
	check   atomic.Pointer[func(context.Context, uint64) error]
	// commitMu is held by the writer from a batch's transaction until it
	// vouched for the batch, so that the publisher never sees the
	// batch's rows durable but not yet vouched for (and has the node
	// re-check its own appends).
	commitMu sync.Mutex
	// observe is the node's AppendObserver (nil until one is set).
	observe atomic.Pointer[func(first uint64, leaves [][]byte)]
}

var (
	_ ledger.AppendObserver    = (*Log)(nil)
	_ ledger.Vouching          = (*Log)(nil)
	_ ledger.Store             = (*Log)(nil)
	_ ledger.CheckpointHistory = (*Log)(nil)
	_ ledger.CheckpointWaiter  = (*Log)(nil)
)

type appendReq struct {
	env ledger.Envelope
	// typ and seal are the leaf's, from the header AppendEnvelope
	// checked: the writer only adds the time.
	typ  ledger.Type
	seal ledger.Digest
	done chan appendResult
}

type appendResult struct {
	index uint64
	err   error
}

// Open opens (creating its tables if needed) the log stored in db, and
// starts its writer and checkpoint publisher. Close stops them; it does not
// close db. db must come from database.Open: on SQLite, write transactions
// must begin IMMEDIATE (its _txlock setting) so that writers in several
// processes queue on the lock instead of failing.
func Open(ctx context.Context, db *gorm.DB, opts Options) (*Log, error) {
	if opts.Signer == nil {
		return nil, errors.New("gormlog: Options.Signer is required")
	}
	l := newLog(db, opts)
	if err := migrate(ctx, db); err != nil {
		return nil, err
	}
	if err := l.resolveOrigin(ctx, opts.Origin); err != nil {
		return nil, err
	}
	n, err := l.Size(ctx)
	if err != nil {
		return nil, err
	}
	// Nothing stored is trusted: the stored tree must match the latest
	// checkpoint, signed with this log's key, before anything is
	// appended or signed.
	_, cpErr := l.latestCheckpoint(ctx)
	if cpErr != nil && !errors.Is(cpErr, ledger.ErrNotFound) {
		return nil, cpErr
	}
	if cpErr == nil || n > 0 {
		if err := l.checkStored(ctx); err != nil {
			return nil, err
		}
	}
	if cp, err := l.latestCheckpoint(ctx); err == nil {
		l.vouched.Store(uint64(cp.Size)) // verified by checkStored
	}
	l.reqs = make(chan *appendReq, opts.QueueSize)
	if opts.QueueSize <= 0 {
		l.reqs = make(chan *appendReq, DefaultQueueSize)
	}
	l.writerWG.Add(1)
	go l.writer()
	l.pubWG.Add(1)
	go l.publisher()
	// A fresh log gets its first (possibly empty) checkpoint at once, so
	// Checkpoint always has something to serve.
	if _, err := l.latestCheckpoint(ctx); errors.Is(err, ledger.ErrNotFound) {
		if err := l.publish(ctx); err != nil {
			_ = l.Close()
			return nil, err
		}
	}
	l.logger.Debug("ledger opened", slog.Uint64("size", n), slog.String("origin", l.origin))
	return l, nil
}

// OpenReadOnly opens the log stored in db for reading and verification:
// no writer, no publisher, no schema changes, no start-up check (verify
// the log with verify.Local). Append returns ErrReadOnly. opts.Signer may
// be nil.
func OpenReadOnly(ctx context.Context, db *gorm.DB, opts Options) (*Log, error) {
	l := newLog(db, opts)
	l.readOnly = true
	if !db.WithContext(ctx).Migrator().HasTable(&entryRow{}) {
		return nil, fmt.Errorf("gormlog: no ledger in this database: %w", ledger.ErrNotFound)
	}
	if !db.WithContext(ctx).Migrator().HasColumn(&entryRow{}, "env_header") {
		return nil, ErrFormatV1
	}
	if db.WithContext(ctx).Migrator().HasColumn(&headRow{}, "origin") {
		if o, err := l.storedOrigin(ctx); err == nil && o != "" {
			l.origin = o
		}
	}
	if _, err := l.Size(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

func newLog(db *gorm.DB, opts Options) *Log {
	l := &Log{
		db:        db,
		dialect:   database.DialectFor(db),
		origin:    opts.Origin,
		signer:    opts.Signer,
		verifier:  opts.Verifier,
		interval:  opts.CheckpointInterval,
		maxBatch:  opts.MaxBatch,
		logger:    opts.Logger,
		cache:     newHashCache(defaultCacheEntries),
		pubNow:    make(chan struct{}, 1),
		stop:      make(chan struct{}),
		cpChanged: make(chan struct{}),
		genesis:   opts.Genesis,
	}
	if l.origin == "" && l.signer != nil {
		l.origin = l.signer.Name()
	}
	if l.verifier == nil && l.signer != nil {
		l.verifier = resignVerifier{l.signer}
	}
	if l.interval <= 0 {
		l.interval = DefaultCheckpointInterval
	}
	if l.maxBatch <= 0 {
		l.maxBatch = DefaultMaxBatch
	}
	if l.logger == nil {
		l.logger = slog.Default()
	}
	return l
}

// Origin returns the checkpoint origin line.
func (l *Log) Origin() string { return l.origin }

// AppendEnvelope implements ledger.Store. It returns once the entry's
// transaction committed. If ctx ends first it returns ctx's error and
// the entry may or may not have been appended.
func (l *Log) AppendEnvelope(ctx context.Context, env ledger.Envelope) (uint64, error) {
	if l.readOnly {
		return 0, ErrReadOnly
	}
	if err := l.faultErr(); err != nil {
		return 0, fmt.Errorf("append: %w", err)
	}
	h, err := ledger.CheckEnvelope(env)
	if err != nil {
		return 0, fmt.Errorf("append: %w", err)
	}
	req := &appendReq{env: env, typ: h.Type, seal: ledger.Seal(env.Header), done: make(chan appendResult, 1)}
	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return 0, ledger.ErrClosed
	}
	select {
	case l.reqs <- req:
		l.mu.RUnlock()
	case <-ctx.Done():
		l.mu.RUnlock()
		return 0, fmt.Errorf("append: %w", ctx.Err())
	}
	select {
	case r := <-req.done:
		return r.index, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("append: %w", ctx.Err())
	}
}

// ObserveAppends implements ledger.AppendObserver: the writer reports
// each batch's leaves once the batch committed, before it answers the
// appends.
func (l *Log) ObserveAppends(f func(first uint64, leaves [][]byte)) {
	l.observe.Store(&f)
}

// writer drains the queue and commits batches until the queue is closed.
func (l *Log) writer() {
	defer l.writerWG.Done()
	batch := make([]*appendReq, 0, l.maxBatch)
	for {
		req, ok := <-l.reqs
		if !ok {
			return
		}
		batch = append(batch[:0], req)
	drain:
		for len(batch) < l.maxBatch {
			select {
			case r, ok := <-l.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		l.commit(batch)
	}
}

// commit writes one batch in one transaction and answers every request.
func (l *Log) commit(batch []*appendReq) {
	now := time.Now().UTC()
	if now.Before(l.lastTime) {
		now = l.lastTime
	}
	datas := make([][]byte, 0, len(batch))
	envs := make([]ledger.Envelope, 0, len(batch))
	reqs := make([]*appendReq, 0, len(batch))
	for _, r := range batch {
		// ledger.NewLeafFor without decoding the header again.
		b, err := ledger.EncodeLeaf(ledger.Leaf{Version: ledger.VersionV2, Type: r.typ, Time: now, Seal: r.seal})
		if err != nil { // cannot happen: AppendEnvelope checked the header
			r.done <- appendResult{err: fmt.Errorf("append: %w", err)}
			continue
		}
		datas = append(datas, b)
		envs = append(envs, r.env)
		reqs = append(reqs, r)
	}
	if len(datas) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), DefaultCommitTimeout)
	defer cancel()
	l.commitMu.Lock()
	first, fr, err := l.writeBatch(ctx, datas, envs)
	if err != nil {
		l.commitMu.Unlock()
		l.logger.Error("ledger append failed", slog.Int("batch", len(datas)), slog.String("err", err.Error()))
		err = fmt.Errorf("append: %w: %w", ledger.ErrUnavailable, err)
		for _, r := range reqs {
			r.done <- appendResult{err: err}
		}
		return
	}
	l.lastTime = now
	l.frontier = fr
	l.noteSize(first + uint64(len(datas)))
	l.vouch(first, first+uint64(len(datas)))
	l.commitMu.Unlock()
	if p := l.observe.Load(); p != nil {
		(*p)(first, datas)
	}
	for i, r := range reqs {
		r.done <- appendResult{index: first + uint64(i)}
	}
}

// insertChunk bounds the rows of one INSERT statement (bind parameters
// are limited on both databases).
const insertChunk = 300

// writeBatch stores datas at the end of the log in one transaction and
// returns the index of the first and the tree frontier after the batch.
func (l *Log) writeBatch(ctx context.Context, datas [][]byte, envs []ledger.Envelope) (uint64, frontier, error) {
	var first uint64
	var fr frontier
	err := l.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		n, err := l.lockHead(tx)
		if err != nil {
			return err
		}
		if seen := l.size.Load(); n < seen {
			// The durable size only grows: the database was rolled back
			// under the running log. Appending would write a second
			// history.
			err := fmt.Errorf("%w: the stored log shrank from %d to %d entries under the running log", ErrCorrupt, seen, n)
			l.setFault(err)
			return l.faultErr()
		}
		first = n
		r := &batchReader{ctx: ctx, tx: tx, base: tlog.StoredHashIndex(0, int64(n))}
		if l.frontier.size == n && l.frontier.hashes != nil {
			r.known = l.frontier.hashes
		} else {
			r.known = make(map[int64]tlog.Hash)
		}
		blobs := make([][]byte, len(datas))
		for i, d := range datas {
			hs, err := tlog.StoredHashes(int64(n)+int64(i), d, r)
			if err != nil {
				return fmt.Errorf("stored hashes %d: %w", n+uint64(i), err)
			}
			r.pending = append(r.pending, hs...)
			blob := make([]byte, 0, len(hs)*tlog.HashSize)
			for _, h := range hs {
				blob = append(blob, h[:]...)
			}
			blobs[i] = blob
		}
		end := n + uint64(len(datas))
		if fr, err = newFrontier(end, r); err != nil {
			return err
		}
		for lo := 0; lo < len(datas); lo += insertChunk {
			hi := min(lo+insertChunk, len(datas))
			var sb strings.Builder
			sb.WriteString("INSERT INTO ledger_entries (idx, data, hashes, env_header, env_sealed, env_clear) VALUES ")
			args := make([]any, 0, 6*(hi-lo))
			for i := lo; i < hi; i++ {
				if i > lo {
					sb.WriteByte(',')
				}
				sb.WriteString("(?,?,?,?,?,?)")
				e := envs[i]
				args = append(args, int64(n)+int64(i), datas[i], blobs[i], e.Header, nonNil(e.Sealed), nonNil(e.Clear))
			}
			if err := tx.Exec(sb.String(), args...).Error; err != nil {
				return fmt.Errorf("insert entries: %w", err)
			}
		}
		res := tx.Exec("UPDATE ledger_head SET size = ? WHERE id = ?", int64(end), headID)
		if res.Error != nil {
			return fmt.Errorf("update head: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("update head: %w: no head row", ErrCorrupt)
		}
		return nil
	})
	if err != nil {
		return 0, frontier{}, err
	}
	return first, fr, nil
}

// lockHead locks the head row for the rest of tx and returns the durable
// size. On SQLite the transaction already holds the write lock (BEGIN
// IMMEDIATE); on PostgreSQL the row lock serialises writers across
// processes.
func (l *Log) lockHead(tx *gorm.DB) (uint64, error) {
	q := "SELECT size FROM ledger_head WHERE id = ?"
	if l.dialect == database.Postgres {
		q += " FOR UPDATE"
	}
	var sizes []int64
	if err := tx.Raw(q, headID).Scan(&sizes).Error; err != nil {
		return 0, fmt.Errorf("lock head: %w", err)
	}
	if len(sizes) != 1 || sizes[0] < 0 {
		return 0, fmt.Errorf("lock head: %w: no head row", ErrCorrupt)
	}
	return uint64(sizes[0]), nil
}

func (l *Log) noteSize(n uint64) {
	for {
		old := l.size.Load()
		if n <= old || l.size.CompareAndSwap(old, n) {
			return
		}
	}
}

// Size implements ledger.Reader: the durable size read from the database
// (so appends by other processes are seen).
func (l *Log) Size(ctx context.Context) (uint64, error) {
	var sizes []int64
	if err := l.db.WithContext(ctx).Raw("SELECT size FROM ledger_head WHERE id = ?", headID).Scan(&sizes).Error; err != nil {
		return 0, fmt.Errorf("ledger size: %w", err)
	}
	if len(sizes) == 1 && sizes[0] > 0 {
		l.noteSize(uint64(sizes[0]))
	}
	return l.size.Load(), nil
}

// Entries implements ledger.Reader.
func (l *Log) Entries(ctx context.Context, start, end uint64) ([][]byte, error) {
	if start > end {
		return nil, fmt.Errorf("entries [%d,%d): %w", start, end, ledger.ErrInvalidRange)
	}
	size, err := l.Size(ctx)
	if err != nil {
		return nil, err
	}
	if end > size {
		return nil, fmt.Errorf("entries [%d,%d) of %d: %w", start, end, size, ledger.ErrNotFound)
	}
	if start == end {
		return [][]byte{}, nil
	}
	rows, err := l.db.WithContext(ctx).
		Raw("SELECT idx, data FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx", int64(start), int64(end)).
		Rows()
	if err != nil {
		return nil, fmt.Errorf("read entries: %w", err)
	}
	defer rows.Close()
	out := make([][]byte, 0, end-start)
	for rows.Next() {
		var idx int64
		var data []byte
		if err := rows.Scan(&idx, &data); err != nil {
			return nil, fmt.Errorf("read entries: %w", err)
		}
		if uint64(idx) != start+uint64(len(out)) {
			return nil, missingEntry(start + uint64(len(out)))
		}
		out = append(out, data)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read entries: %w", err)
	}
	if uint64(len(out)) != end-start {
		return nil, missingEntry(start + uint64(len(out)))
	}
	return out, nil
}

// nonNil stores an absent part of an envelope as empty bytes.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// Envelopes implements ledger.Store.
func (l *Log) Envelopes(ctx context.Context, start, end uint64) ([]ledger.Envelope, error) {
	if start > end {
		return nil, fmt.Errorf("envelopes [%d,%d): %w", start, end, ledger.ErrInvalidRange)
	}
	size, err := l.Size(ctx)
	if err != nil {
		return nil, err
	}
	if end > size {
		return nil, fmt.Errorf("envelopes [%d,%d) of %d: %w", start, end, size, ledger.ErrNotFound)
	}
	if start == end {
		return []ledger.Envelope{}, nil
	}
	rows, err := l.db.WithContext(ctx).
		Raw("SELECT idx, env_header, env_sealed, env_clear FROM ledger_entries WHERE idx >= ? AND idx < ? ORDER BY idx", int64(start), int64(end)).
		Rows()
	if err != nil {
		return nil, fmt.Errorf("read envelopes: %w", err)
	}
	defer rows.Close()
	out := make([]ledger.Envelope, 0, end-start)
	for rows.Next() {
		var idx int64
		var e ledger.Envelope
		if err := rows.Scan(&idx, &e.Header, &e.Sealed, &e.Clear); err != nil {
			return nil, fmt.Errorf("read envelopes: %w", err)
		}
		if uint64(idx) != start+uint64(len(out)) {
			return nil, missingEntry(start + uint64(len(out)))
		}
		if len(e.Sealed) == 0 {
			e.Sealed = nil
		}
		if len(e.Clear) == 0 {
			e.Clear = nil
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read envelopes: %w", err)
	}
	if uint64(len(out)) != end-start {
		return nil, missingEntry(start + uint64(len(out)))
	}
	return out, nil
}

// missingEntry reports a row missing below the head's size: the database
// was edited. It is ErrCorrupt and ledger.ErrNotFound.
func missingEntry(i uint64) error {
	return fmt.Errorf("entry %d: %w: %w: row missing", i, ErrCorrupt, ledger.ErrNotFound)
}

// ReadHashes implements tlog.HashReader over durable entries. It uses a
// background context; HashReader binds a request's context.
func (l *Log) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	return l.readHashes(context.Background(), indexes)
}

// HashReader returns a tlog.HashReader whose reads use ctx.
func (l *Log) HashReader(ctx context.Context) tlog.HashReader {
	return tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		return l.readHashes(ctx, indexes)
	})
}

func (l *Log) readHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var miss []int64
	var missAt []int
	for i, x := range indexes {
		if x < 0 {
			return nil, fmt.Errorf("read hash %d: %w", x, ledger.ErrInvalidRange)
		}
		if h, ok := l.cache.get(x); ok {
			out[i] = h
			continue
		}
		miss = append(miss, x)
		missAt = append(missAt, i)
	}
	if len(miss) == 0 {
		return out, nil
	}
	got, err := loadStored(ctx, l.db, miss)
	if err != nil {
		return nil, err
	}
	for j, x := range miss {
		out[missAt[j]] = got[x]
		l.cache.put(x, got[x])
	}
	return out, nil
}

// storedAt maps a tlog storage index to the record whose row holds that
// hash, and the hash's position in the row.
func storedAt(x int64) (record int64, pos int) {
	level, n := tlog.SplitStoredHashIndex(x)
	return (n+1)<<uint(level) - 1, level
}

// loadStored reads the hashes at storage indexes xs from db (or a
// transaction). Every hash must be stored.
func loadStored(ctx context.Context, db *gorm.DB, xs []int64) (map[int64]tlog.Hash, error) {
	byRecord := make(map[int64][]int64, len(xs))
	records := make([]int64, 0, len(xs))
	for _, x := range xs {
		rec, _ := storedAt(x)
		if _, ok := byRecord[rec]; !ok {
			records = append(records, rec)
		}
		byRecord[rec] = append(byRecord[rec], x)
	}
	out := make(map[int64]tlog.Hash, len(xs))
	for lo := 0; lo < len(records); lo += insertChunk {
		chunk := records[lo:min(lo+insertChunk, len(records))]
		rows, err := db.WithContext(ctx).Raw("SELECT idx, hashes FROM ledger_entries WHERE idx IN ?", chunk).Rows()
		if err != nil {
			return nil, fmt.Errorf("read hashes: %w", err)
		}
		for rows.Next() {
			var idx int64
			var blob []byte
			if err := rows.Scan(&idx, &blob); err != nil {
				rows.Close()
				return nil, fmt.Errorf("read hashes: %w", err)
			}
			for _, x := range byRecord[idx] {
				_, pos := storedAt(x)
				if len(blob) < (pos+1)*tlog.HashSize {
					rows.Close()
					return nil, fmt.Errorf("hashes of entry %d: %w: %d bytes", idx, ErrCorrupt, len(blob))
				}
				var h tlog.Hash
				copy(h[:], blob[pos*tlog.HashSize:])
				out[x] = h
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, fmt.Errorf("read hashes: %w", err)
		}
	}
	for _, x := range xs {
		if _, ok := out[x]; !ok {
			rec, _ := storedAt(x)
			return nil, fmt.Errorf("hash %d (entry %d): %w", x, rec, ledger.ErrNotFound)
		}
	}
	return out, nil
}

// batchReader serves tlog.StoredHashes while a batch is being built: the
// batch's own hashes (pending, from storage index base), the tree frontier
// known from the previous batch, and otherwise the transaction.
type batchReader struct {
	ctx     context.Context
	tx      *gorm.DB
	base    int64
	pending []tlog.Hash
	known   map[int64]tlog.Hash
}

func (r *batchReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	var miss []int64
	for i, x := range indexes {
		switch h, ok := r.known[x]; {
		case x >= r.base:
			j := x - r.base
			if j >= int64(len(r.pending)) {
				return nil, fmt.Errorf("hash %d not yet computed", x)
			}
			out[i] = r.pending[j]
		case ok:
			out[i] = h
		default:
			miss = append(miss, x)
		}
	}
	if len(miss) == 0 {
		return out, nil
	}
	got, err := loadStored(r.ctx, r.tx, miss)
	if err != nil {
		return nil, err
	}
	for i, x := range indexes {
		if h, ok := got[x]; ok {
			out[i] = h
			r.known[x] = h
		}
	}
	return out, nil
}

// frontier holds the roots of the perfect subtrees that make up a tree of
// size: every hash a later append needs from before it.
type frontier struct {
	size   uint64
	hashes map[int64]tlog.Hash
}

func newFrontier(size uint64, r tlog.HashReader) (frontier, error) {
	var xs []int64
	for level := 0; level < 63 && size>>uint(level) > 0; level++ {
		if (size>>uint(level))&1 == 1 {
			xs = append(xs, tlog.StoredHashIndex(level, int64(size>>uint(level))-1))
		}
	}
	hs, err := r.ReadHashes(xs)
	if err != nil {
		return frontier{}, fmt.Errorf("frontier: %w", err)
	}
	m := make(map[int64]tlog.Hash, len(xs))
	for i, x := range xs {
		m[x] = hs[i]
	}
	return frontier{size: size, hashes: m}, nil
}

// Checkpoint implements ledger.Prover: the latest published checkpoint.
func (l *Log) Checkpoint(ctx context.Context) ([]byte, error) {
	cp, err := l.latestCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	return cp.Note, nil
}

func (l *Log) latestCheckpoint(ctx context.Context) (checkpointRow, error) {
	var rows []checkpointRow
	if err := l.db.WithContext(ctx).Order("size DESC").Limit(1).Find(&rows).Error; err != nil {
		return checkpointRow{}, fmt.Errorf("latest checkpoint: %w", err)
	}
	if len(rows) == 0 {
		return checkpointRow{}, fmt.Errorf("latest checkpoint: %w", ledger.ErrNotFound)
	}
	return rows[0], nil
}

// CheckpointAt implements ledger.CheckpointHistory.
func (l *Log) CheckpointAt(ctx context.Context, size uint64) ([]byte, error) {
	var rows []checkpointRow
	if err := l.db.WithContext(ctx).Where("size = ?", int64(size)).Limit(1).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("checkpoint %d: %w", size, err)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("checkpoint %d: %w", size, ledger.ErrNotFound)
	}
	return rows[0].Note, nil
}

// Checkpoints returns the sizes of the published checkpoints in
// [from, to], ascending, at most limit of them.
func (l *Log) Checkpoints(ctx context.Context, from, to uint64, limit int) ([]uint64, error) {
	var sizes []int64
	if err := l.db.WithContext(ctx).Model(&checkpointRow{}).
		Where("size >= ? AND size <= ?", int64(from), int64(min(to, 1<<62))).
		Order("size").Limit(limit).Pluck("size", &sizes).Error; err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	out := make([]uint64, len(sizes))
	for i, s := range sizes {
		out[i] = uint64(s)
	}
	return out, nil
}

// WaitCheckpoint implements ledger.CheckpointWaiter.
func (l *Log) WaitCheckpoint(ctx context.Context, size uint64) ([]byte, error) {
	for {
		l.cpMu.Lock()
		changed := l.cpChanged
		l.cpMu.Unlock()
		cp, err := l.latestCheckpoint(ctx)
		if err != nil && !errors.Is(err, ledger.ErrNotFound) {
			return nil, err
		}
		if err == nil && uint64(cp.Size) >= size {
			return cp.Note, nil
		}
		n, err := l.Size(ctx)
		if err != nil {
			return nil, err
		}
		if size > n {
			return nil, fmt.Errorf("checkpoint of size %d > %d: %w", size, n, ledger.ErrNotFound)
		}
		if l.readOnly {
			return nil, fmt.Errorf("no checkpoint of size %d yet: %w", size, ErrReadOnly)
		}
		if err := l.faultErr(); err != nil {
			return nil, fmt.Errorf("wait checkpoint: %w", err)
		}
		select {
		case l.pubNow <- struct{}{}:
		default:
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait checkpoint: %w", ctx.Err())
		case <-time.After(l.interval):
		}
	}
}

// Vouch implements ledger.Vouching: before signing a checkpoint over
// entries this log did not append itself (another process's, or rows a
// forger inserted), it runs check; an entry that fails it is never signed
// (the log faults, as for an inconsistent tree).
func (l *Log) Vouch(check func(ctx context.Context, size uint64) error) {
	l.check.Store(&check)
}

// vouch records that entries [first, end) were appended by this log's
// writer (through its node): the vouched size grows over them if they
// continue it.
func (l *Log) vouch(first, end uint64) {
	for {
		v := l.vouched.Load()
		if first > v || end <= v || l.vouched.CompareAndSwap(v, end) {
			return
		}
	}
}

// signable returns the size up to which a checkpoint may be signed, at
// most size: entries beyond the vouched size are checked first (Vouch);
// without a check only the vouched size is signed.
func (l *Log) signable(ctx context.Context, size uint64) (uint64, error) {
	// Wait for a batch being committed to be vouched for: size may
	// already count its rows.
	l.commitMu.Lock()
	v := l.vouched.Load()
	l.commitMu.Unlock()
	if size <= v {
		return size, nil
	}
	p := l.check.Load()
	if p == nil {
		return v, nil
	}
	if err := (*p)(ctx, size); err != nil {
		var ve *ledger.VerifyError
		if errors.As(err, &ve) && ctx.Err() == nil {
			l.setFault(fmt.Errorf("checkpoint %d: %w", size, err))
			return 0, l.faultErr()
		}
		return 0, fmt.Errorf("checkpoint %d: check entries [%d, %d): %w", size, v, size, err)
	}
	l.vouch(v, size)
	return size, nil
}

// publisher publishes a checkpoint every interval and on demand until
// stop is closed.
func (l *Log) publisher() {
	defer l.pubWG.Done()
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		case <-l.pubNow:
		}
		ctx, cancel := context.WithTimeout(context.Background(), DefaultCommitTimeout)
		if err := l.publish(ctx); err != nil && !errors.Is(err, ErrInconsistent) {
			l.logger.Warn("ledger checkpoint", slog.String("err", err.Error()))
		}
		cancel()
	}
}

// publish signs and stores a checkpoint for the durable size, unless one
// of that size (or larger) exists. It first proves the new tree
// consistent with the latest signed checkpoint; if that fails it signs
// nothing and the log faults (setFault).
func (l *Log) publish(ctx context.Context) error {
	l.pubMu.Lock()
	defer l.pubMu.Unlock()
	defer l.notifyCheckpoint()
	if err := l.faultErr(); err != nil {
		return err
	}
	size, err := l.Size(ctx)
	if err != nil {
		return err
	}
	latest, err := l.latestCheckpoint(ctx)
	if err == nil && uint64(latest.Size) >= size {
		return nil
	}
	if err != nil && !errors.Is(err, ledger.ErrNotFound) {
		return err
	}
	// Never sign an entry that was not checked (see Vouch).
	if size, err = l.signable(ctx, size); err != nil {
		return err
	}
	if latest.Note != nil && uint64(latest.Size) >= size {
		return nil
	}
	// The hashes a checkpoint signs are read from the database, not the
	// cache: what is signed is what is stored.
	root, err := ledger.TreeHash(ctx, l.storedReader(ctx), size)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	next := ledger.Checkpoint{Origin: l.origin, Size: size, Hash: root}
	if latest.Note != nil {
		if cerr := l.checkConsistent(ctx, latest, size, next); cerr != nil {
			var te *transientError
			if ctx.Err() != nil || errors.As(cerr, &te) {
				return fmt.Errorf("checkpoint: %w", cerr)
			}
			l.setFault(fmt.Errorf("checkpoint %d: %w", size, cerr))
			return l.faultErr()
		}
	}
	raw, err := ledger.SignCheckpoint(next, l.signer)
	if err != nil {
		return err
	}
	row := checkpointRow{Size: int64(size), Note: raw, CreatedAt: time.Now().UTC()}
	if err := l.db.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).Create(&row).Error; err != nil {
		return fmt.Errorf("store checkpoint %d: %w", size, err)
	}
	l.logger.Debug("ledger checkpoint", slog.Uint64("size", size))
	return nil
}

func (l *Log) notifyCheckpoint() {
	l.cpMu.Lock()
	close(l.cpChanged)
	l.cpChanged = make(chan struct{})
	l.cpMu.Unlock()
}

// Close implements ledger.Log: it refuses new appends, commits every
// queued one, stops the publisher and publishes a final checkpoint. It
// does not close the database. Reads keep working after Close.
func (l *Log) Close() error {
	if l.readOnly {
		return nil
	}
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		close(l.reqs)
		l.mu.Unlock()
		l.writerWG.Wait()
		close(l.stop)
		l.pubWG.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), DefaultCommitTimeout)
		defer cancel()
		l.closeErr = l.publish(ctx)
	})
	return l.closeErr
}
