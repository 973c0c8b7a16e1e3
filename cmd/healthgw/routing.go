package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/healthgw/healthgw/consortium/routing"
	"github.com/healthgw/healthgw/ledger"
)

// custodianOf is the consortium's patient custodian: --custodian, or the
// first genesis gateway in ID order. It must be a genesis gateway.
func custodianOf(cfg serveConfig, store ledger.Store) (string, error) {
	g, ok := store.(ledger.GenesisGateways)
	if !ok {
		return "", errors.New("--ledger comet: the ledger has no genesis gateways")
	}
	ids := make([]string, 0, len(g.GenesisGateways()))
	for id := range g.GenesisGateways() {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if len(ids) == 0 {
		return "", errors.New("--ledger comet: the genesis names no gateway")
	}
	if cfg.Custodian == "" {
		return ids[0], nil
	}
	if !slices.Contains(ids, cfg.Custodian) {
		return "", fmt.Errorf("--custodian %q is not a gateway of the consortium (%v)", cfg.Custodian, ids)
	}
	return cfg.Custodian, nil
}

// route is the gateway's recipients hook on a consortium ledger
// (ledger.Identity.Recipients): the parties of e under the consortium's
// policy (consortium/routing), from the registry a as of the head, the
// registry projection (org kinds), the holders index (the holders of the
// patient's records this gateway knows of: at the custodian, all of them)
// and, for a revocation, the revoked grant. The projections are brought
// up to the log's size first.
func (g *gateway) route(ctx context.Context, e ledger.Entry, a *ledger.Authority) ([]string, error) {
	if g.registry == nil || g.records == nil || g.consent == nil || g.follower == nil {
		return nil, errors.New("the projections are not open yet")
	}
	size, err := g.store.Size(ctx)
	if err != nil {
		return nil, err
	}
	if err := g.follower.Sync(ctx, size); err != nil {
		return nil, err
	}
	regs, err := g.registry.List(ctx)
	if err != nil {
		return nil, err
	}
	f := routing.Facts{Custodian: g.custodian, Home: a.Home, Kinds: make(map[string]string, len(regs))}
	for _, r := range regs {
		f.Kinds[r.Org.ID] = string(r.Org.Kind)
	}
	switch b := e.Body.(type) {
	case *ledger.ConsentGranted:
		if f.Holders, err = g.records.Holders(ctx, b.Patient); err != nil {
			return nil, err
		}
	case *ledger.ConsentRevoked:
		if f.Holders, err = g.records.Holders(ctx, b.Patient); err != nil {
			return nil, err
		}
		gr, err := g.consent.Grant(ctx, b.ConsentID)
		if err != nil {
			return nil, err
		}
		f.Grantee = &ledger.Grantee{Org: gr.Grantee.Org, Kind: string(gr.Grantee.Kind)}
	}
	return routing.Recipients(e, f)
}
