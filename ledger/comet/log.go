package comet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	cs "github.com/cometbft/cometbft/consensus"
	"github.com/cometbft/cometbft/mempool"
	"github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/rpc/client/local"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"
	"github.com/cometbft/cometbft/types"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/healthgw/healthgw/ledger"
)

// Log is the consortium ledger as seen from one node: Append submits
// through the node and returns once the entry is committed; the read
// methods serve this node's committed state. It implements ledger.Log.
type Log struct {
	app           *App
	node          *node.Node
	rpc           *local.Local
	chainID       string
	gateway       GatewayKey
	signer        note.Signer
	origin        string
	appendTimeout time.Duration
	logger        *slog.Logger
	halt          *haltState

	closeOnce sync.Once
	closeErr  error
	done      chan struct{}

	cpMu       sync.Mutex
	cpHeight   int64
	checkpoint []byte
}

var (
	_ ledger.Store           = (*Log)(nil)
	_ ledger.GenesisGateways = (*Log)(nil)
	_ ledger.RepeatAnswerer  = (*Log)(nil)
	_ ledger.EntryFinder     = (*Log)(nil)
)

// AnswersRepeats implements ledger.RepeatAnswerer: AppendEnvelope of an
// envelope whose entry is committed returns its index, and the
// application refuses a second transaction carrying it
// (CodeDuplicateEntry), so a gateway retrying a write whose outcome is
// unknown submits the first envelope again and never appends it twice.
func (*Log) AnswersRepeats() {}

// ErrReadOnly: the node has no gateway key, so it replicates and serves
// the log but cannot append to it.
var ErrReadOnly = errors.New("comet: read-only node (no gateway key)")

// AppendEnvelope submits the entry of env (authored by this node's
// gateway: see Gateway), signed by this node's gateway, and returns its index
// once the block that holds it is committed on this node (and so signed by
// more than two thirds of the voting power). The entry's Time is the block
// time. If the entry is not committed within the append timeout (no quorum,
// the node cannot reach its peers) Append returns an error wrapping
// ledger.ErrUnavailable; the entry was not acknowledged, but a transaction
// that reached a mempool may still be committed later.
func (l *Log) AppendEnvelope(ctx context.Context, env ledger.Envelope) (uint64, error) {
	if err := l.usable(); err != nil {
		return 0, fmt.Errorf("append: %w", err)
	}
	if l.gateway.ID == "" {
		return 0, fmt.Errorf("append: %w: %w", ledger.ErrUnavailable, ErrReadOnly)
	}
	tx, id, err := SignTx(l.chainID, l.gateway.ID, l.gateway.PrivateKey, env)
	if err != nil {
		return 0, fmt.Errorf("append: %w", err)
	}
	if _, err := l.app.parseOwn(tx); err != nil {
		return 0, fmt.Errorf("append: rejected by the ledger application: %w", err)
	}
	seal := ledger.Seal(env.Header)
	idx, ok, checked, err := l.committedEntry(seal)
	if err != nil {
		return 0, fmt.Errorf("append: %w", err)
	} else if ok {
		l.alreadyCommitted(idx)
		return idx, nil
	}
	ctx, cancel := context.WithTimeout(ctx, l.appendTimeout)
	defer cancel()

	res, err := l.broadcast(ctx, tx)
	switch {
	case errors.Is(err, mempool.ErrTxInCache):
		// Already submitted: wait for it like any other.
	case err != nil:
		return 0, l.unavailable(ctx, fmt.Errorf("submit: %w", err))
	case res.Code == CodeDuplicate, res.Code == CodeDuplicateEntry:
		// Already committed (this transaction, or another carrying the
		// same entry): waitCommitted finds its index.
	case res.Code != CodeOK:
		return 0, fmt.Errorf("append: rejected by the ledger application: %w (%s)", errOfCode(res.Code), res.Log)
	}
	return l.waitCommitted(ctx, id, seal, checked)
}

// FindEntry implements ledger.EntryFinder: the index of the committed
// entry sealed seal, if there is one (a gateway at start settles the
// envelopes it kept for a retry whose entries were committed meanwhile).
func (l *Log) FindEntry(_ context.Context, seal ledger.Digest) (uint64, bool, error) {
	idx, ok, _, err := l.committedEntry(seal)
	return idx, ok, err
}

