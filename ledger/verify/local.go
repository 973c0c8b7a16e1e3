package verify

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/ledger"
)

// Source is a log's storage, read directly (gormlog.OpenReadOnly).
type Source interface {
	Size(ctx context.Context) (uint64, error)
	Entries(ctx context.Context, start, end uint64) ([][]byte, error)
	Checkpoint(ctx context.Context) ([]byte, error)
	// ReadHashes reads the stored tree hashes (tlog storage indexes).
	tlog.HashReader
}

// checkpointLister is implemented by sources that keep every checkpoint
// (gormlog): Local then checks all of them.
type checkpointLister interface {
	Checkpoints(ctx context.Context, from, to uint64, limit int) ([]uint64, error)
	CheckpointAt(ctx context.Context, size uint64) ([]byte, error)
}

// contextHashReader binds hash reads to ctx (gormlog).
type contextHashReader interface {
	HashReader(ctx context.Context) tlog.HashReader
}

// hashCounter is implemented by sources that store the tree hashes an
// append completes next to its entry (gormlog): Local checks that every
// row holds exactly as many as its index completes, which names a row
// moved to another index (a deleted row with the later ones shifted down).
type hashCounter interface {
	StoredHashCounts(ctx context.Context, start, end uint64) ([]int, error)
}

// localChunk is how many entries Local reads at a time.
const localChunk = 1024

// checkpointPage is how many stored checkpoint sizes Local lists at once.
const checkpointPage = 4096

// Local audits a log's storage: every entry is replayed from the start,
// every stored tree hash is compared with the recomputed one, and every
// stored checkpoint (or, if the source does not keep them, the latest)
// must be signed (when o.Verifier is set) and match the recomputed root
// at its size. With o.Envelopes every entry's stored envelope is checked
// too, in the same pass (see the package doc). Sizes are compared only
// after the replay, so that an edit in the middle of the log is named
// before the missing tail it causes.
func Local(ctx context.Context, src Source, o Options) (*Result, error) {
	a, err := newLocalAudit(ctx, src, o)
	if err != nil {
		return nil, err
	}
	if err := a.replay(); err != nil {
		return nil, err
	}
	if err := a.checkCoverage(); err != nil {
		return nil, err
	}
	a.res.Entries = a.rp.size()
	a.res.Types = a.rp.types
	return a.res, nil
}

// target is a checkpoint checked when the replay reaches its size.
type target struct {
	c       ledger.Checkpoint
	what    string
	trusted bool
}

// suspect is a stored interior hash that does not match the entries. It
// is either an edited hash (the entries still match the next signed
// root) or a sign that entries were moved (they do not); the next
// checkpoint decides.
type suspect struct {
	record, level int64
}

// localAudit is the state of one Local run.
type localAudit struct {
	ctx     context.Context
	src     Source
	o       Options
	hr      tlog.HashReader
	lister  checkpointLister
	counter hashCounter
	envs    EnvelopeSource
	checker *entryChecker

	size     uint64             // entries the source holds
	latest   *ledger.Checkpoint // nil: no checkpoint stored
	trusted  *ledger.Checkpoint
	targets  []target
	stored   []uint64 // stored checkpoint sizes listed, not yet checked
	nextList uint64   // next size to list stored checkpoints from
	listEnd  uint64   // largest stored checkpoint size to list

	rp       *replay
	goodUpTo uint64 // entries below this matched a signed root
	suspect  *suspect
	res      *Result
}

