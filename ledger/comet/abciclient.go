package comet

import (
	"context"
	"sync"

	abcicli "github.com/cometbft/cometbft/abci/client"
	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/proxy"
)

// checkTxClientCreator is proxy.NewConnSyncLocalClientCreator (one lock
// per ABCI connection) except that CheckTx runs without its
// connection's lock: the mempool's CheckTx calls (one per transaction,
// from every RPC submitter and from the goroutine of every peer that
// gossips one) run at once, on every CPU, instead of one after another.
//
// Measured with 256 submitters on four nodes in one process: the
// mempool connection's lock was the most contended lock after
// consensus's own (a mutex profile: 15 s of waiting in a 10 s round).
// CheckTx of a transaction from a peer parses it and verifies its two
// ed25519 signatures, 110–350 µs, and about 200 of them arrive at each
// node after every block, one after the other behind that lock.
//
// App is safe for it: CheckTx reads the committed state under App.mu
// (read lock), the database and the transaction cache (its own lock),
// and writes nothing (see App). CometBFT's CListMempool allows
// concurrent CheckTx (it holds its update lock for reading) and only
// relies on the connection for calling its response callback one at a
// time, which this client keeps. Every other call (consensus, query,
// snapshots, and Flush) still holds the connection's lock.
type checkTxClientCreator struct {
	app abci.Application
}

var _ proxy.ClientCreator = checkTxClientCreator{}

func (c checkTxClientCreator) NewABCIClient() (abcicli.Client, error) {
	return &checkTxClient{Client: abcicli.NewLocalClient(nil, c.app), app: c.app}, nil
}

// checkTxClient is a local ABCI client with an unlocked CheckTx (see
// checkTxClientCreator).
type checkTxClient struct {
	abcicli.Client
	app abci.Application

	cbMu sync.Mutex
	cb   abcicli.Callback
}

func (c *checkTxClient) SetResponseCallback(cb abcicli.Callback) {
	c.cbMu.Lock()
	c.cb = cb
	c.cbMu.Unlock()
	c.Client.SetResponseCallback(cb)
}

func (c *checkTxClient) CheckTx(ctx context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	return c.app.CheckTx(ctx, req)
}

// CheckTxAsync runs CheckTx on the caller's goroutine, calls the
// response callback (one at a time) and returns the request done, as
// the local client does.
func (c *checkTxClient) CheckTxAsync(ctx context.Context, req *abci.RequestCheckTx) (*abcicli.ReqRes, error) {
	res, err := c.app.CheckTx(ctx, req)
	if err != nil {
		return nil, err
	}
	areq, ares := abci.ToRequestCheckTx(req), abci.ToResponseCheckTx(res)
	c.cbMu.Lock()
	if c.cb != nil {
		c.cb(areq, ares)
	}
	c.cbMu.Unlock()
	rr := abcicli.NewReqRes(areq)
	rr.Response = ares
	rr.InvokeCallback() // no callback yet: marks it done, so SetCallback calls its own at once
	rr.Done()
	return rr, nil
}
