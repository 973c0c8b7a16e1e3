package gormlog_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

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
	l, err := gormlog.Open(ctx, db, gormlog.Options{Signer: signer})
	if err != nil {
		panic(err)
	}
	defer l.Close() // flushes and publishes a final checkpoint; db stays open

	e, _ := ledger.NewEntry("org-a", &ledger.ConsentRevoked{ConsentID: "c-1", Patient: "ps_3f2a"})
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
	// Output: 0 consent.revoked 1
}
