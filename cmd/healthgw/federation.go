package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/healthgw/healthgw/auth"
	"github.com/healthgw/healthgw/federation"
	"github.com/healthgw/healthgw/ledger"
)

// mountFederation wires federated reads (federation, docs/design/
// federation.md): the locator and reads at other members' gateways,
// signed with the gateway's node key and sealed to its sealing key, and
// the holder's side for the other members, which remembers the request
// tokens it accepted in replay (the gateway's database: a token stays
// refused after a restart).
func (g *gateway) mountFederation(id ledger.Identity, replay auth.ReplayCache, logger *slog.Logger) error {
	key, ok := id.NodeKey.(ed25519.PrivateKey)
	if !ok {
		return errors.New("federation: the gateway's node key is not an Ed25519 private key")
	}
	signer, err := federation.NewSigner(id.Gateway, key, g.clock.Now)
	if err != nil {
		return err
	}
	dir := fedDirectory{node: g.node}
	svc := federation.New(federation.Config{
		Self:      federation.Peer{Gateway: id.Gateway, BaseURL: id.BaseURL},
		Custodian: g.custodian,
		Signer:    signer,
		SealKey:   id.SealKey,
		Registry:  g.node,
		Directory: dir,
		Local:     g.access,
		HTTP:      fedHTTPClient(),
		Logger:    logger,
	})
	holder := federation.NewHolder(id.Gateway, key, g.node, g.registry, g.clock.Now)
	holder.UseReplayCache(replay)
	g.api.MountFederation(svc, holder)
	return nil
}

// fedHTTPClient is the client of the hops to other gateways: bounded
// dials and header waits (each hop is bounded as a whole by
// federation.DefaultHopTimeout), no redirects followed (a token is bound
// to its target).
func fedHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 3 * time.Second
	t.ResponseHeaderTimeout = federation.DefaultHopTimeout
	t.MaxIdleConnsPerHost = 16
	return &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// fedDirectory is federation.Directory over the ledger registry (org
// homes, gateways' base URLs).
type fedDirectory struct {
	node *ledger.Node
}

var _ federation.Directory = fedDirectory{}

func (d fedDirectory) Home(ctx context.Context, org string) (federation.Peer, bool, error) {
	gw, ok := d.node.Authority().Home(org)
	if !ok {
		return federation.Peer{}, false, nil
	}
	return d.Gateway(ctx, gw)
}

func (d fedDirectory) Gateway(_ context.Context, id string) (federation.Peer, bool, error) {
	gk, ok := d.node.Authority().Gateway(id)
	if !ok {
		return federation.Peer{}, false, nil
	}
	return federation.Peer{Gateway: id, BaseURL: gk.BaseURL}, true, nil
}
