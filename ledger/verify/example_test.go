package verify_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/healthgw/healthgw/database"
	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/gormlog"
	"github.com/healthgw/healthgw/ledger/tiles"
	"github.com/healthgw/healthgw/ledger/verify"
)

func ExampleRemote() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "verify-example")
	defer os.RemoveAll(dir)
	db, _ := database.Open(ctx, filepath.Join(dir, "healthgw.db"))
	defer database.Close(db)
	signer, vkey, _ := ledger.LoadOrCreateCheckpointKey(filepath.Join(dir, "checkpoint.key"), "healthgw.example/ledger")
	store, _ := gormlog.Open(ctx, db, gormlog.Options{Signer: signer})
	l, err := ledger.OpenNode(ctx, store, exampleIdentity()) // entry 0 registers the gateway
	if err != nil {
		panic(err)
	}
	defer l.Close()
	pseudonym := "ps_" + strings.Repeat("3f", 32)
	for _, id := range []string{"c-1", "c-2", "c-3"} {
		e, _ := ledger.NewEntry(ledger.PatientOrg(pseudonym), &ledger.ConsentRevoked{ConsentID: id, Patient: pseudonym})
		if _, err := l.Append(ctx, e); err != nil {
			panic(err)
		}
	}
	if _, err := store.WaitCheckpoint(ctx, 4); err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ledger/", tiles.New(l, tiles.Options{Prefix: "/ledger"}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// The public's side: only the URL and the checkpoint verifier key. It
	// learns how many entries of which kinds, nothing of their bodies.
	v, _ := ledger.ParseVerifierKey(vkey)
	res, err := verify.Remote(ctx, srv.URL+"/ledger/", nil, verify.Options{Verifier: v})
	if err != nil {
		panic(err) // a *verify.Failure names the first bad entry
	}
	fmt.Println(res.Entries, res.Types[ledger.TypeConsentRevoked])
	// Output: 4 3
}

// exampleIdentity returns a gateway identity with fresh keys (a gateway
// keeps them in its data directory).
func exampleIdentity() ledger.Identity {
	_, nodeKey, _ := ed25519.GenerateKey(rand.Reader)
	sealKey, _ := ledger.NewSealKey()
	secret := make([]byte, ledger.PseudonymKeySize)
	rand.Read(secret)
	ps, _ := ledger.NewPseudonymizer(secret)
	return ledger.Identity{Gateway: "gw-example", BaseURL: "https://gw.example", NodeKey: nodeKey, SealKey: sealKey, Pseudonyms: ps}
}