// committedEntry returns the index of the committed entry sealed seal,
// once readers can see it. If there is none, it returns the height up to
// which the database said so: no block up to it holds the entry, nor any
// transaction carrying it (a transaction is indexed only with its entry).
func (l *Log) committedEntry(seal ledger.Digest) (idx uint64, ok bool, checked int64, err error) {
	st := l.app.Committed()
	idx, ok, err = l.app.store.sealIndex(seal)
	if err != nil {
		return 0, false, -1, err
	}
	if !ok || idx >= st.Size {
		return 0, false, st.Height, nil
	}
	return idx, true, st.Height, nil
}

// alreadyCommitted notes that an appended entry was in the log already
// (a repeat of a write whose first transaction was committed): the
// append answers with the first one's index.
func (l *Log) alreadyCommitted(idx uint64) {
	l.logger.Info("ledger entry already committed: the append returns its index", slog.Uint64("index", idx))
}

// broadcast runs BroadcastTxSync (CheckTx on this node, then gossip to
// peers) and gives up when ctx is done.
func (l *Log) broadcast(ctx context.Context, tx []byte) (*ctypes.ResultBroadcastTx, error) {
	type result struct {
		res *ctypes.ResultBroadcastTx
		err error
	}
	ch := make(chan result, 1)
	go func() {
		res, err := l.rpc.BroadcastTxSync(ctx, tx)
		ch <- result{res, err}
	}()
	select {
	case r := <-ch:
		return r.res, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-l.done:
		return nil, ledger.ErrClosed
	}
}

// waitCommitted waits until transaction id is committed on this node and
// returns the index of its entry. checked is the height up to which the
// database said that neither the transaction nor its entry is committed
// (-1: not looked).
//
// Appenders read the database only when they may have missed a block:
// all the appenders of a node wake at each of its commits, and their
// reads (two each, several hundred at once) were the most contended
// lock of the append path in a mutex profile (goleveldb's version and
// table cache locks, which the mempool's CheckTx also takes).
func (l *Log) waitCommitted(ctx context.Context, id TxID, seal ledger.Digest, checked int64) (uint64, error) {
	for {
		st, last, next := l.app.lastCommitted()
		fresh := checked >= 0 && st.Height == checked
		if fresh || (checked >= 0 && last.height == st.Height && st.Height == checked+1) {
			// No block since the last look, or one, and what it
			// appended says all, without reading the database.
			if !fresh {
				if idx, ok := last.txs[id]; ok {
					return idx, nil
				}
				if idx, ok := last.seals[seal]; ok {
					l.alreadyCommitted(idx)
					return idx, nil
				}
			}
			checked = st.Height
			if reason, refused := l.app.refusal(id); refused {
				return 0, fmt.Errorf("append: %w: the entry was not appended, and will not be: %s", ErrRefused, reason)
			}
			select {
			case <-next:
				continue
			case <-l.done:
				return 0, fmt.Errorf("append: %w (entry not acknowledged)", ledger.ErrClosed)
			case <-ctx.Done():
				return 0, l.unavailable(ctx, fmt.Errorf("entry not committed: %w", ctx.Err()))
			}
		}
		idx, ok, err := l.app.store.txIndex(id)
		if err != nil {
			return 0, fmt.Errorf("append: %w", err)
		}
		// The index is written before the committed size moves; only
		// report it once readers can see it.
		if ok && idx < st.Size {
			return idx, nil
		}
		// Another transaction carrying the same entry was committed
		// (an earlier attempt of this write): this one was or will be
		// refused as a duplicate (CodeDuplicateEntry), and the entry's
		// index is the answer.
		if idx, ok, err := l.app.store.sealIndex(seal); err != nil {
			return 0, fmt.Errorf("append: %w", err)
		} else if ok && idx < st.Size {
			l.alreadyCommitted(idx)
			return idx, nil
		}
		checked = st.Height
		if reason, refused := l.app.refusal(id); refused {
			return 0, fmt.Errorf("append: %w: the entry was not appended, and will not be: %s", ErrRefused, reason)
		}
		select {
		case <-next:
		case <-l.done:
			return 0, fmt.Errorf("append: %w (entry not acknowledged)", ledger.ErrClosed)
		case <-ctx.Done():
			return 0, l.unavailable(ctx, fmt.Errorf("entry not committed: %w", ctx.Err()))
		}
	}
}

