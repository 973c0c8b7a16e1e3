package comet

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	abcicli "github.com/cometbft/cometbft/abci/client"
	abci "github.com/cometbft/cometbft/abci/types"
)

// concurrentApp counts CheckTx calls and the most that ran at once.
type concurrentApp struct {
	abci.BaseApplication
	running, most atomic.Int64
	gate          chan struct{} // CheckTx waits on it once two run at once
}

func (a *concurrentApp) CheckTx(_ context.Context, req *abci.RequestCheckTx) (*abci.ResponseCheckTx, error) {
	n := a.running.Add(1)
	defer a.running.Add(-1)
	for {
		m := a.most.Load()
		if n <= m || a.most.CompareAndSwap(m, n) {
			break
		}
	}
	if n >= 2 {
		close(a.gate) // only the first pair gets here: two at once
	} else {
		<-a.gate
	}
	code := uint32(0)
	if string(req.Tx) == "bad" {
		code = 1
	}
	return &abci.ResponseCheckTx{Code: code}, nil
}

func TestCheckTxClientRunsCheckTxConcurrently(t *testing.T) {
	app := &concurrentApp{gate: make(chan struct{})}
	cli, err := checkTxClientCreator{app: app}.NewABCIClient()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	global := map[string]uint32{}
	cli.SetResponseCallback(func(req *abci.Request, res *abci.Response) {
		mu.Lock()
		defer mu.Unlock()
		global[string(req.GetCheckTx().Tx)] = res.GetCheckTx().Code
	})
	var wg sync.WaitGroup
	got := make([]uint32, 2)
	for i, tx := range []string{"good", "bad"} {
		wg.Go(func() {
			rr, err := cli.CheckTxAsync(t.Context(), &abci.RequestCheckTx{Tx: []byte(tx)})
			if err != nil {
				t.Error(err)
				return
			}
			var calls int
			rr.SetCallback(func(res *abci.Response) {
				calls++
				got[i] = res.GetCheckTx().Code
			})
			rr.Wait()
			if calls != 1 {
				t.Errorf("%s: request callback called %d times, want 1", tx, calls)
			}
		})
	}
	wg.Wait()
	if m := app.most.Load(); m != 2 {
		t.Errorf("at most %d CheckTx at once, want 2", m)
	}
	if fmt.Sprint(got) != "[0 1]" {
		t.Errorf("request callbacks saw codes %v, want [0 1]", got)
	}
	if global["good"] != 0 || global["bad"] != 1 || len(global) != 2 {
		t.Errorf("response callback saw %v, want good=0 bad=1", global)
	}
}

var _ abcicli.Client = (*checkTxClient)(nil)
