package verify_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

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
	l, _ := gormlog.Open(ctx, db, gormlog.Options{Signer: signer})
	defer l.Close()
	for _, id := range []string{"c-1", "c-2", "c-3"} {
		e, _ := ledger.NewEntry("org-a", &ledger.ConsentRevoked{ConsentID: id, Patient: "ps_3f2a"})
		if _, err := l.Append(ctx, e); err != nil {
			panic(err)
		}
	}
	if _, err := l.WaitCheckpoint(ctx, 3); err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ledger/", tiles.New(l, tiles.Options{Prefix: "/ledger"}))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// The regulator's side: only the URL and the verifier key.
	v, _ := ledger.ParseVerifierKey(vkey)
	res, err := verify.Remote(ctx, srv.URL+"/ledger/", nil, verify.Options{Verifier: v})
	if err != nil {
		panic(err) // a *verify.Failure names the first bad entry
	}
	fmt.Println(res.Entries, res.Types[ledger.TypeConsentRevoked])
	// Output: 3 3
}
