package main

import (
	"log/slog"
	"path/filepath"

	"github.com/healthgw/healthgw/api"
	"github.com/healthgw/healthgw/circuits/eligibility"
	"github.com/healthgw/healthgw/ledger"
)

// mountZK wires zero-knowledge eligibility: the Groth16 key directory
// (its circuits registered on the ledger when first loaded), the issuer
// keys under <data>/keys/issuers, and the use case behind the API.
//
// Challenges are signed with the gateway's challenge key (a 32-byte
// Ed25519 seed under <data>/keys/challenge.key, created on first start)
// whose public half is in the gateway's JWK Set as
// circuits.ChallengeKeyID.
func (g *gateway) mountZK(cfg serveConfig, logger *slog.Logger, appender ledger.Appender) {
	g.zkKeys = eligibility.NewKeyDir(cfg.ZKKeys, g.ledger, g.follower, g.zkstore, logger)
	issuers := eligibility.NewIssuerKeys(filepath.Join(cfg.DataDir, "keys", "issuers"), g.ledger, g.follower, g.zkstore)
	g.zk = eligibility.NewService(eligibility.Config{
		Store: g.zkstore, Keys: g.zkKeys, Issuers: issuers, Log: appender, Sync: g.follower,
		ChallengeKey: g.challengeKey,
	})
	g.api.MountZK(api.ZKDeps{Service: g.zk, Sync: g.follower})
}