// unavailable explains why an append failed: how long ago the last block
// was committed and how many peers this node has.
func (l *Log) unavailable(ctx context.Context, cause error) error {
	if l.isClosed() && !errors.Is(cause, ledger.ErrClosed) {
		return fmt.Errorf("%w: %w (entry not acknowledged)", ledger.ErrClosed, cause)
	}
	s := l.Status()
	detail := fmt.Sprintf("height %d, %d peers", s.Height, s.Peers)
	if !s.LastBlockTime.IsZero() {
		detail += fmt.Sprintf(", last block %s ago", time.Since(s.LastBlockTime).Round(time.Millisecond))
	}
	if s.CatchingUp {
		detail += ", catching up"
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		detail += "; the consortium may have lost its quorum (more than 2/3 of the voting power must be online)"
	}
	return fmt.Errorf("%w: %w (%s); the entry was not acknowledged", ledger.ErrUnavailable, cause, detail)
}

// usable returns ledger.ErrClosed once the log is closed and a HaltError
// once consensus stopped on this node: a halted node's committed state may
// be one no quorum agreed on, so it is not served.
func (l *Log) usable() error {
	if l.isClosed() {
		return ledger.ErrClosed
	}
	return l.halt.err()
}

// Ready reports whether the node serves and can write: nil unless it is
// closed, its consensus halted (HaltError, naming CometBFT's reason), or
// a genesis gateway has not registered its sealing key yet (an error
// wrapping ErrUnregistered and ledger.ErrUnavailable, naming them; see
// WaitRegistered).
func (l *Log) Ready(context.Context) error {
	if err := l.usable(); err != nil {
		return err
	}
	if missing := l.app.Unregistered(); len(missing) > 0 {
		return unregisteredError(missing)
	}
	return nil
}

// ErrUnregistered: a genesis gateway has not registered its sealing key
// (gateway.registered) yet, so an entry sealed now could not be opened by
// it. Every gateway registers itself when it first opens its ledger.
var ErrUnregistered = errors.New("comet: a consortium gateway has not registered its sealing key yet")

func unregisteredError(missing []string) error {
	return fmt.Errorf("%w: %w: %s (each registers when its gateway first starts)", ledger.ErrUnavailable, ErrUnregistered, strings.Join(missing, ", "))
}

// WaitRegistered implements ledger.RegistrationWaiter: it returns once
// every genesis gateway's gateway.registered is committed on this node,
// so that the gateway seals every entry to all of them (until recipients
// are narrowed to each entry's parties, every registered gateway is a
// recipient). It gives up after the append timeout, or when ctx is done,
// with an error wrapping ErrUnregistered and ledger.ErrUnavailable that
// names the missing gateways: nothing was submitted.
func (l *Log) WaitRegistered(ctx context.Context) error {
	if err := l.usable(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, l.appendTimeout)
	defer cancel()
	for {
		_, next := l.app.committedAndNext()
		missing := l.app.Unregistered()
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-next:
		case <-l.done:
			return ledger.ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", unregisteredError(missing), ctx.Err())
		}
	}
}

var _ ledger.RegistrationWaiter = (*Log)(nil)

func (l *Log) isClosed() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// Size returns the number of committed entries.
func (l *Log) Size(context.Context) (uint64, error) {
	if err := l.usable(); err != nil {
		return 0, err
	}
	return l.app.Committed().Size, nil
}

// Entries returns the canonical encodings of committed entries
// [start, end).
func (l *Log) Entries(_ context.Context, start, end uint64) ([][]byte, error) {
	if err := l.usable(); err != nil {
		return nil, err
	}
	if start > end {
		return nil, fmt.Errorf("%w: entries [%d, %d)", ledger.ErrInvalidRange, start, end)
	}
	if size := l.app.Committed().Size; end > size {
		return nil, fmt.Errorf("%w: entries up to %d, log size %d", ledger.ErrNotFound, end, size)
	}
	if start == end {
		return [][]byte{}, nil
	}
	return l.app.store.entries(start, end)
}

// Envelopes implements ledger.Store: the envelopes of committed entries
// [start, end).
func (l *Log) Envelopes(_ context.Context, start, end uint64) ([]ledger.Envelope, error) {
	if err := l.usable(); err != nil {
		return nil, err
	}
	if start > end {
		return nil, fmt.Errorf("%w: envelopes [%d, %d)", ledger.ErrInvalidRange, start, end)
	}
	if size := l.app.Committed().Size; end > size {
		return nil, fmt.Errorf("%w: envelopes up to %d, log size %d", ledger.ErrNotFound, end, size)
	}
	if start == end {
		return []ledger.Envelope{}, nil
	}
	return l.app.store.envelopes(start, end)
}

