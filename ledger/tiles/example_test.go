package tiles_test

import (
	"net/http"

	"github.com/healthgw/healthgw/ledger/tiles"
)

func ExampleNew() {
	var l tiles.Log // e.g. a *gormlog.Log
	mux := http.NewServeMux()
	// GET /ledger/checkpoint, /ledger/tile/0/000, /ledger/tile/entries/000.p/7, …
	mux.Handle("/ledger/", tiles.New(l, tiles.Options{Prefix: "/ledger"}))
	// With gin: router.Any("/ledger/*path", gin.WrapH(handler)).
}
