package gormlog_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/gormlog"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "gormlog-example")
	defer os.RemoveAll(dir)

	db, err := database.Open(ctx, filepath.Join(dir, "healthgw.db"))
	if err != nil {
		panic(err)
	}
	defer database.Close(db)
	signer, vkey, err := ledger.LoadOrCreateCheckpointKey(filepath.Join(dir, "checkpoint.key"), "healthgw.example/ledger")
	if err != nil {
		panic(err)
	}
	store, err := gormlog.Open(ctx, db, gormlog.Options{Signer: signer})
	if err != nil {
		panic(err)
	}
	// The gateway's node over the store signs and seals what it appends;
	// a new log's entry 0 registers the gateway.
	l, err := ledger.OpenNode(ctx, store, gatewayIdentity())
	if err != nil {
		panic(err)
	}
	defer l.Close() // flushes and publishes a final checkpoint; db stays open

	pseudonym := "ps_" + strings.Repeat("3f", 32)
	e, _ := ledger.NewEntry(ledger.PatientOrg(pseudonym), &ledger.ConsentRevoked{ConsentID: "c-1", Patient: pseudonym})
	index, err := l.Append(ctx, e) // returns once durable
	if err != nil {
		panic(err)
	}
	// A receipt: the entry, a signed checkpoint covering it, the proof.
	r, err := ledger.MakeReceipt(ctx, l, index)
	if err != nil {
		panic(err)
	}
	verifier, _ := ledger.ParseVerifierKey(vkey)
	got, err := ledger.VerifyReceipt(r, verifier, "healthgw.example/ledger")
	if err != nil {
		panic(err)
	}
	fmt.Println(index, got.Type, r.TreeSize)
	// Output: 1 consent.revoked 2
}

// gatewayIdentity returns a gateway identity with fresh keys (a gateway
// keeps them in its data directory: keys/gateway.key, keys/seal.key,
// keys/pseudonym.key).
func gatewayIdentity() ledger.Identity {
	_, nodeKey, _ := ed25519.GenerateKey(rand.Reader)
	sealKey, _ := ledger.NewSealKey()
	secret := make([]byte, ledger.PseudonymKeySize)
	rand.Read(secret)
	ps, _ := ledger.NewPseudonymizer(secret)
	return ledger.Identity{Gateway: "gw-example", BaseURL: "https://gw.example", NodeKey: nodeKey, SealKey: sealKey, Pseudonyms: ps}
}