// GenesisGateways implements ledger.GenesisGateways.
func (l *Log) GenesisGateways() map[string]ledger.GatewayKeys { return l.app.GenesisGateways() }

// Gateway returns this node's gateway key (ID "" on a read-only node):
// the node key the gateway signs its entries with.
func (l *Log) Gateway() GatewayKey { return l.gateway }

// ReadHashes returns the stored hashes at the given tlog storage indexes.
// Only hashes of committed entries are served.
func (l *Log) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	if err := l.usable(); err != nil {
		return nil, err
	}
	limit := tlog.StoredHashCount(int64(l.app.Committed().Size))
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= limit {
			return nil, fmt.Errorf("%w: stored hash %d", ledger.ErrNotFound, x)
		}
		h, err := l.app.store.hash(x)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// Checkpoint returns a signed checkpoint of the committed log (see
// MarshalCheckpoint), signed with this node's key. It is cached per
// height.
func (l *Log) Checkpoint(context.Context) ([]byte, error) {
	if err := l.usable(); err != nil {
		return nil, err
	}
	st := l.app.Committed()
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	if l.checkpoint != nil && l.cpHeight == st.Height {
		return l.checkpoint, nil
	}
	text := MarshalCheckpoint(l.origin, l.chainID, st)
	signed, err := note.Sign(&note.Note{Text: string(text)}, l.signer)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	l.cpHeight, l.checkpoint = st.Height, signed
	return signed, nil
}

// WaitCheckpoint returns a signed checkpoint covering at least size
// entries. Append returns only once its entry is committed, so the
// latest checkpoint already covers it; WaitCheckpoint exists so that
// callers of the ledger.CheckpointWaiter interface need not poll.
func (l *Log) WaitCheckpoint(ctx context.Context, size uint64) ([]byte, error) {
	if err := l.usable(); err != nil {
		return nil, err
	}
	if st := l.app.Committed(); size > st.Size {
		return nil, fmt.Errorf("%w: checkpoint of size %d, log size %d", ledger.ErrNotFound, size, st.Size)
	}
	return l.Checkpoint(ctx)
}

var _ ledger.CheckpointWaiter = (*Log)(nil)

// CheckpointAt implements ledger.CheckpointHistory: a checkpoint of exactly
// size entries, signed with this node's key. The latest size's is the
// latest checkpoint; an earlier size's names the first block after which
// the log had that size (whose successor's header carries its root), and
// ledger.ErrNotFound if no block ended at that size.
func (l *Log) CheckpointAt(ctx context.Context, size uint64) ([]byte, error) {
	if err := l.usable(); err != nil {
		return nil, err
	}
	st := l.app.Committed()
	switch {
	case size == st.Size:
		return l.Checkpoint(ctx)
	case size > st.Size:
		return nil, fmt.Errorf("checkpoint of size %d, log size %d: %w", size, st.Size, ledger.ErrNotFound)
	}
	h, ok, err := l.app.store.heightOf(size)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("checkpoint of size %d: no block ended at that size: %w", size, ledger.ErrNotFound)
	}
	root, err := tlog.TreeHash(int64(size), l)
	if err != nil {
		return nil, fmt.Errorf("checkpoint of size %d: %w", size, err)
	}
	text := MarshalCheckpoint(l.origin, l.chainID, State{Height: h, Size: size, Root: root})
	signed, err := note.Sign(&note.Note{Text: string(text)}, l.signer)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return signed, nil
}

var _ ledger.CheckpointHistory = (*Log)(nil)

// Status describes this node.
type Status struct {
	ChainID string
	Gateway string
	NodeID  string
	// Height, Size and Root are the last committed block and the log
	// after it.
	Height int64
	Size   uint64
	Root   tlog.Hash
	// LastBlockTime is the time of the last committed block (zero before
	// the first).
	LastBlockTime time.Time
	// BlockBase is the lowest block this node still stores (above 1 once
	// blocks were pruned).
	BlockBase int64
	// Peers is the number of connected peers.
	Peers int
	// CatchingUp is true while the node is block-syncing.
	CatchingUp bool
}

