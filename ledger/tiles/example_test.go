package tiles_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"golang.org/x/mod/sumdb/note"

	"github.com/healthgw/healthgw/ledger"
	"github.com/healthgw/healthgw/ledger/ledgertest"
	"github.com/healthgw/healthgw/ledger/tiles"
)

func ExampleNew() {
	skey, _, _ := ledger.GenerateCheckpointKey("example.org/log")
	signer, _ := note.NewSigner(skey)
	l := &ledgertest.MemLog{Signer: signer} // e.g. a gateway's ledger.Node
	for i := range 3 {
		if _, err := l.Append(context.Background(), ledgertest.Entry(4*i+1)); err != nil { // consents
			panic(err)
		}
	}
	l.Publish()

	mux := http.NewServeMux()
	// GET /ledger/checkpoint, /ledger/tile/0/000, /ledger/tile/entries/000.p/7, …
	mux.Handle("/ledger/", tiles.New(l, tiles.Options{Prefix: "/ledger"}))
	// With gin: router.Any("/ledger/*path", gin.WrapH(handler)).

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ledger/tile/0/000.p/3", nil))
	fmt.Println(rec.Code, rec.Body.Len()) // three 32-byte hashes
	// Output: 200 96
}