func newLocalAudit(ctx context.Context, src Source, o Options) (*localAudit, error) {
	a := &localAudit{ctx: ctx, src: src, o: o, hr: src, rp: newReplay(), res: &Result{Signed: o.Verifier != nil}}
	if c, ok := src.(contextHashReader); ok {
		a.hr = c.HashReader(ctx)
	}
	a.lister, _ = src.(checkpointLister)
	a.counter, _ = src.(hashCounter)
	if o.Envelopes {
		var ok bool
		if a.envs, ok = src.(EnvelopeSource); !ok {
			return nil, errors.New("verify: the source keeps no entry envelopes to check")
		}
		a.checker = newEntryChecker(o, a.res)
	}
	// The checkpoint first, then the size: a log that is appended to
	// meanwhile (another process) then never seems to hold fewer entries
	// than its checkpoint covers.
	raw, err := src.Checkpoint(ctx)
	size, serr := src.Size(ctx)
	if serr != nil {
		return nil, fmt.Errorf("verify: %w", serr)
	}
	a.size = size
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		// Checked after the replay (checkCoverage): entries first.
	case err != nil:
		return nil, fmt.Errorf("verify: latest checkpoint: %w", err)
	default:
		latest, err := openCheckpoint(raw, o, "latest checkpoint")
		if err != nil {
			return nil, err
		}
		a.latest = &latest
		a.res.Checkpoint = latest
		if a.res.Cosigned, err = checkWitnesses(raw, o); err != nil {
			return nil, err
		}
	}
	if o.Trusted != nil {
		tc, err := openCheckpoint(o.Trusted, o, "trusted checkpoint")
		if err != nil {
			return nil, err
		}
		if a.latest != nil && tc.Origin != a.latest.Origin {
			return nil, fail(KindSignature, -1, ledger.ErrWrongOrigin,
				"the trusted checkpoint is for log %q but the log's latest is for %q", tc.Origin, a.latest.Origin)
		}
		a.trusted = &tc
		a.res.Trusted = &tc
		a.targets = append(a.targets, target{c: tc, what: "trusted checkpoint", trusted: true})
	}
	if a.latest != nil {
		a.targets = append(a.targets, target{c: *a.latest, what: "latest checkpoint"})
		a.listEnd = a.latest.Size
	}
	if err := a.listMore(); err != nil {
		return nil, err
	}
	return a, nil
}

// listMore lists the next page of stored checkpoint sizes.
func (a *localAudit) listMore() error {
	if a.lister == nil || a.latest == nil || a.nextList > a.listEnd {
		return nil
	}
	sizes, err := a.lister.Checkpoints(a.ctx, a.nextList, a.listEnd, checkpointPage)
	if err != nil {
		return fmt.Errorf("verify: list checkpoints: %w", err)
	}
	if len(sizes) < checkpointPage {
		a.nextList = a.listEnd + 1
	} else {
		a.nextList = sizes[len(sizes)-1] + 1
	}
	a.stored = append(a.stored, sizes...)
	return nil
}

// nextStop is the next size beyond the replay at which a checkpoint is
// checked (or the log's size).
func (a *localAudit) nextStop() uint64 {
	at, next := a.rp.size(), a.size
	if len(a.stored) > 0 && a.stored[0] > at {
		next = min(next, a.stored[0])
	}
	for _, t := range a.targets {
		if t.c.Size > at {
			next = min(next, t.c.Size)
		}
	}
	return next
}

// replay reads every entry the source holds, in chunks that end at
// checkpoint sizes, so that a stored hash that does not match (which
// names the exact entry) is found before a root that does not match
// (which names a range).
func (a *localAudit) replay() error {
	if err := a.checkAt(); err != nil {
		return err
	}
	for lo := uint64(0); lo < a.size; {
		hi := min(lo+localChunk, a.nextStop())
		entries, missing, err := a.readChunk(lo, hi)
		if err != nil {
			return err
		}
		if err := a.checkChunk(lo, entries); err != nil {
			return err
		}
		if missing != nil {
			return a.resolve(missing)
		}
		if err := a.checkAt(); err != nil {
			return err
		}
		if a.o.Progress != nil {
			a.o.Progress(hi, a.size)
		}
		lo = hi
	}
	return a.resolve(nil)
}

// readChunk reads entries [lo, hi). If some are missing it returns those
// before the first missing one and the failure naming it.
func (a *localAudit) readChunk(lo, hi uint64) ([][]byte, *Failure, error) {
	entries, err := a.src.Entries(a.ctx, lo, hi)
	if err == nil && uint64(len(entries)) == hi-lo {
		return entries, nil, nil
	}
	if err != nil && !errors.Is(err, ledger.ErrNotFound) {
		return nil, nil, fmt.Errorf("verify: entries [%d, %d): %w", lo, hi, err)
	}
	first := lo + uint64(len(entries))
	if err != nil {
		if first, err = firstMissingLocal(a.ctx, a.src, lo, hi); err != nil {
			return nil, nil, err
		}
		if entries, err = a.src.Entries(a.ctx, lo, first); err != nil {
			return nil, nil, fmt.Errorf("verify: entries [%d, %d): %w", lo, first, err)
		}
	}
	return entries, fail(KindMissing, int64(first), nil, "the entry is missing from storage although the log's size covers it"), nil
}