// Status reports this node's position and connectivity.
func (l *Log) Status() Status {
	st := l.app.Committed()
	s := Status{
		ChainID:    l.chainID,
		Gateway:    l.gateway.ID,
		NodeID:     string(l.node.NodeInfo().ID()),
		Height:     st.Height,
		Size:       st.Size,
		Root:       st.Root,
		BlockBase:  l.node.BlockStore().Base(),
		Peers:      l.node.Switch().Peers().Size(),
		CatchingUp: l.node.ConsensusReactor().WaitSync(),
	}
	if st.Height > 0 {
		if m := l.node.BlockStore().LoadBlockMeta(st.Height); m != nil {
			s.LastBlockTime = m.Header.Time
		}
	}
	return s
}

// NextCommit returns a channel that is closed when this node next commits
// a block, for callers that wait for the node to move.
func (l *Log) NextCommit() <-chan struct{} {
	_, ch := l.app.committedAndNext()
	return ch
}

// Close stops the node and closes the ledger database. Appends still
// waiting return ledger.ErrClosed.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		close(l.done)
		l.app.closing.Store(true)
		var errs []error
		if err := l.node.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stop comet node: %w", err))
		}
		l.node.Wait()
		if err := l.app.closeDB(); err != nil {
			errs = append(errs, fmt.Errorf("close ledger database: %w", err))
		}
		l.closeErr = errors.Join(errs...)
		l.logger.Info("consortium ledger node stopped", slog.String("gateway", l.gateway.ID))
	})
	return l.closeErr
}

// Origin returns the checkpoint origin line.
func (l *Log) Origin() string { return l.origin }

// ErrBehind: this node has not applied a block that it knows is
// committed (a peer reports it), within the caller's deadline.
var ErrBehind = errors.New("comet: ledger not caught up")

// replicationPoll is how often WaitReplicated looks at its peers'
// heights: CometBFT has no event for a peer's new height.
const replicationPoll = 2 * time.Millisecond

// Head returns the size of the log after the newest block this node knows
// to be committed: its own last commit or one a connected peer reports
// (a peer at consensus height h has committed h-1). If a peer is ahead,
// Head waits until this node has applied that block; it gives up when ctx
// is done with an error wrapping ErrBehind and ledger.ErrUnavailable.
//
// A read that decides on the projection at Head therefore decides under
// every entry this node knows is committed.
func (l *Log) Head(ctx context.Context) (uint64, error) {
	if err := l.usable(); err != nil {
		return 0, err
	}
	known, _ := l.peerHeights()
	for {
		st, next := l.app.committedAndNext()
		if st.Height >= known {
			return st.Size, nil
		}
		select {
		case <-next:
		case <-l.done:
			return 0, ledger.ErrClosed
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: %w: this node is at height %d, its peers committed %d: %w",
				ledger.ErrUnavailable, ErrBehind, st.Height, known, ctx.Err())
		}
	}
}

// peerHeights returns the highest and the lowest height that this node's
// connected peers report committed (a peer at consensus height h has
// committed h-1), each starting from this node's own committed height.
func (l *Log) peerHeights() (high, low int64) {
	own := l.app.Height()
	high, low = own, own
	first := true
	for _, p := range l.node.Switch().Peers().List() {
		ps, ok := p.Get(types.PeerStateKey).(*cs.PeerState)
		if !ok {
			continue
		}
		ph := ps.GetHeight() - 1
		high = max(high, ph)
		if first || ph < low {
			low, first = ph, false
		}
	}
	return high, low
}

// WaitReplicated waits until every connected peer reports that it has
// committed the block holding entry size-1 (or ctx is done: the entry is
// committed either way, and a node that lags behind catches up in Head
// before it decides). Revocations wait for it, so that a read started at
// any connected node after the revocation is acknowledged decides under
// it.
func (l *Log) WaitReplicated(ctx context.Context, size uint64) error {
	if err := l.usable(); err != nil {
		return err
	}
	st := l.app.Committed()
	if st.Size < size {
		return fmt.Errorf("%w: entry %d is not committed here (size %d)", ledger.ErrNotFound, size-1, st.Size)
	}
	var t *time.Ticker
	for {
		if _, low := l.peerHeights(); low >= st.Height {
			return nil
		}
		if t == nil {
			t = time.NewTicker(replicationPoll)
			defer t.Stop()
		}
		select {
		case <-t.C:
		case <-l.done:
			return ledger.ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("%w: not every peer has committed height %d: %w", ledger.ErrUnavailable, st.Height, ctx.Err())
		}
	}
}

// Committed returns a channel that is closed by this node's next Commit,
// so that followers apply other nodes' entries as soon as they arrive
// instead of polling.
func (l *Log) Committed() <-chan struct{} {
	_, next := l.app.committedAndNext()
	return next
}