// checkChunk replays entries from index lo and compares the stored
// hashes; it reports the failure at the smallest index.
func (a *localAudit) checkChunk(lo uint64, entries [][]byte) error {
	if len(entries) == 0 {
		return nil
	}
	var bad []*Failure
	if a.counter != nil && a.suspect == nil {
		if f, err := a.checkCounts(lo, uint64(len(entries))); err != nil {
			return err
		} else if f != nil {
			bad = append(bad, f)
		}
	}
	var xs []int64
	var want []tlog.Hash
	visit := func(x int64, h tlog.Hash) {
		xs = append(xs, x)
		want = append(want, h)
	}
	for _, e := range entries {
		if _, err := a.rp.add(e, visit); err != nil {
			var f *Failure
			if !errors.As(err, &f) {
				return err
			}
			bad = append(bad, f)
			break
		}
	}
	if a.suspect == nil {
		if f, err := a.compareStored(xs, want); err != nil {
			return err
		} else if f != nil {
			bad = append(bad, f)
		}
	}
	if a.checker != nil {
		// After the tree's failures, so that a tree failure is named
		// first at the same index.
		envs, err := a.envs.Envelopes(a.ctx, lo, lo+uint64(len(entries)))
		if err != nil {
			return fmt.Errorf("verify: envelopes [%d, %d): %w", lo, lo+uint64(len(entries)), err)
		}
		if len(envs) != len(entries) {
			return fmt.Errorf("verify: %d envelopes for entries [%d, %d)", len(envs), lo, lo+uint64(len(entries)))
		}
		if f := a.checker.checkEnvelopes(lo, entries, envs); f != nil {
			bad = append(bad, f)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	f := slices.MinFunc(bad, func(x, y *Failure) int {
		return int(x.Index - y.Index)
	})
	if a.suspect != nil && a.suspect.record < f.Index {
		// The replay cannot reach the next signed root to settle the
		// suspect: report it as what it certainly is, a stored hash that
		// does not match the entries.
		return a.resolve(nil)
	}
	return f
}

// checkCounts checks that each row of [lo, lo+n) holds exactly the hashes
// its index completes: 1 + the number of trailing one bits.
func (a *localAudit) checkCounts(lo, n uint64) (*Failure, error) {
	counts, err := a.counter.StoredHashCounts(a.ctx, lo, lo+n)
	if err != nil {
		return nil, fmt.Errorf("verify: stored hashes of [%d, %d): %w", lo, lo+n, err)
	}
	for i, c := range counts {
		idx := lo + uint64(i)
		if want := 1 + bits.TrailingZeros64(^idx); c != want {
			return fail(KindHash, int64(idx), nil,
				"the row holds %d tree hashes where index %d completes %d: it was moved from another index", c, idx, want), nil
		}
	}
	return nil, nil
}

// compareStored compares the stored hashes at xs with the recomputed
// ones. A leaf that differs names its entry at once; an interior hash
// that differs becomes the suspect that the next signed root decides.
func (a *localAudit) compareStored(xs []int64, want []tlog.Hash) (*Failure, error) {
	got, err := a.hr.ReadHashes(xs)
	if err != nil {
		return locateUnreadable(a.hr, xs, err)
	}
	for i := range xs {
		if got[i] == want[i] {
			continue
		}
		rec, level := recordOf(xs[i])
		if level == 0 {
			return fail(KindHash, rec, nil, "the stored leaf hash does not match the entry's bytes (the entry or its hash was edited)"), nil
		}
		a.suspect = &suspect{record: rec, level: int64(level)}
		return nil, nil
	}
	return nil, nil
}

// checkAt checks every checkpoint of the size replayed so far.
func (a *localAudit) checkAt() error {
	at := a.rp.size()
	for len(a.stored) > 0 && a.stored[0] <= at {
		s := a.stored[0]
		a.stored = a.stored[1:]
		if len(a.stored) == 0 {
			if err := a.listMore(); err != nil {
				return err
			}
		}
		if err := a.checkStoredCheckpoint(s); err != nil {
			return err
		}
	}
	for _, t := range a.targets {
		if t.c.Size != at {
			continue
		}
		if err := a.checkRoot(t); err != nil {
			return err
		}
	}
	return nil
}

func (a *localAudit) checkStoredCheckpoint(s uint64) error {
	raw, err := a.lister.CheckpointAt(a.ctx, s)
	if err != nil {
		return fmt.Errorf("verify: checkpoint %d: %w", s, err)
	}
	what := fmt.Sprintf("stored checkpoint of size %d", s)
	c, err := openCheckpoint(raw, a.o, what)
	if err != nil {
		return err
	}
	if c.Size != s {
		return fail(KindSignature, -1, nil, "%s claims size %d", what, c.Size)
	}
	if a.latest != nil && c.Origin != a.latest.Origin {
		return fail(KindSignature, -1, ledger.ErrWrongOrigin, "%s is for log %q, the latest for %q", what, c.Origin, a.latest.Origin)
	}
	if err := a.checkRoot(target{c: c, what: what}); err != nil {
		return err
	}
	a.res.Checkpoints++
	return nil
}

// checkRoot compares the replayed root with t's, which has the replay's
// size, and settles a suspect interior hash.
func (a *localAudit) checkRoot(t target) error {
	root, err := a.rp.root()
	if err != nil {
		return err
	}
	if root == t.c.Hash {
		if err := a.resolve(nil); err != nil {
			return err
		}
		a.goodUpTo = t.c.Size
		return nil
	}
	if s := a.suspect; s != nil {
		first := s.record + 1 - 1<<uint(s.level)
		return fail(KindEntry, max(first, int64(a.goodUpTo)), nil,
			"the entries do not match the tree the log stored and signed: the subtree over entries [%d, %d] differs (entries moved or replaced)", first, s.record)
	}
	if t.trusted {
		return fail(KindConsistency, -1, nil,
			"the log is not an extension of the trusted checkpoint: its tree of size %d has another root", t.c.Size)
	}
	return fail(KindRoot, int64(a.goodUpTo), nil,
		"entries [%d, %d) do not hash to the root signed by the %s (size %d)", a.goodUpTo, t.c.Size, t.what, t.c.Size)
}

// resolve reports a pending suspect interior hash when the entries turned
// out to match a signed root (or no later root can tell): the stored hash
// itself was edited. Otherwise it returns next.
func (a *localAudit) resolve(next *Failure) error {
	if s := a.suspect; s != nil {
		first := s.record + 1 - 1<<uint(s.level)
		return fail(KindHash, s.record, nil,
			"the stored hash of the subtree over entries [%d, %d] does not match them (the stored hash was edited)", first, s.record)
	}
	if next != nil {
		return next
	}
	return nil
}

// checkCoverage runs after the replay: the checkpoints must not cover
// more entries than the source holds, and there must be one.
func (a *localAudit) checkCoverage() error {
	for _, t := range a.targets {
		if t.c.Size > a.size {
			return fail(KindMissing, int64(a.size), nil,
				"the %s covers %d entries but the log holds %d: entries [%d, %d) are gone",
				t.what, t.c.Size, a.size, a.size, t.c.Size)
		}
	}
	if a.latest == nil {
		return fail(KindMissing, -1, ledger.ErrNotFound,
			"the log holds %d entries but no signed checkpoint: its checkpoints were deleted", a.size)
	}
	return nil
}

// recordOf returns the entry whose append stored hash x.
func recordOf(x int64) (record int64, level int) {
	level, n := tlog.SplitStoredHashIndex(x)
	return (n+1)<<uint(level) - 1, level
}

// locateUnreadable finds the first stored hash that cannot be read.
func locateUnreadable(hr tlog.HashReader, xs []int64, cause error) (*Failure, error) {
	sorted := slices.Clone(xs)
	slices.SortFunc(sorted, func(x, y int64) int {
		rx, _ := recordOf(x)
		ry, _ := recordOf(y)
		return int(rx - ry)
	})
	for _, x := range sorted {
		if _, err := hr.ReadHashes([]int64{x}); err != nil {
			rec, _ := recordOf(x)
			return fail(KindHash, rec, err, "a stored hash cannot be read"), nil
		}
	}
	return nil, fmt.Errorf("verify: read stored hashes: %w", cause)
}

// firstMissingLocal bisects [lo, hi) for the first entry the source
// cannot return.
func firstMissingLocal(ctx context.Context, src Source, lo, hi uint64) (uint64, error) {
	good, bad := lo, hi // [lo, good) reads; [lo, bad) does not
	for bad-good > 1 {
		mid := (good + bad) / 2
		if _, err := src.Entries(ctx, lo, mid); err == nil {
			good = mid
		} else if errors.Is(err, ledger.ErrNotFound) {
			bad = mid
		} else {
			return 0, fmt.Errorf("verify: entries [%d, %d): %w", lo, mid, err)
		}
	}
	return good, nil
}
